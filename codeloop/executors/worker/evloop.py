"""An isolated worker's step driven from the event loop: no thread per step.

``LocalPythonExecutor.aexecute`` sends a run and awaits the worker's pipe here (``loop.add_reader``),
so a step whose code calls no tool, or only instant ones (``blocking = False``, such as
``final_answer``: ``Tool.acall`` runs those on the loop too), costs no thread hand-off at all (a
driver thread, its future and the loop wake-ups cost about as much host CPU as the whole pipe round
trip). Meanwhile the host side of the shared-memory mailbox is marked away, so a sync tool call from
code rings the doorbell on the pipe and wakes the loop. At a call of any other tool the run moves to a
driver thread (see host.py), which serves tool calls with the fast mailbox round trip. Anything but
a frame (end of file, a bad frame, the deadline) is also left to that thread: learning why a worker
ended may block. The end-of-run variables fetch (``state``) is served here the same way.
"""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

from codeloop.executors.worker import codec
from codeloop.executors.worker.process import BoxCall, WorkerDied, WorkerProcess
from codeloop.executors.worker.protocol import call_parts

__all__ = ["next_frame", "run_step", "state"]

_NO_ROUTE: tuple[Any, str] = (None, "")


async def run_step(executor: Any, worker: WorkerProcess, code: str, loop: asyncio.AbstractEventLoop) -> Any:
    """Run ``code`` as one step of ``executor`` (a LocalPythonExecutor, whose run lock the caller
    holds; it is released here, or by the driver thread the run moves to) and return its CodeOutput."""
    handed = False
    try:
        run = executor._send_run(worker, code, loop)
        routes = executor._routes
        while True:
            try:
                frame = await next_frame(worker, loop, run.deadline)
            except BaseException:  # cancelled: the worker is killed and replaced on a thread
                handed = True
                executor._resume(run, "the run was cancelled")
                raise
            if (
                type(frame) is dict
                and frame["op"] == "done"
                and frame.get("id") == run.rid
                and not frame.get("fatal")
            ):
                return executor._finish(frame)
            call = _instant_call(frame, routes)
            if call is None:
                break
            run.inline = True
            try:
                executor._start_tool(run, *call)  # answers the call
            except WorkerDied:
                frame = None  # its pipe is closed: the driver thread reads the end and says why
                break
            finally:
                run.inline = False
        handed = True
        future = executor._resume(run, frame)  # a tool call, or trouble
        try:
            return await asyncio.wrap_future(future)
        except asyncio.CancelledError:
            executor._resume(None, lambda: worker.kill("the run was cancelled"))  # the driver sees it die
            raise
    finally:
        if not handed:
            executor._run_lock.release()


def _instant_call(frame: Any, routes: dict[str, tuple[Any, str]]) -> tuple | None:
    """The parts of a sync call of an instant tool (see LocalPythonExecutor._start_tool), else None."""
    call = call_parts(frame)
    return call if call is not None and call[4] and routes.get(call[1], _NO_ROUTE)[1] == "inline" else None


async def state(executor: Any, worker: WorkerProcess, loop: asyncio.AbstractEventLoop) -> dict[str, Any]:
    """``executor.state`` (its run lock held by the caller; released here) without a thread."""
    try:
        rid = executor._new_id()
        try:
            executor._sync(worker)
            worker.send({"op": "state", "id": rid})
            frame = await next_frame(worker, loop, time.monotonic() + 10)
        except WorkerDied:
            return {}
        except BaseException:  # cancelled: its answer must not reach the next run
            executor._resume(None, lambda: worker.kill("the run was cancelled"))
            raise
        if type(frame) is dict and frame["op"] == "state" and frame.get("id") == rid:
            try:
                decoded = codec.decode(frame.get("vars") or {})
            except codec.CodecError:
                return {}
            return decoded if type(decoded) is dict else {}
        why = "did not answer" if frame is None else "sent an unexpected message"
        executor._resume(None, lambda: worker.kill(f"the worker {why} and was stopped"))
        return {}
    finally:
        executor._run_lock.release()


async def next_frame(
    worker: WorkerProcess, loop: asyncio.AbstractEventLoop, deadline: float | None
) -> dict[str, Any] | BoxCall | None:
    """The worker's next frame; None once the deadline (monotonic) passed, the pipe ended or the
    worker broke the protocol (its ``next_frame`` then says which)."""
    frame = worker.poll_frame()
    if frame is not None or worker.eof or worker.broken or worker.closed:
        return frame
    waiter: list[asyncio.Future[None]] = [loop.create_future()]

    def wake() -> None:
        if not waiter[0].done():
            waiter[0].set_result(None)

    box = worker.mailbox
    # A duplicate of the pipe's descriptor is watched: another thread may close the worker (and its
    # descriptor number be reused) meanwhile, and the loop must never be left watching a closed or
    # someone else's descriptor; the worker's end of file still wakes it.
    try:
        watched = os.dup(worker.rfd)
    except OSError:
        return None
    try:
        loop.add_reader(watched, wake)
    except BaseException:
        os.close(watched)
        raise
    timer = None if deadline is None else loop.call_at(loop.time() + deadline - time.monotonic(), wake)
    try:
        while True:
            if box is not None:
                box.away()  # from now on a frame posted in the mailbox rings the doorbell too
            frame = worker.poll_frame()  # (one posted before that is seen here)
            if frame is not None or worker.eof or worker.broken or worker.closed:
                return frame
            if deadline is not None and time.monotonic() >= deadline:
                return None
            await waiter[0]
            waiter[0] = loop.create_future()
    finally:
        loop.remove_reader(watched)
        os.close(watched)
        if timer is not None:
            timer.cancel()
        if box is not None:
            box.back()
