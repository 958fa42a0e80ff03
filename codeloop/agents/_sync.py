"""Run the async agent loop from synchronous code, also from inside a running event loop (Jupyter).

Layer 5 (agents). Without a running loop in this thread, sync calls run on the models' shared "portal"
loop (codeloop.models._sync), so async HTTP clients stay bound to one loop and keep their connections.
With a running loop in this thread (a notebook cell, an async test, or code running on the portal
itself, such as a sync tool calling a managed agent) the coroutine runs on a private loop in a new
thread, and this thread blocks like any sync call, without deadlocking.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import AsyncIterator, Coroutine, Iterator
from typing import Any, TypeVar

T = TypeVar("T")

__all__ = ["run_sync", "run_sync_private", "iterate_sync"]


def _portal() -> asyncio.AbstractEventLoop | None:
    try:
        from ..models._sync import portal_loop
    except ImportError:  # models layer absent: a private loop per call still works
        return None
    return portal_loop()


class _PrivateLoop:
    """An event loop in its own daemon thread, stopped by close()."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._main, name="codeloop-agent-sync", daemon=True)
        self._thread.start()

    def _main(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()
        self.loop.run_until_complete(self.loop.shutdown_asyncgens())
        self.loop.run_until_complete(self.loop.shutdown_default_executor())
        self.loop.close()

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join()


def _in_running_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def _wait(future: concurrent.futures.Future[T]) -> T:
    try:
        return future.result()
    except BaseException:
        # KeyboardInterrupt while waiting: stop the coroutine too, instead of leaving it running.
        future.cancel()
        raise


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` to completion from sync code and return its result."""
    if not _in_running_loop():
        portal = _portal()
        if portal is None:
            return asyncio.run(coro)
        return _wait(asyncio.run_coroutine_threadsafe(coro, portal))
    private = _PrivateLoop()
    try:
        return _wait(asyncio.run_coroutine_threadsafe(coro, private.loop))
    finally:
        private.close()


def run_sync_private(coro: Coroutine[Any, Any, T]) -> T:
    """Like run_sync, but never on the shared portal loop: on a fresh loop in this thread (or in a new
    thread when one runs here). For sync calls made by code running in an executor's worker thread (a
    managed agent called from code): using the portal there could exhaust its thread pool and deadlock
    when many such calls nest."""
    if not _in_running_loop():
        return asyncio.run(coro)
    private = _PrivateLoop()
    try:
        return _wait(asyncio.run_coroutine_threadsafe(coro, private.loop))
    finally:
        private.close()


async def _anext(agen: AsyncIterator[T]) -> T:
    return await agen.__anext__()


def iterate_sync(agen: AsyncIterator[T]) -> Iterator[T]:
    """Iterate an async iterator from sync code, one item at a time; closing the iterator closes ``agen``."""
    private = None
    loop = None if _in_running_loop() else _portal()
    if loop is None:
        private = _PrivateLoop()
        loop = private.loop
    try:
        while True:
            try:
                item = _wait(asyncio.run_coroutine_threadsafe(_anext(agen), loop))
            except StopAsyncIteration:
                return
            yield item
    finally:
        aclose = getattr(agen, "aclose", None)
        try:
            if aclose is not None:
                asyncio.run_coroutine_threadsafe(aclose(), loop).result()
        finally:
            if private is not None:
                private.close()
