"""Run coroutines and async iterators from synchronous code, also inside a running event loop.

Layer 1 (no I/O of its own): the one place where sync wrappers meet the async core. The async path is
the real one; sync methods (``Model.generate``, ``Tool.__call__``, ``agent.run``) wrap it here.
All sync calls are executed on one private event loop that lives in a daemon thread (the "portal").
Why one long-lived loop instead of ``asyncio.run`` per call: async HTTP clients pool connections that are
bound to the loop that opened them, so a fresh loop per call would break (or defeat) connection reuse.
Because the portal is its own thread, a sync call made from inside a running loop (a notebook, an async
test) works too: it blocks the caller, exactly like any other sync call, but never deadlocks.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import functools
import os
import threading
from collections.abc import AsyncIterator, Coroutine, Iterator
from typing import Any, TypeVar

T = TypeVar("T")

__all__ = [
    "run_sync", "run_sync_private", "iterate_sync", "portal_loop", "hand_off", "run_in_code_thread",
    "at_exit_before_thread_joins",
]

_lock = threading.Lock()
_loop: asyncio.AbstractEventLoop | None = None
_pid: int | None = None


def portal_loop() -> asyncio.AbstractEventLoop:
    """The private loop that runs sync calls (started on first use, restarted after a fork)."""
    global _loop, _pid
    loop = _loop
    if loop is not None and _pid == os.getpid() and loop.is_running():
        return loop
    with _lock:
        if _loop is None or _pid != os.getpid() or not _loop.is_running():
            _loop, _pid = _start_loop_thread("codeloop-sync-portal"), os.getpid()
        return _loop


def _on_portal() -> bool:
    try:
        return asyncio.get_running_loop() is _loop
    except RuntimeError:
        return False


def _start_loop_thread(name: str) -> asyncio.AbstractEventLoop:
    loop = asyncio.new_event_loop()
    started = threading.Event()

    def _run() -> None:
        asyncio.set_event_loop(loop)
        loop.call_soon(started.set)
        loop.run_forever()
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()

    threading.Thread(target=_run, name=name, daemon=True).start()
    started.wait()
    return loop


def _target_loop() -> tuple[asyncio.AbstractEventLoop, bool]:
    """(loop to run on, whether it is a temporary one to stop afterwards)."""
    if _on_portal():
        # A sync call made by code that itself runs on the portal (a sync tool called from an async agent
        # step, say) cannot wait on the portal: it would wait on itself. It gets a temporary loop instead.
        return _start_loop_thread("codeloop-sync-nested"), True
    return portal_loop(), False


def _wait(future: concurrent.futures.Future[T]) -> T:
    try:
        return future.result()
    except BaseException:
        # KeyboardInterrupt while waiting: stop the coroutine too, instead of leaving it running.
        future.cancel()
        raise


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` to completion and return its result, from any thread, loop or no loop."""
    loop, temporary = _target_loop()
    try:
        return _wait(asyncio.run_coroutine_threadsafe(coro, loop))
    finally:
        if temporary:
            loop.call_soon_threadsafe(loop.stop)


def run_sync_private(coro: Coroutine[Any, Any, T]) -> T:
    """Like run_sync, but never on the shared portal: a fresh loop in this thread, or, when a loop runs
    here, in a helper thread that sees this thread's context variables.

    For sync calls made from threads the portal may be waiting on (code in an executor thread calling a
    managed agent or an async tool): nesting many of those on the portal could exhaust its thread pool.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    context = contextvars.copy_context()
    with concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="codeloop-sync") as pool:
        return _wait(pool.submit(context.run, asyncio.run, coro))


def iterate_sync(agen: AsyncIterator[T]) -> Iterator[T]:
    """Iterate an async iterator from sync code, one item at a time (no read-ahead, so no lost items)."""
    loop, temporary = _target_loop()
    try:
        while True:
            try:
                item = _wait(asyncio.run_coroutine_threadsafe(_anext(agen), loop))
            except StopAsyncIteration:
                return
            yield item
    finally:
        aclose = getattr(agen, "aclose", None)
        if aclose is not None:
            asyncio.run_coroutine_threadsafe(aclose(), loop).result()
        if temporary:
            loop.call_soon_threadsafe(loop.stop)


async def _anext(agen: AsyncIterator[T]) -> T:
    return await agen.__anext__()


# ---- code threads ------------------------------------------------------------------------------------
# Executors that run agent code in this process hand it to a thread so the event loop stays free. The
# loop's default pool is small (min(32, cpus + 4)) and shared with everything else: code that blocks on
# work queued behind it in that pool deadlocks. These threads are separate, reused, and never queue a job
# (a job with no idle thread gets a new one), so nested or blocking code cannot starve other code.
#
# The hand-off is the costly part under load, not the thread itself: when the loop thread keeps running,
# the code thread waits for the GIL (up to the 5 ms switch interval), and the ping-pong between the two
# costs more CPU than most agent code. So the caller first waits, blocked and without the GIL, for up to
# ``wait`` seconds: short code (most actions) finishes in that window, handed straight back with a few
# thread switches; only longer code is left running and reported to the loop through a future.


class _Job:
    __slots__ = ("fn", "args", "done", "finished", "outcome", "future", "loop")

    def __init__(self, fn: Any, args: tuple[Any, ...]):
        self.fn = fn
        self.args = args
        self.done = threading.Lock()
        self.done.acquire()  # released by the code thread when the job has finished
        self.finished = False
        self.outcome: tuple[bool, Any] = (False, None)
        self.future: asyncio.Future[tuple[bool, Any]] | None = None
        self.loop: asyncio.AbstractEventLoop | None = None


def _deliver(future: asyncio.Future[Any], outcome: tuple[bool, Any]) -> None:
    if not future.done():
        future.set_result(outcome)


class _CodeThreads:
    """A process-wide set of reusable daemon threads for agent code (see the comment above)."""

    def __init__(self, max_idle: int = 32, idle_timeout: float = 60.0):
        self.max_idle = max_idle
        self.idle_timeout = idle_timeout
        self._lock = threading.Lock()
        self._idle: list[_CodeThread] = []

    def submit(self, job: _Job) -> None:
        with self._lock:
            worker = self._idle.pop() if self._idle else None
        if worker is None:
            _CodeThread(self, job)
        else:
            worker.job = job
            worker.wake.release()

    def reset(self) -> None:
        """After fork: the threads did not survive, forget them."""
        self._lock = threading.Lock()
        self._idle = []


class _CodeThread:
    __slots__ = ("pool", "job", "wake")

    def __init__(self, pool: _CodeThreads, job: _Job):
        self.pool = pool
        self.job: _Job | None = job
        self.wake = threading.Lock()
        self.wake.acquire()
        threading.Thread(target=self._work, name="codeloop-code", daemon=True).start()

    def _work(self) -> None:
        pool = self.pool
        while True:
            job, self.job = self.job, None
            assert job is not None  # set by submit() before it wakes this thread
            try:
                outcome: tuple[bool, Any] = (True, job.fn(*job.args))
            except BaseException as exc:  # noqa: BLE001 - handed back to the caller
                outcome = (False, exc)
            with pool._lock:
                job.outcome, job.finished = outcome, True
                future, loop = job.future, job.loop
                # Back in the idle list *before* the caller wakes: it then rarely finds the GIL taken.
                stay = len(pool._idle) < pool.max_idle
                if stay:
                    pool._idle.append(self)
            job.done.release()
            if future is not None and loop is not None:
                try:
                    loop.call_soon_threadsafe(_deliver, future, outcome)
                except RuntimeError:  # the loop was closed meanwhile: nobody is waiting any more
                    pass
            del job, outcome, future, loop  # an idle thread must not keep the code's objects alive
            if not stay:
                return
            if not self.wake.acquire(timeout=pool.idle_timeout):
                with pool._lock:
                    if self in pool._idle:
                        pool._idle.remove(self)
                        return
                self.wake.acquire()  # a job was handed over just as the wait timed out


_CODE_THREADS = _CodeThreads()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_CODE_THREADS.reset)


def hand_off(fn: Any, *args: Any, wait: float = 0.002) -> tuple[bool, Any] | asyncio.Future[tuple[bool, Any]]:
    """Run ``fn(*args)`` in a code thread; call from the event loop's thread.

    Returns the outcome ``(True, value)`` or ``(False, exception)`` when the call finished within ``wait``
    seconds (the loop is blocked meanwhile, without holding the GIL); else a future of this loop that will
    get the outcome (the call goes on in its thread).
    """
    job = _Job(fn, args)
    _CODE_THREADS.submit(job)
    if wait > 0 and job.done.acquire(timeout=wait):
        return job.outcome
    loop = asyncio.get_running_loop()
    future: asyncio.Future[tuple[bool, Any]] = loop.create_future()
    with _CODE_THREADS._lock:
        if job.finished:
            return job.outcome
        job.future, job.loop = future, loop
    return future


async def run_in_code_thread(fn: Any, /, *args: Any, **kwargs: Any) -> Any:
    """``asyncio.to_thread`` on the code threads: same context copy, but no pool size limit, so many
    concurrent runs with blocking tools or sync models are not served a few at a time by the loop's
    small default pool. Cancelling the await leaves the call running in its thread, as to_thread does."""
    ctx = contextvars.copy_context()
    pending = hand_off(functools.partial(ctx.run, fn, *args, **kwargs), wait=0.0)
    ok, value = await pending if isinstance(pending, asyncio.Future) else pending
    if not ok:
        try:
            raise value
        finally:
            del value  # no reference cycle through the traceback
    return value


def at_exit_before_thread_joins(fn: Any) -> None:
    """Run ``fn`` at interpreter exit before concurrent.futures joins its threads.

    Plain atexit hooks run after that join, so a thread waiting on a stuck worker or sandbox would
    block exit forever; threading's own exit hooks run first (in reverse order of registration).
    """
    try:
        threading._register_atexit(fn)  # type: ignore[attr-defined]
    except (AttributeError, RuntimeError):  # pragma: no cover - a Python without the hook
        import atexit

        atexit.register(fn)
