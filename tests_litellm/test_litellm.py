"""LiteLLMModel / LiteLLMRouterModel through the real ``litellm`` package (run by scripts/test-litellm.sh in
.venv-litellm), against loopback servers speaking the OpenAI and the Anthropic wire protocols."""

from __future__ import annotations

import pytest

from codeloop.errors import ModelRequestError
from codeloop.messages import agglomerate_stream_deltas
from codeloop.models import LiteLLMModel, LiteLLMRouterModel, Model
from codeloop.models.retry import RetryPolicy
from codeloop.testing import OpenAICompatibleServer, Reply
from codeloop.testing.anthropic_server import AnthropicServer

FAST = RetryPolicy(max_retries=3, initial_delay=0.01, max_delay=0.05, max_wait=5)
USER = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}]


class WeatherTool:
    name = "get_weather"
    description = "Weather for a city."
    inputs = {"city": {"type": "string", "description": "City name"}}
    output_type = "string"


async def test_openai_protocol_plain_stream_tools_and_retries():
    calls = [{"name": "get_weather", "arguments": {"city": "Paris"}}, {"name": "get_weather", "arguments": {"city": "Rome"}}]
    replies = [Reply.error(429, retry_after=0.1), {"content": "plain", "usage": {"prompt_tokens": 5, "completion_tokens": 1}},
               {"tool_calls": calls}, "streamed reply text"]
    with OpenAICompatibleServer(replies) as server:
        model = LiteLLMModel("openai/loopback-model", api_base=server.base_url, api_key="sk-test",
                             retry_policy=FAST, temperature=0.5)
        reply = await model.agenerate(USER, stop_sequences=["END"])
        assert reply.content == "plain" and reply.token_usage.input_tokens == 5
        body = server.chat_requests[-1]["json"]
        assert (body["model"], body["temperature"], body["stop"]) == ("loopback-model", 0.5, ["END"])
        assert server.chat_requests[-1]["headers"]["authorization"] == "Bearer sk-test"
        tools = await model.agenerate(USER, tools_to_call_from=[WeatherTool()])
        assert [c.function.arguments for c in tools.tool_calls] == [{"city": "Paris"}, {"city": "Rome"}]
        message = agglomerate_stream_deltas([d async for d in model.astream(USER)])
        assert message.content == "streamed reply text"
        server.add(Reply.error(401, "bad key"))
        with pytest.raises(ModelRequestError, match="Authentication failed"):
            await model.agenerate(USER)
        assert model.to_dict() == {"class": "LiteLLMModel", "model_id": "openai/loopback-model",
                                   "temperature": 0.5, "api_base": server.base_url}


async def test_anthropic_protocol_through_litellm():
    with AnthropicServer(["claude via litellm"], models=["claude-sonnet-4-5"]) as server:
        model = LiteLLMModel("anthropic/claude-sonnet-4-5", api_base=server.url, api_key="sk-ant-test",
                             retry_policy=FAST, max_tokens=64)
        reply = await model.agenerate(USER)
        assert reply.content == "claude via litellm"
        body = server.message_requests[-1]["json"]
        assert body["model"] == "claude-sonnet-4-5" and body["max_tokens"] == 64
        assert "Be brief." in str(body["system"])


async def test_router_spreads_over_deployments():
    with OpenAICompatibleServer(handler=lambda r: "from a") as a, \
            OpenAICompatibleServer(handler=lambda r: "from b") as b:
        model_list = [
            {"model_name": "team", "litellm_params": {"model": "openai/m", "api_base": s.base_url, "api_key": "sk"}}
            for s in (a, b)
        ]
        model = LiteLLMRouterModel("team", model_list, client_kwargs={"routing_strategy": "simple-shuffle"},
                                   retry_policy=FAST)
        answers = {(await model.agenerate(USER)).content for _ in range(16)}
        assert answers == {"from a", "from b"} and len(a.chat_requests) + len(b.chat_requests) == 16
        data = model.to_dict()
        assert "sk" not in str([e["litellm_params"] for e in data["model_list"]]).replace("'sk'", "")
        assert all("api_key" not in e["litellm_params"] for e in data["model_list"])
        assert isinstance(Model.from_dict({**data, "model_list": model_list}), LiteLLMRouterModel)


def test_cli_and_environment_pick_litellm():
    from codeloop.cli import build_model, build_parser
    from codeloop.models import model_from_env

    args = build_parser().parse_args(["run", "t", "--model-type", "LiteLLMModel", "--model-id", "groq/llama3"])
    model = build_model(args)
    assert type(model) is LiteLLMModel and model.model_id == "groq/llama3"
    assert type(model_from_env("litellm:openai/gpt-4o", environ={})) is LiteLLMModel
