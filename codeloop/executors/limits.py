"""The operation budget and the wall-clock deadline, checked while code runs.

Layer 3 (executors). Operations are loop iterations, counted without a Python frame per iteration:

* A ``for`` statement at module or class level iterates ``__codeloop_loop__(iterable,
  __codeloop_ops__)``, that is ``itertools.compress(iterable, ops)``: each item also takes one item
  from ``ops``, the budget, and the body gets no inserted statement. On a tight loop this costs 3-8%
  (the former tick call cost 20-30%), but starting one costs about 90 ns.
* Other loop bodies (``for`` in functions, where loops are often over a few items, ``while`` and
  ``async for``) start with ``__codeloop_tick__(__codeloop_ops__)``: the builtin ``next`` (a
  specialized call, cheaper than calling ``ops.__next__``) takes one item.
* Function bodies (and lambdas, comprehensions) hold the bare name ``__codeloop_live__``: a lookup,
  no call, nearly free. They are not counted; they are stopped by deleting that name (a NameError
  that the session reports as the limit that was hit).

``ops`` is ``itertools.chain.from_iterable(budget)``: it hands out ``CHUNK`` items at a time, each
chunk an iterator over ``Budget._live``, a bytearray of ones. Once per chunk ``Budget.__next__``
(Python) counts the chunk and checks the operation limit and the deadline. To stop code at once, the
budget clears that bytearray: every chunk iterator over it, in whatever loop, ends at its next item,
and the chain comes back to ``Budget.__next__``, which then hands out an iterator that raises the
limit's error every time it is asked (sticky: code that catches the exception with ``except
BaseException`` meets it again at its next loop iteration or call). ``Budget.__next__`` itself never
raises, because a chain whose source raised stops for good (it would end loops quietly). A shared
watchdog thread does the same stop at the deadline, so a loop whose iterations are slow (each one a
long C call) still stops at its next iteration; in a process of its own (the isolated worker, see
``_Alarm``) a SIGALRM timer does it instead of that thread. Neither can interrupt one long C call
(``sum(range(10**12))``): in-process that call runs to its end; the isolated worker kills the
process instead.

Every run starts a new chain and a new bytearray (the old one is cleared); a generator started in an
earlier run and resumed now ticks on this run's chain (its loops are in a function: ticks), so it
draws on this run's budget.
"""

from __future__ import annotations

import heapq
import itertools
import os
import signal
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from typing import Any

from ..errors import InterpreterError
from .names import LIVE as LIVE_NAME
from .names import LOOP as LOOP_NAME
from .names import OPS as OPS_NAME
from .names import TICK as TICK_NAME
from .policy import ExecutionTimeout, OperationLimitExceeded, Policy

__all__ = ["Budget", "CHUNK", "IDLE_OPERATIONS", "LOOP_NAME", "OPS_NAME", "TICK_NAME", "LIVE_NAME"]

# Operations handed out per chunk: the deadline and the operation limit are checked once per chunk
# (about every millisecond of a tight loop), and each run allocates a bytearray of this size.
CHUNK = 10_000
_ONES = b"\x01" * CHUNK
# The code's functions can also run between runs: a __repr__ or __del__ the host triggers, a callback
# handed back as the final answer. They get this many loop iterations until the next run starts.
IDLE_OPERATIONS = 1_000_000


def _idle_error() -> InterpreterError:
    # an ordinary exception: it surfaces in host code (a repr, a callback), which expects those
    err = InterpreterError(
        f"The code's functions ran more than {IDLE_OPERATIONS} loop iterations outside a run "
        "(rule: code runs only inside runs)"
    )
    err.exc_type = "OperationLimit"  # type: ignore[attr-defined]
    return err


class _Raise:
    """The chunk handed out once a limit is hit: raises the limit's error each time it is asked.
    The chain it sits in is not used again once its run (or the gap after it) is over: each run
    starts with a new chain, and so does the gap after a run that hit a limit; ticks find the
    current chain by name; and the compress loops that hold a chain are at module and class level,
    so they cannot outlive their run."""

    __slots__ = ("_error",)

    def __init__(self, error: Callable[[], BaseException]):
        self._error = error

    def __iter__(self) -> _Raise:
        return self

    def __next__(self) -> Any:
        raise self._error()


class Budget:
    """One per session; ``start()``/``stop()`` bracket each run."""

    def __init__(
        self,
        policy: Policy,
        builtins_dict: dict[str, Any],
        namespace: dict[str, Any],
        own_process: bool = False,
    ):
        self.policy = policy
        # what stops code at the deadline between two slow iterations (see _Alarm)
        self._watcher: _Watchdog | _Alarm = _ALARM if own_process and _ALARM.usable else _WATCHDOG
        # The names live in the builtins and in the namespace too: module-level code looks names
        # up with LOAD_NAME (namespace first), so this saves two dict lookups per tick there.
        self._dicts = (builtins_dict, namespace)
        self.used = 0
        self._given = 0
        self.deadline: float | None = None
        self._run_id = 0
        self._active = False
        self._tripped: BaseException | None = None
        self._watch: Any = None  # this run's entry with the watcher
        self._live = bytearray()
        self._ref = weakref.ref(self)  # what the watchdog holds
        for d in self._dicts:
            d[LOOP_NAME] = itertools.compress
            d[TICK_NAME] = next
        self._new_period()

    def _new_period(self) -> None:
        """A new allowance: chunks of the previous one end at their next item, in every loop."""
        self._live.clear()
        self._live = bytearray(_ONES)
        self.used = self._given = 0
        ops = itertools.chain.from_iterable(self)
        for d in self._dicts:
            d[OPS_NAME] = ops
            d[LIVE_NAME] = True

    # chain.from_iterable(self) pulls chunks from here; this must never raise (see the docstring)
    def __iter__(self) -> Budget:
        return self

    def __next__(self) -> Iterator[Any]:
        self.used += self._given
        self._given = 0
        if self._active:
            if self._tripped is None:
                if self.deadline is not None and time.monotonic() >= self.deadline:
                    self._stop_code(self._timeout())
                else:
                    limit = self.policy.max_operations
                    n = CHUNK if limit is None else min(CHUNK, limit - self.used)
                    if n <= 0:
                        self._stop_code(
                            OperationLimitExceeded(
                                f"Reached the operation budget of {limit} operations (loop iterations "
                                "and calls) (rule: max_operations); make the code do less work per step"
                            )
                        )
            if self._tripped is not None:
                return _Raise(self._dead_error)
        else:
            n = min(CHUNK, IDLE_OPERATIONS - self.used)
            if n <= 0:
                return _Raise(_idle_error)
        self._given = n
        live = self._live
        return iter(live) if n == CHUNK else itertools.islice(live, n)

    def _timeout(self) -> ExecutionTimeout:
        return ExecutionTimeout(
            f"Code execution exceeded the maximum execution time of {self.policy.timeout_seconds} seconds "
            "(rule: timeout_seconds)"
        )

    def _dead_error(self) -> BaseException:
        exc = self._tripped or self._timeout()
        return type(exc)(*exc.args)

    def _stop_code(self, exc: BaseException) -> None:
        """Record the limit hit and stop the code at its next loop iteration or call."""
        self._tripped = exc
        self._live.clear()
        for d in self._dicts:
            d.pop(LIVE_NAME, None)

    def start(self) -> None:
        self._tripped = None
        self._run_id += 1
        self._active = True
        timeout = self.policy.timeout_seconds
        self.deadline = time.monotonic() + timeout if timeout is not None else None
        self._new_period()
        if self.deadline is not None:
            self._watch = self._watcher.register(self.deadline, self._ref, self._run_id)

    def stop(self) -> None:
        self._active = False
        if self._watch is not None:
            self._watcher.unregister(self._watch)
            self._watch = None
        # The between-runs allowance. What is left of the run's current chunk (under CHUNK items)
        # goes with it, unless the run was stopped: then the chain is spent and a new one is needed.
        if self._tripped is not None:
            self._new_period()
        else:
            self.used = self._given = 0

    def expire(self, run_id: int) -> None:
        """Called by the watchdog thread at the deadline."""
        if self._active and run_id == self._run_id and self._tripped is None:
            self._stop_code(self._timeout())

    def cancel(self) -> None:
        """The run was cancelled by its caller: stop the code at its next iteration or call."""
        if self._active and self._tripped is None:
            self._stop_code(ExecutionTimeout("Code execution was cancelled (rule: cancellation)"))

    def expire_now(self) -> None:
        """The code reached the deadline outside a loop (e.g. in time.sleep): make it sticky."""
        if self._active and self._tripped is None:
            self._stop_code(self._timeout())

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
        # register/unregister take the lock itself (a C context manager; the Condition's is Python)
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._seq = itertools.count()
        self._thread: threading.Thread | None = None
        self._wakes_at = float("inf")  # when the thread wakes next by itself

    def register(self, deadline: float, ref: weakref.ref[Budget], run_id: int) -> Any:
        entry = (deadline, next(self._seq), ref, run_id)
        with self._lock:
            heapq.heappush(self._heap, entry)
            if self._thread is None:
                thread = threading.Thread(target=self._loop, name="codeloop-executor-watchdog", daemon=True)
                try:
                    thread.start()
                except RuntimeError:  # no threads here (WebAssembly): the per-chunk check stays, and
                    return entry  # the host kills code that blocks past the deadline
                self._thread = thread
            elif deadline < self._wakes_at:
                self._wakes_at = deadline
                self._cond.notify()
        return entry

    def unregister(self, entry: Any) -> None:
        with self._lock:
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

    def _after_fork(self) -> None:
        # A fork copies this object but not its thread, and its lock as it was at that moment (held,
        # if the thread was inside it): the child starts afresh, or its first run would wait forever.
        self.__init__()  # type: ignore[misc]


_WATCHDOG = _Watchdog()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_WATCHDOG._after_fork)


class _Alarm:
    """The watchdog of a process of its own (the isolated worker): a SIGALRM timer set to the run's
    deadline, whose handler stops the code as the watchdog thread would (``Budget.expire``). Python
    runs it in the main thread between two bytecodes, so a loop of slow iterations still stops at
    its next one. A forked worker then starts no thread at its first run (a third of its CPU for a
    one-step run). Set and cleared with one system call each; a run outside the main thread uses the
    watchdog thread. Code that is allowed to import ``signal`` and takes SIGALRM over only loses
    this early stop: the host still kills the worker shortly after the deadline."""

    usable = hasattr(signal, "setitimer") and hasattr(signal, "SIGALRM")

    def __init__(self) -> None:
        self._armed: tuple[weakref.ref[Budget], int] | None = None

    def register(self, deadline: float, ref: weakref.ref[Budget], run_id: int) -> Any:
        if threading.get_ident() != threading.main_thread().ident:
            return _WATCHDOG, _WATCHDOG.register(deadline, ref, run_id)
        try:
            if signal.getsignal(signal.SIGALRM) != self._ring:  # (a bound method: equal, not identical)
                signal.signal(signal.SIGALRM, self._ring)
            self._armed = (ref, run_id)
            signal.setitimer(signal.ITIMER_REAL, max(deadline - time.monotonic(), 1e-6))
        except (OSError, ValueError):  # no timers here after all
            self._armed = None
            return _WATCHDOG, _WATCHDOG.register(deadline, ref, run_id)
        return self, None

    def unregister(self, entry: Any) -> None:
        owner, inner = entry
        if owner is not self:
            owner.unregister(inner)
            return
        signal.setitimer(signal.ITIMER_REAL, 0)
        self._armed = None

    def _ring(self, signum: int, frame: Any) -> None:
        armed = self._armed
        budget = armed[0]() if armed is not None else None
        if budget is not None:
            budget.expire(armed[1])  # type: ignore[index]


_ALARM = _Alarm()
