"""What the in-process local model providers share (``transformers``, ``mlx-lm``, vLLM's engine).

Layer 1 (models). ``LocalModel`` holds smolagents' common parameters of these classes
(``apply_chat_template_kwargs``, ``custom_role_conversions``), turns messages into the chat list a chat
template takes (text parts joined; image parts kept as PIL images for vision models, a clear error for text
models), reads tool calls from the generated text, and streams text pieces that a worker thread produces,
with stop sequences cut as they arrive. Generation runs one at a time per model (``self._lock``).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

from ..errors import ModelConfigurationError
from ..messages import ChatMessage, ChatMessageStreamDelta, MessageRole, TokenUsage
from .base import Model, StopCutter
from .convert import to_chat_messages, tool_schema
from .images import image_url_of, load_pil_image
from .toolcall_parsing import tool_calls_from_text

__all__ = ["LocalModel"]

_DONE = object()


class LocalModel(Model):
    """Base of models that run in this process (see the module docstring)."""

    note_unknown_price = False  # local compute: no per-token price to look up
    text_only_hint = "remove the image parts from the messages, or load a vision-language model."

    def __init__(
        self,
        model_id: str | None,
        apply_chat_template_kwargs: dict[str, Any] | None = None,
        custom_role_conversions: dict[str, str] | None = None,
        **kwargs: Any,
    ):
        if not model_id:
            raise ModelConfigurationError(f"{type(self).__name__} needs model_id: a Hub id or a local model folder.")
        profile = kwargs.pop("profile", None) or {"supports_images": False}  # a vision model turns it on
        super().__init__(model_id=model_id, profile=profile, **kwargs)
        self.apply_chat_template_kwargs = dict(apply_chat_template_kwargs or {})
        self.custom_role_conversions = custom_role_conversions
        self._lock = threading.Lock()

    # ---- prompt ------------------------------------------------------------------------------------------
    def chat_and_images(self, messages: list[Any], vision: bool) -> tuple[list[dict[str, Any]], list[Any]]:
        """The chat list for a template, and its images in order (PIL), which a vision template marks with
        ``{"type": "image"}`` parts; a text model gets plain strings and an error for any image."""
        chat = to_chat_messages(messages, self.custom_role_conversions, flatten_messages_as_text=False)
        images: list[Any] = []
        for message in chat:
            content = message.get("content")
            if not isinstance(content, list):
                continue
            if not vision:
                if any(p.get("type") in ("image", "image_url") for p in content):
                    raise ModelConfigurationError(
                        f"{type(self).__name__}({self.model_id!r}) is a text model: {self.text_only_hint}"
                    )
                message["content"] = "\n".join(p.get("text", "") for p in content)
                continue
            parts = []
            for part in content:
                if part.get("type") in ("image", "image_url"):
                    images.append(load_pil_image(part.get("image") if part["type"] == "image" else image_url_of(part)))
                    parts.append({"type": "image"})
                else:
                    parts.append(part)
            message["content"] = parts
        return chat, images

    def tool_schemas(self, tools: list[Any] | None) -> list[dict[str, Any]] | None:
        return [tool_schema(t) for t in tools] if tools else None

    # ---- reply -------------------------------------------------------------------------------------------
    def tool_calls(self, text: str, tools: list[Any] | None) -> Any:
        """The calls of offered tools written in ``text`` (``{"name": ..., "arguments": ...}``), or None."""
        if not tools:
            return None
        names = {tool_schema(t)["function"]["name"] for t in tools}
        found = tool_calls_from_text(text, self.tool_name_key, self.tool_arguments_key)
        return [c for c in found if c.function.name in names] or None

    def reply(self, text: str, tools: list[Any] | None, usage: TokenUsage, raw: Any = None) -> ChatMessage:
        return ChatMessage(role=MessageRole.ASSISTANT, content=text, tool_calls=self.tool_calls(text, tools),
                           raw=raw, token_usage=self._finish_usage(usage))

    async def stream_pieces(
        self, produce: Callable[[], Iterator[str]], stop_sequences: list[str] | None, usage: TokenUsage
    ) -> AsyncIterator[ChatMessageStreamDelta]:
        """Deltas of the text pieces ``produce()`` yields in one worker thread (some engines keep per-thread
        state), stop sequences cut, then the usage ``produce`` filled in."""
        queue: asyncio.Queue[Any] = asyncio.Queue()
        loop = asyncio.get_running_loop()

        def run() -> None:
            try:
                for piece in produce():
                    loop.call_soon_threadsafe(queue.put_nowait, piece)
                loop.call_soon_threadsafe(queue.put_nowait, _DONE)
            except BaseException as exc:  # noqa: BLE001 - re-raised in the caller
                loop.call_soon_threadsafe(queue.put_nowait, exc)

        cutter = StopCutter(stop_sequences) if stop_sequences else None
        worker = asyncio.ensure_future(asyncio.to_thread(run))
        while (piece := await queue.get()) is not _DONE:
            if isinstance(piece, BaseException):
                raise piece
            text = cutter.feed(piece) if cutter else piece
            if text:
                yield ChatMessageStreamDelta(content=text)
        await worker
        rest = cutter.flush() if cutter else ""
        if rest:
            yield ChatMessageStreamDelta(content=rest)
        yield ChatMessageStreamDelta(token_usage=self._finish_usage(usage))

    def to_dict(self) -> dict[str, Any]:
        data = super().to_dict()
        if self.apply_chat_template_kwargs:
            data["apply_chat_template_kwargs"] = self.apply_chat_template_kwargs
        return data
