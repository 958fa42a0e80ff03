"""OpenAIModel sends chat requests without the SDK's per-request type transform (``_openai_post``): the
loopback server must receive exactly what ``client.chat.completions.create`` sends (path, query, headers,
body), the replies must come back as the same SDK objects, and whatever the direct route cannot send
exactly (other values, unknown parameters, instrumented ``create``) still goes through ``create``."""

from __future__ import annotations

import functools

import openai
import pydantic
import pytest
from openai import AsyncAzureOpenAI, AsyncOpenAI, AsyncStream
from openai.resources.chat.completions import completions as sdk_completions
from openai.types.chat import ChatCompletion

from codeloop.messages import agglomerate_stream_deltas
from codeloop.models import AzureOpenAIModel, OpenAIModel
from codeloop.models._openai_post import Route, create_chat, route_for
from codeloop.models.retry import RetryPolicy
from codeloop.testing import OpenAICompatibleServer, Reply

MESSAGES = [
    {"role": "system", "content": "be brief"},
    {"role": "user", "content": [{"type": "text", "text": "weather?"}]},
    {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Oslo"}'}}
        ],
    },
    {"role": "tool", "tool_call_id": "c1", "content": "rain"},
]
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Weather for a city.",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
        },
    }
]
SCHEMA = {"type": "json_schema", "json_schema": {"name": "answer", "schema": {"type": "object"}, "strict": True}}
REQUESTS = {
    "plain": {"model": "m", "messages": MESSAGES[:2]},
    "stream": {"model": "m", "messages": MESSAGES[:2], "stream": True, "stream_options": {"include_usage": True}},
    "tools": {
        "model": "m",
        "messages": MESSAGES,
        "tools": TOOLS,
        "tool_choice": "required",
        "stop": ["Observation:"],
        "max_completion_tokens": 50,
        "temperature": 0.2,
        "seed": 7,
        "prompt_cache_key": None,
    },
    "format_and_extras": {
        "model": "m",
        "messages": MESSAGES[:2],
        "response_format": SCHEMA,
        "extra_body": {"prompt_cache_key": "k", "top_k": 3},
        "extra_headers": {"X-Trace": "t1", "x-stainless-retry-count": "9"},
        "extra_query": {"tenant": "a"},
        "timeout": 17.5,
    },
    "stream_extras_timeout": {
        "model": "m",
        "messages": MESSAGES[:2],
        "stream": True,
        "extra_body": {"reasoning": {"effort": "low"}},
        "extra_headers": {"X-Trace": "t2"},
        "timeout": openai.Timeout(30.0, connect=3.0),
    },
}


@pytest.fixture
def server():
    with OpenAICompatibleServer(chunk_size=3) as srv:
        yield srv


@pytest.fixture
def transforms(monkeypatch):
    """How many request bodies went through the SDK's type transform."""
    calls = []
    original = sdk_completions.async_maybe_transform

    async def counting(*args, **kwargs):
        calls.append(1)
        return await original(*args, **kwargs)

    monkeypatch.setattr(sdk_completions, "async_maybe_transform", counting)
    return calls


def clients(server):
    yield AsyncOpenAI(base_url=server.base_url, api_key="sk-test", max_retries=0, default_headers={"X-App": "a"})
    yield AsyncAzureOpenAI(
        azure_endpoint=server.url, api_version="2024-10-21", api_key="az-key", max_retries=0
    )


def wire(request):
    return {k: request[k] for k in ("method", "path", "query", "headers", "json")}


async def reply_of(result):
    if isinstance(result, AsyncStream):
        chunks = [chunk async for chunk in result]
        await result.close()
        return [c.model_dump(exclude={"id", "created"}) for c in chunks]
    return result.model_dump(exclude={"id", "created"})


@pytest.mark.parametrize("name", sorted(REQUESTS))
async def test_same_wire_request_and_reply_as_create(server, transforms, name):
    request = REQUESTS[name]
    for client in clients(server):
        async with client:
            server.add(Reply(content='{"a": 1}', usage={"prompt_tokens": 5, "completion_tokens": 2}))
            theirs = await reply_of(await client.chat.completions.create(**request))
            assert len(transforms) == 1
            server.add(Reply(content='{"a": 1}', usage={"prompt_tokens": 5, "completion_tokens": 2}))
            ours = await reply_of(await create_chat(client, request))
            assert len(transforms) == 1, "the direct route must not run the SDK's transform"
            sent_by_create, sent_by_us = server.requests[-2:]
            assert wire(sent_by_us) == wire(sent_by_create)
            assert ours == theirs
            transforms.clear()
    assert sent_by_us["path"].startswith("/openai/deployments/m/")  # the Azure client came last


async def test_model_uses_direct_route_streaming_or_not(server, transforms):
    assert isinstance(route_for(sdk_completions.AsyncCompletions.create), Route)
    server.add({"content": "hi", "usage": {"prompt_tokens": 3, "completion_tokens": 1}}, Reply(content="streamed"))
    async with OpenAIModel("m", api_base=server.base_url, api_key="k", extra_body={"top_k": 2}) as model:
        message = await model.agenerate([{"role": "user", "content": "hello"}], stop_sequences=["END"])
        assert message.content == "hi" and message.token_usage.input_tokens == 3
        assert isinstance(message.raw, ChatCompletion)
        deltas = [d async for d in model.astream([{"role": "user", "content": "hello"}])]
        assert agglomerate_stream_deltas(deltas).content == "streamed"
    assert transforms == []
    first, second = server.chat_requests
    assert first["json"]["top_k"] == 2 and first["json"]["stop"] == ["END"]
    assert second["json"]["stream"] is True and first["headers"]["authorization"] == "Bearer k"


async def test_azure_model_retries_and_errors_through_direct_route(server, transforms):
    server.add(Reply.error(500, "flaky"), "ok")
    fast = RetryPolicy(max_retries=2, initial_delay=0.01, max_delay=0.02, max_wait=5)
    async with AzureOpenAIModel(
        "dep", azure_endpoint=server.url, api_version="2024-10-21", api_key="az", retry_policy=fast
    ) as model:
        assert (await model.agenerate([{"role": "user", "content": "x"}])).content == "ok"
    assert transforms == []
    assert [r["headers"]["x-stainless-retry-count"] for r in server.chat_requests] == ["0", "0"]
    assert {r["path"] for r in server.chat_requests} == {"/openai/deployments/dep/chat/completions"}


class Answer(pydantic.BaseModel):
    a: int


async def test_what_the_direct_route_cannot_send_goes_through_create(server, transforms):
    async with AsyncOpenAI(base_url=server.base_url, api_key="k", max_retries=0) as client:
        # validate_response_format keeps its meaning: a pydantic class is refused before anything is sent
        with pytest.raises(TypeError, match="parse"):
            await create_chat(client, {"model": "m", "messages": MESSAGES[:1], "response_format": Answer})
        with pytest.raises(TypeError, match="no_such_param"):
            await create_chat(client, {"model": "m", "messages": MESSAGES[:1], "no_such_param": 1})
        assert server.chat_requests == []
        # an omitted value and an iterable of messages are the transform's business
        server.add("a", "b")
        await create_chat(client, {"model": "m", "messages": MESSAGES[:1], "seed": openai.omit})
        await create_chat(client, {"model": "m", "messages": iter(MESSAGES[:1])})
        assert len(transforms) == 2
        assert [r["json"] for r in server.chat_requests] == [{"model": "m", "messages": MESSAGES[:1]}] * 2


async def test_instrumented_create_sees_every_request(server, monkeypatch):
    seen = []
    original = sdk_completions.AsyncCompletions.create

    @functools.wraps(original)
    async def traced(self, **kwargs):
        seen.append(kwargs["model"])
        return await original(self, **kwargs)

    monkeypatch.setattr(sdk_completions.AsyncCompletions, "create", traced)
    assert "wrapped or replaced" in route_for(traced)
    server.add("one", "two")
    async with OpenAIModel("m", api_base=server.base_url, api_key="k") as model:
        assert (await model.agenerate([{"role": "user", "content": "x"}])).content == "one"
        client = model._async_client()
        instance_seen = []

        async def per_instance(**kwargs):
            instance_seen.append(kwargs["model"])
            return await original(client.chat.completions, **kwargs)

        monkeypatch.undo()
        monkeypatch.setattr(client.chat.completions, "create", per_instance)
        assert (await model.agenerate([{"role": "user", "content": "x"}])).content == "two"
    assert seen == ["m"] and instance_seen == ["m"]


async def test_request_auth_is_the_bearer_key_only_as_create_asks(server, monkeypatch):
    """create() asks for bearer auth only: a client holding just an admin key sends nothing, either way."""
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    request = {"model": "m", "messages": MESSAGES[:1]}
    async with AsyncOpenAI(base_url=server.base_url, admin_api_key="admin-key", max_retries=0) as client:
        for send in (client.chat.completions.create(**request), create_chat(client, request)):
            with pytest.raises(TypeError, match="Could not resolve authentication method"):
                await send
    assert server.chat_requests == []
