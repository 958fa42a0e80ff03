"""smolagents' views of an agent's current or last run (``agent.memory``, ``state``, ``monitor``...).

Layer 5 (agents). A codeloop agent holds no run state: these properties, kept for compatibility with
smolagents, show the run of the current context (inside a callback or tool) or else the most recent run.
A mixin of :class:`~codeloop.agents.base.MultiStepAgent`.
"""

from __future__ import annotations

import time
from typing import Any

from .._sync import run_sync
from ..memory import ActionStep, AgentMemory, MemoryStep
from ..messages import ChatMessage, TokenUsage
from .loop import current_run
from .run import Run

__all__ = ["RunViews"]


class _Monitor:
    def __init__(self, run: Run | None):
        self._run = run

    def get_total_token_counts(self) -> TokenUsage:
        return self._run.usage if self._run is not None else TokenUsage()

    @property
    def total_input_token_count(self) -> int:
        return self.get_total_token_counts().input_tokens

    @property
    def total_output_token_count(self) -> int:
        return self.get_total_token_counts().output_tokens

    @property
    def step_durations(self) -> list[float]:
        steps = self._run.memory.steps if self._run is not None else []
        return [s.timing.duration or 0.0 for s in steps if isinstance(s, ActionStep)]

    def reset(self) -> None:
        """Usage lives in each run; a new run starts from zero."""


class RunViews:
    """The smolagents-style views; expects ``_last_run``, ``system_prompt``, ``max_steps``, ``step_callbacks``."""

    _last_run: Run | None
    system_prompt: Any
    max_steps: int
    step_callbacks: Any

    # ---- views of the current / last run (smolagents compatibility) ----
    def _view_run(self) -> Run | None:
        return current_run(self) or self._last_run

    def _standby_run(self) -> Run:
        """The run manual stepping (``agent.step``) works on: the last run, or a new empty one."""
        if self._last_run is None:
            self._last_run = Run(self, "", AgentMemory(self.system_prompt), max_steps=self.max_steps)
        return self._last_run

    @property
    def memory(self) -> AgentMemory:
        return self._standby_run().memory if self._view_run() is None else self._view_run().memory  # type: ignore[union-attr]

    @property
    def state(self) -> dict[str, Any]:
        return self._standby_run().state if self._view_run() is None else self._view_run().state  # type: ignore[union-attr]

    @property
    def step_number(self) -> int:
        run = self._view_run()
        if run is None:
            return 0
        # smolagents counts the answer asked for after max_steps as one more step
        return run.step_number + 1 if run.status == "max_steps_error" else run.step_number

    @property
    def task(self) -> str | None:
        run = self._view_run()
        return run.task if run is not None else None

    @property
    def last_run(self) -> Run | None:
        return self._last_run

    @property
    def monitor(self) -> Any:
        """smolagents' Monitor view of the current (or last) run: token counts and step durations.
        Settable (as in smolagents): a monitor you assign is returned as is."""
        own = self.__dict__.get("_own_monitor")
        return own if own is not None else _Monitor(self._view_run())

    @monitor.setter
    def monitor(self, value: Any) -> None:
        self.__dict__["_own_monitor"] = value

    def _finalize_step(self, memory_step: MemoryStep) -> None:
        """smolagents' end-of-step hook, kept for compatibility: closes the step's timing and runs the
        step callbacks registered for its type (the loop does the same, awaiting async callbacks)."""
        timing = getattr(memory_step, "timing", None)
        if timing is not None and getattr(timing, "end_time", 0) is None:
            timing.end_time = time.time()
        run_sync(self.step_callbacks.acall(memory_step, agent=self))

    def _feed_monitor(self, memory_step: ActionStep, **_: Any) -> None:
        own = self.__dict__.get("_own_monitor")
        update = getattr(own, "update_metrics", None)
        if update is not None:
            update(memory_step)

    def write_memory_to_messages(self, summary_mode: bool = False) -> list[ChatMessage]:
        return self.memory.messages_before(summary_mode=summary_mode)
