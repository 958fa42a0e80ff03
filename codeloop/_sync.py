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
import os
import threading
from collections.abc import AsyncIterator, Coroutine, Iterator
from typing import Any, TypeVar

T = TypeVar("T")

__all__ = ["run_sync", "run_sync_private", "iterate_sync", "portal_loop"]

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
