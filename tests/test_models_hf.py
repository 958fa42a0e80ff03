"""InferenceClientModel through the real ``huggingface_hub`` client against a loopback router."""

from __future__ import annotations

import pytest

from codeloop.errors import ModelConfigurationError, ModelRequestError
from codeloop.messages import agglomerate_stream_deltas
from codeloop.models import HfApiModel, InferenceClientModel, Model
from codeloop.models.retry import RetryPolicy
from codeloop.testing import OpenAICompatibleServer, Reply

MODEL = "Qwen/Qwen2.5-Coder-32B-Instruct"
USER = [{"role": "user", "content": "hi"}]
FAST = RetryPolicy(max_retries=3, initial_delay=0.01, max_delay=0.05, max_wait=5)


class WeatherTool:
    name = "get_weather"
    description = "Weather for a city."
    inputs = {"city": {"type": "string", "description": "City name"}}
    output_type = "string"


@pytest.fixture(autouse=True)
def online(monkeypatch):
    """The suite sets HF_HUB_OFFLINE=1 (nothing from the Hub); these tests only reach 127.0.0.1."""
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)


@pytest.fixture
def server():
    with OpenAICompatibleServer(models=[MODEL]) as srv:
        yield srv


def make(server, **kwargs):
    kwargs.setdefault("retry_policy", FAST)
    return InferenceClientModel(MODEL, token="hf_test", base_url=server.base_url, **kwargs)


async def test_plain_reply_headers_params_and_usage(server):
    server.add({"content": "from hf", "usage": {"prompt_tokens": 9, "completion_tokens": 2, "cached_tokens": 4}})
    model = make(server, bill_to="my-org", max_tokens=50, temperature=0.1, top_k=5)
    reply = await model.agenerate(USER, stop_sequences=["END"])
    assert reply.content == "from hf" and reply.token_usage.cached_input_tokens == 4
    sent = server.last_request
    assert sent["headers"]["authorization"] == "Bearer hf_test" and sent["headers"]["x-hf-bill-to"] == "my-org"
    assert "hf_hub" in sent["headers"]["user-agent"]  # the real SDK sent it
    body = sent["json"]
    assert (body["model"], body["max_tokens"], body["stop"], body["top_k"]) == (MODEL, 50, ["END"], 5)
    assert HfApiModel is InferenceClientModel
    await model.aclose()


async def test_parallel_tool_calls_streaming_and_response_format(server):
    calls = [{"name": "get_weather", "arguments": {"city": "Paris"}}, {"name": "get_weather", "arguments": {"city": "Rome"}}]
    server.add({"tool_calls": calls}, {"content": "streamed answer", "tool_calls": calls[:1]}, '{"a": 1}')
    model = make(server)
    reply = await model.agenerate(USER, tools_to_call_from=[WeatherTool()])
    assert [c.function.arguments for c in reply.tool_calls] == [{"city": "Paris"}, {"city": "Rome"}]
    assert server.last_request["json"]["tools"][0]["function"]["name"] == "get_weather"
    deltas = [d async for d in model.astream(USER, tools_to_call_from=[WeatherTool()])]
    message = agglomerate_stream_deltas(deltas)
    assert message.content == "streamed answer" and message.tool_calls[0].function.name == "get_weather"
    assert message.token_usage is not None and server.last_request["json"]["stream"] is True
    fmt = {"type": "json_schema", "json_schema": {"name": "a", "schema": {"type": "object"}}}
    assert (await model.agenerate(USER, response_format=fmt)).content == '{"a": 1}'
    # The SDK rewrites the format for the router (a "json_object" grammar with the schema as its value).
    assert '"type": "object"' in str(server.last_request["json"]["response_format"]).replace("'", '"')


async def test_images_are_sent_as_image_url_parts(server):
    server.add("an image")
    content = [{"type": "text", "text": "what?"}, {"type": "image", "image": b"\x89PNG"}]
    await make(server).agenerate([{"role": "user", "content": content}])
    part = server.last_request["json"]["messages"][0]["content"][1]
    assert part["type"] == "image_url" and part["image_url"]["url"].startswith("data:image/png;base64,")


async def test_retries_on_hf_http_errors_and_dropped_streams(server):
    server.add(Reply.error(429, retry_after=0.2), Reply.error(503), "ok")
    assert (await make(server).agenerate(USER)).content == "ok"
    server.add(Reply.drop(after_chunks=1), "again")
    assert "".join([d.content or "" async for d in make(server).astream(USER)]) == "again"
    server.add(Reply.error(401, "Invalid credentials"))
    with pytest.raises(ModelRequestError, match="Authentication failed") as info:
        await make(server).agenerate(USER)
    assert info.value.attempts == 1


def _route_to_loopback(server, monkeypatch) -> list[str]:
    """Rewrites the real client's requests to router.huggingface.co onto the loopback server (the transport
    is the SDK boundary); returns the URLs the client asked for."""
    import httpx2
    from huggingface_hub.utils import _http

    seen: list[str] = []

    class ToLoopback(httpx2.AsyncHTTPTransport):
        async def handle_async_request(self, request):
            seen.append(str(request.url))
            request.url = request.url.copy_with(scheme="http", host="127.0.0.1", port=server.port)
            return await super().handle_async_request(request)

    monkeypatch.setattr(_http, "_GLOBAL_ASYNC_CLIENT_FACTORY", lambda: httpx2.AsyncClient(transport=ToLoopback()))
    return seen


async def test_provider_routing_goes_to_the_router_path(server, monkeypatch):
    """provider="auto" sends the request to router.huggingface.co/v1/chat/completions."""
    seen = _route_to_loopback(server, monkeypatch)
    server.add("routed")
    model = InferenceClientModel(MODEL, provider="auto", token="hf_test", retry_policy=FAST)
    assert (await model.agenerate(USER)).content == "routed"
    assert seen == ["https://router.huggingface.co/v1/chat/completions"]
    assert server.last_request["json"]["model"] == MODEL


async def test_explicit_provider_uses_the_hub_mapping(server, monkeypatch):
    """provider="together": the client asks the Hub (a loopback HubServer) for the model's Inference Providers
    mapping, then sends the provider's own model id to router.huggingface.co/together; bill_to goes along."""
    from huggingface_hub import constants
    from huggingface_hub.inference._providers import _common

    from codeloop.testing.hub_server import HubServer

    _common._fetch_inference_provider_mapping.cache_clear()  # the SDK caches mappings per process
    seen = _route_to_loopback(server, monkeypatch)
    with HubServer() as hub:
        hub.provider_mappings[MODEL] = {
            "together": {"status": "live", "providerId": "Qwen/Qwen2.5-Coder-32B-Instruct-Turbo",
                         "task": "conversational"},
        }
        monkeypatch.setattr(constants, "ENDPOINT", hub.endpoint)
        server.add("from together")
        model = InferenceClientModel(MODEL, provider="together", token="hf_test", bill_to="my-org",
                                     retry_policy=FAST)
        assert (await model.agenerate(USER)).content == "from together"
        assert f"GET /api/models/{MODEL}" in hub.requests
        assert seen == ["https://router.huggingface.co/together/v1/chat/completions"]
        assert server.last_request["json"]["model"] == "Qwen/Qwen2.5-Coder-32B-Instruct-Turbo"
        assert server.last_request["headers"]["x-hf-bill-to"] == "my-org"
        with pytest.raises(ValueError, match="not supported by provider groq"):  # the SDK's own message
            await InferenceClientModel(MODEL, provider="groq", token="hf_test", retry_policy=FAST).agenerate(USER)


def test_token_resolution_and_missing_extra(monkeypatch, tmp_path, server):
    monkeypatch.setenv("HF_HOME", str(tmp_path))  # no cached login
    monkeypatch.setenv("HF_TOKEN", "hf_env")
    assert InferenceClientModel().api_key == "hf_env"
    monkeypatch.delenv("HF_TOKEN")
    monkeypatch.setattr("huggingface_hub.get_token", lambda: None)
    with pytest.raises(ModelConfigurationError, match="HF_TOKEN"):
        InferenceClientModel()
    import sys

    monkeypatch.setitem(sys.modules, "huggingface_hub", None)
    with pytest.raises(ModelConfigurationError, match=r"codeloop\[hf\]"):
        make(server).generate(USER)


def test_dict_round_trip_has_no_token(server):
    model = make(server, provider="together", bill_to="org", max_tokens=10)
    data = model.to_dict()
    assert "hf_test" not in str(data)
    assert data == {"class": "InferenceClientModel", "model_id": MODEL, "max_tokens": 10,
                    "provider": "together", "bill_to": "org", "base_url": server.base_url}
    clone = Model.from_dict({**data, "token": "hf_test"})
    assert isinstance(clone, InferenceClientModel) and clone.bill_to == "org"


async def test_offline_mode_is_reported_at_once(server, monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(ModelRequestError, match="unset HF_HUB_OFFLINE") as info:
        await make(server).agenerate(USER)
    assert info.value.attempts == 1 and server.requests == []
