"""The asyncio event loop of a worker running under WebAssembly (Pyodide, see remote/wasm.py).

Pyodide's own loop hands every wait to the JavaScript event loop, which never turns while the worker
blocks in a synchronous read of its stdin; and asyncio's selector loop needs a socketpair, which
Pyodide does not have. So code that awaits (top-level ``await``, ``tool.acall``, ``asyncio.gather``)
runs on this loop instead: asyncio's ``BaseEventLoop`` with a selector that, when the loop would
wait, calls the readers (the worker's channel: its read blocks until the host writes) or sleeps to
the next timer. A timer due while a tool call is outstanding fires when the host's answer arrives:
late, never early. Standard library only.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

__all__ = ["install", "WasmLoop"]


class _Selector:
    def __init__(self, loop: WasmLoop):
        self._loop = loop

    def select(self, timeout: float | None) -> list[asyncio.Handle]:
        readers = list(self._loop._readers.values())
        if timeout is not None and timeout <= 0:
            return []  # callbacks are ready: no waiting
        if readers:
            return readers  # their reads block until the host writes
        if timeout is not None:
            time.sleep(timeout)
        return []

    def close(self) -> None:
        pass


class WasmLoop(asyncio.BaseEventLoop):
    """``BaseEventLoop`` with readers and no self-pipe (one thread, nothing wakes it from outside)."""

    def __init__(self) -> None:
        super().__init__()
        self._readers: dict[int, asyncio.Handle] = {}
        self._selector = _Selector(self)

    def _process_events(self, event_list: list[asyncio.Handle]) -> None:
        for handle in event_list:
            if not handle._cancelled:
                self._add_callback(handle)  # type: ignore[attr-defined]

    def _write_to_self(self) -> None:
        pass

    def add_reader(self, fd: Any, callback: Any, *args: Any) -> None:
        self._readers[fd] = asyncio.Handle(callback, args, self)

    def remove_reader(self, fd: Any) -> bool:
        return self._readers.pop(fd, None) is not None


def install() -> None:
    """Make ``asyncio.run`` (what the session uses for top-level await) run on a ``WasmLoop``."""
    asyncio.events._set_running_loop(None)  # Pyodide's loop "runs" for the whole program
    policy = asyncio.events._get_event_loop_policy()  # type: ignore[attr-defined]
    policy.new_event_loop = WasmLoop  # type: ignore[method-assign]
