"""Turns a run's typed events into Gradio chat messages: thoughts, code, logs, tool calls, images, answer.

Layer 7 (faces). :class:`ChatRenderer` reads events one at a time and returns what to show: finished
``gr.ChatMessage`` objects, or a ``str`` (the model's reply so far, while it streams), the items
smolagents' ``stream_to_gradio`` yields. Images (PIL images, AgentImage, image paths) are saved as PNG in
``image_dir`` and shown inline. Each step ends with a line of step number, tokens, cost and time.
"""

from __future__ import annotations

import inspect
import os
import re
import tempfile
import uuid
from pathlib import Path
from typing import Any

from ..events import (
    ActionParsed,
    ApprovalRequested,
    CodeOutputEvent,
    ContextCompacted,
    Event,
    FinalAnswerEvent,
    ModelDelta,
    ModelOutput,
    PlanEvent,
    RunFailed,
    RunFinished,
    StepFinished,
    ToolCallFinished,
    ToolCallStarted,
)

__all__ = ["ChatRenderer", "step_footnote"]

_CODE_BLOCK = re.compile(r"(?:<code>|```(?:py|python)?\n).*?(?:</code>|```)", re.DOTALL)
_MAX_SHOWN = 4000


def _gr() -> Any:
    try:
        import gradio as gr
    except ImportError as e:
        raise ImportError("The Gradio UI needs gradio: pip install 'codeloop[ui]'.") from e
    return gr


def launch_defaults(kwargs: dict[str, Any]) -> dict[str, Any]:
    """What every codeloop Gradio app starts with unless asked otherwise: 127.0.0.1, no Node server, no
    analytics, and (Gradio 6) no run history kept in the browser with its offer to upload it to a bucket."""
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    kwargs.setdefault("server_name", "127.0.0.1")
    kwargs.setdefault("ssr_mode", False)
    if "run_history" in inspect.signature(_gr().Blocks.launch).parameters:
        kwargs.setdefault("run_history", False)
    return kwargs


def _cut(text: str) -> str:
    return (
        text
        if len(text) <= _MAX_SHOWN
        else text[:_MAX_SHOWN] + f"\n… ({len(text) - _MAX_SHOWN} more characters)"
    )


def _thought(text: str) -> str:
    """The model's reply without its code block (the code is shown on its own) and stop tags."""
    text = _CODE_BLOCK.sub("", text or "")
    text = re.sub(r"(?:<code>|```).*", "", text, flags=re.DOTALL)  # a block still being written
    text = re.sub(r"</?code>|<end_code>|<end_plan>", "", text)
    return text.strip()


def step_footnote(step: int | None, usage: Any, duration: float | None, label: str = "Step") -> str:
    parts = [f"{label} {step}"] if step is not None else [label]
    if usage is not None:
        parts.append(f"Input tokens: {usage.input_tokens:,}")
        parts.append(f"Output tokens: {usage.output_tokens:,}")
        if usage.cost is not None:
            parts.append(f"Cost: ${usage.cost:.4f}")
    if duration is not None:
        parts.append(f"Duration: {duration:.2f}s")
    return " | ".join(parts)


def _is_image(value: Any) -> bool:
    if type(value).__name__ == "AgentImage":
        return True
    try:
        from PIL.Image import Image
    except ImportError:
        return False
    return isinstance(value, Image)


class ChatRenderer:
    """Renders the events of one run. ``render(event)`` returns a list of items to show."""

    def __init__(self, image_dir: str | Path | None = None):
        self.gr = _gr()
        self.image_dir = (
            Path(image_dir) if image_dir is not None else Path(tempfile.mkdtemp(prefix="codeloop-ui-"))
        )
        self._streamed = ""
        self._tool_args: dict[str, Any] = {}
        self._code_shown = False

    def _msg(self, content: Any, title: str | None = None, **metadata: Any) -> Any:
        meta = {"status": "done", **metadata}
        if title is not None:
            meta["title"] = title
        return self.gr.ChatMessage(role="assistant", content=content, metadata=meta)

    def _image(self, value: Any) -> Any:
        if isinstance(value, str | Path) and Path(value).is_file():
            path = Path(value)
        else:
            raw = getattr(value, "to_raw", None)
            image = raw() if callable(raw) else value
            self.image_dir.mkdir(parents=True, exist_ok=True)
            path = self.image_dir / f"{uuid.uuid4().hex}.png"
            image.save(path, format="PNG")
        return self.gr.ChatMessage(
            role="assistant",
            content={"path": str(path), "mime_type": "image/png"},
            metadata={"status": "done"},
        )

    def render(self, event: Event) -> list[Any]:
        kind = type(event)
        if kind is ModelDelta:
            self._streamed += event.delta.content or ""
            return [_thought(self._streamed) or "…"] if self._streamed else []
        self._streamed = "" if kind is ModelOutput else self._streamed
        if kind is ModelOutput:
            text = event.message.text if event.message is not None else ""
            thought = _thought(text if isinstance(text, str) else str(text))
            return [self._msg(_cut(thought))] if thought else []
        if kind is ActionParsed:
            if event.code is not None:
                return [self._msg(f"```python\n{_cut(event.code)}\n```", "Used tool python_interpreter")]
            return []
        if kind is ToolCallStarted:
            self._tool_args[event.call_id] = event.arguments
            return []
        if kind is ToolCallFinished:
            return self._tool_finished(event)
        if kind is CodeOutputEvent:
            return self._code_output(event)
        if kind is PlanEvent:
            return [self._msg(_cut(event.plan), "Updated plan" if event.is_update else "Plan")]
        if kind is StepFinished:
            out = []
            if event.error:
                out.append(self._msg(_cut(event.error), "Error"))
            label = "Planning step" if event.step_type == "planning" else "Step"
            note = step_footnote(event.step_number, event.usage, event.duration, label)
            out.append(self._msg(f'<span style="color: #8a8a95; font-size: 12px;">{note}</span>'))
            return out
        if kind is ContextCompacted:
            note = f"Context compacted: {event.tokens_before:,} → {event.tokens_after:,} tokens"
            if event.folded_steps:
                note += f", {len(event.folded_steps)} steps summarized"
            return [self._msg(f'<span style="color: #8a8a95; font-size: 12px;">{note}</span>')]
        if kind is FinalAnswerEvent:
            return self._final(event.output)
        if kind is RunFinished:
            summary = step_footnote(
                None, event.usage, event.duration, f"Run {event.state}, {event.steps} steps"
            )
            out = []
            if event.state == "cancelled":
                out.append(self._msg("Run stopped."))
            out.append(self._msg(f'<span style="color: #8a8a95; font-size: 12px;">{summary}</span>'))
            return out
        if kind is RunFailed:
            return [self._msg(_cut(f"{event.error_type}: {event.error}"), "Run failed")]
        if kind is ApprovalRequested:
            return [self.approval_request(event.tool_name, event.arguments, event.reason)]
        return []

    def approval_request(self, tool_name: str, arguments: Any, reason: str | None = None) -> Any:
        body = f"Arguments: `{_cut(repr(arguments))}`"
        if reason:
            body += f"\n\n{_cut(reason)}"
        body += "\n\nApprove or Deny below."
        return self._msg(body, f"Approval needed: {tool_name}")

    def _tool_finished(self, event: ToolCallFinished) -> list[Any]:
        if event.tool_name == "final_answer":
            return []
        arguments = self._tool_args.pop(event.call_id, None)
        title = f"Called tool {event.tool_name}"
        body = f"Arguments: `{_cut(repr(arguments))}`\n\n"
        if event.error:
            body += f"Error: {_cut(event.error)}"
        else:
            body += f"Result: {_cut(str(event.result))}"
        duration = event.duration
        out = [self._msg(body, title, **({"duration": round(duration, 3)} if duration is not None else {}))]
        if event.error is None and _is_image(event.result):
            out.append(self._image(event.result))
        return out

    def _code_output(self, event: CodeOutputEvent) -> list[Any]:
        out = []
        if event.logs.strip():
            out.append(self._msg(f"```text\n{_cut(event.logs.strip())}\n```", "Execution logs"))
        if event.error:
            out.append(self._msg(_cut(event.error), "Error"))
        elif not event.is_final_answer and _is_image(event.output):
            out.append(self._image(event.output))
        return out

    def _final(self, output: Any) -> list[Any]:
        if _is_image(output):
            return [self._msg("**Final answer:**"), self._image(output)]
        text = output.to_string() if hasattr(output, "to_string") else output
        return [self._msg(f"**Final answer:** {_cut(str(text))}")]
