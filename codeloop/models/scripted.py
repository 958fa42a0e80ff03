"""``ScriptedModel``: a model that answers from a script, for tests, demos and overhead benchmarks.

It never touches the network. Replies come from a list (one per call, in order) or from a function of
the messages (sync or async). Every call is recorded: ``calls`` holds the message lists it was sent and
``call_kwargs`` the other arguments. Because it is used to measure the per-step overhead of the agent
loop, ``agenerate`` does the minimum: no deep copies, no sleeping unless ``latency`` is set.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import re
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from typing import Any

from ..errors import ModelRequestError
from ..messages import (
    ChatMessage,
    ChatMessageStreamDelta,
    ChatMessageToolCall,
    ChatMessageToolCallFunction,
    ChatMessageToolCallStreamDelta,
    MessageRole,
    TokenUsage,
)
from .base import Model, cut_at_stop

__all__ = ["ScriptedModel", "ScriptExhaustedError"]

Reply = str | ChatMessage | dict[str, Any]
_WORDS = re.compile(r"\S+\s*|\s+")


class ScriptExhaustedError(ModelRequestError):
    """The ScriptedModel was called more times than it has replies."""


def _content_chars(content: Any) -> int:
    if isinstance(content, str):
        return len(content)
    if content:
        return sum(len(p.get("text", "")) for p in content if isinstance(p, dict))
    return 0


def _content(message: ChatMessage | dict[str, Any]) -> Any:
    return message.get("content") if isinstance(message, dict) else message.content


class _InputEstimate:
    """Input tokens of a call (4 characters a token), in time proportional to the *new* messages.

    An agent sends the same message objects again at every step, plus a few new ones (its memory caches
    them). So the running character total is remembered for each message, together with the message before
    it: a call looks back from its last message for one already counted after the same predecessor, and
    only measures what follows (a replaced ``content`` there is measured again). The message must also
    sit at the same position as when it was counted: compaction removes messages before it, and then its
    old running total would count them. It assumes messages already sent are not edited in place later
    (the agents' memory builds new messages instead); an edit of one would only skew this estimate.
    Bounded in size."""

    _MAX = 8192

    def __init__(self) -> None:
        # id(message) -> (message, its content, the message before it, its position, total characters up
        # to it). The message is held so its id is not reused while the entry lives.
        self._totals: dict[int, tuple[Any, Any, Any, int, int]] = {}

    def __call__(self, messages: list[ChatMessage | dict[str, Any]]) -> int:
        totals = self._totals
        if len(totals) > self._MAX:
            totals.clear()
        start = total = 0
        for j in range(len(messages) - 1, -1, -1):
            m = messages[j]
            known = totals.get(id(m))
            if (
                known is not None
                and known[0] is m
                and known[1] is _content(m)
                and known[2] is (messages[j - 1] if j else None)
                and known[3] == j
            ):
                start, total = j + 1, known[4]
                break
        before = messages[start - 1] if start else None
        for j, m in enumerate(messages[start:], start):
            content = _content(m)
            total += _content_chars(content)
            totals[id(m)] = (m, content, before, j, total)
            before = m
        return total // 4 + 1


def _as_message(reply: Reply) -> ChatMessage:
    if isinstance(reply, ChatMessage):
        return replace(reply)  # shallow: token usage set on the copy, the script stays untouched
    if isinstance(reply, str):
        return ChatMessage(role=MessageRole.ASSISTANT, content=reply)
    if isinstance(reply, dict):
        calls = None
        if reply.get("tool_calls"):
            calls = []
            for i, c in enumerate(reply["tool_calls"]):
                fn = c.get("function", c)
                calls.append(
                    ChatMessageToolCall(
                        function=ChatMessageToolCallFunction(
                            name=fn["name"], arguments=fn.get("arguments", {})
                        ),
                        id=c.get("id") or f"call_{i}",
                    )
                )
        return ChatMessage(role=MessageRole.ASSISTANT, content=reply.get("content"), tool_calls=calls)
    raise TypeError(f"ScriptedModel replies must be str, ChatMessage or dict, got {type(reply).__name__}.")


class ScriptedModel(Model):
    """Answers from ``replies`` (a list used in order, or a function ``messages -> reply``).

    A reply is a string, a ``ChatMessage`` (with ``tool_calls`` to script tool calls) or a dict
    ``{"content": ..., "tool_calls": [{"name": ..., "arguments": {...}, "id": ...}]}``.

    Args:
        replies: the script.
        stream_chunk_size: characters per streamed text delta; ``None`` streams word by word.
        model_id: reported model id (default "scripted-model").
        latency: seconds to sleep per call (default 0: measure the loop, not the model).
        apply_stop_sequences: cut replies at the first stop sequence, like a real model would. Off by
            default so a scripted reply comes back exactly as written.
        token_usage: fixed usage to report per call; by default it is estimated (4 characters a token).
    """

    accepts_cache_hints = True  # recorded in call_kwargs, so tests can see what the agent sent
    note_unknown_price = False  # a test double: cost None without a warning unless given a priced id

    def __init__(
        self,
        replies: list[Reply] | Callable[[list[Any]], Any],
        stream_chunk_size: int | None = None,
        model_id: str = "scripted-model",
        latency: float = 0.0,
        apply_stop_sequences: bool = False,
        token_usage: TokenUsage | None = None,
        **kwargs: Any,
    ):
        super().__init__(model_id=model_id, **kwargs)
        if callable(replies):
            self._script: list[Reply] | None = None
            self._func: Callable[[list[Any]], Any] | None = replies
        else:
            self._script, self._func = list(replies), None
        self.stream_chunk_size = stream_chunk_size
        self.latency = latency
        self.apply_stop_sequences = apply_stop_sequences
        self.token_usage = token_usage
        self.calls: list[list[ChatMessage | dict[str, Any]]] = []
        self.call_kwargs: list[dict[str, Any]] = []
        self._estimate_input = _InputEstimate()

    @property
    def remaining(self) -> int | None:
        """Replies left in a list script (None for a function script)."""
        return None if self._script is None else len(self._script) - len(self.calls)

    async def _next_reply(self, messages: list[Any], kwargs: dict[str, Any]) -> ChatMessage:
        index = len(self.calls)
        self.calls.append(list(messages))
        self.call_kwargs.append(kwargs)
        if self.latency:
            await asyncio.sleep(self.latency)
        if self._func is not None:
            reply = self._func(messages)
            if inspect.isawaitable(reply):
                reply = await reply
        else:
            assert self._script is not None
            if index >= len(self._script):
                raise ScriptExhaustedError(
                    f"ScriptedModel ran out of replies: call {index + 1} but the script has "
                    f"{len(self._script)}. Add replies, or pass a function of the messages instead of a list.",
                    attempts=1,
                )
            reply = self._script[index]
        message = _as_message(reply)
        stops = kwargs.get("stop_sequences")
        if self.apply_stop_sequences and stops and isinstance(message.content, str):
            message.content = cut_at_stop(message.content, stops)
        if self.token_usage is not None:
            usage = replace(self.token_usage)
        else:
            usage = TokenUsage(
                input_tokens=self._estimate_input(messages), output_tokens=len(message.text) // 4 + 1
            )
        message.token_usage = self._finish_usage(usage)
        return message

    async def agenerate(
        self,
        messages: list[ChatMessage | dict[str, Any]],
        stop_sequences: list[str] | None = None,
        response_format: dict[str, Any] | None = None,
        tools_to_call_from: list[Any] | None = None,
        **kwargs: Any,
    ) -> ChatMessage:
        kwargs.update(
            stop_sequences=stop_sequences,
            response_format=response_format,
            tools_to_call_from=tools_to_call_from,
        )
        return await self._next_reply(messages, kwargs)

    async def astream(
        self,
        messages: list[ChatMessage | dict[str, Any]],
        stop_sequences: list[str] | None = None,
        response_format: dict[str, Any] | None = None,
        tools_to_call_from: list[Any] | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatMessageStreamDelta]:
        kwargs.update(
            stop_sequences=stop_sequences,
            response_format=response_format,
            tools_to_call_from=tools_to_call_from,
            stream=True,
        )
        message = await self._next_reply(messages, kwargs)
        text = message.text
        size = self.stream_chunk_size
        pieces = [text[i : i + size] for i in range(0, len(text), size)] if size else _WORDS.findall(text)
        for piece in pieces:
            yield ChatMessageStreamDelta(content=piece)
        for index, call in enumerate(message.tool_calls or ()):
            args = call.function.arguments
            args_text = args if isinstance(args, str) else json.dumps(args)
            yield ChatMessageStreamDelta(
                tool_calls=[
                    ChatMessageToolCallStreamDelta(
                        index=index,
                        id=call.id,
                        type="function",
                        function=ChatMessageToolCallFunction(name=call.function.name, arguments=""),
                    )
                ]
            )
            step = size or 16
            for i in range(0, len(args_text), step):
                yield ChatMessageStreamDelta(
                    tool_calls=[
                        ChatMessageToolCallStreamDelta(
                            index=index,
                            function=ChatMessageToolCallFunction(name="", arguments=args_text[i : i + step]),
                        )
                    ]
                )
        yield ChatMessageStreamDelta(token_usage=message.token_usage)
