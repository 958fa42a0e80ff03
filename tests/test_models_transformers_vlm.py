"""TransformersModel on a vision-language model: a tiny random LLaVA built offline (codeloop.testing.tiny_vlm),
loaded through AutoProcessor + AutoModelForImageTextToText as users load one. The checks are on what
reaches the model: the processed pixels, and an image token span per image in the prompt."""

from __future__ import annotations

import io

import pytest
import torch
from PIL import Image

from codeloop.messages import agglomerate_stream_deltas, image_to_data_url
from codeloop.models.transformers import TransformersModel
from codeloop.testing.tiny_vlm import IMAGE_SIZE, build_tiny_llava

IMAGE_TOKENS = (IMAGE_SIZE // 14) ** 2  # per image, with 14-pixel patches


@pytest.fixture(scope="module")
def vlm(tmp_path_factory):
    folder = build_tiny_llava(tmp_path_factory.getbasetemp() / "tiny-llava")
    return TransformersModel(str(folder), max_new_tokens=8, torch_dtype="float32")


@pytest.fixture
def seen(vlm, monkeypatch):
    """The keyword arguments of each ``generate`` call the model gets."""
    calls: list[dict] = []
    original = vlm.model.generate

    def spy(**kwargs):
        calls.append(kwargs)
        return original(**kwargs)

    monkeypatch.setattr(vlm.model, "generate", spy)
    return calls


def _png(color: str) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (40, 30), color).save(buf, format="PNG")
    return buf.getvalue()


async def test_images_reach_the_model_as_pixel_values(vlm, seen, tmp_path):
    assert type(vlm.model).__name__ == "LlavaForConditionalGeneration" and vlm.profile.supports_images
    path = tmp_path / "blue.png"
    path.write_bytes(_png("blue"))
    message = {"role": "user", "content": [
        {"type": "text", "text": "What is in this picture?"},
        {"type": "image", "image": Image.new("RGB", (40, 30), "red")},  # PIL
        {"type": "image", "image": str(path)},  # a path
    ]}
    reply = await vlm.agenerate([message])
    assert isinstance(reply.content, str) and 0 < reply.token_usage.output_tokens <= 8
    pixels, ids = seen[0]["pixel_values"], seen[0]["input_ids"]
    assert pixels.shape == (2, 3, IMAGE_SIZE, IMAGE_SIZE)
    expected = vlm.processor.image_processor(images=[Image.new("RGB", (40, 30), "red"), Image.open(path)],
                                             return_tensors="pt")["pixel_values"]
    assert torch.allclose(pixels, expected)  # the same preprocessing, in the same order
    assert pixels[0, 0].mean() > pixels[0, 2].mean() and pixels[1, 2].mean() > pixels[1, 0].mean()  # red, blue
    assert int((ids == vlm.model.config.image_token_index).sum()) == 2 * IMAGE_TOKENS
    assert reply.token_usage.input_tokens == ids.shape[-1]


async def test_data_urls_and_bytes_stream_and_text_only(vlm, seen):
    message = {"role": "user", "content": [{"type": "image", "image": _png("green")},
                                           {"type": "image_url", "image_url": {"url": image_to_data_url(_png("red"))}},
                                           {"type": "text", "text": "Describe the image, please."}]}
    reply = await vlm.agenerate([message])
    streamed = agglomerate_stream_deltas([d async for d in vlm.astream([message])])
    assert streamed.content == reply.content  # greedy: the same reply, streamed
    assert seen[1]["pixel_values"].shape == (2, 3, IMAGE_SIZE, IMAGE_SIZE) and "streamer" in seen[1]
    assert seen[1]["pixel_values"][0, 1].mean() > seen[1]["pixel_values"][0, 0].mean()  # green first
    text_only = await vlm.agenerate([{"role": "user", "content": "hello there"}])
    assert "pixel_values" not in seen[2] and isinstance(text_only.content, str)
