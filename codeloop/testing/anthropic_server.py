"""A loopback Anthropic Messages API server for tests (stdlib only), served to the real ``anthropic`` SDK.

``POST /v1/messages`` answers as the Messages API does: a JSON ``message`` with content blocks (``text``,
``tool_use``, ``thinking``), ``stop_reason`` / ``stop_sequence`` and ``usage`` (cache reads and writes
included), or, when ``stream`` is set, the SSE event sequence (``message_start``, ``content_block_start`` /
``_delta`` / ``_stop`` with ``text_delta``, ``input_json_delta``, ``thinking_delta`` and ``signature_delta``,
``message_delta``, ``message_stop``). The server honours ``stop_sequences`` (the text is cut and
``stop_reason`` is ``"stop_sequence"``) like the real API. Errors use Anthropic's error body
(``{"type": "error", "error": {"type": "rate_limit_error", ...}}``), including the 529 ``overloaded_error``.

Replies are scripted exactly as for ``OpenAICompatibleServer`` (queue, then ``handler``), with
``AnthropicReply`` adding ``thinking``; faults: ``AnthropicReply.error(429, retry_after=1)``,
``AnthropicReply.error(529)``, ``Reply.drop(after_chunks=3)`` (the stream is cut after that many events).
``api_key`` makes the server check ``x-api-key`` (or ``Authorization: Bearer``).
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any

from .server import OpenAICompatibleServer, Reply, as_reply

__all__ = ["AnthropicServer", "AnthropicReply"]

_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}


@dataclass
class AnthropicReply(Reply):
    """A scripted Messages reply: ``Reply`` fields plus ``thinking`` (a thinking block sent first).

    ``usage`` keys are the API's: ``input_tokens``, ``output_tokens``, ``cache_read_input_tokens``,
    ``cache_creation_input_tokens``.
    """

    thinking: str | None = None
    signature: str = "loopback-signature"

    @classmethod
    def error(
        cls, status: int, message: str | None = None, retry_after: float | None = None, **kwargs: Any
    ) -> AnthropicReply:
        headers = {"retry-after": f"{retry_after:g}"} if retry_after is not None else {}
        kind = _ERROR_TYPES.get(status, "api_error")
        text = message or f"loopback server: scripted HTTP {status}"
        return cls(status=status, headers=headers, body={"type": "error", "error": {"type": kind, "message": text}},
                   **kwargs)


def _request_text(request: dict[str, Any]) -> str:
    parts: list[str] = []
    system = request.get("system")
    parts.append(system if isinstance(system, str) else json.dumps(system or ""))
    parts.extend(json.dumps(m.get("content")) for m in request.get("messages") or ())
    return "\n".join(parts)


class AnthropicServer(OpenAICompatibleServer):
    """Loopback Messages API server; ``with AnthropicServer([...]) as server:``; point the SDK at
    ``server.url`` (``anthropic.Anthropic(base_url=server.url)``)."""

    @property
    def message_requests(self) -> list[dict[str, Any]]:
        return [r for r in self.requests if r["path"].endswith("/messages")]

    async def _dispatch(
        self, method: str, target: str, headers: dict[str, str], body: bytes, writer: asyncio.StreamWriter
    ) -> bool:
        parts, payload = self._record(method, target, headers, body)
        # SDK releases send the key as x-api-key or as a bearer token; the API takes both.
        given = headers.get("x-api-key") or headers.get("authorization", "").removeprefix("Bearer ")
        if self.api_key is not None and given != self.api_key:
            await self._send(writer, 401, AnthropicReply.error(401, "invalid x-api-key").body)
            return True
        if method == "POST" and parts.path.rstrip("/").endswith("/messages") and isinstance(payload, dict):
            if payload.get("model") not in self.models and "*" not in self.models:
                error = AnthropicReply.error(404, f"model: {payload.get('model')}")
                await self._send(writer, 404, error.body)
                return True
            return await self._messages(payload, writer)
        await self._send(writer, 404, AnthropicReply.error(404, f"no route {method} {parts.path}").body)
        return True

    async def _messages(self, request: dict[str, Any], writer: asyncio.StreamWriter) -> bool:
        try:
            reply = as_reply(await self._next_reply(request), AnthropicReply)
        except Exception as exc:  # noqa: BLE001 - a broken handler becomes a visible 500
            reply = AnthropicReply.error(500, f"loopback server handler failed: {type(exc).__name__}: {exc}")
        delay = self.delay if reply.delay is None else reply.delay
        if delay:
            await asyncio.sleep(delay)
        if reply.status != 200 or reply.body is not None:
            body = reply.body
            if isinstance(body, dict) and "error" in body and body.get("type") != "error":  # an OpenAI-shaped fault
                body = AnthropicReply.error(reply.status, body["error"].get("message")).body
            await self._send(writer, reply.status, body, reply.headers)
            return True
        self._counter += 1
        text, stop_reason, stop_sequence = reply.content, None, None
        for stop in request.get("stop_sequences") or ():
            if text and stop in text:
                text, stop_reason, stop_sequence = text[: text.index(stop)], "stop_sequence", stop
        blocks: list[dict[str, Any]] = []
        if reply.thinking is not None:
            blocks.append({"type": "thinking", "thinking": reply.thinking, "signature": reply.signature})
        if text:
            blocks.append({"type": "text", "text": text})
        for i, call in enumerate(reply.tool_calls or ()):
            args = call.get("arguments", {})
            blocks.append(
                {
                    "type": "tool_use",
                    "id": call.get("id") or f"toolu_loopback_{self._counter}_{i}",
                    "name": call["name"],
                    "input": json.loads(args) if isinstance(args, str) else args,
                }
            )
        if stop_reason is None:
            stop_reason = reply.finish_reason or ("tool_use" if reply.tool_calls else "end_turn")
        usage = {
            "input_tokens": len(_request_text(request)) // 4 + 1,
            "output_tokens": len(json.dumps(blocks)) // 4 + 1,
            "cache_read_input_tokens": 0,
            "cache_creation_input_tokens": 0,
        }
        usage.update(reply.usage or {})
        message = {
            "id": f"msg_loopback_{self._counter}",
            "type": "message",
            "role": "assistant",
            "model": request.get("model"),
            "content": blocks,
            "stop_reason": stop_reason,
            "stop_sequence": stop_sequence,
            "usage": usage,
        }
        if not request.get("stream"):
            await self._send(writer, 200, message, reply.headers, truncate=reply.drop_after_chunks is not None)
            return reply.drop_after_chunks is None
        return await self._sse(message, reply, writer)

    async def _sse(self, message: dict[str, Any], reply: AnthropicReply, writer: asyncio.StreamWriter) -> bool:
        size = reply.chunk_size or self.chunk_size
        usage = message["usage"]
        start = {**message, "content": [], "stop_reason": None, "stop_sequence": None,
                 "usage": {**usage, "output_tokens": 1}}
        events: list[tuple[str, dict[str, Any]]] = [("message_start", {"type": "message_start", "message": start})]
        for index, block in enumerate(message["content"]):
            kind = block["type"]
            if kind == "text":
                empty, pieces = {"type": "text", "text": ""}, [
                    {"type": "text_delta", "text": block["text"][i : i + size]}
                    for i in range(0, len(block["text"]), size)
                ]
            elif kind == "thinking":
                empty = {"type": "thinking", "thinking": "", "signature": ""}
                pieces = [
                    {"type": "thinking_delta", "thinking": block["thinking"][i : i + size]}
                    for i in range(0, len(block["thinking"]), size)
                ] + [{"type": "signature_delta", "signature": block["signature"]}]
            else:
                empty = {**block, "input": {}}
                args = json.dumps(block["input"])
                pieces = [{"type": "input_json_delta", "partial_json": args[i : i + size]}
                          for i in range(0, len(args), size)]
            events.append(("content_block_start",
                           {"type": "content_block_start", "index": index, "content_block": empty}))
            events += [("content_block_delta", {"type": "content_block_delta", "index": index, "delta": p})
                       for p in pieces]
            events.append(("content_block_stop", {"type": "content_block_stop", "index": index}))
        events.append(("message_delta", {
            "type": "message_delta",
            "delta": {"stop_reason": message["stop_reason"], "stop_sequence": message["stop_sequence"]},
            "usage": {"output_tokens": usage["output_tokens"]},
        }))
        events.append(("message_stop", {"type": "message_stop"}))
        frames = [f"event: {name}\ndata: {json.dumps(data)}\n\n".encode() for name, data in events]
        head = ["HTTP/1.1 200 OK", "Content-Type: text/event-stream", f"request-id: req_loopback_{self._counter}"]
        return await self.send_chunked(writer, head, reply, frames)
