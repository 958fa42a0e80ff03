"""The typed events of a run: everything a user, a logger, a UI or the run store sees.

Layer 1 (data). The agent loop emits these on one stream; subscribers (console logger, Gradio UI,
OpenTelemetry, the store) consume them and the loop does not know them. Each event round-trips
through JSON via ``to_dict`` / ``event_from_dict`` using its ``type`` tag.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar

from .messages import ChatMessage, ChatMessageStreamDelta, ChatMessageToolCall, TokenUsage

__all__ = [
    "Event",
    "RunStarted",
    "ModelDelta",
    "ModelOutput",
    "ActionParsed",
    "ToolCallStarted",
    "ToolCallFinished",
    "CodeOutputEvent",
    "PlanEvent",
    "ApprovalRequested",
    "StepFinished",
    "ContextCompacted",
    "FinalAnswerEvent",
    "RunFinished",
    "RunFailed",
    "event_from_dict",
    "EVENT_TYPES",
    "subscribe",
    "unsubscribe",
    "subscribers",
]

EVENT_TYPES: dict[str, type[Event]] = {}

# Fields holding nested data types, and how to rebuild them from JSON.
_NESTED = {
    "usage": TokenUsage,
    "delta": ChatMessageStreamDelta,
    "message": ChatMessage,
}


def _jsonable(value: Any) -> Any:
    if hasattr(value, "to_dict"):
        return value.to_dict()
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return repr(value)


@dataclass(kw_only=True)
class Event:
    """Base of all events: which run, which step, and when."""

    type: ClassVar[str] = "event"
    run_id: str = ""
    step_number: int | None = None
    timestamp: float = field(default_factory=time.time)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        EVENT_TYPES[cls.type] = cls

    def to_dict(self) -> dict[str, Any]:
        data = {"type": self.type}
        for f in fields(self):
            data[f.name] = _jsonable(getattr(self, f.name))
        return data


@dataclass(kw_only=True)
class RunStarted(Event):
    type: ClassVar[str] = "run_started"
    task: str = ""
    agent_name: str | None = None


@dataclass(kw_only=True)
class ModelDelta(Event):
    """A streamed piece of the model's reply (only when streaming outputs)."""

    type: ClassVar[str] = "model_delta"
    delta: ChatMessageStreamDelta = field(default_factory=ChatMessageStreamDelta)


@dataclass(kw_only=True)
class ModelOutput(Event):
    """The model's whole reply for a step, with usage and how long the call took."""

    type: ClassVar[str] = "model_output"
    message: ChatMessage | None = None
    usage: TokenUsage | None = None
    duration: float | None = None


@dataclass(kw_only=True)
class ActionParsed(Event):
    """The action taken from the reply: code for a CodeAgent, tool calls for a ToolCallingAgent."""

    type: ClassVar[str] = "action_parsed"
    code: str | None = None
    tool_calls: list[ChatMessageToolCall] | None = None


@dataclass(kw_only=True)
class ToolCallStarted(Event):
    type: ClassVar[str] = "tool_call_started"
    call_id: str = ""
    tool_name: str = ""
    arguments: Any = None


@dataclass(kw_only=True)
class ToolCallFinished(Event):
    type: ClassVar[str] = "tool_call_finished"
    call_id: str = ""
    tool_name: str = ""
    result: Any = None
    error: str | None = None
    duration: float | None = None


@dataclass(kw_only=True)
class CodeOutputEvent(Event):
    """What an executed code action printed and returned."""

    type: ClassVar[str] = "code_output"
    logs: str = ""
    output: Any = None
    is_final_answer: bool = False
    error: str | None = None


@dataclass(kw_only=True)
class PlanEvent(Event):
    type: ClassVar[str] = "plan"
    plan: str = ""
    is_update: bool = False
    usage: TokenUsage | None = None


@dataclass(kw_only=True)
class ApprovalRequested(Event):
    """A tool call waits for a human; the run pauses until it is answered."""

    type: ClassVar[str] = "approval_requested"
    call_id: str = ""
    tool_name: str = ""
    arguments: Any = None
    reason: str | None = None


@dataclass(kw_only=True)
class StepFinished(Event):
    type: ClassVar[str] = "step_finished"
    step_type: str = "action"
    duration: float | None = None
    usage: TokenUsage | None = None
    observation: str | None = None
    error: str | None = None


@dataclass(kw_only=True)
class ContextCompacted(Event):
    """Memory was compacted to keep the prompt under ``max_context_tokens`` (estimated tokens):
    older observations truncated, images dropped, and/or steps folded into a model-written summary
    (``usage`` is the summary call's)."""

    type: ClassVar[str] = "context_compacted"
    tokens_before: int = 0
    tokens_after: int = 0
    max_context_tokens: int = 0
    observations_truncated: int = 0
    images_dropped: int = 0
    folded_steps: list[int] = field(default_factory=list)
    summary: str | None = None
    usage: TokenUsage | None = None


@dataclass(kw_only=True)
class FinalAnswerEvent(Event):
    type: ClassVar[str] = "final_answer"
    output: Any = None


@dataclass(kw_only=True)
class RunFinished(Event):
    type: ClassVar[str] = "run_finished"
    output: Any = None
    state: str = "success"
    steps: int = 0
    usage: TokenUsage | None = None
    duration: float | None = None


@dataclass(kw_only=True)
class RunFailed(Event):
    type: ClassVar[str] = "run_failed"
    error_type: str = ""
    error: str = ""
    steps: int = 0
    usage: TokenUsage | None = None
    duration: float | None = None


def event_from_dict(data: dict[str, Any]) -> Event:
    """Rebuild an event from ``Event.to_dict()`` output."""
    try:
        cls = EVENT_TYPES[data["type"]]
    except KeyError:
        raise ValueError(f"Unknown event type {data.get('type')!r}; known: {sorted(EVENT_TYPES)}") from None
    kwargs: dict[str, Any] = {}
    for f in fields(cls):
        if f.name not in data:
            continue
        value = data[f.name]
        if value is not None and f.name in _NESTED:
            value = _NESTED[f.name].from_dict(value)
        elif value is not None and f.name == "tool_calls":
            value = [ChatMessageToolCall.from_dict(tc) for tc in value]
        kwargs[f.name] = value
    return cls(**kwargs)


# Process-wide subscribers: they see every event of every run of every agent (OpenTelemetry uses this).
_SUBSCRIBERS: list[Callable[[Event], Any]] = []


def subscribe(handler: Callable[[Event], Any]) -> Callable[[Event], Any]:
    """Add a handler that receives every event of every run in this process (until ``unsubscribe``).

    It is called like an agent's ``event_handlers``: on the run's loop, in order, before the event reaches
    the consumer; a handler that raises is reported with a warning and does not stop the run."""
    if handler not in _SUBSCRIBERS:
        _SUBSCRIBERS.append(handler)
    return handler


def unsubscribe(handler: Callable[[Event], Any]) -> None:
    """Remove a handler added with ``subscribe`` (no error when it is not there)."""
    try:
        _SUBSCRIBERS.remove(handler)
    except ValueError:
        pass


def subscribers() -> list[Callable[[Event], Any]]:
    """The live list of process-wide handlers (read by the agent loop at the start of each run)."""
    return _SUBSCRIBERS
