"""The loopback OpenAI-compatible server on its own: routes, JSON and SSE wire format, faults, concurrency."""

from __future__ import annotations

import asyncio
import http.client
import json
import socket

import pytest

from codeloop.testing import OpenAICompatibleServer, Reply


def post(server, body, path="/v1/chat/completions", headers=None):
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    conn.request(
        "POST", path, body=json.dumps(body), headers={"Content-Type": "application/json", **(headers or {})}
    )
    response = conn.getresponse()
    data = response.read()
    conn.close()
    return response, data


def sse_events(data: bytes) -> list:
    events = []
    for line in data.decode().splitlines():
        if line.startswith("data: "):
            payload = line[len("data: ") :]
            events.append(payload if payload == "[DONE]" else json.loads(payload))
    return events


REQUEST = {"model": "m", "messages": [{"role": "user", "content": "hello world"}]}


def test_models_endpoint_and_unknown_route():
    with OpenAICompatibleServer(models=["alpha", "beta"]) as server:
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
        conn.request("GET", "/v1/models")
        listing = json.loads(conn.getresponse().read())
        assert [m["id"] for m in listing["data"]] == ["alpha", "beta"]
        conn.request("GET", "/nope")  # same keep-alive connection
        response = conn.getresponse()
        assert response.status == 404 and b"no route" in response.read()
        conn.close()
        assert [r["path"] for r in server.requests] == ["/v1/models", "/nope"]


def test_json_completion_queue_then_handler_then_500():
    seen = []

    def handler(request):
        seen.append(request["model"])
        return {"content": "from handler"}

    with OpenAICompatibleServer(["queued"], handler=handler) as server:
        first = json.loads(post(server, REQUEST)[1])
        assert first["object"] == "chat.completion"
        assert first["choices"][0]["message"]["content"] == "queued"
        assert (
            first["usage"]["total_tokens"]
            == first["usage"]["prompt_tokens"] + first["usage"]["completion_tokens"]
        )
        assert json.loads(post(server, REQUEST)[1])["choices"][0]["message"]["content"] == "from handler"
        assert seen == ["m"]
        assert server.requests[0]["json"] == REQUEST

    with OpenAICompatibleServer() as server:
        response, data = post(server, REQUEST)
        assert response.status == 500 and b"no scripted reply left" in data


def test_sse_stream_text_tool_calls_and_usage():
    reply = Reply(content="abcdefgh", tool_calls=[{"name": "f", "arguments": {"k": "vvvv"}}], chunk_size=3)
    with OpenAICompatibleServer([reply]) as server:
        body = {**REQUEST, "stream": True, "stream_options": {"include_usage": True}}
        response, data = post(server, body)
        assert response.getheader("Content-Type") == "text/event-stream"
        events = sse_events(data)
    assert events[-1] == "[DONE]"
    chunks = events[:-1]
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert text == "abcdefgh"
    pieces = [p for c in chunks if c["choices"] for p in c["choices"][0]["delta"].get("tool_calls", [])]
    assert pieces[0]["function"]["name"] == "f" and pieces[0]["id"]
    assert json.loads("".join(p["function"]["arguments"] for p in pieces)) == {"k": "vvvv"}
    assert len(pieces) > 3
    assert chunks[-2]["choices"][0]["finish_reason"] == "tool_calls"
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] > 0


def test_no_usage_chunk_unless_asked():
    with OpenAICompatibleServer(["hi"]) as server:
        events = sse_events(post(server, {**REQUEST, "stream": True})[1])
    assert all("usage" not in e for e in events if isinstance(e, dict))


def test_error_reply_with_retry_after():
    with OpenAICompatibleServer([Reply.error(429, retry_after=2)]) as server:
        response, data = post(server, REQUEST)
    assert response.status == 429 and response.getheader("Retry-After") == "2"
    assert json.loads(data)["error"]["code"] == "429"


def test_dropped_stream_is_incomplete():
    with OpenAICompatibleServer([Reply.drop(after_chunks=2, content="x" * 50)]) as server:
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
        conn.request("POST", "/v1/chat/completions", body=json.dumps({**REQUEST, "stream": True}))
        response = conn.getresponse()
        with pytest.raises(http.client.IncompleteRead):
            response.read()
        conn.close()


def test_azure_path_and_api_key_check():
    with OpenAICompatibleServer(["ok"], api_key="secret") as server:
        response, _ = post(
            server, REQUEST, path="/openai/deployments/dep/chat/completions?api-version=2024-10-21"
        )
        assert response.status == 401
        response, data = post(
            server,
            REQUEST,
            path="/openai/deployments/dep/chat/completions?api-version=2024-10-21",
            headers={"api-key": "secret"},
        )
        assert response.status == 200 and json.loads(data)["choices"][0]["message"]["content"] == "ok"
        assert server.requests[-1]["query"] == {"api-version": "2024-10-21"}


def test_stop_closes_port_even_with_open_connection():
    server = OpenAICompatibleServer().start()
    port = server.port
    idle = socket.create_connection(("127.0.0.1", port))  # an idle keep-alive client
    server.stop()
    idle.close()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    with OpenAICompatibleServer(port=0) as again:  # start/stop repeatedly
        assert again.port


def test_unknown_reply_field_is_reported():
    with pytest.raises(ValueError, match="Unknown reply field"):
        from codeloop.testing.server import as_reply

        as_reply({"contents": "typo"})


async def test_many_concurrent_clients_are_served_concurrently():
    inflight = 0
    peak = 0

    async def handler(request):
        nonlocal inflight, peak
        inflight += 1
        peak = max(peak, inflight)
        await asyncio.sleep(0.2)
        inflight -= 1
        return "r:" + request["messages"][0]["content"]

    async def client(i: int) -> str:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        body = json.dumps({"model": "m", "messages": [{"role": "user", "content": str(i)}]}).encode()
        writer.write(
            b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
            + f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
        data = await reader.read()
        writer.close()
        return json.loads(data.split(b"\r\n\r\n", 1)[1])["choices"][0]["message"]["content"]

    async with OpenAICompatibleServer(handler=handler) as server:
        results = await asyncio.gather(*(client(i) for i in range(60)))
    assert results == [f"r:{i}" for i in range(60)]
    assert peak >= 50  # served side by side, not one after another
