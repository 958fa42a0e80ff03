"""Host side of tool calls from worker code: how each tool runs, and the answer sent back.

Used by host.py, whose ``LocalPythonExecutor._start_tool`` is the one entry point of every tool call.
``route`` sorts tools once, when they are sent: "inline" (sync and marked ``blocking = False``: run on
whichever thread drives the run), "thread" (sync and possibly blocking: plain functions and codeloop
Tools with a sync ``forward``; run inline on a thread of their own that drives the run, see
``LocalPythonExecutor._drive_from_thread``; concurrent calls go to a pool) and "async" (awaited on an
event loop: the caller's in ``aexecute``, else a private one).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import inspect
import logging
import os
import queue
import threading
import time
from collections.abc import Callable
from typing import Any

from codeloop.executors.policy import Policy
from codeloop.executors.worker import codec
from codeloop.executors.worker.process import WorkerDied, WorkerProcess
from codeloop.executors.worker.protocol import dumps, pack, pack_result, pack_result_str

__all__ = [
    *("Run", "route", "reply", "reply_from_future", "await_tool", "error_of"),
    *("HANDOFF", "TOOLS", "Counted", "drive_from_thread", "shared_policy"),
]

logger = logging.getLogger("codeloop.executors.worker")

# Threads for concurrent calls of sync tools (``await tool.acall(...)`` from code on a plain function).
TOOLS = concurrent.futures.ThreadPoolExecutor(max_workers=64, thread_name_prefix="codeloop-worker-tool")
_bg_loop: asyncio.AbstractEventLoop | None = None
_bg_lock = threading.Lock()


def background_loop() -> asyncio.AbstractEventLoop:
    """A private event loop thread for async tools called from a sync ``__call__``."""
    global _bg_loop
    with _bg_lock:
        if _bg_loop is None:
            loop = asyncio.new_event_loop()
            threading.Thread(target=loop.run_forever, name="codeloop-worker-tools-loop", daemon=True).start()
            _bg_loop = loop
        return _bg_loop


class Run:
    """One run in flight: what the driving thread needs, and the hand-off state with the waiter."""

    __slots__ = (
        *("worker", "rid", "timeout", "deadline", "loop"),
        *("inline", "plain_inline", "pending", "lock", "finished", "abandoned"),
    )

    def __init__(
        self, worker: WorkerProcess, rid: int, timeout: float | None, deadline: float | None, loop: Any
    ):
        self.worker, self.rid, self.timeout, self.deadline, self.loop = worker, rid, timeout, deadline, loop
        self.inline = False  # tools marked blocking = False may run on the driving thread
        self.plain_inline = False  # plain functions too (the driver has a thread of its own)
        # the call (the arguments of _start_tool) that made the run move to a driver thread
        self.pending: tuple | None = None
        self.lock = threading.Lock()
        self.finished = self.abandoned = False


class Handoff:
    """Runs each function on an idle thread, handed over through a SimpleQueue.

    A ThreadPoolExecutor round (Future, work item, semaphore, done callback) costs about as much as
    a whole pipe round trip to the worker; this costs one thread wake-up. Threads are made as needed
    (one per run being driven, see _drive_from_thread) and at most ``keep`` idle ones are kept.
    """

    def __init__(self, keep: int = 16):
        self._keep = keep
        self._idle: list[queue.SimpleQueue] = []

    def run(self, fn: Callable[[], None]) -> None:
        try:
            inbox = self._idle.pop()
        except IndexError:
            inbox = queue.SimpleQueue()
            threading.Thread(
                target=self._serve, args=(inbox,), name="codeloop-worker-driver", daemon=True
            ).start()
        inbox.put(fn)

    def _serve(self, inbox: queue.SimpleQueue) -> None:
        while True:
            fn = inbox.get()
            try:
                fn()
            except BaseException:  # noqa: BLE001 - fn reports its own errors; keep the thread alive
                logger.exception("a hand-off to a worker thread failed")
            if len(self._idle) >= self._keep:
                return
            self._idle.append(inbox)


HANDOFF = Handoff()


def route(tool: Any) -> str:
    """How the host runs a tool: "inline" on the driver thread (sync and marked ``blocking = False``),
    "async" on an event loop (an ``acall`` of its own, or a coroutine function), else "thread": a sync
    callable that may block, run on a thread that drives the run (see _drive_from_thread)."""
    instant = getattr(tool, "blocking", None) is False
    if callable(getattr(tool, "acall", None)):  # a codeloop Tool or alike
        if inspect.iscoroutinefunction(getattr(tool, "forward", None)):
            return "async"
        if instant:
            return "inline"
        # A codeloop Tool with a sync forward: its acall would only run the sync call in a thread,
        # through the event loop (three hand-offs per call); run that sync call on a thread directly.
        return "thread" if _is_plain_sync_tool(tool) else "async"
    if inspect.iscoroutinefunction(tool):
        return "async"
    return "inline" if instant else "thread"


def _is_plain_sync_tool(tool: Any) -> bool:
    """A codeloop Tool whose calls are Tool's own: ``__call__`` and ``acall`` not overridden."""
    from codeloop.tools.base import Tool

    cls = type(tool)
    return isinstance(tool, Tool) and cls.acall is Tool.acall and cls.__call__ is Tool.__call__


async def await_tool(fn: Callable[..., Any], args: list, kwargs: dict) -> Any:
    result = fn(*args, **kwargs)
    if inspect.isawaitable(result):
        result = await result
    return result


def error_of(exc: BaseException) -> tuple[str, str]:
    # KeyError's str() is the repr of its key; send the key itself so the rebuilt error reads the same
    if isinstance(exc, KeyError) and len(exc.args) == 1:
        return type(exc).__name__, str(exc.args[0])
    return type(exc).__name__, str(exc)


def reply_from_future(
    worker: WorkerProcess, cid: Any, fut: concurrent.futures.Future, box: bool = False
) -> None:
    exc = fut.exception()
    if exc is not None:
        reply(worker, cid, error=error_of(exc), box=box)
    else:
        reply(worker, cid, value=fut.result(), box=box)


def reply(
    worker: WorkerProcess,
    cid: Any,
    value: Any = None,
    error: tuple[str, str] | None = None,
    box: bool = False,
) -> None:
    """Answer tool call ``cid``; ``box``: the call came through the mailbox (the answer goes back so)."""
    if error is None:
        try:
            if type(value) is str:  # the usual tool result: no encoder walk
                frame = pack_result_str(cid, value)
            else:
                frame = pack_result(cid, dumps(codec.encode(value, "pickle")))
        except (codec.CodecError, ValueError, RecursionError) as exc:
            error = ("TypeError", str(exc))
    if error is not None:
        frame = pack(
            {"op": "result", "cid": cid, "ok": False, "error": {"type": error[0], "message": error[1]}}
        )
    try:
        worker.send_frame(frame, box)
    except WorkerDied:
        pass  # the run already failed; nothing to tell


def drive_from_thread(executor: Any, run: Run) -> dict[str, Any]:
    """Hand the rest of ``executor``'s (a LocalPythonExecutor) run to an idle thread, which also runs ``run.pending``; wait for it.

    A plain function may block, and the thread that waits for the run must keep watching the
    deadline. So the calling thread only waits (up to the deadline), and the driving thread runs
    sync calls of plain functions inline: one hand-off per run, none per call (a call from code
    then costs one pipe round trip). If a tool hangs past the deadline, the waiting thread gives
    up on the driver, kills the worker and reports the timeout; the driver closes the old
    worker's pipes once the tool returns (closing them now could let their fd numbers be reused
    by the next worker while the driver still holds them).
    """
    box: queue.SimpleQueue = queue.SimpleQueue()

    def drive() -> None:
        run.inline = run.plain_inline = True  # no event loop runs on this thread
        try:
            pending, run.pending = run.pending, None
            executor._start_tool(run, *pending)
            outcome: tuple[bool, Any] = (True, executor._drive(run))
        except BaseException as exc:  # noqa: BLE001 - handed to the waiting thread
            outcome = (False, exc)
        with run.lock:
            run.finished = True
            abandoned = run.abandoned
        if abandoned:
            run.worker.close(graceful=False)
        else:
            box.put(outcome)

    try:
        HANDOFF.run(drive)
    except RuntimeError as exc:  # no thread could be started: the run cannot go on
        run.worker.kill(f"the host could not start a thread to serve tool calls ({exc})")
        raise WorkerDied(run.worker.describe_exit()) from None
    wait = None if run.deadline is None else max(0.0, run.deadline - time.monotonic()) + 0.25
    try:
        ok, value = box.get(timeout=wait)
    except queue.Empty:
        with run.lock:
            run.abandoned = not run.finished
        if run.abandoned:  # still inside a tool
            run.worker.kill(f"Code execution timed out after {run.timeout:g} seconds")
            raise WorkerDied(run.worker.describe_exit()) from None
        ok, value = box.get()  # it finished at that very moment
    except BaseException:  # KeyboardInterrupt while waiting: stop the run, leave the pipes to the driver
        with run.lock:
            run.abandoned = not run.finished
        if run.abandoned:
            run.worker.kill("the run was interrupted")
            if executor._worker is run.worker:
                executor._worker = None  # the next run starts a fresh worker and does not close this one
        raise
    if ok:
        return value
    raise value


_POLICIES: dict[Any, tuple[Policy, dict[str, Any]]] = {}


def shared_policy(
    imports: list[str], timeout: float | None, kwargs: dict[str, Any]
) -> tuple[Policy, dict, Any]:
    """``Policy.from_args`` and its plain data, shared by executors made with the same arguments (an
    agent makes an executor per run; the policy is frozen and its data never changed), and a hashable
    key of those arguments (None when they are not hashable)."""
    try:
        key: Any = (tuple(imports), timeout, frozenset(kwargs.items()))
        return (*_POLICIES[key], key)
    except TypeError:
        key = None
    except KeyError:
        pass
    policy = Policy.from_args(imports, timeout_seconds=timeout, **kwargs)
    data = policy.to_dict()
    if key is not None and len(_POLICIES) < 64:
        _POLICIES[key] = policy, data
    return policy, data, key


class Counted:
    """Counts the runs being driven right now (by an event loop or a thread), while in the block.
    Polling for the worker's answer (protocol.Spinner) pays while a core is free for each side;
    with more runs than cores at once it only takes CPU from the others: ``few()`` says which."""

    _active = 0
    _lock = threading.Lock()
    _spin_max = max(1, (os.cpu_count() or 2) // 2)

    def __enter__(self) -> None:
        with Counted._lock:
            Counted._active += 1

    def __exit__(self, *exc: Any) -> None:
        with Counted._lock:
            Counted._active -= 1

    @staticmethod
    def few() -> bool:
        return Counted._active <= Counted._spin_max
