"""Chat messages, tool calls, stream deltas, token usage and timing: the data every layer passes around.

Layer 1 (data): plain dataclasses with no I/O. Every type here round-trips through JSON
(``to_dict`` / ``from_dict``) because the run store persists them. Names and fields follow smolagents
so code written against it keeps working.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

__all__ = [
    "MessageRole",
    "TokenUsage",
    "Timing",
    "ChatMessageToolCallFunction",
    "ChatMessageToolCall",
    "ChatMessageToolCallStreamDelta",
    "ChatMessageStreamDelta",
    "ChatMessage",
    "agglomerate_stream_deltas",
    "image_to_data_url",
    "encode_image_base64",
]


class MessageRole(StrEnum):
    USER = "user"
    ASSISTANT = "assistant"
    SYSTEM = "system"
    TOOL_CALL = "tool-call"
    TOOL_RESPONSE = "tool-response"

    @classmethod
    def roles(cls) -> list[str]:
        return [r.value for r in cls]


@dataclass
class TokenUsage:
    """Tokens spent by one model call (or a sum of calls); ``cost`` is in US dollars when known.

    ``input_tokens`` counts every prompt token, the cached ones (``cached_input_tokens``, read from a
    provider's prompt cache) and the ones written to it (``cache_write_tokens``) included, as OpenAI
    reports them; ``output_tokens`` includes ``reasoning_tokens``.
    """

    input_tokens: int = 0
    output_tokens: int = 0
    cached_input_tokens: int = 0
    cost: float | None = None
    reasoning_tokens: int = 0
    cache_write_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    def __add__(self, other: TokenUsage | None) -> TokenUsage:
        if other is None:
            return replace(self)
        cost = None if self.cost is None and other.cost is None else (self.cost or 0.0) + (other.cost or 0.0)
        return TokenUsage(
            self.input_tokens + other.input_tokens,
            self.output_tokens + other.output_tokens,
            self.cached_input_tokens + other.cached_input_tokens,
            cost,
            self.reasoning_tokens + other.reasoning_tokens,
            self.cache_write_tokens + other.cache_write_tokens,
        )

    __radd__ = __add__

    def to_dict(self) -> dict[str, Any]:
        return {
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "total_tokens": self.total_tokens,
            "cached_input_tokens": self.cached_input_tokens,
            "reasoning_tokens": self.reasoning_tokens,
            "cache_write_tokens": self.cache_write_tokens,
            "cost": self.cost,
        }

    dict = to_dict  # smolagents name

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TokenUsage:
        return cls(
            input_tokens=int(data.get("input_tokens", 0)),
            output_tokens=int(data.get("output_tokens", 0)),
            cached_input_tokens=int(data.get("cached_input_tokens", 0)),
            cost=data.get("cost"),
            reasoning_tokens=int(data.get("reasoning_tokens", 0)),
            cache_write_tokens=int(data.get("cache_write_tokens", 0)),
        )


@dataclass
class Timing:
    """Wall-clock span of a step or run, in seconds since the epoch."""

    start_time: float = field(default_factory=time.time)
    end_time: float | None = None

    @property
    def duration(self) -> float | None:
        return None if self.end_time is None else self.end_time - self.start_time

    def stop(self) -> Timing:
        self.end_time = time.time()
        return self

    def to_dict(self) -> dict[str, Any]:
        return {"start_time": self.start_time, "end_time": self.end_time, "duration": self.duration}

    dict = to_dict

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Timing:
        return cls(start_time=float(data["start_time"]), end_time=data.get("end_time"))


@dataclass
class ChatMessageToolCallFunction:
    name: str
    arguments: Any = None
    description: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "arguments": self.arguments, "description": self.description}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ChatMessageToolCallFunction:
        return cls(name=data["name"], arguments=data.get("arguments"), description=data.get("description"))


@dataclass
class ChatMessageToolCall:
    function: ChatMessageToolCallFunction
    id: str
    type: str = "function"

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "type": self.type, "function": self.function.to_dict()}

    dict = to_dict

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ChatMessageToolCall:
        return cls(
            function=ChatMessageToolCallFunction.from_dict(data["function"]),
            id=str(data["id"]),
            type=data.get("type", "function"),
        )

    def __str__(self) -> str:
        return f"Call: {self.id}: Calling {self.function.name} with arguments: {self.function.arguments}"


@dataclass
class ChatMessageToolCallStreamDelta:
    """A piece of a tool call as it streams in; pieces with the same index belong together."""

    index: int | None = None
    id: str | None = None
    type: str | None = None
    function: ChatMessageToolCallFunction | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "id": self.id,
            "type": self.type,
            "function": self.function.to_dict() if self.function else None,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ChatMessageToolCallStreamDelta:
        fn = data.get("function")
        return cls(
            index=data.get("index"),
            id=data.get("id"),
            type=data.get("type"),
            function=ChatMessageToolCallFunction.from_dict(fn) if fn else None,
        )


@dataclass
class ChatMessageStreamDelta:
    content: str | None = None
    tool_calls: list[ChatMessageToolCallStreamDelta] | None = None
    token_usage: TokenUsage | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "content": self.content,
            "tool_calls": [tc.to_dict() for tc in self.tool_calls] if self.tool_calls else None,
            "token_usage": self.token_usage.to_dict() if self.token_usage else None,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ChatMessageStreamDelta:
        tcs = data.get("tool_calls")
        usage = data.get("token_usage")
        return cls(
            content=data.get("content"),
            tool_calls=[ChatMessageToolCallStreamDelta.from_dict(t) for t in tcs] if tcs else None,
            token_usage=TokenUsage.from_dict(usage) if usage else None,
        )


def encode_image_base64(image: Any) -> str:
    """A PIL image (saved as PNG) or raw image bytes as base64 text (smolagents' helper of the same name)."""
    if isinstance(image, bytes | bytearray):
        data = bytes(image)
    elif hasattr(image, "save"):  # PIL.Image, duck-typed so PIL stays optional
        import io

        buf = io.BytesIO()
        image.save(buf, format="PNG")
        data = buf.getvalue()
    else:
        raise TypeError(
            f"Cannot encode {type(image).__name__} as an image: pass PIL.Image, bytes or a URL string."
        )
    return base64.b64encode(data).decode("ascii")


def image_to_data_url(image: Any, mime: str = "image/png") -> str:
    """Encode a PIL image, raw bytes or an existing data URL/URL string as a data URL (strings pass through)."""
    if isinstance(image, str):
        return image
    return f"data:{mime};base64," + encode_image_base64(image)


def _content_to_jsonable(content: Any) -> Any:
    if content is None or isinstance(content, str):
        return content
    parts = []
    for part in content:
        if isinstance(part, dict) and part.get("type") == "image" and not isinstance(part.get("image"), str):
            part = {**part, "image": image_to_data_url(part["image"])}
        parts.append(part)
    return parts


@dataclass
class ChatMessage:
    """One message of a conversation with a model.

    ``content`` is a string or a list of parts (``{"type": "text", "text": ...}``,
    ``{"type": "image", "image": ...}``). ``raw`` keeps the provider's response object and is not persisted.
    """

    role: MessageRole | str
    content: str | list[dict[str, Any]] | None = None
    tool_calls: list[ChatMessageToolCall] | None = None
    raw: Any | None = None
    token_usage: TokenUsage | None = None

    def __post_init__(self) -> None:
        if isinstance(self.role, str) and not isinstance(self.role, MessageRole):
            try:
                self.role = MessageRole(self.role)
            except ValueError:
                raise ValueError(
                    f"Unknown message role {self.role!r}; use one of {MessageRole.roles()}."
                ) from None

    @property
    def text(self) -> str:
        """The text of ``content`` (text parts joined), '' when there is none."""
        if self.content is None:
            return ""
        if isinstance(self.content, str):
            return self.content
        return "".join(str(p.get("text", "")) for p in self.content if p.get("type") == "text")

    def to_dict(self) -> dict[str, Any]:
        return {
            "role": MessageRole(self.role).value,
            "content": _content_to_jsonable(self.content),
            "tool_calls": [tc.to_dict() for tc in self.tool_calls] if self.tool_calls else None,
            "token_usage": self.token_usage.to_dict() if self.token_usage else None,
        }

    dict = to_dict

    def model_dump_json(self) -> str:
        return json.dumps(self.to_dict())

    @classmethod
    def from_dict(
        cls, data: dict[str, Any], raw: Any | None = None, token_usage: TokenUsage | None = None
    ) -> ChatMessage:
        tcs = data.get("tool_calls")
        usage = data.get("token_usage")
        return cls(
            role=MessageRole(data["role"]),
            content=data.get("content"),
            tool_calls=[ChatMessageToolCall.from_dict(tc) for tc in tcs] if tcs else None,
            raw=raw,
            token_usage=token_usage or (TokenUsage.from_dict(usage) if usage else None),
        )

    def render_as_markdown(self) -> str:
        rendered = self.text
        if self.tool_calls:
            rendered += "\n".join(json.dumps(tc.to_dict(), default=str) for tc in self.tool_calls)
        return rendered


def agglomerate_stream_deltas(
    deltas: Iterable[ChatMessageStreamDelta], role: MessageRole = MessageRole.ASSISTANT
) -> ChatMessage:
    """Fold streamed deltas into one message: text concatenated, tool-call pieces joined by index, usage summed."""
    text: list[str] = []
    calls: dict[int, dict[str, Any]] = {}
    usage: TokenUsage | None = None
    for delta in deltas:
        if delta.content:
            text.append(delta.content)
        if delta.token_usage is not None:
            usage = delta.token_usage + usage
        for piece in delta.tool_calls or ():
            slot = calls.setdefault(
                piece.index if piece.index is not None else len(calls),
                {"id": None, "type": "function", "name": "", "arguments": ""},
            )
            slot["id"] = piece.id or slot["id"]
            slot["type"] = piece.type or slot["type"]
            if piece.function is not None:
                slot["name"] += piece.function.name or ""
                args = piece.function.arguments
                if isinstance(args, str):
                    slot["arguments"] += args
                elif args is not None:
                    slot["arguments"] = args
    tool_calls = [
        ChatMessageToolCall(
            function=ChatMessageToolCallFunction(name=c["name"], arguments=c["arguments"]),
            id=c["id"] or f"call_{i}",
            type=c["type"],
        )
        for i, c in sorted(calls.items())
    ]
    return ChatMessage(
        role=role, content="".join(text) or None, tool_calls=tool_calls or None, token_usage=usage
    )
