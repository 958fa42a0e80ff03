"""TransformersModel on a tiny Llama built offline (tokenizer trained with ``tokenizers``, random weights
trained for a few seconds to give known replies), loaded through the same code users use."""

from __future__ import annotations

import json

import jsonschema
import pytest

from codeloop.agents import CODEAGENT_RESPONSE_FORMAT
from codeloop.errors import ModelConfigurationError
from codeloop.messages import agglomerate_stream_deltas
from codeloop.models import Model
from codeloop.models.transformers import TransformersModel
from codeloop.testing.tiny_llm import build_tiny_llama

CALL = '{"name": "get_weather", "arguments": {"city": "Paris"}}'
TINY_REPLIES = [("hello", "Hi there, friend."), ("weather in Paris?", CALL, ["get_weather"])]  # also test_models_mlx


class WeatherTool:
    name = "get_weather"
    description = "Weather for a city."
    inputs = {"city": {"type": "string", "description": "City name"}}
    output_type = "string"


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    folder = build_tiny_llama(tmp_path_factory.getbasetemp() / "tiny-llama", TINY_REPLIES)
    return TransformersModel(str(folder), max_new_tokens=40, torch_dtype="float32")


async def test_generate_stream_and_usage(model):
    reply = await model.agenerate([{"role": "user", "content": "hello"}])
    assert reply.content == "Hi there, friend." and reply.tool_calls is None
    assert reply.token_usage.input_tokens > 3 and 0 < reply.token_usage.output_tokens <= 40
    deltas = [d async for d in model.astream([{"role": "user", "content": "hello"}])]
    assert len([d for d in deltas if d.content]) >= 2
    streamed = agglomerate_stream_deltas(deltas)
    assert streamed.content == reply.content
    assert streamed.token_usage.output_tokens == reply.token_usage.output_tokens


async def test_tools_go_through_the_chat_template_and_calls_are_parsed(model):
    reply = await model.agenerate([{"role": "user", "content": "weather in Paris?"}], tools_to_call_from=[WeatherTool()])
    assert reply.content == CALL  # the template listed the tool, so the model wrote its call
    assert [(c.function.name, c.function.arguments) for c in reply.tool_calls] == [("get_weather", {"city": "Paris"})]


async def test_stop_sequences_stop_and_cut(model):
    reply = await model.agenerate([{"role": "user", "content": "hello"}], stop_sequences=["friend"])
    assert reply.content == "Hi there, "
    assert reply.token_usage.output_tokens < 8  # generation stopped there, not merely cut afterwards
    text = "".join([d.content or "" async for d in model.astream([{"role": "user", "content": "hello"}],
                                                                  stop_sequences=[", fr"])])
    assert text == "Hi there"


def test_clear_errors(model, tmp_path, monkeypatch):
    image = {"role": "user", "content": [{"type": "text", "text": "hi"}, {"type": "image", "image": b"\x89PNG"}]}
    with pytest.raises(ModelConfigurationError, match="text model"):
        model.generate([image])
    with pytest.raises(ModelConfigurationError, match="response_format must be"):
        model.generate([{"role": "user", "content": "hi"}], response_format={"type": "text"})
    with pytest.raises(ModelConfigurationError, match="cannot load"):
        TransformersModel(str(tmp_path / "missing"))
    import sys

    monkeypatch.setitem(sys.modules, "transformers", None)
    with pytest.raises(ModelConfigurationError, match=r"codeloop\[transformers\]"):
        TransformersModel(str(tmp_path))


def test_dict_round_trip(model):
    data = model.to_dict()
    assert data["class"] == "TransformersModel" and data["torch_dtype"] == "float32" and data["max_new_tokens"] == 40
    clone = Model.from_dict(data)
    assert clone.generate([{"role": "user", "content": "hello"}]).content == "Hi there, friend."


STRICT = {  # enums, numbers, booleans, arrays and a nested object on top of CodeAgent's strings
    "type": "object",
    "properties": {
        "mood": {"enum": ["happy", "sad"]},
        "count": {"type": "integer", "minimum": 0, "maximum": 99},
        "ok": {"type": "boolean"},
        "tags": {"type": "array", "items": {"type": "string", "maxLength": 5}, "maxItems": 2},
        "inner": {"type": "object", "properties": {"x": {"type": "number"}}, "required": ["x"],
                  "additionalProperties": False},
    },
    "required": ["mood", "count", "ok", "tags", "inner"],
    "additionalProperties": False,
}


SCHEMAS = [CODEAGENT_RESPONSE_FORMAT["json_schema"]["schema"], STRICT]


async def assert_replies_fit(model, schema, **limit):
    """Greedy replies, plain and streamed, to a prompt trained to answer prose, are JSON valid for ``schema``."""
    fmt = {"type": "json_schema", "json_schema": {"name": "answer", "schema": schema, "strict": True}}
    hello = [{"role": "user", "content": "hello"}]
    reply = await model.agenerate(hello, response_format=fmt, **limit)
    jsonschema.validate(json.loads(reply.content), schema)
    streamed = "".join([d.content or "" async for d in model.astream(hello, response_format=fmt, **limit)])
    assert streamed == reply.content
    anything = await model.agenerate(hello, response_format={"type": "json_object"}, **limit)
    assert isinstance(json.loads(anything.content), dict)


@pytest.mark.parametrize("schema", SCHEMAS, ids=["codeagent", "strict"])
async def test_response_format_constrains_decoding_to_the_schema(model, schema):
    await assert_replies_fit(model, schema, max_new_tokens=120)


def test_response_format_without_llguidance_names_the_extra(model, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "llguidance", None)
    with pytest.raises(ModelConfigurationError, match=r"codeloop\[structured\]"):
        model.generate([{"role": "user", "content": "hi"}], response_format={"type": "json_object"})
