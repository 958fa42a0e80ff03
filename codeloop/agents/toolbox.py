"""How the agent loop calls tools: awaiting any tool without blocking the loop, wrapping tools so calls
made from code show up as events, and exposing a managed agent as a tool of its manager.

Layer 5 (agents).
"""

from __future__ import annotations

import asyncio
import inspect
import itertools
import time
from typing import TYPE_CHECKING, Any

from .._sync import run_sync_private
from ..errors import AgentToolExecutionError, ToolValidationError
from ..events import ToolCallFinished, ToolCallStarted
from ..tools.builtin import FinalAnswerTool
from ..tools.schema import function_tool_schema

if TYPE_CHECKING:
    from .run import Run

__all__ = ["acall_tool", "RunTool", "ManagedAgentTool", "final_answer_tool", "MANAGED_AGENT_INPUTS"]

MANAGED_AGENT_INPUTS: dict[str, dict[str, Any]] = {
    "task": {"type": "string", "description": "Long detailed description of the task."},
    "additional_args": {
        "type": "object",
        "description": "Dictionary of extra inputs to pass to the managed agent, e.g. images, dataframes, "
        "or any other contextual data it may need.",
        "nullable": True,
    },
}

_call_ids = itertools.count(1)


async def acall_tool(tool: Any, *args: Any, **kwargs: Any) -> Any:
    """Call ``tool`` without blocking the loop: ``acall`` when it has one, async functions awaited, sync
    callables in a thread."""
    acall = getattr(tool, "acall", None)
    if acall is not None:
        return await acall(*args, **kwargs)
    forward = getattr(tool, "forward", None)
    if forward is not None and inspect.iscoroutinefunction(forward):
        return await forward(*args, **kwargs)
    if inspect.iscoroutinefunction(tool) or inspect.iscoroutinefunction(type(tool).__call__):
        return await tool(*args, **kwargs)
    from .._sync import run_in_code_thread  # not the loop's small default pool (see there)

    result = await run_in_code_thread(tool, *args, **kwargs)
    if inspect.isawaitable(result):
        result = await result
    return result


def _call_sync(tool: Any, *args: Any, **kwargs: Any) -> Any:
    result = tool(*args, **kwargs)
    if inspect.isawaitable(result):
        result = run_sync_private(_await(result))
    return result


async def _await(awaitable: Any) -> Any:
    return await awaitable


def _arguments(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    if args and not kwargs:
        return list(args) if len(args) > 1 else args[0]
    if args:
        return {"args": list(args), **kwargs}
    return kwargs


class RunTool:
    """A tool as code in the executor sees it during one run: calls go to the tool and are reported as
    ToolCallStarted/ToolCallFinished events of the run (from whichever thread the executor calls on)."""

    __slots__ = ("tool", "run", "name")

    def __init__(self, tool: Any, run: Run, name: str):
        self.tool = tool
        self.run = run
        self.name = name

    def __getattr__(self, item: str) -> Any:  # description, inputs, output_type... for introspection
        return getattr(self.tool, item)

    def _started(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
        run = self.run
        if run.budget is not None:  # max_tool_calls: refused before the call (the loop then stops the run)
            run.budget.before_tool_call(self.name)
        return self._announce(args, kwargs)

    def _announce(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
        run = self.run
        call_id = f"code_call_{next(_call_ids)}"
        run.push_event(
            run.event(
                ToolCallStarted, call_id=call_id, tool_name=self.name, arguments=_arguments(args, kwargs)
            )
        )
        return call_id

    def _finished(
        self, call_id: str, start: float, result: Any = None, error: BaseException | None = None
    ) -> None:
        run = self.run
        run.push_event(
            run.event(
                ToolCallFinished,
                call_id=call_id,
                tool_name=self.name,
                result=result,
                error=None if error is None else f"{type(error).__name__}: {error}",
                duration=time.perf_counter() - start,
            )
        )

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        journal = self.run.journal
        if journal is not None:
            return self._journaled(journal, args, kwargs)
        call_id, start = self._started(args, kwargs), time.perf_counter()
        try:
            result = _call_sync(self.tool, *args, **kwargs)
        except BaseException as e:
            self._finished(call_id, start, error=e)
            raise
        self._finished(call_id, start, result)
        return result

    async def acall(self, *args: Any, **kwargs: Any) -> Any:
        journal = self.run.journal
        call_id, start = self._started(args, kwargs), time.perf_counter()
        try:
            if journal is None:
                result = await acall_tool(self.tool, *args, **kwargs)
            else:
                key = journal.code_call_key(self.name)
                result = await journal.acall_tool(
                    key, self.name, self.tool, _arguments(args, kwargs), lambda: acall_tool(self.tool, *args, **kwargs)
                )
        except BaseException as e:
            self._finished(call_id, start, error=e)
            raise
        self._finished(call_id, start, result)
        return result

    def _journaled(self, journal: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        """A call through the run's journal (codeloop.runs): recorded, gated by approval, and answered
        from the record when the run is being rebuilt after a resume (then without events)."""
        key = journal.code_call_key(self.name)
        arguments = _arguments(args, kwargs)

        def call() -> Any:
            return _call_sync(self.tool, *args, **kwargs)

        if journal.replaying:
            return journal.call_tool(key, self.name, self.tool, arguments, call)
        run = self.run
        if run.budget is not None:  # refused before anything is recorded
            run.budget.before_tool_call(self.name)
        started: list[Any] = []

        def announce() -> None:
            # ToolCallStarted goes out once the call is on record, just before it runs: the loop thread
            # that handles the event then does not contend with the record's write
            started.extend((self._announce(args, kwargs), time.perf_counter()))

        try:
            result = journal.call_tool(key, self.name, self.tool, arguments, call, announce)
        except BaseException as e:
            if not started:
                announce()
            self._finished(*started, error=e)
            raise
        if not started:
            announce()
        self._finished(*started, result)
        return result


class ManagedAgentTool:
    """A managed agent seen as a tool of its manager: inputs ``task`` (string) and ``additional_args``
    (object, nullable); each call runs a fresh Run of the agent, so concurrent calls share nothing."""

    output_type = "string"
    output_schema = None

    def __init__(self, agent: Any):
        self.agent = agent
        self.name: str = agent.name
        self.description: str = agent.description
        self.inputs = MANAGED_AGENT_INPUTS

    def to_tool_schema(self) -> dict[str, Any]:
        return function_tool_schema(self.name, self.description, self.inputs)

    def to_code_prompt(self) -> str:
        return (
            f"def {self.name}(task: str, additional_args: dict[str, Any] | None = None) -> str:\n"
            f'    """{self.description}"""'
        )

    def to_tool_calling_prompt(self) -> str:
        return f"{self.name}: {self.description}\n    Takes inputs: {self.inputs}\n    Returns an output of type: string"

    def validate_arguments(self, arguments: Any) -> dict[str, Any]:
        if isinstance(arguments, str):
            arguments = {"task": arguments}
        if not isinstance(arguments, dict):
            raise ToolValidationError(
                f"Team member '{self.name}' takes a dict of arguments, got {arguments!r:.100}."
            )
        extra = set(arguments) - set(MANAGED_AGENT_INPUTS)
        if extra:
            raise ToolValidationError(
                f"Team member '{self.name}' got unexpected arguments {sorted(extra)}; it takes task and additional_args."
            )
        if not isinstance(arguments.get("task"), str):
            raise ToolValidationError(f"Team member '{self.name}' needs a 'task' string argument.")
        extra_args = arguments.get("additional_args")
        if extra_args is not None and not isinstance(extra_args, dict):
            raise ToolValidationError(f"Team member '{self.name}': additional_args must be a dict or None.")
        return arguments

    async def acall(self, task: str, additional_args: dict[str, Any] | None = None, **kwargs: Any) -> str:
        try:
            return await self.agent.acall_as_managed_agent(task, additional_args=additional_args, **kwargs)
        except asyncio.CancelledError:
            raise
        except AgentToolExecutionError:
            raise
        except Exception as e:
            # Never an empty result: the manager must see which member failed and why.
            raise AgentToolExecutionError(
                f"Team member '{self.name}' failed: {type(e).__name__}: {e}. "
                "Try again with a clearer task, or solve this part another way."
            ) from e

    def __call__(self, task: str, additional_args: dict[str, Any] | None = None, **kwargs: Any) -> str:
        return run_sync_private(self.acall(task, additional_args=additional_args, **kwargs))


def final_answer_tool() -> Any:
    return FinalAnswerTool()
