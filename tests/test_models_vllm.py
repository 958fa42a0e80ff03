"""VLLMModel through a stand-in ``vllm`` module (tests/standins/vllm: vLLM's offline API shapes, generation by
transformers on the tiny Llama), since vLLM needs CUDA; and its import guard without it."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from codeloop.errors import ModelConfigurationError
from codeloop.models import Model
from codeloop.models.vllm import VLLMModel
from codeloop.testing.tiny_llm import build_tiny_llama

CALL = '{"name": "get_weather", "arguments": {"city": "Paris"}}'
TINY_REPLIES = [("hello", "Hi there, friend."), ("weather in Paris?", CALL, ["get_weather"])]  # as test_models_transformers


class WeatherTool:
    name = "get_weather"
    description = "Weather for a city."
    inputs = {"city": {"type": "string", "description": "City name"}}
    output_type = "string"


@pytest.fixture
def vllm(monkeypatch):
    monkeypatch.syspath_prepend(str(Path(__file__).parent / "standins"))
    monkeypatch.delitem(sys.modules, "vllm", raising=False)
    import vllm

    vllm.CALLS.clear()
    yield vllm
    for name in [n for n in sys.modules if n == "vllm" or n.startswith("vllm.")]:
        monkeypatch.delitem(sys.modules, name)


@pytest.fixture
def folder(tmp_path_factory):
    return str(build_tiny_llama(tmp_path_factory.getbasetemp() / "tiny-llama", TINY_REPLIES))


async def test_engine_sampling_tools_stop_and_structured_output(vllm, folder):
    model = VLLMModel(folder, model_kwargs={"max_model_len": 512}, max_tokens=40)
    assert vllm.CALLS[0] == {"engine": folder, "engine_args": {"max_model_len": 512}}
    reply = await model.agenerate([{"role": "user", "content": "hello"}])
    assert reply.content == "Hi there, friend." and reply.token_usage.output_tokens > 0
    params = vllm.CALLS[-1]["sampling_params"]
    assert (params.temperature, params.max_tokens, params.stop) == (0.0, 40, None)
    assert vllm.CALLS[-1]["prompts"].endswith("<|im_start|>assistant\n")  # the engine tokenizer's chat template
    call = await model.agenerate([{"role": "user", "content": "weather in Paris?"}], tools_to_call_from=[WeatherTool()])
    assert "Tools: get_weather" in vllm.CALLS[-1]["prompts"]
    assert [(c.function.name, c.function.arguments) for c in call.tool_calls] == [("get_weather", {"city": "Paris"})]
    cut = await model.agenerate([{"role": "user", "content": "hello"}], stop_sequences=["friend"])
    assert cut.content == "Hi there, " and vllm.CALLS[-1]["sampling_params"].stop == ["friend"]
    schema = {"type": "object"}
    await model.agenerate([{"role": "user", "content": "hello"}],
                          response_format={"type": "json_schema", "json_schema": {"name": "x", "schema": schema}})
    assert vllm.CALLS[-1]["sampling_params"].structured_outputs == vllm.sampling_params.StructuredOutputsParams(json=schema)
    streamed = [d async for d in model.astream([{"role": "user", "content": "hello"}])]
    assert streamed[0].content == "Hi there, friend."
    assert model.to_dict() == {"class": "VLLMModel", "model_id": folder, "max_tokens": 40,
                               "model_kwargs": {"max_model_len": 512}}
    assert isinstance(Model.from_dict(model.to_dict()), VLLMModel)


def test_without_vllm_the_error_says_what_to_do(monkeypatch):
    monkeypatch.setitem(sys.modules, "vllm", None)
    with pytest.raises(ModelConfigurationError, match=r"NVIDIA GPU.*codeloop\[vllm\].*vllm serve"):
        VLLMModel("Qwen/Qwen2.5-0.5B-Instruct")


async def test_images_go_to_a_multimodal_engine_as_multi_modal_data(vllm, tmp_path_factory):
    from PIL import Image

    from codeloop.messages import image_to_data_url
    from codeloop.testing.tiny_vlm import IMAGE_SIZE, build_tiny_llava

    folder = str(build_tiny_llava(tmp_path_factory.getbasetemp() / "tiny-llava"))
    model = VLLMModel(folder, max_tokens=6)
    assert model.profile.supports_images
    red = Image.new("RGB", (40, 30), "red")
    blue = tmp_path_factory.getbasetemp() / "blue.png"
    Image.new("RGB", (40, 30), "blue").save(blue)
    message = {"role": "user", "content": [{"type": "text", "text": "What is in this picture?"},
                                           {"type": "image", "image": red},
                                           {"type": "image_url", "image_url": {"url": image_to_data_url(blue.read_bytes())}}]}
    reply = await model.agenerate([message])
    assert isinstance(reply.content, str) and 0 < reply.token_usage.output_tokens <= 6
    sent = vllm.CALLS[-1]["prompts"]
    assert sent["prompt"].count("<image>") == 2 and sent["prompt"].endswith("<|im_start|>assistant\n")
    images = sent["multi_modal_data"]["image"]
    assert [im.getpixel((0, 0)) for im in images] == [(255, 0, 0), (0, 0, 255)]  # both, in order
    assert vllm.CALLS[-1]["pixel_values"][0].shape == (2, 3, IMAGE_SIZE, IMAGE_SIZE)  # reached the model
    text = await model.agenerate([{"role": "user", "content": "hello there"}])
    assert isinstance(vllm.CALLS[-1]["prompts"], str) and isinstance(text.content, str)


def test_a_text_engine_rejects_images(vllm, folder):
    model = VLLMModel(folder, max_tokens=4)
    assert not model.profile.supports_images
    with pytest.raises(ModelConfigurationError, match="text model.*multimodal"):
        model.generate([{"role": "user", "content": [{"type": "image", "image": b"\x89PNG"}]}])
