"""AnthropicModel through the real ``anthropic`` SDK against the loopback Messages API server."""

from __future__ import annotations

import base64
import time

import pytest

from codeloop.errors import ModelConfigurationError, ModelRequestError
from codeloop.messages import ChatMessage, ChatMessageToolCall, ChatMessageToolCallFunction
from codeloop.models import Model
from codeloop.models.anthropic import AnthropicModel
from codeloop.models.retry import RetryPolicy
from codeloop.testing.anthropic_server import AnthropicReply, AnthropicServer

MODEL = "claude-sonnet-4-5"
FAST = RetryPolicy(max_retries=3, initial_delay=0.01, max_delay=0.05, max_wait=5)
USER = [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "hello"}]


class WeatherTool:
    name = "get_weather"
    description = "Weather for a city."
    inputs = {"city": {"type": "string", "description": "City name"}}
    output_type = "string"


@pytest.fixture
def server():
    with AnthropicServer(models=[MODEL], api_key="sk-ant-test") as srv:
        yield srv


def make(server, **kwargs):
    kwargs.setdefault("retry_policy", FAST)
    return AnthropicModel(MODEL, api_base=server.url, api_key="sk-ant-test", **kwargs)


async def test_plain_reply_system_blocks_cache_breakpoints_and_usage(server):
    server.add({"content": "hi", "usage": {"input_tokens": 10, "output_tokens": 3,
                                           "cache_read_input_tokens": 90, "cache_creation_input_tokens": 5,
                                           "output_tokens_details": {"thinking_tokens": 2}}})
    model = make(server, temperature=0.2)
    reply = await model.agenerate(USER)
    assert reply.content == "hi" and reply.tool_calls is None
    assert (reply.token_usage.input_tokens, reply.token_usage.cached_input_tokens) == (105, 90)
    assert (reply.token_usage.output_tokens, reply.token_usage.cache_write_tokens) == (3, 5)
    assert reply.token_usage.reasoning_tokens == 2
    sent = server.message_requests[-1]
    body = sent["json"]
    auth = sent["headers"].get("x-api-key") or sent["headers"]["authorization"].removeprefix("Bearer ")
    assert auth == "sk-ant-test" and "anthropic-version" in sent["headers"]
    assert body["system"] == [{"type": "text", "text": "You are terse.", "cache_control": {"type": "ephemeral"}}]
    assert body["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "hello", "cache_control": {"type": "ephemeral"}}]}
    ]
    assert body["max_tokens"] == 4096 and body["temperature"] == 0.2 and "stream" not in body
    await model.aclose()


async def test_parallel_tool_calls_round_trip_as_tool_use_and_tool_result(server):
    calls = [{"name": "get_weather", "arguments": {"city": "Paris"}, "id": "toolu_1"},
             {"name": "get_weather", "arguments": {"city": "Rome"}, "id": "toolu_2"}]
    server.add({"content": "Checking both.", "tool_calls": calls}, "Both sunny.")
    model = make(server, prompt_caching=False, parallel_tool_calls=True)
    reply = await model.agenerate(USER, tools_to_call_from=[WeatherTool()])
    assert [(c.id, c.function.name, c.function.arguments) for c in reply.tool_calls] == [
        ("toolu_1", "get_weather", {"city": "Paris"}), ("toolu_2", "get_weather", {"city": "Rome"})]
    body = server.message_requests[-1]["json"]
    assert body["tools"] == [{"name": "get_weather", "description": "Weather for a city.", "input_schema": {
        "type": "object", "properties": {"city": {"type": "string", "description": "City name"}},
        "required": ["city"]}}]
    assert body["tool_choice"] == {"type": "any"}
    history = [*USER, reply,
               {"role": "tool-response", "tool_call_id": "toolu_1", "content": "sunny 21"},
               {"role": "tool-response", "tool_call_id": "toolu_2", "content": "sunny 25"}]
    final = await model.agenerate(history)
    assert final.content == "Both sunny."
    sent = server.message_requests[-1]["json"]["messages"]
    assert sent[1] == {"role": "assistant", "content": [
        {"type": "text", "text": "Checking both."},
        {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}},
        {"type": "tool_use", "id": "toolu_2", "name": "get_weather", "input": {"city": "Rome"}}]}
    assert sent[2] == {"role": "user", "content": [  # both results in one user turn, as the API requires
        {"type": "tool_result", "tool_use_id": "toolu_1", "content": "sunny 21"},
        {"type": "tool_result", "tool_use_id": "toolu_2", "content": "sunny 25"}]}
    assert "cache_control" not in str(sent)


async def test_streamed_text_tool_calls_and_usage(server):
    server.add({"content": "Let me look that up for you.", "chunk_size": 5,
                "tool_calls": [{"name": "get_weather", "arguments": {"city": "Oslo"}, "id": "toolu_9"}],
                "usage": {"input_tokens": 7, "output_tokens": 11}})
    model = make(server)
    deltas = [d async for d in model.astream(USER, tools_to_call_from=[WeatherTool()])]
    assert server.message_requests[-1]["json"]["stream"] is True
    assert sum(1 for d in deltas if d.content) > 3
    from codeloop.messages import agglomerate_stream_deltas

    message = agglomerate_stream_deltas(deltas)
    assert message.content == "Let me look that up for you."
    assert [(c.id, c.function.name) for c in message.tool_calls] == [("toolu_9", "get_weather")]
    assert model.parse_tool_calls(message).tool_calls[0].function.arguments == {"city": "Oslo"}
    assert (message.token_usage.input_tokens, message.token_usage.output_tokens) == (7, 11)


async def test_stop_sequences_native_and_client_side(server):
    server.add("alpha STOP beta", "alpha STOP beta", "gamma STOP delta")
    model = make(server)
    assert (await model.agenerate(USER, stop_sequences=["STOP"])).content == "alpha "
    assert server.message_requests[-1]["json"]["stop_sequences"] == ["STOP"]
    cut = make(server, profile={"supports_stop": False})
    assert (await cut.agenerate(USER, stop_sequences=["STOP"])).content == "alpha "
    assert "stop_sequences" not in server.message_requests[-1]["json"]
    text = "".join([d.content or "" async for d in cut.astream(USER, stop_sequences=["STOP"])])
    assert text == "gamma "


async def test_images_become_image_blocks(server):
    server.add("a red square")
    png = b"\x89PNG\r\n\x1a\nfake"
    content = [{"type": "text", "text": "What is this?"}, {"type": "image", "image": png},
               {"type": "image_url", "image_url": {"url": "https://example.org/cat.png"}}]
    await make(server, prompt_caching=False).agenerate([{"role": "user", "content": content}])
    blocks = server.message_requests[-1]["json"]["messages"][0]["content"]
    assert blocks[1] == {"type": "image", "source": {"type": "base64", "media_type": "image/png",
                                                      "data": base64.b64encode(png).decode()}}
    assert blocks[2] == {"type": "image", "source": {"type": "url", "url": "https://example.org/cat.png"}}


async def test_response_format_goes_to_output_config(server):
    server.add('{"answer": 4}')
    schema = {"type": "object", "properties": {"answer": {"type": "integer"}}, "required": ["answer"]}
    reply = await make(server).agenerate(
        USER, response_format={"type": "json_schema", "json_schema": {"name": "a", "schema": schema}})
    assert reply.content == '{"answer": 4}'
    assert server.message_requests[-1]["json"]["output_config"] == {"format": {"type": "json_schema",
                                                                               "schema": schema}}


@pytest.mark.parametrize("stream", [False, True])
async def test_thinking_blocks_are_kept_and_sent_back_before_tool_use(server, stream):
    call = {"name": "get_weather", "arguments": {"city": "Lima"}, "id": "toolu_t"}
    server.add(AnthropicReply(thinking="I should check the weather.", signature="sig-123", tool_calls=[call]),
               "Done.")
    model = make(server, thinking={"type": "enabled", "budget_tokens": 2048})
    if stream:
        from codeloop.messages import agglomerate_stream_deltas

        reply = agglomerate_stream_deltas([d async for d in model.astream(USER, tools_to_call_from=[WeatherTool()])])
    else:
        reply = await model.agenerate(USER, tools_to_call_from=[WeatherTool()])
    first = server.message_requests[-1]["json"]
    assert first["thinking"] == {"type": "enabled", "budget_tokens": 2048}
    assert first["tool_choice"] == {"type": "auto"}  # forced tool use is rejected with thinking
    # The agent's memory holds its own message objects: rebuild the turn from plain data, as memory does.
    replayed = ChatMessage(role="assistant", content=None, tool_calls=[ChatMessageToolCall(
        function=ChatMessageToolCallFunction(name="get_weather", arguments={"city": "Lima"}), id=reply.tool_calls[0].id)])
    await model.agenerate([*USER, replayed, {"role": "tool", "tool_call_id": "toolu_t", "content": "warm"}])
    assistant = server.message_requests[-1]["json"]["messages"][1]["content"]
    assert assistant[0] == {"type": "thinking", "thinking": "I should check the weather.", "signature": "sig-123"}
    assert assistant[1]["type"] == "tool_use" and assistant[1]["id"] == "toolu_t"


async def test_retries_429_with_retry_after_500_and_529(server):
    server.add(AnthropicReply.error(429, retry_after=0.3), AnthropicReply.error(500), AnthropicReply.error(529),
               "finally")
    model = make(server)
    started = time.monotonic()
    assert (await model.agenerate(USER)).content == "finally"
    assert time.monotonic() - started >= 0.3 and len(server.message_requests) == 4


async def test_overloaded_gives_up_with_one_clear_error(server):
    server.add(*[AnthropicReply.error(529)] * 4)
    with pytest.raises(ModelRequestError) as info:
        await make(server).agenerate(USER)
    assert info.value.status_code == 529 and info.value.attempts == 4 and "overloaded" in str(info.value)


async def test_dropped_stream_before_and_after_output(server):
    server.add(AnthropicReply.drop(after_chunks=1, content="never"), "second try works")
    text = "".join([d.content or "" async for d in make(server).astream(USER)])
    assert text == "second try works"
    server.add(AnthropicReply.drop(after_chunks=4, content="partial reply here", chunk_size=4))
    with pytest.raises(ModelRequestError, match="stream broke"):
        async for _ in make(server).astream(USER):
            pass


async def test_bad_key_missing_model_and_missing_key(server, monkeypatch):
    with pytest.raises(ModelRequestError, match="Authentication failed") as info:
        await AnthropicModel(MODEL, api_base=server.url, api_key="wrong").agenerate(USER)
    assert info.value.status_code == 401 and info.value.attempts == 1
    with pytest.raises(ModelRequestError, match="check the model id") as info:
        await AnthropicModel("claude-nope", api_base=server.url, api_key="sk-ant-test").agenerate(USER)
    assert info.value.status_code == 404
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    with pytest.raises(ModelConfigurationError, match="ANTHROPIC_API_KEY"):
        AnthropicModel(MODEL)


def test_missing_extra_names_it(server, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "anthropic", None)
    with pytest.raises(ModelConfigurationError, match=r"codeloop\[anthropic\]"):
        make(server).generate(USER)


def test_sync_generate_and_dict_round_trip_without_secret(server):
    server.add("sync ok")
    model = make(server, max_tokens=100)
    assert model.generate(USER).content == "sync ok"
    data = model.to_dict()
    assert data["class"] == "AnthropicModel" and "sk-ant-test" not in str(data) and data["max_tokens"] == 100
    clone = Model.from_dict({**data, "api_key": "sk-ant-test"})
    assert type(clone) is AnthropicModel and clone.api_base == server.url
    model.close()


async def test_agent_cache_hints_choose_the_breakpoints(server):
    from codeloop.models.caching import CacheHints

    server.add("ok")
    model = make(server)
    assert model.accepts_cache_hints
    history = [*USER, {"role": "assistant", "content": "step one"}, {"role": "user", "content": "obs one"},
               {"role": "user", "content": "obs two"}]  # the last two merge into one user turn, one block
    await model.agenerate(history, cache_hints=CacheHints(key="agent-1", breakpoints=(0, 2, 3, 4)))
    body = server.message_requests[-1]["json"]
    assert "cache_hints" not in str(body) and "agent-1" not in str(body)
    assert body["system"][-1]["cache_control"] == {"type": "ephemeral"}
    marked = [(i, j) for i, m in enumerate(body["messages"]) for j, b in enumerate(m["content"]) if "cache_control" in b]
    assert marked == [(1, 0), (2, 0)]  # after "step one", and the merged "obs one\nobs two" turn


def test_breakpoints_are_capped_at_the_api_limit():
    from codeloop.models.anthropic import add_cache_breakpoints

    system = [{"type": "text", "text": "rules"}]
    messages = [{"role": "user", "content": [{"type": "text", "text": str(i)}]} for i in range(6)]
    add_cache_breakpoints(system, messages, [(i, 0) for i in range(6)])
    assert "cache_control" in system[0]
    assert [i for i, m in enumerate(messages) if "cache_control" in m["content"][0]] == [3, 4, 5]


def test_agents_run_on_the_messages_api(server):
    from codeloop import CodeAgent, ToolCallingAgent, tool

    @tool
    def get_weather(city: str) -> str:
        """Weather for a city.

        Args:
            city: the city
        """
        return f"sunny in {city}"

    server.add({"tool_calls": [{"name": "get_weather", "arguments": {"city": "Paris"}, "id": "tu1"}]},
               {"tool_calls": [{"name": "final_answer", "arguments": {"answer": "sunny"}, "id": "tu2"}]},
               "Thought: look it up\n<code>\nfinal_answer(get_weather('Rome'))\n</code>")
    model = make(server, prices={"input": 3, "output": 15})
    assert ToolCallingAgent(tools=[get_weather], model=model, max_steps=3).run("weather?") == "sunny"
    second = server.message_requests[1]["json"]["messages"]
    assert "sunny in Paris" in str(second[-1]["content"])
    assert CodeAgent(tools=[get_weather], model=model, max_steps=2).run("weather?") == "sunny in Rome"
    assert server.message_requests[-1]["json"]["stop_sequences"]  # the agent's stops went to the API
