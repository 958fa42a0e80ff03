"""The operation budget and the wall-clock deadline, checked while code runs.

Layer 3 (executors). The compiler puts ``__codeloop_tick__()`` at the top of every loop body and
function body (and into lambdas and comprehensions). That name is, in the session's builtins, the
``__next__`` of ``itertools.chain.from_iterable(budget)``: a C call that returns ``None`` from a
``repeat(None, n)`` chunk, so a tick costs about as much as calling a C builtin (no Python frame).
Once per chunk (``CHUNK`` ticks) the chain asks ``Budget.__next__`` (Python) for the next chunk; that
is where the operation count and the deadline are checked. Function bodies (and lambdas) start with
the bare name ``__codeloop_live__`` instead: a builtins lookup, no call, nearly free; operations are
counted at loop iterations only, and calls are stopped by deleting that name (a NameError that the
session reports as the limit that was hit).

When the budget is spent or the deadline passes, the builtins entry is replaced by a callable that
always raises, so the limit is sticky: code that catches the exception (``except BaseException``)
meets it again at its next loop iteration or call. A shared watchdog thread does the same
replacement at the deadline, so a loop whose iterations are slow (each one a long C call) still stops
at its next tick. Neither can interrupt one long C call (``sum(range(10**12))``): in-process that
call runs to its end; the isolated worker kills the process instead.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
import weakref
from typing import Any

from ..errors import InterpreterError
from .policy import ExecutionTimeout, OperationLimitExceeded, Policy

__all__ = ["Budget", "CHUNK", "IDLE_OPERATIONS"]

CHUNK = 100_000
# The code's functions can also run between runs: a __repr__ or __del__ the host triggers, a callback
# handed back as the final answer. They get this many loop iterations until the next run starts.
IDLE_OPERATIONS = 1_000_000


class _IdleLimit:
    """End of the between-runs allowance: raises every time it is asked for more."""

    def __iter__(self) -> _IdleLimit:
        return self

    def __next__(self) -> Any:
        # an ordinary exception: it surfaces in host code (a repr, a callback), which expects those
        err = InterpreterError(
            f"The code's functions ran more than {IDLE_OPERATIONS} loop iterations outside a run "
            "(rule: code runs only inside runs)"
        )
        err.exc_type = "OperationLimit"  # type: ignore[attr-defined]
        raise err


def _idle_tick() -> Any:
    return itertools.chain(itertools.repeat(None, IDLE_OPERATIONS), _IdleLimit()).__next__


TICK_NAME = "__codeloop_tick__"
LIVE_NAME = "__codeloop_live__"


class Budget:
    """One per session; ``start()``/``stop()`` bracket each run."""

    def __init__(self, policy: Policy, builtins_dict: dict[str, Any], namespace: dict[str, Any]):
        self.policy = policy
        # The tick names live in the builtins and in the namespace too: module-level code looks
        # names up with LOAD_NAME (namespace first), so this saves two dict lookups per tick there.
        self._dicts = (builtins_dict, namespace)
        self._builtins = builtins_dict
        self.used = 0
        self._given = 0
        self.deadline: float | None = None
        self._run_id = 0
        self._active = False
        self._tripped: BaseException | None = None
        self._watch: Any = None  # this run's entry with the watchdog
        self._set(_idle_tick())

    # chain.from_iterable(self) pulls chunks from here
    def __iter__(self) -> Budget:
        return self

    def __next__(self) -> Any:
        self.used += self._given
        self._given = 0
        if self.deadline is not None and time.monotonic() >= self.deadline:
            self._trip(self._timeout())
        limit = self.policy.max_operations
        if limit is None:
            n = CHUNK
        else:
            n = min(CHUNK, limit - self.used)
            if n <= 0:
                self._trip(
                    OperationLimitExceeded(
                        f"Reached the operation budget of {limit} operations (loop iterations and calls) "
                        "(rule: max_operations); make the code do less work per step"
                    )
                )
        self._given = n
        return itertools.repeat(None, n)

    def _timeout(self) -> ExecutionTimeout:
        return ExecutionTimeout(
            f"Code execution exceeded the maximum execution time of {self.policy.timeout_seconds} seconds "
            "(rule: timeout_seconds)"
        )

    def _set(self, tick: Any) -> None:
        for d in self._dicts:
            d[TICK_NAME] = tick
            d[LIVE_NAME] = True

    def _kill(self) -> None:
        """Make every later tick raise: loops through the counting tick, calls through the bare name."""
        for d in self._dicts:
            d[TICK_NAME] = self._dead
            d.pop(LIVE_NAME, None)

    def _trip(self, exc: BaseException) -> None:
        self._tripped = exc
        self._kill()
        raise exc

    def _dead(self) -> None:
        exc = self._tripped or self._timeout()
        raise type(exc)(*exc.args)

    def start(self) -> None:
        self.used = 0
        self._given = 0
        self._tripped = None
        self._run_id += 1
        self._active = True
        timeout = self.policy.timeout_seconds
        self.deadline = time.monotonic() + timeout if timeout is not None else None
        self._set(itertools.chain.from_iterable(self).__next__)
        if self.deadline is not None:
            self._watch = _WATCHDOG.register(self.deadline, self, self._run_id)

    def stop(self) -> None:
        self._active = False
        self._set(_idle_tick())
        if self._watch is not None:
            _WATCHDOG.unregister(self._watch)
            self._watch = None

    def expire(self, run_id: int) -> None:
        """Called by the watchdog thread at the deadline."""
        if self._active and run_id == self._run_id and self._tripped is None:
            self._tripped = self._timeout()
            self._kill()

    def cancel(self) -> None:
        """The run was cancelled by its caller: stop the code at its next tick."""
        if self._active and self._tripped is None:
            self._tripped = ExecutionTimeout("Code execution was cancelled (rule: cancellation)")
            self._kill()

    def expire_now(self) -> None:
        """The code reached the deadline outside a tick (e.g. in time.sleep): make it sticky."""
        if self._active and self._tripped is None:
            self._tripped = self._timeout()
            self._kill()

    @property
    def tripped(self) -> BaseException | None:
        return self._tripped

    def remaining_time(self) -> float | None:
        if self.deadline is None:
            return None
        return max(0.0, self.deadline - time.monotonic())


class _Watchdog:
    """One daemon thread for all sessions: a heap of the deadlines of runs in progress.

    A run that ends takes its deadline out again, and the thread is woken early only for a deadline
    before the time it already sleeps to. So a long run of short runs costs no wake-up per run (each
    would be a GIL hand-off in the middle of the next run's code), only one per timeout period.
    """

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, weakref.ref[Budget], int]] = []
        self._cond = threading.Condition(threading.Lock())
        self._seq = itertools.count()
        self._thread: threading.Thread | None = None
        self._wakes_at = float("inf")  # when the thread wakes next by itself

    def register(self, deadline: float, budget: Budget, run_id: int) -> Any:
        entry = (deadline, next(self._seq), weakref.ref(budget), run_id)
        with self._cond:
            heapq.heappush(self._heap, entry)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._loop, name="codeloop-executor-watchdog", daemon=True
                )
                self._thread.start()
            elif deadline < self._wakes_at:
                self._wakes_at = deadline
                self._cond.notify()
        return entry

    def unregister(self, entry: Any) -> None:
        with self._cond:
            heap = self._heap
            if heap and heap[0] is entry:  # the usual case: runs end in the order they started
                heapq.heappop(heap)
            else:
                try:
                    heap.remove(entry)
                except ValueError:  # already expired
                    return
                heapq.heapify(heap)

    def _loop(self) -> None:
        with self._cond:
            while True:
                now = time.monotonic()
                heap = self._heap
                while heap and heap[0][0] <= now:
                    _, _, ref, run_id = heapq.heappop(heap)
                    budget = ref()
                    if budget is not None:
                        budget.expire(run_id)
                # Sleep to the earliest deadline; a run that ended meanwhile leaves this one
                # wake-up (not one per run), after which the next earliest is waited for.
                self._wakes_at = heap[0][0] if heap else float("inf")
                self._cond.wait(None if not heap else self._wakes_at - now)


_WATCHDOG = _Watchdog()
