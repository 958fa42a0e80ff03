"""Async SDK clients, one per event loop, that are always closed properly, never by the garbage collector.

Why this module exists (the "lost requests" bug). An async HTTP client's pooled connections are asyncio
transports bound to the loop that opened them. When an unclosed ``AsyncOpenAI`` client is collected, two
finalizers run in the same garbage-collection pass: asyncio's transport finalizer closes each socket's file
descriptor directly (the loop's selector is not told), and the SDK's finalizer schedules ``client.close()``
on the running loop. By the time that close runs, the kernel has handed the freed descriptor *numbers* to
new connections, and closing the old transports unregisters "their" numbers from the selector, that is,
the new connections' readers. Those requests reach the server, but their replies are never read: they wait
for the request timeout (600 s by default in the SDK). With 200 concurrent runs per round and a model per
round, about one round in four lost requests that way.

So a client must never reach the garbage collector unclosed. Here:

* every async client is held strongly by a per-loop registry entry until it has been closed;
* ``LoopClients.release()`` (the model's finalizer) schedules a proper ``close()`` on the client's loop;
* each loop gets a tiny async generator as a shutdown hook: ``asyncio.run``, ``asyncio.Runner``, the
  sync portal and pytest-asyncio all call ``loop.shutdown_asyncgens()`` before closing a loop, which runs
  the hook's ``finally`` while the loop still runs, and that closes the loop's remaining clients;
* a loop closed without that (a hand-made loop) is noticed when the next client is created, and its
  clients' sockets are closed without the loop (it can run nothing any more).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
import weakref
from collections.abc import AsyncIterator, Callable
from contextlib import suppress
from typing import Any

__all__ = ["LoopClients"]

_CLOSE_WAIT = 10.0  # seconds a sync close() waits for a client on another thread's loop


class _LoopEntry:
    """What one event loop holds: its open clients (strongly) and the close tasks in flight."""

    def __init__(self) -> None:
        self.clients: set[Any] = set()
        self.tasks: set[asyncio.Task[None]] = set()
        self.hook: Any = None

    def spawn_close(self, client: Any) -> None:
        """Close ``client`` in a task of the running loop (call on the loop's thread)."""
        if client not in self.clients:
            return
        task = asyncio.get_running_loop().create_task(self.close(client))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def close(self, client: Any) -> None:
        self.clients.discard(client)
        with suppress(Exception):
            await client.close()


async def _shutdown_hook(entry: _LoopEntry) -> AsyncIterator[None]:
    # Holds no reference to the loop (the registry is keyed by it weakly).
    try:
        yield
    finally:
        for client in list(entry.clients):
            await entry.close(client)


_entries: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopEntry] = weakref.WeakKeyDictionary()
_lock = threading.Lock()


def _entry_for_running_loop() -> _LoopEntry:
    loop = asyncio.get_running_loop()
    with _lock:
        entry = _entries.get(loop)
        if entry is not None:
            return entry
        entry = _entries[loop] = _LoopEntry()
        closed = [lp for lp in list(_entries) if lp.is_closed()]
        closed_entries = [_entries.pop(lp) for lp in closed]
        del closed
    # Start the hook up to its ``yield`` right here (it awaits nothing before it): starting it registers it
    # with this loop's ``shutdown_asyncgens``. A never-started generator would be skipped by aclose().
    entry.hook = _shutdown_hook(entry)
    with suppress(StopIteration):
        entry.hook.__anext__().send(None)
    for old in closed_entries:
        _abandon(old)
    return entry


def _abandon(entry: _LoopEntry) -> None:
    """Clean up after a loop that was closed without ``shutdown_asyncgens``: nothing can run on it."""
    clients, entry.clients = list(entry.clients), set()
    if entry.hook is not None:  # finish the hook now (no clients left), so its finalizer never runs
        with suppress(StopIteration, RuntimeError):
            entry.hook.aclose().send(None)
    for client in clients:
        _close_sockets(client)


def _close_sockets(client: Any) -> None:
    """Close the sockets of a client whose loop is closed (best effort; the SDK offers no sync way)."""
    pool = getattr(getattr(getattr(client, "_client", None), "_transport", None), "_pool", None)
    for connection in list(getattr(pool, "_connections", ()) or ()):
        stream = getattr(getattr(connection, "_connection", None), "_network_stream", None)
        transport = getattr(getattr(stream, "_stream", None), "_transport", None)
        if transport is None:
            continue
        with suppress(Exception):
            transport.abort()  # marks it closed; scheduling the callback fails on the closed loop
        lost = getattr(transport, "_call_connection_lost", None)
        if lost is not None and getattr(transport, "_sock", None) is not None:
            with suppress(Exception):
                lost(None)  # what the loop would have run: closes the socket, tells the protocol


class LoopClients:
    """The async clients one model opened, one per event loop. It holds no reference to the model, so
    the model's finalizer can hold it."""

    def __init__(self) -> None:
        self._by_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Any] = weakref.WeakKeyDictionary()

    def __len__(self) -> int:
        return len(self._by_loop)

    def get(self, factory: Callable[[], Any]) -> Any:
        """The client of the running loop (made by ``factory()`` on first use)."""
        loop = asyncio.get_running_loop()
        client = self._by_loop.get(loop)
        if client is None:
            entry = _entry_for_running_loop()
            client = self._by_loop[loop] = factory()
            entry.clients.add(client)
        return client

    def _take(self) -> list[tuple[asyncio.AbstractEventLoop, _LoopEntry, Any]]:
        """Take every client still open; close at once those whose loop has closed (nothing can
        await there); the rest, with their loop, are the caller's to close."""
        taken = [(loop, _entries.get(loop), client) for loop, client in list(self._by_loop.items())]
        self._by_loop.clear()
        left = []
        for loop, entry, client in taken:
            if entry is None or client not in entry.clients:
                continue
            if loop.is_closed():
                entry.clients.discard(client)
                _close_sockets(client)
            else:
                left.append((loop, entry, client))
        return left

    def release(self) -> None:
        """Close all clients without waiting (the model's finalizer; safe from any thread)."""
        for loop, entry, client in self._take():
            if loop.is_running():
                with suppress(RuntimeError):  # closed meanwhile: its shutdown hook has the client
                    loop.call_soon_threadsafe(entry.spawn_close, client)
            # else: an idle loop; its shutdown hook closes the client when the loop ends.

    def close(self) -> None:
        """Close all clients; waits for them, except for a client of the loop running in this thread
        (it cannot be waited for here: its close is scheduled; use ``await aclose()`` there)."""
        try:
            here = asyncio.get_running_loop()
        except RuntimeError:
            here = None
        for loop, entry, client in self._take():
            if loop is here:
                entry.spawn_close(client)
            elif loop.is_running():
                future = asyncio.run_coroutine_threadsafe(entry.close(client), loop)
                with suppress(concurrent.futures.TimeoutError, RuntimeError):
                    future.result(_CLOSE_WAIT)
            elif here is None:
                loop.run_until_complete(entry.close(client))
            # else: an idle loop that cannot be run from here; its shutdown hook closes the client.

    async def aclose(self) -> None:
        """Close all clients and wait for them."""
        here = asyncio.get_running_loop()
        for loop, entry, client in self._take():
            if loop is here:
                await entry.close(client)
            elif loop.is_running():
                future = asyncio.run_coroutine_threadsafe(entry.close(client), loop)
                with suppress(asyncio.TimeoutError, RuntimeError):
                    await asyncio.wait_for(asyncio.wrap_future(future), _CLOSE_WAIT)
            # else: an idle loop in no thread; its shutdown hook closes the client.
