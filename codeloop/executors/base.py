"""The executor interface: ``CodeOutput`` and the ``PythonExecutor`` base class.

Layer 3 (executors). Every executor (in-process, isolated worker, remote sandboxes) implements
``aexecute``; the sync ``__call__`` wraps it and also works when called from inside a running event
loop (it then runs the coroutine on a private loop in a helper thread). ``hand_off`` runs agent code in
a process-wide set of code threads with a cheap hand-off for short code (see the comment there).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, TypeVar

from .._sync import hand_off, run_in_code_thread
from .._sync import run_sync_private as run_sync

__all__ = ["CodeOutput", "PythonExecutor", "run_sync", "hand_off", "run_in_code_thread"]

# The sync bridge and the code threads are shared with tools, models and agents, so they live in _sync.

T = TypeVar("T")


@dataclass
class CodeOutput:
    """What one run of code gave: the last expression's value or the final answer, and printed text."""

    output: Any
    logs: str
    is_final_answer: bool


class PythonExecutor(ABC):
    """Runs agent code. Use as a context manager (sync or async) or call ``close()`` when done."""

    #: which isolation layers are active, e.g. {"process": False} in-process
    isolation: dict[str, Any] = {}

    @abstractmethod
    def send_tools(self, tools: dict[str, Any]) -> None:
        """Make tools (callables by name) available to the code; final_answer is always there."""

    @abstractmethod
    def send_variables(self, variables: dict[str, Any]) -> None:
        """Define variables in the code's namespace."""

    @abstractmethod
    async def aexecute(self, code: str) -> CodeOutput:
        """Run ``code``; raise ``InterpreterError`` (with ``.logs`` and ``.exc_type``) if it fails."""

    def __call__(self, code: str) -> CodeOutput:
        return run_sync(self.aexecute(code))

    @property
    def state(self) -> dict[str, Any]:
        """The code's variables, as far as this executor can see them."""
        return {}

    @property
    def static_tools(self) -> dict[str, Any]:
        """The tools code can call by name (smolagents' name for them); executors that keep them host-side
        hold them in ``_tools``."""
        return dict(getattr(self, "_tools", None) or {})

    def set_tape(self, spec: dict[str, Any] | None) -> None:  # noqa: B027 - optional hook
        """Record the clock and random values the next run's code reads, or with ``spec["replay"]`` give
        it those recorded by an earlier run (a stored run's replay; see ``executors/tape.py``).
        Executors that cannot do this ignore it: their replays read live values."""

    def take_tape(self) -> dict[str, Any] | None:
        """What the last run recorded, ``{"values": [...], "diverged": bool}``, or None."""
        return None

    def close(self) -> None:  # noqa: B027 - optional hook, not abstract
        """Release resources (processes, sandboxes). Safe to call twice."""

    def cleanup(self) -> None:
        """smolagents' name for ``close``."""
        self.close()

    async def aclose(self) -> None:
        self.close()

    def __enter__(self: T) -> T:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    async def __aenter__(self: T) -> T:
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.aclose()
