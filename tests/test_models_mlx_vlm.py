"""MLXModel on a vision-language model through mlx-vlm (CPU build of mlx): the tiny random LLaVA of the
TransformersModel tests (codeloop.testing.tiny_vlm), built offline and loaded through the same code users
use. The checks are on what reaches mlx-vlm's generation: the processed pixels, and an image token span per
image in the prompt."""

from __future__ import annotations

import io
import json
import sys

import jsonschema
import numpy as np
import pytest
from PIL import Image
from test_models_transformers import SCHEMAS  # tests/ is on sys.path

from codeloop.errors import ModelConfigurationError
from codeloop.messages import agglomerate_stream_deltas, image_to_data_url
from codeloop.models import Model
from codeloop.models.mlx import MLXModel
from codeloop.testing.tiny_vlm import IMAGE_SIZE, build_tiny_llava

pytest.importorskip("mlx_vlm", reason="mlx-vlm runs on Linux and macOS only")  # a test extra there

IMAGE_TOKENS = (IMAGE_SIZE // 14) ** 2  # per image, with 14-pixel patches


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return build_tiny_llava(tmp_path_factory.getbasetemp() / "tiny-llava")


@pytest.fixture(scope="module")
def vlm(folder):
    # mlx-vlm makes transformers.AutoProcessor return its own LLaVA processor once it has loaded one, for
    # the whole process: put transformers' back for the TransformersModel tests that run after these
    from transformers import AutoProcessor

    original = AutoProcessor.__dict__["from_pretrained"]
    yield MLXModel(str(folder), max_tokens=8)
    AutoProcessor.from_pretrained = original


@pytest.fixture
def seen(vlm, monkeypatch):
    """The keyword arguments of each mlx_vlm.stream_generate call the model makes."""
    calls: list[dict] = []
    original = vlm.vision.mlx_vlm.stream_generate

    def spy(model, processor, prompt, **kwargs):
        calls.append({"prompt": prompt, **kwargs})
        return original(model, processor, prompt, **kwargs)

    monkeypatch.setattr(vlm.vision.mlx_vlm, "stream_generate", spy)
    return calls


def _png(color: str) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (40, 30), color).save(buf, format="PNG")
    return buf.getvalue()


def _channel_means(pixels) -> np.ndarray:
    return np.array(pixels).mean(axis=(2, 3))  # (images, channels)


async def test_images_reach_mlx_vlm_as_pixel_values(vlm, seen, tmp_path):
    assert type(vlm.model).__module__.startswith("mlx_vlm.models.llava") and vlm.profile.supports_images
    path = tmp_path / "blue.png"
    path.write_bytes(_png("blue"))
    message = {"role": "user", "content": [
        {"type": "text", "text": "What is in this picture?"},
        {"type": "image", "image": Image.new("RGB", (40, 30), "red")},  # PIL
        {"type": "image", "image": str(path)},  # a path
    ]}
    reply = await vlm.agenerate([message])
    assert isinstance(reply.content, str) and 0 < reply.token_usage.output_tokens <= 8
    call = seen[0]
    pixels, ids = np.array(call["pixel_values"]), np.array(call["input_ids"])
    assert pixels.shape == (2, 3, IMAGE_SIZE, IMAGE_SIZE)
    expected = vlm.vision.processor.image_processor([Image.new("RGB", (40, 30), "red"), Image.open(path)])
    assert np.allclose(pixels, np.array(expected["pixel_values"]), atol=1e-6)  # the same preprocessing and order
    means = _channel_means(pixels)
    assert means[0, 0] > means[0, 2] and means[1, 2] > means[1, 0]  # red, then blue
    assert int((ids == vlm.model.config.image_token_index).sum()) == 2 * IMAGE_TOKENS
    assert call["prompt"].count("<image>") == 2 and "What is in this picture?" in call["prompt"]
    assert reply.token_usage.input_tokens == ids.shape[-1]
    assert np.array(call["mask"]).shape == ids.shape


async def test_data_urls_bytes_stream_stop_and_text_only(vlm, seen):
    message = {"role": "user", "content": [{"type": "image", "image": _png("green")},
                                           {"type": "image_url", "image_url": {"url": image_to_data_url(_png("red"))}},
                                           {"type": "text", "text": "Describe the image, please."}]}
    reply = await vlm.agenerate([message])
    streamed = agglomerate_stream_deltas([d async for d in vlm.astream([message])])
    assert streamed.content == reply.content  # greedy: the same reply, streamed
    assert streamed.token_usage.output_tokens == reply.token_usage.output_tokens
    means = _channel_means(seen[1]["pixel_values"])
    assert means.shape == (2, 3) and means[0, 1] > means[0, 0] and means[1, 0] > means[1, 1]  # green, red
    if len(reply.content) > 2:  # random weights: cut the reply at a piece of itself
        stop = reply.content[1:3]
        cut = await vlm.agenerate([message], stop_sequences=[stop])
        assert cut.content == reply.content[: reply.content.index(stop)]
    text_only = await vlm.agenerate([{"role": "user", "content": "hello there"}])
    last = seen[-1]
    assert last.get("pixel_values") is None and isinstance(text_only.content, str)
    assert not (np.array(last["input_ids"]) == vlm.model.config.image_token_index).any()


@pytest.mark.parametrize("schema", SCHEMAS, ids=["codeagent", "strict"])
async def test_response_format_constrains_the_vision_model(vlm, schema):
    # random weights: only schemas whose strings are bounded close in time (json_object's free keys do not;
    # the same logits processor gets that case on mlx-lm in test_models_mlx.py)
    fmt = {"type": "json_schema", "json_schema": {"name": "answer", "schema": schema, "strict": True}}
    message = [{"role": "user", "content": [{"type": "image", "image": _png("red")}, {"type": "text", "text": "hi"}]}]
    reply = await vlm.agenerate(message, response_format=fmt, max_tokens=120)
    jsonschema.validate(json.loads(reply.content), schema)
    streamed = "".join([d.content or "" async for d in vlm.astream(message, response_format=fmt, max_tokens=120)])
    assert streamed == reply.content


def test_round_trip_and_the_extra_named_when_missing(vlm, folder, monkeypatch):
    data = vlm.to_dict()
    assert data == {"class": "MLXModel", "model_id": str(folder), "max_tokens": 8}
    again = Model.from_dict(data)
    assert again.vision is not None and again.profile.supports_images
    monkeypatch.setitem(sys.modules, "mlx_vlm", None)  # without the extra: mlx-lm runs LLaVA's language model
    text_only = MLXModel(str(folder), max_tokens=4)
    assert text_only.vision is None and not text_only.profile.supports_images
    assert isinstance(text_only.generate([{"role": "user", "content": "hello there"}]).content, str)
    with pytest.raises(ModelConfigurationError, match=r"text model.*pip install 'codeloop\[mlx-vlm\]'"):
        text_only.generate([{"role": "user", "content": [{"type": "image", "image": _png("red")}]}])
