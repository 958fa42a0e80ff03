"""Model base pieces without a network: message conversion, tool-call parsing, stop cutting, profiles,
cost, retry policy, rate limiter, sync wrappers and the lazy import promise."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from dataclasses import replace

import pytest

from codeloop.errors import AgentParsingError, ModelRequestError
from codeloop.messages import ChatMessage, ChatMessageToolCall, ChatMessageToolCallFunction, TokenUsage
from codeloop.models import Model, ModelProfile, StopCutter, cut_at_stop, resolve_profile
from codeloop.models.convert import to_chat_messages, tool_schema
from codeloop.models.cost import Price, compute_cost, price_for, register_price, with_cost
from codeloop.models.ratelimit import RateLimiter
from codeloop.models.retry import Retrier, RetryPolicy, classify_error, retry_call
from codeloop.models.toolcall_parsing import loads_lenient, tool_calls_from_text

# ---- message conversion ----------------------------------------------------------------------------


def test_roles_converted_and_consecutive_merged():
    out = to_chat_messages(
        [
            {"role": "system", "content": [{"type": "text", "text": "sys"}]},
            ChatMessage(role="user", content="task"),
            ChatMessage(role="tool-call", content="Calling tools: x"),
            {"role": "tool-response", "content": [{"type": "text", "text": "Observation: 1"}]},
            {"role": "user", "content": "more"},
        ]
    )
    assert [m["role"] for m in out] == ["system", "user", "assistant", "user"]
    assert out[3]["content"] == [
        {"type": "text", "text": "Observation: 1"},
        {"type": "text", "text": "more"},
    ]
    assert out[1]["content"] == "task"


def test_native_tool_role_only_with_ids():
    call = ChatMessageToolCall(ChatMessageToolCallFunction("add", {"a": 1}), id="c1")
    out = to_chat_messages(
        [
            ChatMessage(role="assistant", content=None, tool_calls=[call]),
            {"role": "tool-response", "tool_call_id": "c1", "content": "3"},
            {"role": "tool-response", "content": "no id: plain text"},
        ]
    )
    assert out[0] == {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "add", "arguments": '{"a": 1}'}}
        ],
    }
    assert out[1] == {"role": "tool", "tool_call_id": "c1", "content": "3"}
    assert out[2] == {"role": "user", "content": "no id: plain text"}


def test_images_become_data_urls_and_flatten_drops_them():
    msg = {
        "role": "user",
        "content": [{"type": "text", "text": "see"}, {"type": "image", "image": b"PNGDATA"}],
    }
    out = to_chat_messages([msg])
    url = out[0]["content"][1]["image_url"]["url"]
    assert url.startswith("data:image/png;base64,")
    assert to_chat_messages([msg], flatten_messages_as_text=True)[0]["content"] == "see"
    assert msg["content"][1]["image"] == b"PNGDATA"  # input untouched


def test_custom_role_conversions_and_system_role():
    out = to_chat_messages(
        [{"role": "system", "content": "s"}, {"role": "tool-response", "content": "o"}],
        role_conversions={"tool-response": "assistant"},
        system_role="developer",
    )
    assert [m["role"] for m in out] == ["developer", "assistant"]


def test_unknown_role_rejected():
    with pytest.raises(ValueError, match="Unknown message role"):
        to_chat_messages([{"role": "wizard", "content": "x"}])


class DuckTool:
    name = "get_weather"
    description = "Weather for a city."
    inputs = {
        "city": {"type": "string", "description": "City"},
        "unit": {"type": "string", "description": "Unit", "nullable": True},
    }
    output_type = "string"


def test_tool_schema_duck_typed_and_to_tool_schema_preferred():
    schema = tool_schema(DuckTool())
    assert schema["function"]["name"] == "get_weather"
    assert schema["function"]["parameters"]["required"] == ["city"]
    assert "nullable" not in schema["function"]["parameters"]["properties"]["unit"]

    class WithSchema(DuckTool):
        def to_tool_schema(self):
            return {"type": "function", "function": {"name": "custom"}}

    assert tool_schema(WithSchema())["function"]["name"] == "custom"


# ---- tool calls from text ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        '{"name": "search", "arguments": {"q": "cats"}}',
        'Sure! I will call it:\n```json\n{"name": "search", "arguments": {"q": "cats"}}\n```\nDone.',
        'Action: {"name": "search", "arguments": {"q": "cats",},} and that is all',
        "Calling {'name': 'search', 'arguments': {'q': 'cats'}} now",
        '{"tool_name": "search", "parameters": "{\\"q\\": \\"cats\\"}"}',
        '{"function": {"name": "search", "arguments": {"q": "cats"}}}',
    ],
)
def test_tool_calls_from_text_shapes(text):
    calls = tool_calls_from_text(text)
    assert len(calls) == 1
    assert calls[0].function.name == "search"
    assert calls[0].function.arguments == {"q": "cats"}


def test_tool_calls_from_text_list_and_none():
    calls = tool_calls_from_text('[{"name": "a", "arguments": {}}, {"name": "b", "arguments": {"x": true}}]')
    assert [c.function.name for c in calls] == ["a", "b"]
    assert calls[1].function.arguments == {"x": True}
    assert tool_calls_from_text("no json here {not json either}") == []


def test_loads_lenient_json_literals_with_trailing_comma():
    assert loads_lenient('{"a": [1, 2,], "b": null, "c": false,}') == {"a": [1, 2], "b": None, "c": False}
    with pytest.raises(ValueError):
        loads_lenient("{nope")


def test_parse_tool_calls_fills_and_decodes():
    model = Model(model_id="x")
    msg = model.parse_tool_calls(
        ChatMessage(role="assistant", content='```\n{"name": "f", "arguments": {"v": 2}}\n```')
    )
    assert msg.tool_calls[0].function.arguments == {"v": 2}
    native = ChatMessage(
        role="assistant",
        tool_calls=[ChatMessageToolCall(ChatMessageToolCallFunction("g", '{"k": "v"}'), id="1")],
    )
    assert model.parse_tool_calls(native).tool_calls[0].function.arguments == {"k": "v"}
    with pytest.raises(AgentParsingError, match="did not call a tool"):
        model.parse_tool_calls(ChatMessage(role="assistant", content="just words"))


def test_custom_tool_keys():
    model = Model(model_id="x", tool_name_key="tool", tool_arguments_key="input")
    msg = model.parse_tool_calls(ChatMessage(role="assistant", content='{"tool": "t", "input": {"a": 1}}'))
    assert (msg.tool_calls[0].function.name, msg.tool_calls[0].function.arguments) == ("t", {"a": 1})


# ---- stop sequences ----------------------------------------------------------------------------------


def test_cut_at_stop_earliest():
    assert cut_at_stop("abc<end>def</x>", ["</x>", "<end>"]) == "abc"
    assert cut_at_stop("abc", ["zz"]) == "abc"
    assert cut_at_stop("abc", None) == "abc"


@pytest.mark.parametrize("size", [1, 2, 3, 5, 100])
def test_stop_cutter_across_chunks(size):
    text = "print(1)\n<end_code>trailing junk"
    cutter = StopCutter(["<end_code>", "Observation:"])
    out = "".join(cutter.feed(text[i : i + size]) for i in range(0, len(text), size)) + cutter.flush()
    assert out == "print(1)\n"
    assert cutter.stopped


def test_stop_cutter_no_stop_emits_everything():
    cutter = StopCutter(["<end_code>"])
    out = "".join(cutter.feed(c) for c in "hello <end world") + cutter.flush()
    assert out == "hello <end world"


# ---- profiles and cost -------------------------------------------------------------------------------


def test_profiles_from_table_and_overrides():
    assert resolve_profile("gpt-4o").supports_stop
    for mid in ("o3", "openai/o4-mini", "gpt-5", "o1"):
        profile = resolve_profile(mid)
        assert not profile.supports_stop, mid
        assert profile.max_tokens_param == "max_completion_tokens"
    o3_mini = resolve_profile("o3-mini")  # smolagents' rule: o3-mini takes stop, the other o3/o4 do not
    assert o3_mini.supports_stop and o3_mini.max_tokens_param == "max_completion_tokens"
    for mid in ("grok-4", "grok-3", "grok-code-fast-1", "oci/xai.grok-3-mini", "gpt-5x", "gpt-5.2-mini"):
        assert not resolve_profile(mid).supports_stop, mid
    assert resolve_profile("o3x").supports_stop and resolve_profile("prefix-o3").supports_stop
    assert resolve_profile("o3", {"supports_stop": True}).supports_stop
    custom = ModelProfile(supports_images=False)
    assert resolve_profile("gpt-4o", custom) is custom
    with pytest.raises(ValueError, match="Unknown profile field"):
        resolve_profile("gpt-4o", {"supports_teleport": True})
    assert not Model(model_id="o3").supports_stop_parameter


def test_cost_from_genai_prices_and_user_overrides():
    usage = TokenUsage(input_tokens=1_000_000, output_tokens=1_000_000, cached_input_tokens=500_000)
    # genai-prices knows gpt-4o-mini (dated snapshots too): $0.15 in, $0.075 cached, $0.60 out per million
    assert with_cost(replace(usage), "gpt-4o-mini-2024-07-18").cost == pytest.approx(0.5 * 0.15 + 0.5 * 0.075 + 0.60)
    assert compute_cost(usage, Price(0.15, 0.60, 0.075)) == pytest.approx(0.5 * 0.15 + 0.5 * 0.075 + 0.60)
    assert price_for("gpt-4o-mini") is None  # only user-registered prices live in the local table
    with pytest.warns(UserWarning, match="No price known for model 'unknown-model'"):
        assert with_cost(TokenUsage(10, 10), "unknown-model").cost is None
    assert with_cost(
        TokenUsage(1_000_000, 0), "whatever", {"input": 2.0, "output": 1.0}
    ).cost == pytest.approx(2.0)
    register_price("my-local-model", input=1.0, output=3.0)
    assert with_cost(TokenUsage(0, 2_000_000), "ollama:my-local-model").cost == pytest.approx(6.0)
    assert price_for("my-local-model-2025-01-01") == price_for("my-local-model")
    assert price_for("my-local-model-pro") is None  # not a snapshot


# ---- retry and rate limit ---------------------------------------------------------------------------


class FakeStatusError(Exception):
    def __init__(self, status, headers=None):
        super().__init__(f"status {status}")
        self.status_code = status
        self.response = type("R", (), {"headers": headers or {}, "status_code": status})()


def test_classify_errors():
    assert classify_error(FakeStatusError(429, {"retry-after": "2"})).retry_after == 2.0
    assert classify_error(FakeStatusError(503)).retryable
    assert not classify_error(FakeStatusError(401)).retryable
    assert classify_error(FakeStatusError(429, {"retry-after-ms": "150"})).retry_after == pytest.approx(0.15)
    assert classify_error(ConnectionResetError()).retryable
    assert classify_error(TimeoutError()).retryable
    assert not classify_error(KeyError("x")).is_request_error


async def test_retry_call_recovers_and_gives_up():
    attempts = []

    async def flaky():
        attempts.append(1)
        if len(attempts) < 3:
            raise FakeStatusError(500)
        return "ok"

    policy = RetryPolicy(max_retries=3, initial_delay=0.001, jitter=0)
    assert await retry_call(flaky, policy) == "ok"
    assert len(attempts) == 3

    async def always_429():
        raise FakeStatusError(429)

    with pytest.raises(ModelRequestError) as info:
        await retry_call(always_429, RetryPolicy(max_retries=2, initial_delay=0.001), "Call")
    assert (info.value.status_code, info.value.attempts) == (429, 3)
    assert "requests_per_minute" in str(info.value)

    async def bug():
        raise KeyError("not a request error")

    with pytest.raises(KeyError):
        await retry_call(bug, policy)


async def test_retrier_honours_retry_after_and_max_wait():
    slept = []

    async def fake_sleep(seconds):
        slept.append(seconds)

    retrier = Retrier(RetryPolicy(max_retries=5, max_wait=10), "Call", sleep=fake_sleep)
    await retrier.failed(FakeStatusError(429, {"retry-after": "3"}))
    assert slept == [3.0]
    with pytest.raises(ModelRequestError, match="max_wait"):
        await retrier.failed(FakeStatusError(429, {"retry-after": "30"}))


def test_backoff_grows_with_bounded_jitter():
    policy = RetryPolicy(initial_delay=1.0, max_delay=5.0, jitter=0.25)
    for n, base in [(1, 1.0), (2, 2.0), (3, 4.0), (6, 5.0)]:
        for _ in range(20):
            assert base * 0.75 <= policy.backoff(n) <= base * 1.25


async def test_rate_limiter_spaces_concurrent_requests():
    limiter = RateLimiter(requests_per_minute=1200)  # one per 50 ms
    stamps = []

    async def one():
        await limiter.acquire()
        stamps.append(time.monotonic())

    await asyncio.gather(*(one() for _ in range(4)))
    stamps.sort()
    # Slots are 50 ms apart and the first request goes at once, so the last one waits >= 150 ms.
    assert stamps[-1] - stamps[0] >= 0.14, stamps
    with pytest.raises(ValueError):
        RateLimiter(0)


# ---- sync wrappers and imports ----------------------------------------------------------------------


class EchoModel(Model):
    async def agenerate(
        self, messages, stop_sequences=None, response_format=None, tools_to_call_from=None, **kw
    ):
        await asyncio.sleep(0)
        return ChatMessage(role="assistant", content="echo:" + messages[-1]["content"])


def test_sync_generate_without_loop_and_default_stream():
    model = EchoModel(model_id="echo")
    assert model.generate([{"role": "user", "content": "a"}]).content == "echo:a"
    assert model([{"role": "user", "content": "b"}]).content == "echo:b"
    deltas = list(model.generate_stream([{"role": "user", "content": "c"}]))
    assert [d.content for d in deltas] == ["echo:c"]


async def test_sync_generate_inside_running_loop():
    model = EchoModel(model_id="echo")
    assert model.generate([{"role": "user", "content": "in-loop"}]).content == "echo:in-loop"
    assert [d.content for d in model.generate_stream([{"role": "user", "content": "s"}])] == ["echo:s"]


def test_model_to_dict_round_trip():
    model = EchoModel(model_id="echo", temperature=0.2)
    data = model.to_dict()
    assert data["model_id"] == "echo" and data["temperature"] == 0.2
    assert EchoModel.from_dict(json.loads(json.dumps(data))).kwargs == {"temperature": 0.2}


def test_importing_models_does_not_import_openai():
    code = (
        "import sys, codeloop, codeloop.models, codeloop.models.base, codeloop.models.scripted, codeloop.testing;"
        "codeloop.models.ScriptedModel; print('openai' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


class NestingModel(Model):
    """A model whose async step makes a blocking sync call to another model (like a sync tool would)."""

    def __init__(self, inner):
        super().__init__(model_id="outer")
        self.inner = inner

    async def agenerate(
        self, messages, stop_sequences=None, response_format=None, tools_to_call_from=None, **kw
    ):
        inner = self.inner.generate(messages).content
        streamed = "".join(d.content or "" for d in self.inner.generate_stream(messages))
        return ChatMessage(role="assistant", content=f"{inner}|{streamed}")


def test_sync_call_nested_inside_a_sync_call_does_not_deadlock():
    model = NestingModel(EchoModel(model_id="echo"))
    assert model.generate([{"role": "user", "content": "n"}]).content == "echo:n|echo:n"


class SyncOnlyModel(Model):
    """A smolagents-style custom model: only the sync methods are written."""

    def generate(
        self, messages, stop_sequences=None, response_format=None, tools_to_call_from=None, **kwargs
    ):
        return ChatMessage(role="assistant", content=f"sync:{len(messages)}:{stop_sequences}")

    def generate_stream(
        self, messages, stop_sequences=None, response_format=None, tools_to_call_from=None, **kw
    ):
        from codeloop.messages import ChatMessageStreamDelta

        for word in ("a", "b", "c"):
            yield ChatMessageStreamDelta(content=word)


class CallOnlyModel(Model):
    def __call__(
        self, messages, stop_sequences=None, response_format=None, tools_to_call_from=None, **kwargs
    ):
        return ChatMessage(role="assistant", content="legacy call")


async def test_sync_only_subclasses_work_through_the_async_api():
    model = SyncOnlyModel(model_id="mine")
    assert (await model.agenerate(USER_MSGS, stop_sequences=["x"])).content == "sync:1:['x']"
    assert [d.content async for d in model.astream(USER_MSGS)] == ["a", "b", "c"]
    assert (await CallOnlyModel().agenerate(USER_MSGS)).content == "legacy call"
    with pytest.raises(NotImplementedError, match="implements neither"):
        await Model().agenerate(USER_MSGS)


USER_MSGS = [{"role": "user", "content": "q"}]
