"""``CassetteModel``: record a real model's replies once, replay them offline and deterministically after.

A cassette is a JSON Lines file; each line holds one exchange: a hash of the request (messages as the
provider would see them, stop sequences, response format, tool names), the request itself (for humans
reading a diff) and the reply (``ChatMessage.to_dict()``).

* ``mode="replay"``: answer from the file; a request not in it raises ``CassetteMissError``.
* ``mode="record"``: call ``model`` and append every exchange to the file (which is started afresh).
* ``mode="auto"`` (default): replay what is there, call ``model`` (and append) for what is not.

Replies are matched by request hash, so reordering concurrent runs does not break replay; the same
request asked twice gets the recorded replies in order.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections import defaultdict, deque
from pathlib import Path
from typing import Any, Literal

from ..errors import ModelRequestError
from ..messages import ChatMessage
from .base import Model
from .convert import to_chat_messages, tool_schema

__all__ = ["CassetteModel", "CassetteMissError", "request_key"]


class CassetteMissError(ModelRequestError):
    """Replay was asked for a request that the cassette does not hold."""


def _request_view(
    messages: list[Any], stop_sequences: Any, response_format: Any, tools_to_call_from: Any
) -> dict[str, Any]:
    return {
        "messages": to_chat_messages(messages),
        "stop_sequences": list(stop_sequences) if stop_sequences else None,
        "response_format": response_format,
        "tools": [tool_schema(t)["function"]["name"] for t in tools_to_call_from or ()],
    }


def request_key(view: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(view, sort_keys=True, default=str).encode()).hexdigest()[:32]


class CassetteModel(Model):
    def __init__(
        self,
        path: str | Path,
        model: Model | None = None,
        mode: Literal["auto", "replay", "record"] = "auto",
        **kwargs: Any,
    ):
        if mode not in ("auto", "replay", "record"):
            raise ValueError("mode must be 'auto', 'replay' or 'record'.")
        if mode != "replay" and model is None:
            raise ValueError(f"CassetteModel(mode={mode!r}) needs the live model to record from: model=...")
        kwargs.setdefault("model_id", getattr(model, "model_id", None) or "cassette")
        super().__init__(**kwargs)
        self.path = Path(path)
        self.model = model
        self.mode = mode
        self._lock = threading.Lock()
        self._replies: dict[str, deque[dict[str, Any]]] = defaultdict(deque)
        if mode == "record":
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.path.write_text("")
        elif self.path.exists():
            for line in self.path.read_text().splitlines():
                if line.strip():
                    entry = json.loads(line)
                    self._replies[entry["key"]].append(entry["reply"])
        elif mode == "replay":
            raise FileNotFoundError(f"No cassette at {self.path}: record one first with mode='record'.")

    def close(self) -> None:
        if self.model is not None:
            self.model.close()

    async def aclose(self) -> None:
        if self.model is not None:
            await self.model.aclose()

    def _append(self, key: str, view: dict[str, Any], reply: ChatMessage) -> None:
        line = json.dumps({"key": key, "request": view, "reply": reply.to_dict()}, default=str)
        with self._lock, self.path.open("a") as handle:
            handle.write(line + "\n")

    async def agenerate(
        self,
        messages: list[ChatMessage | dict[str, Any]],
        stop_sequences: list[str] | None = None,
        response_format: dict[str, Any] | None = None,
        tools_to_call_from: list[Any] | None = None,
        **kwargs: Any,
    ) -> ChatMessage:
        view = _request_view(messages, stop_sequences, response_format, tools_to_call_from)
        key = request_key(view)
        if self.mode != "record":
            with self._lock:
                queue = self._replies.get(key)
                recorded = queue.popleft() if queue else None
            if recorded is not None:
                return ChatMessage.from_dict(recorded)
            if self.mode == "replay":
                last = view["messages"][-1]["content"] if view["messages"] else ""
                raise CassetteMissError(
                    f"Cassette {self.path} has no reply for this request (last message: {str(last)[:200]!r}). "
                    "Re-record it with mode='record' (or 'auto') and the live model."
                )
        assert self.model is not None
        reply = await self.model.agenerate(
            messages, stop_sequences, response_format, tools_to_call_from, **kwargs
        )
        self._append(key, view, reply)
        return reply
