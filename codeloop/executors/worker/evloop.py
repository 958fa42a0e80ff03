"""Waiting for an isolated worker's next frame on the event loop: no thread per run.

``LocalPythonExecutor.aexecute`` sends a run and awaits the worker's pipe here (``loop.add_reader``),
so a step whose code calls no tool costs no thread hand-off at all (a driver thread, its future and
the loop wake-up cost about as much host CPU as the whole pipe round trip). Meanwhile the host side of
the shared-memory mailbox is marked away, so a sync tool call from code rings the doorbell on the
pipe and wakes the loop; the run then moves to a driver thread (see host.py), which serves tool calls
with the fast mailbox round trip. Anything but a frame (end of file, a bad frame, the deadline) is
also left to that thread: learning why a worker ended may block.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from codeloop.executors.worker.process import BoxCall, WorkerProcess

__all__ = ["next_frame"]


async def next_frame(
    worker: WorkerProcess, loop: asyncio.AbstractEventLoop, deadline: float | None
) -> dict[str, Any] | BoxCall | None:
    """The worker's next frame; None once the deadline (monotonic) passed, the pipe ended or the
    worker broke the protocol (its ``next_frame`` then says which)."""
    frame = worker.poll_frame()
    if frame is not None or worker.eof or worker.broken:
        return frame
    waiter: list[asyncio.Future[None]] = [loop.create_future()]

    def wake() -> None:
        if not waiter[0].done():
            waiter[0].set_result(None)

    box = worker.mailbox
    loop.add_reader(worker.rfd, wake)
    timer = None if deadline is None else loop.call_at(loop.time() + deadline - time.monotonic(), wake)
    try:
        while True:
            if box is not None:
                box.away()  # from now on a frame posted in the mailbox rings the doorbell too
            frame = worker.poll_frame()  # (one posted before that is seen here)
            if frame is not None or worker.eof or worker.broken:
                return frame
            if deadline is not None and time.monotonic() >= deadline:
                return None
            await waiter[0]
            waiter[0] = loop.create_future()
    finally:
        loop.remove_reader(worker.rfd)
        if timer is not None:
            timer.cancel()
        if box is not None:
            box.back()
