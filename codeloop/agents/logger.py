"""The console logger: a subscriber to the run's event stream that prints it with rich.

Layer 5 (agents). Verbosity levels are smolagents' (``LogLevel.OFF/ERROR/INFO/DEBUG``). The agent only
subscribes the logger when its level is above OFF, and the handler returns after one dict lookup for
events below its level, so a quiet agent pays almost nothing per step. rich is imported on first print.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from enum import IntEnum
from typing import TYPE_CHECKING, Any

from ..events import (
    ActionParsed,
    CodeOutputEvent,
    ContextCompacted,
    Event,
    FinalAnswerEvent,
    ModelDelta,
    ModelOutput,
    PlanEvent,
    RunFailed,
    RunFinished,
    RunStarted,
    StepFinished,
    ToolCallFinished,
    ToolCallStarted,
)
from ..messages import TokenUsage

if TYPE_CHECKING:
    from ..messages import ChatMessage

__all__ = ["LogLevel", "AgentLogger", "Monitor", "YELLOW_HEX", "caller_captures"]

YELLOW_HEX = "#d4b702"


class LogLevel(IntEnum):
    OFF = -1  # nothing
    ERROR = 0  # errors only
    INFO = 1  # normal output
    DEBUG = 2  # everything, model outputs included


# The least verbosity at which each event is printed (errors inside events are promoted to ERROR).
_EVENT_LEVEL: dict[type[Event], LogLevel] = {
    RunStarted: LogLevel.INFO,
    ModelDelta: LogLevel.DEBUG,
    ModelOutput: LogLevel.DEBUG,
    ActionParsed: LogLevel.INFO,
    ToolCallStarted: LogLevel.INFO,
    ToolCallFinished: LogLevel.INFO,
    CodeOutputEvent: LogLevel.ERROR,
    PlanEvent: LogLevel.INFO,
    StepFinished: LogLevel.ERROR,
    FinalAnswerEvent: LogLevel.INFO,
    RunFinished: LogLevel.INFO,
    RunFailed: LogLevel.ERROR,
    ContextCompacted: LogLevel.INFO,
}


@contextmanager
def caller_captures(agent: Any) -> Iterator[None]:
    """``AgentLogger.caller_capture`` for an agent's logger and its team members' (same run, same thread)."""
    with ExitStack() as stack:
        seen: set[int] = set()
        todo = [agent]
        while todo:
            member = todo.pop()
            if id(member) in seen:
                continue
            seen.add(id(member))
            enter = getattr(getattr(member, "logger", None), "caller_capture", None)
            if enter is not None:  # a user's own logger may not have it
                stack.enter_context(enter())
            members = getattr(member, "managed_agents", None) or {}
            todo.extend(members.values() if isinstance(members, dict) else members)
        yield


def _short(value: Any, limit: int = 2000) -> str:
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= limit else text[: limit // 2] + "\n[...]\n" + text[-limit // 2 :]


class AgentLogger:
    """Prints a run as it happens. ``logger(event)`` is the event handler; the ``log_*`` methods print directly."""

    def __init__(self, level: LogLevel | int = LogLevel.INFO, console: Any = None):
        # smolagents accepts any int (a level above DEBUG prints everything too)
        self.level: LogLevel | int = LogLevel(level) if level in LogLevel._value2member_map_ else int(level)
        self._console = console
        self._last_step: dict[str, int | None] = {}
        self._error_shown: set[tuple[str, int | None]] = set()  # code errors already printed
        self._caller: tuple[int, list[Any], int] | None = None  # see caller_capture

    @property
    def console(self) -> Any:
        if self._console is None:
            from rich.console import Console

            self._console = Console(highlight=False)
        return self._console

    @contextmanager
    def caller_capture(self) -> Iterator[None]:
        """While a sync ``run()`` waits, let the run's prints join the caller's ``console.capture()``.

        rich buffers a capture per thread, and the run prints from the event loop's thread, so without
        this ``with agent.logger.console.capture()`` around ``agent.run(...)`` would capture nothing.
        """
        local = getattr(self._console, "_thread_locals", None)
        if local is None or not getattr(local, "buffer_index", 0):  # no capture open in the caller
            yield
            return
        self._caller = (threading.get_ident(), local.buffer, local.buffer_index)
        try:
            yield
        finally:
            self._caller = None

    def _print(self, *args: Any, **kwargs: Any) -> None:
        console = self.console
        caller = self._caller
        if caller is None or caller[0] == threading.get_ident():
            console.print(*args, **kwargs)
            return
        local = console._thread_locals
        saved = (local.buffer, local.buffer_index)
        local.buffer, local.buffer_index = caller[1], caller[2]  # the caller's capture buffer, for this print
        try:
            console.print(*args, **kwargs)
        finally:
            local.buffer, local.buffer_index = saved

    # ---- direct printing (smolagents' AgentLogger methods) ----
    def log(self, *args: Any, level: int | str = LogLevel.INFO, **kwargs: Any) -> None:
        if isinstance(level, str):
            level = LogLevel[level.upper()]
        if level <= self.level:
            self._print(*args, **kwargs)

    def log_error(self, error_message: str) -> None:
        from rich.text import Text

        self.log(Text(error_message, style="bold red"), level=LogLevel.ERROR)

    def log_markdown(
        self, content: str, title: str | None = None, level: int = LogLevel.INFO, style: str = YELLOW_HEX
    ) -> None:
        if level > self.level:
            return
        from rich.rule import Rule
        from rich.syntax import Syntax

        body = Syntax(content, lexer="markdown", theme="github-dark", word_wrap=True)
        if title:
            self.log(Rule(f"[bold italic]{title}", align="left", style=style), body, level=level)
        else:
            self.log(body, level=level)

    def log_code(self, title: str, content: str, level: int = LogLevel.INFO) -> None:
        if level > self.level:
            return
        from rich.panel import Panel
        from rich.syntax import Syntax

        code = Syntax(content, lexer="python", theme="monokai", word_wrap=True)
        self.log(Panel(code, title=f"[bold]{title}", title_align="left", box=_box()), level=level)

    def log_rule(self, title: str, level: int = LogLevel.INFO) -> None:
        if level > self.level:
            return
        from rich.rule import Rule

        self.log(Rule(f"[bold]{title}", characters="━", style=YELLOW_HEX), level=level)

    def log_task(
        self, content: Any, subtitle: Any, title: Any = None, level: int = LogLevel.INFO
    ) -> None:
        if level > self.level:
            return
        from rich.panel import Panel
        from rich.text import Text

        heading = "New run" + (f" - {_plain(title)}" if title else "")
        self.log(
            Panel(
                f"\n[bold]{_escape(_plain(content))}\n",
                title=Text(heading),  # Text, not markup: titles may hold stray brackets
                subtitle=Text(_plain(subtitle)),
                border_style=YELLOW_HEX,
                subtitle_align="left",
            ),
            level=level,
        )

    def log_messages(
        self, messages: list[ChatMessage] | list[dict[str, Any]], level: int = LogLevel.DEBUG
    ) -> None:
        if level > self.level:
            return
        data = [m.to_dict() if hasattr(m, "to_dict") else m for m in messages]
        from rich.syntax import Syntax

        self.log(Syntax(json.dumps(data, indent=2, default=str), "json", word_wrap=True), level=level)

    def visualize_agent_tree(self, agent: Any) -> None:
        from rich.tree import Tree

        self._print(_agent_tree(agent, Tree))

    # ---- event subscriber ----
    def __call__(self, event: Event) -> None:
        needed = _EVENT_LEVEL.get(type(event), LogLevel.DEBUG)
        if needed > self.level:
            return
        handler = getattr(self, "_on_" + event.type, None)
        if handler is not None:
            handler(event)

    def _step_rule(self, event: Event) -> None:
        if self.level < LogLevel.INFO:
            return
        if self._last_step.get(event.run_id) != event.step_number:
            self._last_step[event.run_id] = event.step_number
            self.log_rule(f"Step {event.step_number}")

    def _on_run_started(self, event: RunStarted) -> None:
        self._last_step[event.run_id] = None
        self.log_task(event.task.strip(), subtitle="", title=event.agent_name)

    def _on_model_delta(self, event: ModelDelta) -> None:
        self._step_rule(event)
        if event.delta.content:
            self._print(event.delta.content, end="", markup=False, highlight=False)

    def _on_model_output(self, event: ModelOutput) -> None:
        self._step_rule(event)
        if event.message is not None:
            self.log_markdown(
                content=event.message.text, title="Output message of the LLM:", level=LogLevel.DEBUG
            )

    def _on_action_parsed(self, event: ActionParsed) -> None:
        self._step_rule(event)
        if event.code is not None:
            self.log_code("Executing parsed code:", event.code)
        for call in event.tool_calls or ():
            self._panel(f"Calling tool: '{call.function.name}' with arguments: {call.function.arguments}")

    def _on_tool_call_started(self, event: ToolCallStarted) -> None:
        if self.level >= LogLevel.DEBUG:
            self.log(
                f"[dim]→ {event.tool_name}({_escape(_short(event.arguments, 300))})", level=LogLevel.DEBUG
            )

    def _on_tool_call_finished(self, event: ToolCallFinished) -> None:
        from_code = event.call_id.startswith("code_call_")  # code's own logs already show these at INFO
        if event.error:
            if not from_code:
                self.log_error(f"Tool '{event.tool_name}' failed: {event.error}")
        elif self.level >= (LogLevel.DEBUG if from_code else LogLevel.INFO):
            self.log(f"Observations: {_escape(_short(event.result))}", level=LogLevel.INFO)

    def _on_code_output(self, event: CodeOutputEvent) -> None:
        from rich.text import Text

        parts: list[Any] = []
        if event.logs and self.level >= LogLevel.INFO:
            parts += [Text("Execution logs:", style="bold"), Text(_short(event.logs, 20000))]
        if event.error:
            parts.append(Text(event.error, style="bold red"))
            self._error_shown.add((event.run_id, event.step_number))
        elif not event.is_final_answer and self.level >= LogLevel.INFO:
            parts.append(Text(f"Out: {_short(event.output)}"))
        if parts:
            from rich.console import Group

            self._print(Group(*parts))

    def _on_plan(self, event: PlanEvent) -> None:
        from rich.rule import Rule
        from rich.text import Text

        headline = "Updated plan" if event.is_update else "Initial plan"
        self.log(Rule(f"[bold]{headline}", style="orange"), Text(event.plan))

    def _on_step_finished(self, event: StepFinished) -> None:
        key = (event.run_id, event.step_number)
        if event.error and key not in self._error_shown:
            self.log_error(event.error)
        self._error_shown.discard(key)
        if self.level >= LogLevel.INFO and event.step_type == "action":
            usage = event.usage
            tokens = (
                f" | Input tokens: {usage.input_tokens:,} | Output tokens: {usage.output_tokens:,}"
                if usage
                else ""
            )
            if usage is not None and usage.cost is not None:
                tokens += f" | Cost: ${usage.cost:.4f}"
            duration = f"{event.duration:.2f}" if event.duration is not None else "?"
            self.log(f"[dim][Step {event.step_number}: Duration {duration} seconds{tokens}][/dim]")

    def _on_context_compacted(self, event: ContextCompacted) -> None:
        folded = f"; steps {event.folded_steps[0]}-{event.folded_steps[-1]} summarized" if event.folded_steps else ""
        self.log(
            f"[dim]Context compacted to fit {event.max_context_tokens:,} tokens: ~{event.tokens_before:,} -> "
            f"~{event.tokens_after:,}{folded}[/dim]"
        )

    def _on_final_answer(self, event: FinalAnswerEvent) -> None:
        from rich.text import Text

        self.log(Text(f"Final answer: {_short(event.output)}", style=f"bold {YELLOW_HEX}"))

    def _on_run_finished(self, event: RunFinished) -> None:
        self._last_step.pop(event.run_id, None)
        if event.state != "success":
            self.log(f"[bold]Run ended: {event.state}[/bold]")

    def _on_run_failed(self, event: RunFailed) -> None:
        self._last_step.pop(event.run_id, None)
        self.log_error(f"Run failed: {event.error_type}: {event.error}")

    def _panel(self, text: str) -> None:
        from rich.panel import Panel
        from rich.text import Text

        self.log(Panel(Text(text)), level=LogLevel.INFO)


def _plain(value: Any) -> str:
    """Any payload as printable text: bytes decoded, control characters shown as escapes (\\x00)."""
    if isinstance(value, bytes | bytearray):
        value = bytes(value).decode("utf-8", "backslashreplace")
    text = value if isinstance(value, str) else str(value)
    return "".join(c if c >= " " or c in "\n\t" else f"\\x{ord(c):02x}" for c in text)


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)


def _box() -> Any:
    from rich import box

    return box.HORIZONTALS


def _agent_tree(agent: Any, tree_cls: Any) -> Any:
    """A rich Tree of an agent: its model, tools (with inputs) and managed agents, recursively."""
    from rich.table import Table

    model = getattr(agent, "model", None)
    model_name = getattr(model, "model_id", None) or type(model).__name__
    label = f"[bold {YELLOW_HEX}]{type(agent).__name__}"
    if getattr(agent, "name", None):
        label += f" | {agent.name}"
    label += f" | {model_name}"
    tree = tree_cls(label)
    if getattr(agent, "description", None):
        tree.add(f"[italic]Description:[/italic] {agent.description}")
    table = Table(show_header=True, header_style="bold", title="Tools")
    table.add_column("Name", style="cyan")
    table.add_column("Description")
    table.add_column("Arguments")
    for name, tool in getattr(agent, "tools", {}).items():
        inputs = getattr(tool, "inputs", {}) or {}
        args = "\n".join(
            f"{arg} ({spec.get('type')}{', optional' if spec.get('nullable') else ''}): {spec.get('description', '')}"
            for arg, spec in inputs.items()
        )
        table.add_row(name, str(getattr(tool, "description", "")), args)
    tree.add(table)
    managed = getattr(agent, "managed_agents", {}) or {}
    if managed:
        branch = tree.add("[bold italic]Managed agents")
        for sub in managed.values():
            branch.add(_agent_tree(sub, tree_cls))
    return tree


class Monitor:
    """smolagents' per-agent usage monitor, kept for compatibility: step durations and token totals.

    codeloop keeps usage on each run (``agent.monitor`` is a view of the current run unless you set your
    own); an instance of this class counts what ``update_metrics(step)`` is given.
    """

    def __init__(self, tracked_model: Any = None, logger: AgentLogger | None = None):
        self.tracked_model = tracked_model
        self.logger = logger
        self.reset()

    def reset(self) -> None:
        self.step_durations: list[float] = []
        self.total_input_token_count = 0
        self.total_output_token_count = 0

    def get_total_token_counts(self) -> TokenUsage:
        return TokenUsage(input_tokens=self.total_input_token_count, output_tokens=self.total_output_token_count)

    def update_metrics(self, step_log: Any) -> None:
        duration = step_log.timing.duration or 0.0
        self.step_durations.append(duration)
        line = f"[Step {len(self.step_durations)}: Duration {duration:.2f} seconds"
        usage = getattr(step_log, "token_usage", None)
        if usage is not None:
            self.total_input_token_count += usage.input_tokens
            self.total_output_token_count += usage.output_tokens
            line += f"| Input tokens: {self.total_input_token_count:,} | Output tokens: {self.total_output_token_count:,}"
        if self.logger is not None:
            self.logger.log(line + "]", level=LogLevel.INFO)
