"""OpenAIModel / AzureOpenAIModel through the real ``openai`` client against the loopback server."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest

from codeloop.errors import ModelConfigurationError, ModelRequestError
from codeloop.messages import agglomerate_stream_deltas
from codeloop.models import AzureOpenAIModel, OpenAIModel, OpenAIServerModel, profiles
from codeloop.models.retry import RetryPolicy
from codeloop.testing import OpenAICompatibleServer, Reply

USER = [{"role": "user", "content": "hello"}]
FAST = RetryPolicy(max_retries=3, initial_delay=0.01, max_delay=0.05, max_wait=5)


class WeatherTool:
    name = "get_weather"
    description = "Weather for a city."
    inputs = {"city": {"type": "string", "description": "City name"}}
    output_type = "string"


@pytest.fixture
def server():
    with OpenAICompatibleServer() as srv:
        yield srv


def make(server, model_id="gpt-4o-mini", **kwargs):
    kwargs.setdefault("retry_policy", FAST)
    return OpenAIModel(model_id, api_base=server.base_url, api_key="test-key", **kwargs)


async def test_plain_completion_request_and_usage(server):
    server.add(
        {"content": "hi there", "usage": {"prompt_tokens": 100, "completion_tokens": 20, "cached_tokens": 40}}
    )
    model = make(server, temperature=0.3)
    message = await model.agenerate([{"role": "system", "content": "be nice"}, *USER])
    assert message.content == "hi there" and message.role == "assistant"
    usage = message.token_usage
    assert (usage.input_tokens, usage.output_tokens, usage.cached_input_tokens) == (100, 20, 40)
    assert usage.cost == pytest.approx((60 * 0.15 + 40 * 0.075 + 20 * 0.60) / 1e6)
    sent = server.last_request
    assert sent["path"] == "/v1/chat/completions"
    assert sent["headers"]["authorization"] == "Bearer test-key"
    assert sent["json"]["model"] == "gpt-4o-mini" and sent["json"]["temperature"] == 0.3
    assert sent["json"]["messages"] == [
        {"role": "system", "content": "be nice"},
        {"role": "user", "content": "hello"},
    ]
    assert model.last_input_token_count == 100
    assert OpenAIServerModel is OpenAIModel


async def test_streaming_text_and_usage(server):
    server.add(
        Reply(content="a streamed answer", chunk_size=3, usage={"prompt_tokens": 7, "completion_tokens": 5})
    )
    deltas = [d async for d in make(server).astream(USER)]
    assert sum(1 for d in deltas if d.content) == 6
    message = agglomerate_stream_deltas(deltas)
    assert message.content == "a streamed answer"
    assert (message.token_usage.input_tokens, message.token_usage.output_tokens) == (7, 5)
    assert message.token_usage.cost is not None
    assert server.last_request["json"]["stream_options"] == {"include_usage": True}


async def test_native_tool_calls(server):
    server.add({"tool_calls": [{"name": "get_weather", "arguments": {"city": "Paris"}, "id": "call_w"}]})
    message = await make(server).agenerate(USER, tools_to_call_from=[WeatherTool()])
    assert message.tool_calls[0].id == "call_w"
    assert message.tool_calls[0].function.name == "get_weather"
    assert message.tool_calls[0].function.arguments == {"city": "Paris"}
    body = server.last_request["json"]
    assert body["tools"][0]["function"]["parameters"]["properties"]["city"]["type"] == "string"
    assert body["tool_choice"] == "required"


async def test_streamed_tool_calls_in_pieces(server):
    server.add(
        Reply(
            tool_calls=[
                {"name": "get_weather", "arguments": {"city": "Paris"}},
                {"name": "get_weather", "arguments": {"city": "Rome"}},
            ],
            chunk_size=2,
        )
    )
    model = make(server)
    deltas = [d async for d in model.astream(USER, tools_to_call_from=[WeatherTool()], tool_choice="auto")]
    assert sum(1 for d in deltas if d.tool_calls) > 8
    message = model.parse_tool_calls(agglomerate_stream_deltas(deltas))
    assert [c.function.arguments for c in message.tool_calls] == [{"city": "Paris"}, {"city": "Rome"}]
    assert server.last_request["json"]["tool_choice"] == "auto"


@pytest.mark.parametrize(
    "text",
    [
        'Calling the tool.\n```json\n{"name": "get_weather", "arguments": {"city": "Oslo"}}\n```\nWaiting.',
        'I think {"name": "get_weather", "arguments": {"city": "Oslo"}} is right.',
        '{"name": "get_weather", "arguments": {"city": "Oslo",},}',
    ],
)
async def test_tool_calls_parsed_from_text(server, text):
    server.add(text)
    message = await make(server).agenerate(USER, tools_to_call_from=[WeatherTool()])
    assert message.tool_calls[0].function.name == "get_weather"
    assert message.tool_calls[0].function.arguments == {"city": "Oslo"}


async def test_text_json_that_is_not_an_offered_tool_is_left_alone(server):
    server.add('The user is {"name": "Bob", "arguments": {"age": 3}}.')
    message = await make(server).agenerate(USER, tools_to_call_from=[WeatherTool()])
    assert message.tool_calls is None and "Bob" in message.content


async def test_no_native_tools_when_profile_says_so(server):
    server.add('{"name": "get_weather", "arguments": {"city": "Lima"}}')
    model = make(server, model_id="local-model", profile={"supports_tool_calls": False})
    message = await model.agenerate(USER, tools_to_call_from=[WeatherTool()])
    assert "tools" not in server.last_request["json"]
    assert message.tool_calls[0].function.arguments == {"city": "Lima"}


async def test_response_format_forwarded_or_refused(server):
    fmt = {
        "type": "json_schema",
        "json_schema": {"name": "answer", "schema": {"type": "object"}, "strict": True},
    }
    server.add('{"ok": true}')
    await make(server).agenerate(USER, response_format=fmt)
    assert server.last_request["json"]["response_format"] == fmt
    with pytest.raises(ModelConfigurationError, match="supports_response_format"):
        await make(server, profile={"supports_response_format": False}).agenerate(USER, response_format=fmt)


async def test_images_sent_as_data_urls(server):
    server.add("a cat")
    message = {
        "role": "user",
        "content": [{"type": "text", "text": "what?"}, {"type": "image", "image": b"\x89PNG"}],
    }
    await make(server).agenerate([message])
    parts = server.last_request["json"]["messages"][0]["content"]
    assert parts[0] == {"type": "text", "text": "what?"}
    assert parts[1]["type"] == "image_url" and parts[1]["image_url"]["url"].startswith(
        "data:image/png;base64,"
    )


async def test_stop_sent_when_supported(server):
    server.add("done")
    await make(server).agenerate(USER, stop_sequences=["<end_code>", "Observation:"])
    assert server.last_request["json"]["stop"] == ["<end_code>", "Observation:"]


async def test_stop_cut_client_side_for_models_rejecting_it(server):
    server.add("print(1)<end_code>leak", Reply(content="print(2)\n<end_code>more leak", chunk_size=3))
    model = make(server, model_id="o4-mini", max_tokens=50, temperature=0.5)
    message = await model.agenerate(USER, stop_sequences=["<end_code>"])
    body = server.last_request["json"]
    assert message.content == "print(1)"
    assert "stop" not in body and "temperature" not in body
    assert body["max_completion_tokens"] == 50 and "max_tokens" not in body
    deltas = [d async for d in model.astream(USER, stop_sequences=["<end_code>"])]
    assert agglomerate_stream_deltas(deltas).content == "print(2)\n"


async def test_429_retry_after_honoured(server):
    server.add(Reply.error(429, retry_after=0.3), "after wait")
    start = time.monotonic()
    message = await make(server).agenerate(USER)
    assert message.content == "after wait"
    first, second = server.chat_requests
    assert second["time"] - first["time"] >= 0.28
    assert time.monotonic() - start >= 0.28


async def test_500_then_success_and_streaming_retry(server):
    server.add(Reply.error(500), "recovered", Reply.error(503), Reply.drop(after_chunks=0), "stream ok")
    assert (await make(server).agenerate(USER)).content == "recovered"
    assert agglomerate_stream_deltas([d async for d in make(server).astream(USER)]).content == "stream ok"
    assert len(server.chat_requests) == 5


async def test_give_up_with_one_clear_error(server):
    server.add(*[Reply.error(500)] * 3)
    model = make(server, retry_policy=RetryPolicy(max_retries=2, initial_delay=0.01))
    with pytest.raises(ModelRequestError) as info:
        await model.agenerate(USER)
    assert info.value.status_code == 500 and info.value.attempts == 3
    assert "failed after 3 attempt(s)" in str(info.value) and "gpt-4o-mini" in str(info.value)
    assert len(server.chat_requests) == 3


async def test_not_retryable_error_is_immediate(server):
    server.add(Reply.error(400, "bad parameter"))
    with pytest.raises(ModelRequestError, match="bad parameter") as info:
        await make(server).agenerate(USER)
    assert (info.value.status_code, info.value.attempts) == (400, 1)
    assert len(server.chat_requests) == 1


async def test_retry_after_beyond_max_wait_gives_up(server):
    server.add(Reply.error(429, retry_after=30))
    with pytest.raises(ModelRequestError, match="max_wait") as info:
        await make(server, retry_policy=RetryPolicy(max_wait=1)).agenerate(USER)
    assert info.value.status_code == 429


async def test_timeout_is_retried(server):
    server.add(Reply(content="too slow", delay=1.0), "fast")
    model = make(server, client_kwargs={"timeout": 0.2})
    assert (await model.agenerate(USER)).content == "fast"


async def test_dropped_mid_stream_not_retried(server):
    server.add(Reply.drop(after_chunks=3, content="x" * 64, chunk_size=4), "never used")
    received = []
    with pytest.raises(ModelRequestError, match="stream broke.*Not retried") as info:
        async for delta in make(server).astream(USER):
            received.append(delta)
    assert received and info.value.attempts == 1
    assert len(server.chat_requests) == 1


async def test_connection_refused_gives_up():
    with OpenAICompatibleServer() as srv:
        base = srv.base_url
    model = OpenAIModel("m", api_base=base, retry_policy=RetryPolicy(max_retries=1, initial_delay=0.01))
    with pytest.raises(ModelRequestError) as info:
        await model.agenerate(USER)
    assert info.value.attempts == 2 and info.value.status_code is None


async def test_requests_per_minute(server):
    server.add(*["ok"] * 4)
    model = make(server, requests_per_minute=600)  # one request per 100 ms
    await asyncio.gather(*(model.agenerate(USER) for _ in range(4)))
    times = sorted(r["time"] for r in server.chat_requests)
    assert times[-1] - times[0] >= 0.25  # slots 100 ms apart: the 4th request leaves 300 ms after the 1st


async def test_sync_wrappers_inside_running_loop(server):
    server.add("sync in loop", Reply(content="sync stream", chunk_size=4))
    model = make(server)
    assert model.generate(USER).content == "sync in loop"
    assert agglomerate_stream_deltas(model.generate_stream(USER)).content == "sync stream"


def test_sync_wrappers_without_loop_reuse_client(server):
    server.add("one", "two")
    model = make(server)
    assert model(USER).content == "one"
    assert model.generate(USER).content == "two"
    assert len(model._async_clients) == 1


def test_missing_api_key_is_a_configuration_error(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(ModelConfigurationError, match="OPENAI_API_KEY"):
        OpenAIModel("gpt-4o")


def test_sdk_retries_disabled_and_user_count_adopted(server):
    model = make(server, client_kwargs={"max_retries": 7}, retry_policy=None)
    assert model.retry_policy.max_retries == 7
    assert model.client.max_retries == 0


async def test_azure_deployment_path(server):
    server.add("from azure", Reply(content="azure stream", chunk_size=5))
    model = AzureOpenAIModel(
        "my-deployment",
        azure_endpoint=server.url,
        api_version="2024-10-21",
        api_key="az-key",
        retry_policy=FAST,
    )
    assert (await model.agenerate(USER)).content == "from azure"
    sent = server.last_request
    assert sent["path"] == "/openai/deployments/my-deployment/chat/completions"
    assert sent["query"] == {"api-version": "2024-10-21"}
    assert sent["headers"]["api-key"] == "az-key"
    assert agglomerate_stream_deltas([d async for d in model.astream(USER)]).content == "azure stream"


def test_azure_requires_endpoint_and_version(monkeypatch):
    for var in ("AZURE_OPENAI_ENDPOINT", "OPENAI_API_VERSION"):
        monkeypatch.delenv(var, raising=False)
    with pytest.raises(ModelConfigurationError, match="AZURE_OPENAI_ENDPOINT"):
        AzureOpenAIModel("dep", api_key="k")


async def test_more_than_four_stops_and_no_stream_usage(server):
    server.add(Reply(content="one two STOP5 three", chunk_size=2))
    stops = ["S1", "S2", "S3", "S4", "STOP5"]
    model = make(server, profile={"supports_streaming_usage": False})
    message = agglomerate_stream_deltas([d async for d in model.astream(USER, stop_sequences=stops)])
    body = server.last_request["json"]
    assert body["stop"] == stops[:4] and "stream_options" not in body
    assert message.content == "one two " and message.token_usage is None


def refusing_stop(body):
    """A server that refuses requests carrying ``stop`` with ``body`` (a 400), and otherwise answers with
    text that runs past the stop sequence."""

    def handler(request):
        if "stop" in request:
            return Reply(status=400, body=body)
        if request.get("stream"):
            return Reply(content="print(2)<end_code>leak", chunk_size=3)
        return "print(1)<end_code>leak"

    return handler


OPENAI_REFUSAL = {
    "error": {
        "message": "Unsupported parameter: 'stop' is not supported with this model.",
        "type": "invalid_request_error",
        "param": "stop",
        "code": "unsupported_parameter",
    }
}


@pytest.mark.parametrize(
    "body",
    [OPENAI_REFUSAL, {"error": {"message": "Model newthing-1 does not support parameter stop.", "code": 400}}],
    ids=["openai-param-field", "message-only"],
)
async def test_stop_refused_by_server_retried_without_it_and_remembered(server, body, monkeypatch, caplog):
    monkeypatch.setattr(profiles, "_LEARNED", {})
    server.handler = refusing_stop(body)
    model = make(server, model_id="newthing-1")
    assert model.supports_stop_parameter
    with caplog.at_level(logging.WARNING, logger="codeloop.models"):
        first = await model.agenerate(USER, stop_sequences=["<end_code>"])
        assert first.content == "print(1)"
        refused, retried = server.chat_requests
        assert refused["json"]["stop"] == ["<end_code>"] and "stop" not in retried["json"]
        assert not model.supports_stop_parameter
        # later requests, streamed ones and those of a new model for the same id leave stop out at once
        deltas = [d async for d in model.astream(USER, stop_sequences=["<end_code>"])]
        assert agglomerate_stream_deltas(deltas).content == "print(2)"
        again = make(server, model_id="newthing-1")
        assert (await again.agenerate(USER, stop_sequences=["<end_code>"])).content == "print(1)"
    assert len(server.chat_requests) == 4
    assert all("stop" not in r["json"] for r in server.chat_requests[1:])
    logged = [r for r in caplog.records if "refused the 'stop' parameter" in r.getMessage()]
    assert len(logged) == 1 and "newthing-1" in logged[0].getMessage()
    assert not profiles.resolve_profile("newthing-1").supports_stop
    assert profiles.resolve_profile("other-model").supports_stop


async def test_stop_refused_while_streaming_first(server, monkeypatch):
    monkeypatch.setattr(profiles, "_LEARNED", {})
    server.handler = refusing_stop(OPENAI_REFUSAL)
    deltas = [d async for d in make(server, model_id="newthing-2").astream(USER, stop_sequences=["<end_code>"])]
    assert agglomerate_stream_deltas(deltas).content == "print(2)"
    assert [("stop" in r["json"]) for r in server.chat_requests] == [True, False]


async def test_other_400s_are_not_mistaken_for_a_refused_stop(server, monkeypatch):
    monkeypatch.setattr(profiles, "_LEARNED", {})
    # the word alone (here inside echoed prompt text) is not a refusal of the parameter
    server.add(Reply.error(400, "This model's maximum context length is 10 tokens; the prompt was: please stop"))
    with pytest.raises(ModelRequestError, match="maximum context length") as info:
        await make(server, model_id="newthing-3").agenerate(USER, stop_sequences=["<end_code>"])
    assert info.value.status_code == 400 and len(server.chat_requests) == 1
    # a refusal whose retry without stop fails too: that error is raised and nothing is learned
    server.add(Reply(status=400, body=OPENAI_REFUSAL), Reply.error(400, "bad messages"))
    model = make(server, model_id="newthing-3")
    with pytest.raises(ModelRequestError, match="bad messages"):
        await model.agenerate(USER, stop_sequences=["<end_code>"])
    assert model.supports_stop_parameter and profiles.resolve_profile("newthing-3").supports_stop
