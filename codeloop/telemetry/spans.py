"""Turns a run's typed events into OpenTelemetry spans: run > step > model call / code execution / tool call.

Layer 7 (faces). :class:`SpanRecorder` is an event subscriber (``codeloop.events.subscribe``); the agent
loop does not know it. Spans are built from the events' own timestamps, so a tool call made from code in
the isolated worker (its events reach the loop after the call returned) still gets its true start and end
and becomes a child of the step that ran the code. Model calls follow the OpenTelemetry GenAI semantic
conventions (``gen_ai.operation.name``, ``gen_ai.request.model``, ``gen_ai.usage.*``,
``gen_ai.response.finish_reasons``); tool calls use ``execute_tool`` and agent runs ``invoke_agent``.
"""

from __future__ import annotations

import json
import time
import weakref
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

from ..events import (
    ActionParsed,
    CodeOutputEvent,
    ContextCompacted,
    Event,
    FinalAnswerEvent,
    ModelOutput,
    PlanEvent,
    RunFailed,
    RunFinished,
    RunStarted,
    StepFinished,
    ToolCallFinished,
    ToolCallStarted,
)

__all__ = ["SpanRecorder"]

_NS = 1_000_000_000
_MAX_TEXT = 4096  # longest code, argument or result text kept on a span


def _ns(seconds: float) -> int:
    return int(seconds * _NS)


def _text(value: Any, as_json: bool = False) -> str:
    if isinstance(value, str) and not as_json:
        text = value
    else:
        try:
            text = json.dumps(value, default=repr, ensure_ascii=False)
        except (TypeError, ValueError):
            text = repr(value)
    return text if len(text) <= _MAX_TEXT else text[:_MAX_TEXT] + "…"


def _finish_reasons(raw: Any) -> list[str]:
    """Finish reasons from a provider response object or dict (OpenAI shape); [] when unknown."""
    choices = raw.get("choices") if isinstance(raw, dict) else getattr(raw, "choices", None)
    reasons = []
    for choice in choices or ():
        reason = (
            choice.get("finish_reason")
            if isinstance(choice, dict)
            else getattr(choice, "finish_reason", None)
        )
        if reason:
            reasons.append(str(reason))
    return reasons


class _RunSpans:
    """The open spans of one run."""

    __slots__ = (
        "span",
        "ctx",
        "model_id",
        "provider",
        "step",
        "step_ctx",
        "step_number",
        "code",
        "tools",
        "plan",
    )

    def __init__(self, span: Span, model_id: str | None, provider: str | None):
        self.span = span
        self.ctx = trace.set_span_in_context(span)
        self.model_id = model_id
        self.provider = provider
        self.step: Span | None = None
        self.step_ctx: Any = None
        self.step_number: int | None = None
        self.code: Span | None = None
        self.tools: dict[str, Span] = {}
        self.plan: str | None = None


class SpanRecorder:
    """An event subscriber that records spans with ``tracer``. ``capture_content`` puts code, tool
    arguments, results and final answers on the spans (cut at 4 KB); turn it off for sensitive data."""

    def __init__(self, tracer: trace.Tracer, *, capture_content: bool = True):
        self.tracer = tracer
        self.capture_content = capture_content
        self._runs: dict[str, _RunSpans] = {}
        self._dispatch = {
            RunStarted: self._run_started,
            ModelOutput: self._model_output,
            ActionParsed: self._action_parsed,
            CodeOutputEvent: self._code_output,
            ToolCallStarted: self._tool_started,
            ToolCallFinished: self._tool_finished,
            PlanEvent: self._plan,
            StepFinished: self._step_finished,
            FinalAnswerEvent: self._final_answer,
            ContextCompacted: self._compacted,
            RunFinished: self._run_finished,
            RunFailed: self._run_failed,
        }

    def __call__(self, event: Event) -> None:
        # Stream deltas (the most frequent events) cost one failed lookup: the model call's span is made
        # from ModelOutput, which carries the call's duration.
        handler = self._dispatch.get(type(event))
        if handler is not None:
            handler(event)

    # ---- runs ----
    def _run_started(self, event: RunStarted) -> None:
        from ..agents.loop import current_run

        run = current_run()
        agent = getattr(run, "agent", None) if run is not None and run.id == event.run_id else None
        model = getattr(agent, "model", None)
        model_id = getattr(model, "model_id", None)
        provider = getattr(model, "provider", None) or (type(model).__name__ if model is not None else None)
        parent = self._parent_context(event, agent)
        name = event.agent_name or (type(agent).__name__ if agent is not None else "agent")
        attributes: dict[str, Any] = {
            "gen_ai.operation.name": "invoke_agent",
            "gen_ai.agent.name": name,
            "codeloop.run.id": event.run_id,
        }
        if model_id:
            attributes["gen_ai.request.model"] = str(model_id)
        if self.capture_content:
            attributes["codeloop.task"] = _text(event.task)
        span = self.tracer.start_span(
            f"invoke_agent {name}",
            context=parent,
            kind=SpanKind.INTERNAL,
            attributes=attributes,
            start_time=_ns(event.timestamp),
        )
        self._runs[event.run_id] = _RunSpans(span, model_id, provider)
        if run is not None and agent is not None:
            # A stream the consumer drops (break, close) ends with no event: end its spans when the run goes.
            weakref.finalize(run, self._abandoned, event.run_id)

    def _abandoned(self, run_id: str) -> None:
        state = self._runs.pop(run_id, None)
        if state is None:
            return
        end = time.time_ns()
        self._close_open(state, end, "abandoned")
        state.span.set_attribute("codeloop.run.state", "closed")
        state.span.set_status(Status(StatusCode.ERROR, "the run's stream was closed before it finished"))
        state.span.end(end_time=end)

    def _parent_context(self, event: RunStarted, agent: Any) -> Any:
        """A managed agent's run nests under its manager's tool call (or step); else the caller's span."""
        from ..agents.loop import _CURRENT_RUNS

        for outer in reversed(_CURRENT_RUNS.get()):
            if outer.id == event.run_id:
                continue
            state = self._runs.get(outer.id)
            if state is None:
                continue
            name = getattr(agent, "name", None)
            # The manager's ToolCallStarted may still wait in its run's queue (the loop yields it after
            # the call): open that span now; its delivery later finds it open.
            for pending in list(outer._pending):
                if type(pending) is ToolCallStarted and pending.call_id not in state.tools:
                    self._tool_started(pending)
            for span in reversed(list(state.tools.values())):
                if name and getattr(span, "name", "") == f"execute_tool {name}":
                    return trace.set_span_in_context(span)
            return state.step_ctx if state.step is not None else state.ctx
        return otel_context.get_current()

    def _close_open(self, state: _RunSpans, end: int, error: str | None) -> None:
        spans = list(state.tools.values())
        if state.code is not None:
            spans.append(state.code)
        if state.step is not None:
            spans.append(state.step)
        for span in spans:
            if error:
                span.set_status(Status(StatusCode.ERROR, error))
            span.end(end_time=end)
        state.tools.clear()
        state.code = state.step = state.step_ctx = None

    def _run_finished(self, event: RunFinished) -> None:
        state = self._runs.pop(event.run_id, None)
        if state is None:
            return
        end = _ns(event.timestamp)
        self._close_open(state, end, None if event.state != "cancelled" else "cancelled")
        span = state.span
        span.set_attribute("codeloop.run.state", event.state)
        span.set_attribute("codeloop.run.steps", event.steps)
        self._usage(span, event.usage)
        if event.state == "cancelled":
            span.set_status(Status(StatusCode.ERROR, "cancelled"))
        span.end(end_time=end)

    def _run_failed(self, event: RunFailed) -> None:
        state = self._runs.pop(event.run_id, None)
        if state is None:
            return
        end = _ns(event.timestamp)
        message = f"{event.error_type}: {event.error}"
        self._close_open(state, end, message)
        span = state.span
        span.set_attribute("codeloop.run.state", "failed")
        span.set_attribute("codeloop.run.steps", event.steps)
        span.set_attribute("error.type", event.error_type)
        self._usage(span, event.usage)
        span.add_event(
            "exception",
            {"exception.type": event.error_type, "exception.message": event.error},
            timestamp=end,
        )
        span.set_status(Status(StatusCode.ERROR, message))
        span.end(end_time=end)

    def _compacted(self, event: ContextCompacted) -> None:
        state = self._runs.get(event.run_id)
        if state is None:
            return
        attributes: dict[str, Any] = {
            "codeloop.context.tokens_before": event.tokens_before,
            "codeloop.context.tokens_after": event.tokens_after,
            "codeloop.context.max_tokens": event.max_context_tokens,
            "codeloop.context.folded_steps": len(event.folded_steps),
        }
        if event.usage is not None:
            attributes["gen_ai.usage.input_tokens"] = event.usage.input_tokens
            attributes["gen_ai.usage.output_tokens"] = event.usage.output_tokens
        state.span.add_event("context_compacted", attributes, timestamp=_ns(event.timestamp))

    def _final_answer(self, event: FinalAnswerEvent) -> None:
        state = self._runs.get(event.run_id)
        if state is not None and self.capture_content:
            state.span.set_attribute("codeloop.final_answer", _text(event.output))

    # ---- steps ----
    def _step(self, state: _RunSpans, event: Event, start: float) -> Any:
        """The context of the run's open step span, opening one for ``event``'s step when needed."""
        if state.step is None:
            number = event.step_number
            state.step = self.tracer.start_span(
                f"step {number}",
                context=state.ctx,
                attributes={"codeloop.step.number": number or 0},
                start_time=_ns(start),
            )
            state.step_ctx = trace.set_span_in_context(state.step)
            state.step_number = number
        return state.step_ctx

    def _plan(self, event: PlanEvent) -> None:
        # The planning step's StepFinished follows at once, with the duration the span starts from.
        state = self._runs.get(event.run_id)
        if state is not None and self.capture_content:
            state.plan = _text(event.plan)

    def _step_finished(self, event: StepFinished) -> None:
        state = self._runs.get(event.run_id)
        if state is None:
            return
        self._step(state, event, event.timestamp - (event.duration or 0.0))
        span = state.step
        assert span is not None
        end = _ns(event.timestamp)
        for tool in state.tools.values():  # a tool call the step abandoned (cancelled, timed out)
            tool.end(end_time=end)
        state.tools.clear()
        if state.code is not None:
            state.code.end(end_time=end)
            state.code = None
        span.update_name(f"step {event.step_number}" + (" planning" if event.step_type == "planning" else ""))
        span.set_attribute("codeloop.step.type", event.step_type)
        if state.plan is not None:
            span.set_attribute("codeloop.plan", state.plan)
            state.plan = None
        self._usage(span, event.usage)
        if event.error:
            span.set_attribute("error.type", event.error.partition(":")[0])
            span.set_status(Status(StatusCode.ERROR, event.error))
        span.end(end_time=end)
        state.step = state.step_ctx = None

    # ---- model calls ----
    def _model_output(self, event: ModelOutput) -> None:
        state = self._runs.get(event.run_id)
        if state is None:
            return
        start = event.timestamp - (event.duration or 0.0)
        ctx = self._step(state, event, start)
        model_id = state.model_id or "unknown"
        attributes: dict[str, Any] = {"gen_ai.operation.name": "chat", "gen_ai.request.model": model_id}
        if state.provider:
            attributes["gen_ai.provider.name"] = state.provider
        message = event.message
        raw = getattr(message, "raw", None)
        response_model = raw.get("model") if isinstance(raw, dict) else getattr(raw, "model", None)
        if isinstance(response_model, str):
            attributes["gen_ai.response.model"] = response_model
        response_id = raw.get("id") if isinstance(raw, dict) else getattr(raw, "id", None)
        if isinstance(response_id, str):
            attributes["gen_ai.response.id"] = response_id
        reasons = _finish_reasons(raw)
        if not reasons and message is not None and message.tool_calls:
            reasons = ["tool_calls"]
        if reasons:
            attributes["gen_ai.response.finish_reasons"] = reasons
        span = self.tracer.start_span(
            f"chat {model_id}",
            context=ctx,
            kind=SpanKind.CLIENT,
            attributes=attributes,
            start_time=_ns(start),
        )
        self._usage(span, event.usage)
        span.end(end_time=_ns(event.timestamp))

    @staticmethod
    def _usage(span: Span, usage: Any) -> None:
        if usage is None:
            return
        span.set_attribute("gen_ai.usage.input_tokens", usage.input_tokens)
        span.set_attribute("gen_ai.usage.output_tokens", usage.output_tokens)
        if usage.cached_input_tokens:
            span.set_attribute("gen_ai.usage.cache_read.input_tokens", usage.cached_input_tokens)
        if usage.cost is not None:
            span.set_attribute("codeloop.usage.cost_usd", float(usage.cost))

    # ---- actions ----
    def _action_parsed(self, event: ActionParsed) -> None:
        state = self._runs.get(event.run_id)
        if state is None or event.code is None:
            return
        ctx = self._step(state, event, event.timestamp)
        attributes = {"codeloop.code": _text(event.code)} if self.capture_content else None
        state.code = self.tracer.start_span(
            "execute_code", context=ctx, attributes=attributes, start_time=_ns(event.timestamp)
        )

    def _code_output(self, event: CodeOutputEvent) -> None:
        state = self._runs.get(event.run_id)
        if state is None or state.code is None:
            return
        span, state.code = state.code, None
        span.set_attribute("codeloop.code.is_final_answer", bool(event.is_final_answer))
        if self.capture_content:
            span.set_attribute("codeloop.code.logs", _text(event.logs))
            if event.output is not None:
                span.set_attribute("codeloop.code.output", _text(event.output))
        if event.error:
            span.set_attribute("error.type", "InterpreterError")
            span.set_status(Status(StatusCode.ERROR, event.error))
        span.end(end_time=_ns(event.timestamp))

    def _tool_started(self, event: ToolCallStarted) -> None:
        state = self._runs.get(event.run_id)
        if state is None or event.call_id in state.tools:
            return
        ctx = self._step(state, event, event.timestamp)
        attributes: dict[str, Any] = {
            "gen_ai.operation.name": "execute_tool",
            "gen_ai.tool.name": event.tool_name,
            "gen_ai.tool.call.id": event.call_id,
        }
        if self.capture_content:
            attributes["gen_ai.tool.call.arguments"] = _text(event.arguments, as_json=True)
        state.tools[event.call_id] = self.tracer.start_span(
            f"execute_tool {event.tool_name}",
            context=ctx,
            attributes=attributes,
            start_time=_ns(event.timestamp),
        )

    def _tool_finished(self, event: ToolCallFinished) -> None:
        state = self._runs.get(event.run_id)
        span = state.tools.pop(event.call_id, None) if state is not None else None
        if span is None:
            return
        if self.capture_content and event.error is None:
            span.set_attribute("gen_ai.tool.call.result", _text(event.result))
        if event.error:
            span.set_attribute("error.type", event.error.partition(":")[0])
            span.set_status(Status(StatusCode.ERROR, event.error))
        span.end(end_time=_ns(event.timestamp))
