"""MLXModel on mlx-lm (CPU build) with the same tiny Llama as the transformers tests, built offline."""

from __future__ import annotations

import sys

import pytest
from test_models_transformers import SCHEMAS, assert_replies_fit  # tests/ is on sys.path

from codeloop.errors import ModelConfigurationError
from codeloop.messages import agglomerate_stream_deltas
from codeloop.models import Model
from codeloop.models.mlx import MLXModel
from codeloop.testing.tiny_llm import build_tiny_llama

CALL = '{"name": "get_weather", "arguments": {"city": "Paris"}}'
TINY_REPLIES = [("hello", "Hi there, friend."), ("weather in Paris?", CALL, ["get_weather"])]  # as test_models_transformers


class WeatherTool:
    name = "get_weather"
    description = "Weather for a city."
    inputs = {"city": {"type": "string", "description": "City name"}}
    output_type = "string"


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    folder = build_tiny_llama(tmp_path_factory.getbasetemp() / "tiny-llama", TINY_REPLIES)
    return MLXModel(str(folder), max_tokens=40)


async def test_generate_stream_tools_and_usage(model):
    reply = await model.agenerate([{"role": "user", "content": "hello"}])
    assert reply.content == "Hi there, friend."
    assert reply.token_usage.input_tokens > 3 and 0 < reply.token_usage.output_tokens <= 40
    streamed = agglomerate_stream_deltas([d async for d in model.astream([{"role": "user", "content": "hello"}])])
    assert streamed.content == reply.content and streamed.token_usage.output_tokens == reply.token_usage.output_tokens
    call = await model.agenerate([{"role": "user", "content": "weather in Paris?"}], tools_to_call_from=[WeatherTool()])
    assert [(c.function.name, c.function.arguments) for c in call.tool_calls] == [("get_weather", {"city": "Paris"})]


async def test_stop_sequences_and_clear_errors(model, tmp_path, monkeypatch):
    reply = await model.agenerate([{"role": "user", "content": "hello"}], stop_sequences=["friend"])
    assert reply.content == "Hi there, " and reply.token_usage.output_tokens < 8
    text = "".join([d.content or "" async for d in model.astream([{"role": "user", "content": "hello"}],
                                                                  stop_sequences=[", fr"])])
    assert text == "Hi there"
    with pytest.raises(ModelConfigurationError, match="response_format must be"):
        model.generate([{"role": "user", "content": "hi"}], response_format={"type": "text"})
    with pytest.raises(ModelConfigurationError, match="text model.*mlx-vlm"):
        model.generate([{"role": "user", "content": [{"type": "image", "image": b"\x89PNG"}]}])
    data = model.to_dict()
    assert data == {"class": "MLXModel", "model_id": model.model_id, "max_tokens": 40}
    assert Model.from_dict(data).generate([{"role": "user", "content": "hello"}]).content == "Hi there, friend."
    monkeypatch.setitem(sys.modules, "mlx_lm", None)
    with pytest.raises(ModelConfigurationError, match=r"codeloop\[mlx\]"):
        MLXModel(str(tmp_path))


@pytest.mark.parametrize("schema", SCHEMAS, ids=["codeagent", "strict"])
async def test_response_format_constrains_decoding_to_the_schema(model, schema, monkeypatch):
    await assert_replies_fit(model, schema, max_tokens=120)
    monkeypatch.setitem(sys.modules, "llguidance", None)
    with pytest.raises(ModelConfigurationError, match=r"codeloop\[structured\]"):
        model.generate([{"role": "user", "content": "hi"}], response_format={"type": "json_object"})
