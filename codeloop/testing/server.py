"""A loopback OpenAI-compatible chat-completions server for tests and benchmarks (stdlib only).

It speaks enough of the OpenAI HTTP API for the official ``openai`` client and any OpenAI-compatible
client: ``POST .../chat/completions`` (any prefix, so ``/v1/...`` and Azure's
``/openai/deployments/{name}/chat/completions?api-version=...`` both work) with JSON or SSE streaming
replies, tool calls (streamed in pieces), usage (also streamed when ``stream_options.include_usage``),
and ``GET .../models``.

Replies come from a queue (``replies=[...]`` / ``add(...)``), then from ``handler(request_json)``. A
reply is a string (the assistant text), a dict of ``Reply`` fields, or a ``Reply``; faults are replies
too: ``Reply.error(429, retry_after=1)``, ``Reply.error(500)``, ``Reply(content=..., delay=2)``,
``Reply.drop(after_chunks=2, content=...)`` (connection closed mid-stream). Every request is logged in
``requests`` (method, path, query, headers, json, the raw ``body`` bytes, and arrival ``time`` from
``time.monotonic()``).

``prompt_cache=True`` simulates a provider's prompt cache: a request whose leading messages equal those
of an earlier request (with the same ``prompt_cache_key``) reports their tokens as
``usage.prompt_tokens_details.cached_tokens``, in blocks of ``cache_block_tokens`` from
``cache_min_tokens`` on (OpenAI's rule: 128-token blocks from 1024 tokens).

The server is asyncio-based and runs its own event loop in a daemon thread, so it serves sync and async
tests alike (even a test that blocks its own loop with a sync call) and handles hundreds of concurrent
connections. Starting and stopping take milliseconds.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

__all__ = ["OpenAICompatibleServer", "Reply"]


@dataclass
class Reply:
    """One scripted answer. ``tool_calls`` items: ``{"name": ..., "arguments": dict | str, "id": ...}``."""

    content: str | None = None
    tool_calls: list[dict[str, Any]] | None = None
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: Any = None  # a full JSON body to send instead of a completion (errors, odd payloads)
    delay: float | None = None  # seconds to wait before answering (slow replies, timeouts)
    chunk_delay: float = 0.0  # seconds between streamed chunks
    drop_after_chunks: int | None = None  # close the connection after this many body chunks
    usage: dict[str, int] | None = None  # prompt_tokens / completion_tokens (/ cached_tokens)
    finish_reason: str | None = None
    chunk_size: int | None = None  # characters per streamed content/arguments piece

    @classmethod
    def error(
        cls, status: int, message: str | None = None, retry_after: float | None = None, **kwargs: Any
    ) -> Reply:
        headers = {"Retry-After": f"{retry_after:g}"} if retry_after is not None else {}
        text = message or f"loopback server: scripted HTTP {status}"
        body = {"error": {"message": text, "type": "loopback_error", "code": str(status)}}
        return cls(status=status, headers=headers, body=body, **kwargs)

    @classmethod
    def drop(cls, after_chunks: int = 0, content: str = "this reply is cut short", **kwargs: Any) -> Reply:
        return cls(content=content, drop_after_chunks=after_chunks, **kwargs)


def as_reply(spec: Any, kind: type[Reply] = Reply) -> Reply:
    """A scripted reply spec (text, dict of fields, or a ``Reply``) as a ``kind`` (a ``Reply`` subclass)."""
    if isinstance(spec, kind):
        return spec
    if isinstance(spec, Reply):
        return kind(**{f.name: getattr(spec, f.name) for f in fields(Reply)})
    if isinstance(spec, str):
        return kind(content=spec)
    if isinstance(spec, dict):
        names = {f.name for f in fields(kind)}
        unknown = set(spec) - names
        if unknown:
            raise ValueError(f"Unknown reply field(s) {sorted(unknown)}; use {sorted(names)}.")
        return kind(**spec)
    raise TypeError(f"A reply must be str, dict or Reply, not {type(spec).__name__}.")


def _estimate_tokens(text: str) -> int:
    return len(text) // 4 + 1


def _prompt_text(request: dict[str, Any]) -> str:
    parts: list[str] = []
    for message in request.get("messages") or ():
        content = message.get("content")
        if isinstance(content, str):
            parts.append(content)
        elif isinstance(content, list):
            parts.extend(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return "\n".join(parts)


class OpenAICompatibleServer:
    """Loopback server; use as ``with OpenAICompatibleServer([...]) as server:`` or ``async with``.

    Args:
        replies: initial reply queue (each request takes the next one).
        handler: ``handler(request_json) -> reply`` (sync or async), used when the queue is empty.
        models: ids listed by ``GET /v1/models``.
        delay: default seconds to wait before every reply.
        chunk_size: default characters per streamed piece.
        api_key: when set, requests must carry it (``Authorization: Bearer`` or ``api-key``), else 401.
    """

    def __init__(
        self,
        replies: list[Any] | None = None,
        handler: Callable[[dict[str, Any]], Any] | None = None,
        *,
        models: list[str] | tuple[str, ...] = ("loopback-model",),
        delay: float = 0.0,
        chunk_size: int = 8,
        api_key: str | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        prompt_cache: bool = False,
        cache_block_tokens: int = 128,
        cache_min_tokens: int = 1024,
    ):
        self._queue: deque[Any] = deque(replies or ())
        self.handler = handler
        self.models = list(models)
        self.delay = delay
        self.chunk_size = chunk_size
        self.api_key = api_key
        self.host = host
        self.port = port
        self.requests: list[dict[str, Any]] = []
        self.prompt_cache = prompt_cache
        self.cache_block_tokens = cache_block_tokens
        self.cache_min_tokens = cache_min_tokens
        self._cached_prompts: dict[Any, list[list[str]]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.base_events.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()
        self._counter = 0

    # ---- public API ------------------------------------------------------------------------------------
    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        return self.url + "/v1"

    def add(self, *replies: Any) -> OpenAICompatibleServer:
        self._queue.extend(replies)
        return self

    @property
    def chat_requests(self) -> list[dict[str, Any]]:
        return [r for r in self.requests if r["path"].endswith("/chat/completions")]

    @property
    def last_request(self) -> dict[str, Any]:
        return self.requests[-1]

    def start(self) -> OpenAICompatibleServer:
        if self._thread is not None:
            return self
        ready = threading.Event()
        failure: list[BaseException] = []

        def _run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            try:
                self._server = loop.run_until_complete(
                    asyncio.start_server(self._serve, self.host, self.port, backlog=2048)
                )
                self.port = self._server.sockets[0].getsockname()[1]
            except BaseException as exc:  # noqa: BLE001 - reported to the starting thread
                failure.append(exc)
                ready.set()
                loop.close()
                return
            ready.set()
            loop.run_forever()
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

        self._thread = threading.Thread(target=_run, name="codeloop-loopback-server", daemon=True)
        self._thread.start()
        ready.wait()
        if failure:
            self._thread = None
            raise failure[0]
        return self

    def stop(self) -> None:
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return

        async def _shutdown() -> None:
            assert self._server is not None
            self._server.close()
            for task in list(self._connections):
                task.cancel()
            await asyncio.gather(*self._connections, return_exceptions=True)
            loop.stop()

        asyncio.run_coroutine_threadsafe(_shutdown(), loop)
        thread.join(timeout=5)
        self._thread = self._loop = self._server = None

    def __enter__(self) -> OpenAICompatibleServer:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    async def __aenter__(self) -> OpenAICompatibleServer:
        return self.start()

    async def __aexit__(self, *exc: Any) -> None:
        self.stop()

    # ---- HTTP ------------------------------------------------------------------------------------------
    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
                    return
                lines = head.decode("latin-1").split("\r\n")
                method, target, _ = (lines[0].split(" ", 2) + ["", ""])[:3]
                headers = {}
                for line in lines[1:]:
                    if ":" in line:
                        key, value = line.split(":", 1)
                        headers[key.strip().lower()] = value.strip()
                body = b""
                if headers.get("transfer-encoding", "").lower() == "chunked":
                    body = await self._read_chunked(reader)
                elif int(headers.get("content-length", "0") or 0):
                    body = await reader.readexactly(int(headers["content-length"]))
                keep_open = await self._dispatch(method.upper(), target, headers, body, writer)
                if not keep_open or headers.get("connection", "").lower() == "close":
                    return
        except (ConnectionError, asyncio.IncompleteReadError):
            return
        except asyncio.CancelledError:
            return  # server stopping: end quietly (a cancelled connection task would be logged as an error)
        finally:
            self._connections.discard(task)
            writer.close()

    @staticmethod
    async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
        body = bytearray()
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0].strip() or b"0", 16)
            if size == 0:
                await reader.readuntil(b"\r\n")
                return bytes(body)
            body += await reader.readexactly(size)
            await reader.readexactly(2)

    async def _send(
        self,
        writer: asyncio.StreamWriter,
        status: int,
        payload: Any,
        headers: dict[str, str] | None = None,
        truncate: bool = False,
    ) -> None:
        data = json.dumps(payload).encode()
        phrase = HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else "Error"  # 529...
        head = [f"HTTP/1.1 {status} {phrase}", "Content-Type: application/json"]
        head += [f"Content-Length: {len(data)}"] + [f"{k}: {v}" for k, v in (headers or {}).items()]
        writer.write(
            ("\r\n".join(head) + "\r\n\r\n").encode() + (data[: len(data) // 2] if truncate else data)
        )
        await writer.drain()

    def _record(self, method: str, target: str, headers: dict[str, str], body: bytes) -> tuple[Any, Any]:
        """Log the request in ``requests``; returns the split URL and the decoded JSON body (or None)."""
        parts = urlsplit(target)
        try:
            payload = json.loads(body) if body else None
        except ValueError:
            payload = None
        self.requests.append(
            {
                "method": method,
                "path": unquote(parts.path),
                "query": {k: v[-1] for k, v in parse_qs(parts.query).items()},
                "headers": headers,
                "json": payload,
                "body": body,
                "time": time.monotonic(),
            }
        )
        return parts, payload

    async def _dispatch(
        self, method: str, target: str, headers: dict[str, str], body: bytes, writer: asyncio.StreamWriter
    ) -> bool:
        parts, payload = self._record(method, target, headers, body)
        if self.api_key is not None:
            auth = headers.get("authorization", "")
            if auth != f"Bearer {self.api_key}" and headers.get("api-key") != self.api_key:
                await self._send(writer, 401, as_reply(Reply.error(401, "loopback server: bad API key")).body)
                return True
        path = parts.path.rstrip("/")
        if method == "GET" and path.endswith("/models"):
            data = [{"id": m, "object": "model", "created": 0, "owned_by": "codeloop"} for m in self.models]
            await self._send(writer, 200, {"object": "list", "data": data})
            return True
        if method == "POST" and path.endswith("/chat/completions") and isinstance(payload, dict):
            return await self._complete(payload, writer)
        await self._send(
            writer, 404, Reply.error(404, f"loopback server: no route {method} {parts.path}").body
        )
        return True

    def _cached_tokens(self, request: dict[str, Any]) -> int:
        """Tokens of the longest run of leading messages seen before under the same cache key."""
        messages = request.get("messages") or []
        canonical = [json.dumps(m, sort_keys=True) for m in messages]
        seen = self._cached_prompts.setdefault(request.get("prompt_cache_key"), [])
        best = 0
        for earlier in seen:
            n = 0
            for a, b in zip(earlier, canonical, strict=False):
                if a != b:
                    break
                n += 1
            best = max(best, n)
        seen.append(canonical)
        if not best:
            return 0
        tokens = _estimate_tokens(_prompt_text({"messages": messages[:best]}))
        if tokens < self.cache_min_tokens:
            return 0
        return tokens - tokens % self.cache_block_tokens

    async def _next_reply(self, request: dict[str, Any]) -> Reply:
        if self._queue:
            return as_reply(self._queue.popleft())
        if self.handler is not None:
            spec = self.handler(request)
            if inspect.isawaitable(spec):
                spec = await spec
            return as_reply(spec)
        return Reply.error(500, "loopback server: no scripted reply left (add replies or set a handler)")

    async def _complete(self, request: dict[str, Any], writer: asyncio.StreamWriter) -> bool:
        try:
            reply = await self._next_reply(request)
        except Exception as exc:  # noqa: BLE001 - a broken handler becomes a visible 500
            reply = Reply.error(500, f"loopback server handler failed: {type(exc).__name__}: {exc}")
        delay = self.delay if reply.delay is None else reply.delay
        if delay:
            await asyncio.sleep(delay)
        if reply.status != 200 or reply.body is not None:
            await self._send(writer, reply.status, reply.body, reply.headers)
            return True
        self._counter += 1
        completion_id = f"chatcmpl-loopback-{self._counter}"
        model = request.get("model") or (self.models[0] if self.models else "loopback-model")
        calls = [
            {
                "id": c.get("id") or f"call_{self._counter}_{i}",
                "type": "function",
                "function": {
                    "name": c["name"],
                    "arguments": c["arguments"]
                    if isinstance(c.get("arguments"), str)
                    else json.dumps(c.get("arguments", {})),
                },
            }
            for i, c in enumerate(reply.tool_calls or ())
        ]
        text = reply.content
        args_text = "".join(c["function"]["arguments"] for c in calls)
        usage = {
            "prompt_tokens": _estimate_tokens(_prompt_text(request)),
            "completion_tokens": _estimate_tokens((text or "") + args_text),
        }
        if self.prompt_cache:
            usage["cached_tokens"] = self._cached_tokens(request)
        usage.update(reply.usage or {})
        cached = usage.pop("cached_tokens", 0)
        usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
        usage["prompt_tokens_details"] = {"cached_tokens": cached}
        finish = reply.finish_reason or ("tool_calls" if calls else "stop")
        base = {"id": completion_id, "created": int(time.time()), "model": model}
        if not request.get("stream"):
            message: dict[str, Any] = {"role": "assistant", "content": text}
            if calls:
                message["tool_calls"] = calls
            completion = {
                **base,
                "object": "chat.completion",
                "choices": [{"index": 0, "message": message, "finish_reason": finish, "logprobs": None}],
                "usage": usage,
            }
            await self._send(
                writer, 200, completion, reply.headers, truncate=reply.drop_after_chunks is not None
            )
            return reply.drop_after_chunks is None
        return await self._stream(request, reply, base, text, calls, usage, finish, writer)

    async def _stream(
        self,
        request: dict[str, Any],
        reply: Reply,
        base: dict[str, Any],
        text: str | None,
        calls: list[dict[str, Any]],
        usage: dict[str, Any],
        finish: str,
        writer: asyncio.StreamWriter,
    ) -> bool:
        size = reply.chunk_size or self.chunk_size
        base = {**base, "object": "chat.completion.chunk"}

        def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
            return {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}]}

        events: list[Any] = [chunk({"role": "assistant", "content": ""})]
        events += [chunk({"content": (text or "")[i : i + size]}) for i in range(0, len(text or ""), size)]
        for index, call in enumerate(calls):
            fn = call["function"]
            events.append(
                chunk(
                    {
                        "tool_calls": [
                            {
                                "index": index,
                                "id": call["id"],
                                "type": "function",
                                "function": {"name": fn["name"], "arguments": ""},
                            }
                        ]
                    }
                )
            )
            args = fn["arguments"]
            events += [
                chunk({"tool_calls": [{"index": index, "function": {"arguments": args[i : i + size]}}]})
                for i in range(0, len(args), size)
            ]
        events.append(chunk({}, finish))
        if (request.get("stream_options") or {}).get("include_usage"):
            events.append({**base, "choices": [], "usage": usage})
        events.append("[DONE]")

        frames = [("data: " + (e if isinstance(e, str) else json.dumps(e)) + "\n\n").encode() for e in events]
        return await self.send_chunked(writer, [f"HTTP/1.1 {reply.status} OK", "Content-Type: text/event-stream"],
                                       reply, frames)

    async def send_chunked(self, writer: asyncio.StreamWriter, head: list[str], reply: Reply,
                           frames: list[bytes]) -> bool:
        """A chunked response of ``frames`` (SSE events, AWS event-stream messages...), with the reply's
        headers, ``chunk_delay`` and ``drop_after_chunks``; False when the stream was dropped on purpose."""
        head = [*head, "Transfer-Encoding: chunked", *(f"{k}: {v}" for k, v in reply.headers.items())]
        writer.write(("\r\n".join(head) + "\r\n\r\n").encode())
        for n, frame in enumerate(frames):
            if reply.drop_after_chunks is not None and n >= reply.drop_after_chunks:
                await writer.drain()
                return False  # closes the socket without the terminating chunk: a dropped stream
            writer.write(f"{len(frame):x}\r\n".encode() + frame + b"\r\n")
            if reply.chunk_delay:
                await writer.drain()
                await asyncio.sleep(reply.chunk_delay)
        writer.write(b"0\r\n\r\n")
        await writer.drain()
        return True
