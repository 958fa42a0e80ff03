"""A loopback Amazon Bedrock runtime server for tests (stdlib only): Converse and ConverseStream.

Point boto3 at it with ``boto3.client("bedrock-runtime", endpoint_url=server.url, ...)`` and any fake
credentials. ``POST /model/{modelId}/converse`` answers the Converse JSON (``output.message.content`` with
``text``, ``toolUse`` and ``reasoningContent`` blocks, ``stopReason``, ``usage`` with cache reads and
writes); ``POST /model/{modelId}/converse-stream`` answers in the AWS event-stream binary framing
(prelude with lengths and CRC32, typed headers, JSON payload, message CRC32): ``messageStart``,
``contentBlockStart`` / ``contentBlockDelta`` / ``contentBlockStop``, ``messageStop``, ``metadata``. The
server honours ``inferenceConfig.stopSequences`` as Bedrock does (text cut, ``stopReason`` "stop_sequence").

Errors carry ``x-amzn-ErrorType`` as the service does, so botocore raises its real ``ClientError`` with the
service's code: ``BedrockReply.error(429)`` is a ``ThrottlingException``, 500 ``InternalServerException``,
503 ``ServiceUnavailableException``, 403 ``UnrecognizedClientException`` (bad credentials), 404
``ResourceNotFoundException``. ``Reply.drop(after_chunks=n)`` cuts the event stream after ``n`` frames.
Requests must be SigV4-signed (an ``AWS4-HMAC-SHA256`` Authorization header), else 403.
"""

from __future__ import annotations

import asyncio
import json
import struct
import zlib
from typing import Any
from urllib.parse import unquote

from .server import OpenAICompatibleServer, Reply

__all__ = ["BedrockServer", "BedrockReply", "encode_event"]

_CODES = {
    400: "ValidationException",
    403: "UnrecognizedClientException",
    404: "ResourceNotFoundException",
    429: "ThrottlingException",
    500: "InternalServerException",
    503: "ServiceUnavailableException",
}


class BedrockReply(Reply):
    """``Reply`` whose ``error`` is a Bedrock error (``x-amzn-ErrorType`` + ``{"message": ...}``)."""

    @classmethod
    def error(  # type: ignore[override]
        cls, status: int, message: str | None = None, code: str | None = None, **kwargs: Any
    ) -> Reply:
        code = code or _CODES.get(status, "InternalServerException")
        headers = {"x-amzn-ErrorType": f"{code}:http://internal.amazon.com/coral/com.amazon.bedrock/"}
        return Reply(status=status, headers=headers,
                     body={"message": message or f"loopback server: scripted {code}"}, **kwargs)


def _header(name: str, value: str) -> bytes:
    raw_name, raw_value = name.encode(), value.encode()
    return struct.pack("!B", len(raw_name)) + raw_name + struct.pack("!BH", 7, len(raw_value)) + raw_value


def encode_event(event_type: str, payload: dict[str, Any], message_type: str = "event") -> bytes:
    """One AWS event-stream message: prelude (total length, headers length, CRC32), headers, payload, CRC32."""
    kind = ":exception-type" if message_type == "exception" else ":event-type"
    headers = _header(kind, event_type) + _header(":content-type", "application/json") + _header(
        ":message-type", message_type)
    body = json.dumps(payload).encode()
    total = 12 + len(headers) + len(body) + 4
    prelude = struct.pack("!II", total, len(headers))
    prelude += struct.pack("!I", zlib.crc32(prelude) & 0xFFFFFFFF)
    message = prelude + headers + body
    return message + struct.pack("!I", zlib.crc32(message) & 0xFFFFFFFF)


class BedrockServer(OpenAICompatibleServer):
    """Loopback bedrock-runtime; ``with BedrockServer([...], models=[...]) as server:``."""

    @property
    def converse_requests(self) -> list[dict[str, Any]]:
        return [r for r in self.requests if "/converse" in r["path"]]

    async def _fail(self, writer: asyncio.StreamWriter, status: int, message: str) -> bool:
        error = BedrockReply.error(status, message)
        await self._send(writer, status, error.body, error.headers)
        return True

    async def _dispatch(
        self, method: str, target: str, headers: dict[str, str], body: bytes, writer: asyncio.StreamWriter
    ) -> bool:
        parts, payload = self._record(method, target, headers, body)
        path = unquote(parts.path)
        auth = headers.get("authorization", "")
        if not auth.startswith("AWS4-HMAC-SHA256 Credential="):
            return await self._fail(writer, 403, "Missing or unsigned request.")
        if self.api_key is not None and f"Credential={self.api_key}/" not in auth:
            return await self._fail(writer, 403, "The security token included in the request is invalid.")
        segments = path.strip("/").split("/")
        if method != "POST" or len(segments) != 3 or segments[0] != "model" or segments[2] not in (
            "converse", "converse-stream"
        ):
            return await self._fail(writer, 404, f"no route {method} {path}")
        model_id = segments[1]
        if model_id not in self.models and "*" not in self.models:
            return await self._fail(writer, 404, f"Model {model_id} not found.")
        return await self._converse(model_id, payload or {}, segments[2] == "converse-stream", writer)

    async def _converse(
        self, model_id: str, request: dict[str, Any], stream: bool, writer: asyncio.StreamWriter
    ) -> bool:
        try:
            reply = await self._next_reply({**request, "modelId": model_id})
        except Exception as exc:  # noqa: BLE001 - a broken handler becomes a visible 500
            reply = BedrockReply.error(500, f"loopback server handler failed: {type(exc).__name__}: {exc}")
        delay = self.delay if reply.delay is None else reply.delay
        if delay:
            await asyncio.sleep(delay)
        if reply.status != 200 or reply.body is not None:
            if reply.status != 200 and "x-amzn-ErrorType" not in reply.headers:
                reply = BedrockReply.error(reply.status, (reply.body or {}).get("error", {}).get("message"))
            await self._send(writer, reply.status, reply.body, reply.headers)
            return True
        self._counter += 1
        text, stop_reason = reply.content, None
        for stop in (request.get("inferenceConfig") or {}).get("stopSequences") or ():
            if text and stop in text:
                text, stop_reason = text[: text.index(stop)], "stop_sequence"
        blocks: list[dict[str, Any]] = []
        if text:
            blocks.append({"text": text})
        for i, call in enumerate(reply.tool_calls or ()):
            args = call.get("arguments", {})
            blocks.append({"toolUse": {"toolUseId": call.get("id") or f"tooluse_{self._counter}_{i}",
                                       "name": call["name"],
                                       "input": json.loads(args) if isinstance(args, str) else args}})
        stop_reason = stop_reason or reply.finish_reason or ("tool_use" if reply.tool_calls else "end_turn")
        usage = {"inputTokens": len(json.dumps(request.get("messages"))) // 4 + 1,
                 "outputTokens": len(json.dumps(blocks)) // 4 + 1}
        usage.update(reply.usage or {})
        usage["totalTokens"] = usage["inputTokens"] + usage["outputTokens"]
        if not stream:
            result = {"output": {"message": {"role": "assistant", "content": blocks}}, "stopReason": stop_reason,
                      "usage": usage, "metrics": {"latencyMs": 1}}
            await self._send(writer, 200, result, reply.headers, truncate=reply.drop_after_chunks is not None)
            return reply.drop_after_chunks is None
        size = reply.chunk_size or self.chunk_size
        events: list[tuple[str, dict[str, Any]]] = [("messageStart", {"role": "assistant"})]
        for index, block in enumerate(blocks):
            if "text" in block:
                events += [("contentBlockDelta", {"contentBlockIndex": index, "delta": {"text": block["text"][i: i + size]}})
                           for i in range(0, len(block["text"]), size)]
            else:
                use = block["toolUse"]
                events.append(("contentBlockStart", {"contentBlockIndex": index, "start": {
                    "toolUse": {"toolUseId": use["toolUseId"], "name": use["name"]}}}))
                args = json.dumps(use["input"])
                events += [("contentBlockDelta", {"contentBlockIndex": index,
                                                  "delta": {"toolUse": {"input": args[i: i + size]}}})
                           for i in range(0, len(args), size)]
            events.append(("contentBlockStop", {"contentBlockIndex": index}))
        events.append(("messageStop", {"stopReason": stop_reason}))
        events.append(("metadata", {"usage": usage, "metrics": {"latencyMs": 1}}))
        frames = [encode_event(name, data) for name, data in events]
        head = ["HTTP/1.1 200 OK", "Content-Type: application/vnd.amazon.eventstream",
                f"x-amzn-RequestId: loopback-{self._counter}"]
        return await self.send_chunked(writer, head, reply, frames)
