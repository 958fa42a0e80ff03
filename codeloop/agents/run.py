"""The state of one agent run, and its result.

Layer 5 (agents). An agent is configuration; everything that changes while it works lives in a
:class:`Run`: memory, the executor session, the variables passed in, usage, the step counter and the
cancel flag. One agent can therefore serve many concurrent runs. ``agent.memory`` and friends show the
most recent run, for smolagents compatibility.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import threading
import time
import warnings
from collections import deque
from typing import TYPE_CHECKING, Any, Literal

from .._sync import run_in_code_thread
from ..events import Event
from ..memory import AgentMemory
from ..messages import Timing, TokenUsage

if TYPE_CHECKING:
    from ..usage_limits import RunBudget
    from .output import OutputSpec

__all__ = ["Run", "RunResult", "RunState"]

RunState = Literal[
    "success", "max_steps_error", "cancelled", "usage_limit_exceeded", "awaiting_approval", "failed"
]

_ids = itertools.count(1)
_prefix = f"run-{os.getpid():x}-{int(time.time()) & 0xFFFFFF:x}-"


def new_run_id() -> str:
    return _prefix + str(next(_ids))


class RunResult:
    """What ``run(..., return_full_result=True)`` returns.

    ``state`` is "success", "max_steps_error" (the answer was asked for after max_steps) or
    "cancelled" (``agent.interrupt()`` / ``run.interrupt()`` stopped it; ``output`` is None; runs stored
    before this name was chosen said "interrupted" and read back as "cancelled"),
    "usage_limit_exceeded" (the partial result carried by UsageLimitExceeded), or "awaiting_approval" (a
    tool call waits for a person: ``pending_approvals`` lists them, each with its ``call_id``;
    ``agent.resume(run_id, approvals={call_id: True | False | "reason"})`` goes on). ``cost`` is in US
    dollars (None when no price is known for the model).
    ``steps`` are the memory steps as dicts, built on first access.
    """

    def __init__(
        self,
        output: Any = None,
        state: str | None = None,
        steps: list[dict[str, Any]] | None = None,
        token_usage: TokenUsage | None = None,
        timing: Timing | None = None,
        *,
        memory: AgentMemory | None = None,
        run_id: str = "",
        messages: list[dict[str, Any]] | None = None,
    ):
        if messages is not None:  # smolagents' old name for steps
            if steps is not None:
                raise ValueError("Cannot specify both 'steps' and 'messages' (the deprecated name of 'steps').")
            warnings.warn(
                "RunResult(messages=...) is deprecated: pass steps=... instead.", FutureWarning, stacklevel=2
            )
            steps = messages
        self.output = output
        self.state = state
        self._steps = steps
        self._memory = memory
        # A later reset=False run appends to the same memory: this result covers the steps up to now.
        self._step_count = len(memory.steps) if memory is not None else 0
        self.token_usage = token_usage
        self.timing = timing or Timing()
        self.run_id = run_id
        self.pending_approvals: list[dict[str, Any]] = []

    @property
    def steps(self) -> list[dict[str, Any]]:
        if self._steps is None:
            steps = self._memory.steps[: self._step_count] if self._memory is not None else []
            self._steps = [step.dict() for step in steps]
        return self._steps

    @steps.setter
    def steps(self, value: list[dict[str, Any]]) -> None:
        self._steps = value

    @property
    def messages(self) -> list[dict[str, Any]]:
        """Deprecated name of ``steps`` (smolagents keeps it with a FutureWarning)."""
        warnings.warn("RunResult.messages is deprecated: use RunResult.steps.", FutureWarning, stacklevel=2)
        return self.steps

    @property
    def cost(self) -> float | None:
        """The run's cost in US dollars, summed over its model calls (None when unknown)."""
        return self.token_usage.cost if self.token_usage is not None else None

    def dict(self) -> dict[str, Any]:
        from ..memory import jsonable

        return {
            "output": jsonable(self.output),
            "state": self.state,
            "steps": self.steps,
            "token_usage": self.token_usage.to_dict() if self.token_usage is not None else None,
            "cost": self.cost,
            "timing": self.timing.dict(),
            "run_id": self.run_id,
            "pending_approvals": self.pending_approvals,
        }

    to_dict = dict

    def __repr__(self) -> str:
        return f"RunResult(output={self.output!r:.200}, state={self.state!r}, token_usage={self.token_usage})"


class Run:
    """All per-run state. Created by the agent for each ``run``/``arun``/``astream``."""

    def __init__(
        self,
        agent: Any,
        task: str,
        memory: AgentMemory,
        *,
        max_steps: int,
        state: dict[str, Any] | None = None,
        output_spec: OutputSpec | None = None,
        images: list[Any] | None = None,
    ):
        self.id = new_run_id()
        self.agent = agent
        self.task = task
        self.memory = memory
        self.max_steps = max_steps
        self.state: dict[str, Any] = state if state is not None else {}
        self.output_spec = output_spec
        self.images = images
        self.step_number = 0
        self.usage = TokenUsage()
        self.timing = Timing()
        self.output: Any = None
        self.status: str = "created"  # created, running, success, max_steps_error, cancelled, failed
        self.output_retries = 0
        self.executor: Any = None
        self.owns_executor = False
        self.executor_snapshot: dict[str, Any] | None = None
        self.closed_executor: Any = None
        self.tool_names: tuple[str, ...] = ()
        self.executor_bound = False  # tools and variables sent to the executor for this run
        self.previous: Run | None = None
        # codeloop.runs.Journal when the agent has a store or an approval rule (records steps and tool
        # calls, gates calls); paused: a tool call waits for a person and the run stops after this step.
        self.journal: Any = None
        self.paused = False
        self.final_step_seen = False
        self.budget: RunBudget | None = None  # usage limits and their counters (codeloop/usage_limits.py)
        self.cache_key: str | None = None  # prompt-cache key of this run's prefix (agents/context.py)
        self.prompt_count: tuple[Any, int, int] | None = None  # (messages, characters, images) counted
        self._interrupted = False
        # True while the loop is handed over to the consumer (at a yield): cancelling the consumer's task
        # then would raise in *its* code, so interrupt() only sets the flag and the loop sees it on resume.
        self._suspended = False
        self._task: asyncio.Task[Any] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        # Events produced outside the loop's own flow (tool calls made by code in the executor, maybe on
        # another thread) wait here until the loop yields them; _wakeup tells the loop there are some.
        self._pending: deque[Event] = deque()
        self._wakeup: asyncio.Future[None] | None = None
        self._lock = threading.Lock()

    # ---- events ----
    def event(self, cls: type[Event], **kwargs: Any) -> Event:
        """An event of this run, stamped with the run id and current step number."""
        if "step_number" not in kwargs:
            kwargs["step_number"] = self.step_number
        return cls(run_id=self.id, **kwargs)

    def push_event(self, event: Event) -> None:
        """Queue an event from anywhere (any thread); the loop yields it at its next chance."""
        self._pending.append(event)
        waiter, loop = self._wakeup, self._loop
        if waiter is not None and loop is not None:
            try:
                if asyncio.get_running_loop() is loop:
                    if not waiter.done():
                        waiter.set_result(None)
                    return
            except RuntimeError:
                pass
            loop.call_soon_threadsafe(_wake, waiter)

    def pop_events(self) -> list[Event]:
        out = []
        while self._pending:
            out.append(self._pending.popleft())
        return out

    # ---- cancellation ----
    @property
    def interrupted(self) -> bool:
        return self._interrupted

    def interrupt(self) -> None:
        """Stop the run: it ends with state "cancelled" (a model or tool call in flight is cancelled)."""
        self._interrupted = True
        loop = self._loop
        if loop is None:
            return
        try:
            same_loop = asyncio.get_running_loop() is loop
        except RuntimeError:
            same_loop = False
        if same_loop:
            self._cancel_in_flight()
        else:
            loop.call_soon_threadsafe(self._cancel_in_flight)

    def _cancel_in_flight(self) -> None:
        """On the run's loop: cancel what the run awaits, unless the loop is handed to the consumer (a
        cancel then would land in the consumer's code) or this is the run's own task calling."""
        task = self._task
        if task is None or task.done() or self._suspended:
            return
        if task is not asyncio.current_task():
            task.cancel()

    def attach(self) -> None:
        """Record the task driving the loop, so interrupt() can cancel what it awaits."""
        self._loop = asyncio.get_running_loop()
        self._task = asyncio.current_task()

    def detach(self) -> None:
        self._task = None

    # ---- executor ----
    async def aclose(self) -> None:
        """Close the executor this run created (its variables are kept for a ``reset=False`` follow-up)."""
        if self.journal is not None and self.journal.store is not None:
            self.journal.flush()  # a finished step still waiting for the run's next write (codeloop.runs)
        executor, self.executor = self.executor, None
        if executor is None or not self.owns_executor:
            return
        slow = _slow_close(executor)
        try:
            # A worker's state is a blocking round trip: awaited (astate), else fetched in a thread.
            astate = getattr(executor, "astate", None) if slow else None
            if astate is not None:
                state = await astate()
            else:
                state = await run_in_code_thread(getattr, executor, "state", None) if slow else executor.state
            if isinstance(state, dict):
                self.executor_snapshot = {k: v for k, v in state.items() if not str(k).startswith("_")}
        except Exception:  # best effort: a worker that died has no state to give
            self.executor_snapshot = None
        self.closed_executor = executor
        aclose = getattr(executor, "aclose", None)
        if aclose is not None:
            await aclose()
        else:
            await run_in_code_thread(executor.close) if slow else executor.close()

    def _usage_reported(self) -> bool:
        # smolagents gives token_usage=None when the model reported no usage at all, rather than zeros
        return self.usage != TokenUsage() or any(
            getattr(step, "token_usage", None) is not None for step in self.memory.steps
        )

    def result(self) -> RunResult:
        result = RunResult(
            output=self.output,
            state=self.status
            if self.status in ("success", "max_steps_error", "cancelled")
            else self.status,
            token_usage=self.usage if self._usage_reported() else None,
            timing=self.timing,
            memory=self.memory,
            run_id=self.id,
        )
        if self.journal is not None:
            result.pending_approvals = list(self.journal.pending)
        return result


def _wake(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


def _slow_close(executor: Any) -> bool:
    """In-process executors close instantly; others (worker processes) may block, so use a thread."""
    isolation = getattr(executor, "isolation", None)
    return bool(isolation.get("process", False)) if isinstance(isolation, dict) else True
