"""LocalPythonExecutor: the default executor, running agent code in an isolated worker process.

One worker per executor, started when the executor is created (so it is warm by the first step) and
reused across steps: variables persist inside it. Tools never leave the host: code in the worker
calls proxies, the host runs the real tool and sends the result back. A sync call from code runs the
tool right on the thread that drives the run, so it costs one round trip through the shared-memory
mailbox (shm.py; about 6-9 us on a 2-core VM, the pipe where there is no mailbox): a tool
marked ``blocking = False`` on the caller's thread; a plain function or a codeloop Tool with a sync
``forward`` on a thread the run moves to at its first such call (so that the caller can still end
the run at the timeout if the tool hangs). Async tools (an async ``forward``, a coroutine function,
an ``acall`` of their own) are awaited on an event loop. When code awaits several
``tool.acall(...)`` at once, the host runs them concurrently. In code, then: ``result = search("x")`` (blocking) or
``a, b = await asyncio.gather(search.acall("x"), search.acall("y"))`` (concurrent).

When a run times out or breaks a limit, the worker is killed (even inside a C call), the step fails
with an InterpreterError, and a fresh worker is started at once; the error, and the logs of the next
run, say which variables were lost. Tools and variables given with send_tools/send_variables are
sent again to the new worker automatically.

``aexecute`` never blocks the event loop: the loop itself sends the run and awaits its end
(evloop.py), and a run that calls a tool other than an instant one moves to a thread of a private
pool; async tools are awaited on the caller's loop. Many executors can run concurrently in one process.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import logging
import secrets
import threading
import time
import weakref
from collections.abc import Callable
from typing import Any

from codeloop._sync import at_exit_before_thread_joins
from codeloop.errors import ExecutionTimeoutError, InterpreterError
from codeloop.executors.base import CodeOutput, PythonExecutor
from codeloop.executors.worker import codec, evloop
from codeloop.executors.worker.hosttools import (
    TOOLS,
    Counted,
    Run,
    await_tool,
    background_loop,
    drive_from_thread,
    error_of,
    reply,
    reply_from_future,
    route,
    shared_policy,
)
from codeloop.executors.worker.pool import WorkerPool
from codeloop.executors.worker.process import WorkerDied, WorkerProcess
from codeloop.executors.worker.protocol import call_parts
from codeloop.executors.worker.sandbox import Limits, bwrap_path, isolation_report

__all__ = ["LocalPythonExecutor"]

logger = logging.getLogger("codeloop.executors.worker")

# Threads that drive aexecute runs (mostly waiting in select).
_DRIVERS = concurrent.futures.ThreadPoolExecutor(max_workers=256, thread_name_prefix="codeloop-worker-run")
_LIVE: weakref.WeakSet[LocalPythonExecutor] = weakref.WeakSet()

HELLO_TIMEOUT = 30.0


def _close_all() -> None:
    for executor in list(_LIVE):
        try:
            executor.close()
        except Exception:  # noqa: BLE001
            pass


# a driver thread waiting on a stuck worker (timeout_seconds=None) would otherwise block exit forever
at_exit_before_thread_joins(_close_all)


class LocalPythonExecutor(PythonExecutor):
    """Runs agent code in a separate, sandboxed Python process (see the module docstring).

    Args:
        additional_authorized_imports: modules code may import on top of the default safe set ("*": all).
        max_print_outputs_length: cap on printed text kept in the logs.
        additional_functions: extra callables visible to code; like tools, they run on the host.
        timeout_seconds: wall-clock limit of one run; the worker is killed shortly after it.
        memory_mb, cpu_seconds, file_size_mb, open_files, max_processes: OS limits of the worker.
        scratch_mb: size of the worker's private scratch (a tmpfs with bubblewrap).
        sandbox: "auto" (bubblewrap when it works, else self-confinement), "bwrap", "self" or "none".
        pool: the WorkerPool to take workers from; default: the process-wide pool of ``pool_size`` and
            ``max_workers`` (``WorkerPool.shared``), so executors made with the same sizes share one.
        pool_size, max_workers: sizes of that shared pool (idle workers kept ready; most processes).
        pool_timeout: seconds to wait for a free worker when the pool is at ``max_workers``.
        **policy_kwargs: passed to ``Policy.from_args`` (e.g. max_operations, max_recursion_depth).
    """

    def __init__(
        self,
        additional_authorized_imports: list[str] | tuple[str, ...] | set[str] = (),
        max_print_outputs_length: int | None = None,
        additional_functions: dict[str, Callable[..., Any]] | None = None,
        timeout_seconds: float | None = 30,
        *,
        memory_mb: int | None = 2048,
        cpu_seconds: int | None = None,
        file_size_mb: int | None = 256,
        open_files: int | None = 256,
        max_processes: int | None = 64,
        scratch_mb: int = 512,
        sandbox: str = "auto",
        pool: WorkerPool | None = None,
        pool_size: int | None = None,
        max_workers: int | None = None,
        pool_timeout: float | None = None,
        **policy_kwargs: Any,
    ):
        if sandbox not in ("auto", "bwrap", "self", "none"):
            raise ValueError(f"sandbox must be 'auto', 'bwrap', 'self' or 'none', not {sandbox!r}")
        if sandbox == "bwrap" and bwrap_path() is None:
            raise RuntimeError(
                "sandbox='bwrap' was asked for but bubblewrap is not installed or cannot create namespaces "
                "here; run scripts/install-os-deps.sh or use sandbox='auto'"
            )
        self.additional_authorized_imports = sorted(set(additional_authorized_imports))
        self.max_print_outputs_length = max_print_outputs_length
        self.timeout_seconds = timeout_seconds
        self.sandbox = sandbox
        self.limits = Limits(
            memory_mb=memory_mb,
            cpu_seconds=cpu_seconds,
            file_size_mb=file_size_mb,
            open_files=open_files,
            processes=max_processes,
            scratch_mb=scratch_mb,
        )
        if max_print_outputs_length is not None:
            policy_kwargs["max_print_outputs_length"] = max_print_outputs_length
        # Built here, so bad arguments fail at construction; the child rebuilds it from plain data.
        self.policy, self._policy_data, key = shared_policy(
            self.additional_authorized_imports, timeout_seconds, policy_kwargs
        )
        self._tools: dict[str, Any] = dict(additional_functions or {})
        self._routes = {name: (tool, route(tool)) for name, tool in self._tools.items()}
        self._variables: dict[str, Any] = {}
        self._known_vars: list[str] = []
        self._note: str | None = None  # told to the next run after the worker was lost
        self._tape: dict[str, Any] | None = None  # for the next run (see set_tape)
        self._last_tape: dict[str, Any] | None = None
        self._run_lock = threading.Lock()
        self._worker: WorkerProcess | None = None
        self._synced = False  # tools/variables sent to the current worker
        self._isolation: dict[str, Any] | None = None
        self._closed = False
        self.pool = pool if pool is not None else WorkerPool.shared(pool_size, max_workers)
        self._pool_timeout = pool_timeout
        by = (
            ()
            if key is None or not isinstance(self.pool, WorkerPool)
            else ((*key, sandbox, *vars(self.limits).values()),)
        )
        self._flavor = self.pool.flavor(sandbox, self.limits, timeout_seconds, self._policy_data, *by)
        _LIVE.add(self)
        self._spawn()

    # -- public API ----------------------------------------------------------------------------
    def send_tools(self, tools: dict[str, Any]) -> None:
        """Make ``tools`` callable from code (they run on the host)."""
        for name, tool in tools.items():
            if not isinstance(name, str) or not name.isidentifier() or name.startswith("_"):
                raise ValueError(f"Invalid tool name {name!r}: tool names must be Python identifiers")
            if not callable(tool) and not callable(getattr(tool, "acall", None)):
                raise TypeError(f"Tool {name!r} is neither callable nor has an acall method")
        self._tools.update(tools)
        self._routes = {name: (tool, route(tool)) for name, tool in self._tools.items()}
        self._push({"op": "tools", "names": sorted(self._tools)})

    def send_variables(self, variables: dict[str, Any]) -> None:
        """Add variables to the code's namespace; they are sent again if the worker is replaced."""
        try:
            encoded = codec.encode(dict(variables), "pickle")
        except codec.CodecError as exc:
            raise InterpreterError(f"send_variables: {exc}") from None
        self._variables.update(variables)
        self._push({"op": "vars", "vars": encoded})

    def set_tape(self, spec: dict[str, Any] | None) -> None:
        """Record (or replay) the clock and random values of the next run; they come back with its
        result (see ``codeloop/executors/tape.py``)."""
        self._tape = spec

    def take_tape(self) -> dict[str, Any] | None:
        tape, self._last_tape = self._last_tape, None
        return tape

    def _push(self, message: dict[str, Any]) -> None:
        # A worker not yet greeted gets everything at its first run; a dead one is replaced and re-sent all.
        worker = self._worker
        if worker is not None and self._synced:
            try:
                worker.send(message)
            except WorkerDied:
                pass

    def __call__(self, code_action: str) -> CodeOutput:
        """Run code and wait for it (works in any thread, inside a running event loop too)."""
        return self._execute(code_action, None)

    async def aexecute(self, code_action: str) -> CodeOutput:
        """Run code without blocking the event loop; async tools are awaited on this loop."""
        loop = asyncio.get_running_loop()
        if self._worker is None and not self._closed:  # wait for a worker here, not on a driver thread
            worker = await self.pool.acheckout(self._flavor, self._pool_timeout)
            if self._worker is None and not self._closed:
                self._worker, self._synced = worker, False
            else:
                worker.close(graceful=False)
        worker = self._worker
        if self._fast(worker):  # the usual case: the loop drives the step (see evloop.py)
            with Counted():
                return await evloop.run_step(self, worker, code_action, loop)
        future = _DRIVERS.submit(self._execute, code_action, loop)
        try:
            return await asyncio.wrap_future(future)
        except asyncio.CancelledError:
            worker = self._worker  # the driver thread sees the worker die and cleans up
            if worker is not None:
                worker.kill("the run was cancelled")
            raise

    async def astate(self) -> dict[str, Any]:
        """``state`` without blocking the event loop."""
        worker = self._worker
        if self._synced and self._fast(worker):
            return await evloop.state(self, worker, asyncio.get_running_loop())
        return await asyncio.wrap_future(_DRIVERS.submit(getattr, self, "state"))

    def _fast(self, worker: WorkerProcess | None) -> bool:
        """Whether the event loop can drive this worker now (then the run lock is taken)."""
        return (
            worker is not None
            and worker.hello is not None
            and worker.alive()
            and self._run_lock.acquire(False)
        )

    def _resume(self, run: Run | None, then: Any) -> concurrent.futures.Future:
        """Go on with ``run`` on a driver thread (see _complete), or just call ``then`` there."""
        return _DRIVERS.submit(self._complete, run, then) if run is not None else _DRIVERS.submit(then)

    @property
    def isolation(self) -> dict[str, Any]:
        """Active isolation layers of the worker (what is missing is listed under "missing")."""
        if self._isolation is None and not self._closed:
            with self._run_lock:
                self._ready_worker()
        return dict(self._isolation or {})

    @property
    def state(self) -> dict[str, Any]:
        """User variables in the worker (values that cannot cross become their repr)."""
        with self._run_lock:
            worker = self._ready_worker()
            rid = self._new_id()
            deadline = time.monotonic() + 10
            try:
                worker.send({"op": "state", "id": rid})
                while True:
                    frame = worker.next_frame(deadline)
                    if frame is None:
                        return {}
                    if frame["op"] == "state" and frame.get("id") == rid:
                        decoded = codec.decode(frame.get("vars") or {})
                        return decoded if type(decoded) is dict else {}
                    worker.kill(f"the worker sent an unexpected message ({frame['op']!r}) and was stopped")
                    return {}
            except (WorkerDied, codec.CodecError):
                return {}

    @property
    def worker(self) -> WorkerProcess:
        """The worker process this executor uses now (checked out of its pool if it has none yet)."""
        with self._run_lock:
            return self._ready_worker()

    @property
    def worker_startup_seconds(self) -> float | None:
        return self._worker.startup_seconds if self._worker else None

    def close(self) -> None:
        self._closed = True
        worker, self._worker = self._worker, None
        if worker is not None:
            worker.close()

    async def aclose(self) -> None:
        """``close`` without waiting for the worker process to end (it is killed; the pool frees its
        place once its end is reported), so the event loop is not held up."""
        self._closed = True
        worker, self._worker = self._worker, None
        if worker is not None:
            worker.close(graceful=False, wait=False)

    cleanup = close  # smolagents' name for it on sandbox executors

    def __enter__(self) -> LocalPythonExecutor:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    async def __aenter__(self) -> LocalPythonExecutor:
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.aclose()

    def __del__(self) -> None:
        worker = getattr(self, "_worker", None)
        if worker is not None:
            try:
                worker.close(graceful=False, wait=False)  # (never wait inside the garbage collector)
            except Exception:  # noqa: BLE001
                pass

    # -- internals -------------------------------------------------------------------------
    def _new_id(self) -> int:
        # unpredictable, so code cannot pre-write answers to future requests on the raw pipe
        return secrets.randbits(62)

    def _spawn(self) -> None:
        """Take a ready worker from the pool if one is idle (else the next run checks one out)."""
        self._worker = self.pool.try_checkout(self._flavor)
        self._synced = False

    def _ready_worker(self) -> WorkerProcess:
        """The current worker, started, greeted and given the tools and variables."""
        if self._closed:
            raise InterpreterError("this executor is closed; create a new one")
        if self._worker is None or not self._worker.alive():
            if self._worker is not None:
                if self._worker.hello is not None:  # it died between runs (e.g. its lifetime CPU budget)
                    why = self._worker.describe_exit()
                    self._note = self._lost_note(f"The worker process had stopped between runs ({why})")
                    self._known_vars = []
                self._worker.close(graceful=False)
            self._worker, self._synced = None, False
        if self._worker is None:
            try:
                self._worker = self.pool.checkout(self._flavor, self._pool_timeout)
            except WorkerDied as exc:
                err = InterpreterError(f"The isolated Python worker could not start: {exc}")
                err.logs, err.exc_type = "", "WorkerStartError"  # type: ignore[attr-defined]
                raise err from None
        worker = self._worker
        assert worker is not None
        try:
            worker.wait_hello(HELLO_TIMEOUT)
        except WorkerDied as exc:
            raise self._start_failed(worker, f"could not start: {exc}") from None
        try:
            self._sync(worker)
        except WorkerDied as exc:
            raise self._start_failed(worker, f"stopped while starting: {exc}") from None
        return worker

    def _sync(self, worker: WorkerProcess) -> None:
        """Give a greeted worker the tools and variables (once)."""
        if self._isolation is None:
            self._isolation = isolation_report(
                worker.plan.host_report, (worker.hello or {}).get("isolation") or {}
            )
        if not self._synced:
            worker.send({"op": "tools", "names": sorted(self._tools)})
            if self._variables:
                worker.send({"op": "vars", "vars": codec.encode(self._variables, "pickle")})
            self._synced = True

    def _start_failed(self, worker: WorkerProcess, what: str) -> InterpreterError:
        self._worker = None
        worker.close(graceful=False)
        err = InterpreterError(f"The isolated Python worker {what}")
        err.logs, err.exc_type = "", "WorkerStartError"  # type: ignore[attr-defined]
        return err

    def _execute(self, code: str, loop: asyncio.AbstractEventLoop | None) -> CodeOutput:
        self._run_lock.acquire()
        try:
            worker = self._ready_worker()
        except BaseException:
            self._run_lock.release()
            raise
        return self._complete(self._send_run(worker, code, loop), None)

    def _send_run(self, worker: WorkerProcess, code: str, loop: asyncio.AbstractEventLoop | None) -> Run:
        """Send a run to the worker (with the run lock held; ``_complete`` or the caller releases it)."""
        timeout = self.timeout_seconds
        deadline = None if timeout is None else time.monotonic() + timeout + max(0.5, 0.1 * timeout)
        run = Run(worker, self._new_id(), timeout, deadline, loop)
        message: dict[str, Any] = {"op": "run", "id": run.rid, "code": code}
        tape, self._tape, self._last_tape = self._tape, None, None
        if tape is not None:
            message["tape"] = tape
        try:
            self._sync(worker)
            worker.send(message)
        except WorkerDied:
            pass  # its pipe is closed: _complete reads the end and says why
        return run

    def _complete(self, run: Run, first: Any) -> CodeOutput:
        """Drive the run to its end on this thread and release the run lock. ``first``: a frame
        already read, or a str: the run was given up (cancelled) for that reason."""
        # Tools never run inline on a thread that runs an event loop (sync __call__ from async
        # code): a function that starts its own loop would fail there.
        run.inline = asyncio.events._get_running_loop() is None
        counted = Counted()
        counted.__enter__()
        try:
            if type(first) is str:
                run.worker.kill(first)
                raise WorkerDied(run.worker.describe_exit())
            frame = self._drive(run, first)
            if frame is None:  # code called a plain function: a thread drives the rest
                frame = drive_from_thread(self, run)
            return self._finish(frame)
        except WorkerDied as exc:
            raise self._lost(run.worker, str(exc), close=not run.abandoned) from None
        finally:
            counted.__exit__()
            self._run_lock.release()

    def _drive(self, run: Run, first: Any = None) -> dict[str, Any] | None:
        """Serve the run's tool calls and return its "done" frame (touches no executor state).

        Returns None, with the call in ``run.pending``, at the first sync call of a plain function
        while plain functions may not run inline here (see _drive_from_thread).
        """
        worker, deadline, timeout = run.worker, run.deadline, run.timeout
        routes = self._routes
        while True:
            frame, first = first or worker.next_frame(deadline, spin=Counted.few()), None
            if frame is None:
                worker.kill(f"Code execution timed out after {timeout:g} seconds")
                raise WorkerDied(worker.describe_exit())
            call = call_parts(frame)
            if call is None:
                op = frame["op"]
                if op == "done" and frame.get("id") == run.rid:
                    return frame
                # the child never sends anything else during a run: forged or corrupt
                worker.kill(f"the worker sent an unexpected message ({op!r}) and was stopped")
                raise WorkerDied(worker.describe_exit())
            if not run.plain_inline and call[4] and routes.get(call[1], _NO_ROUTE)[1] == "thread":
                run.pending = call
                return None
            self._start_tool(run, *call)
            if deadline is not None and time.monotonic() > deadline:  # a slow inline tool
                worker.kill(f"Code execution timed out after {timeout:g} seconds")
                raise WorkerDied(worker.describe_exit())

    def _finish(self, frame: dict[str, Any]) -> CodeOutput:
        names = frame.get("vars")
        self._known_vars = [str(n) for n in names[:2000]] if type(names) is list else []
        tape = frame.get("tape")
        if type(tape) is dict:  # plain JSON from the worker: checked for its shape by the journal
            self._last_tape = tape
        note, self._note = self._note, None
        if not frame.get("ok"):
            error = frame.get("error")
            if type(error) is not dict:  # the frame is plain JSON, but its shape is the worker's choice
                error = {}
            message = str(error.get("message", "Code execution failed"))
            exc_type = str(error.get("exc_type", "InterpreterError"))
            if exc_type == "MemoryError" and self.limits.memory_mb:
                message += f" (the worker's memory limit is {self.limits.memory_mb} MB; see memory_mb)"
            if frame.get("fatal"):  # the worker exits after a fatal error: replace it now
                message += self._lost_suffix()
                self._note = self._lost_note()
                if self._worker is not None:
                    self._worker.close(graceful=False)
                self._spawn()
            err = (ExecutionTimeoutError if exc_type == "Timeout" else InterpreterError)(message)
            logs = frame["logs"] if "logs" in frame else error.get("logs", "")
            err.logs = (note + "\n" if note else "") + str(logs)  # type: ignore[attr-defined]
            err.exc_type = exc_type  # type: ignore[attr-defined]
            raise err
        try:
            output = codec.decode(frame.get("output"))
        except codec.CodecError as exc:
            output = f"<output could not be decoded: {exc}>"
        logs = str(frame.get("logs", ""))
        if note:
            logs = note + "\n" + logs
        return CodeOutput(output=output, logs=logs, is_final_answer=bool(frame.get("final")))

    def _lost_names(self) -> list[str]:
        return [n for n in self._known_vars if n not in self._variables and n not in self._tools]

    def _lost_suffix(self) -> str:
        names = self._lost_names()
        lost = ", ".join(names) if names else "none"
        return (
            f". The worker process was stopped and a fresh one runs the next code; variables lost: {lost}"
            " (tools and variables given with send_variables are restored)."
        )

    def _lost_note(self, lead: str = "The previous code ended its worker process") -> str:
        names = self._lost_names()
        lost = ", ".join(names) if names else "none"
        return f"[{lead}; this code ran in a fresh one. Variables lost: {lost}.]"

    def _lost(self, worker: WorkerProcess, reason: str, close: bool = True) -> InterpreterError:
        if close:
            worker.close(graceful=False)
        timed_out = reason.startswith("Code execution timed out")
        err = InterpreterError(reason[:1].upper() + reason[1:] + self._lost_suffix())
        err.logs = ""  # type: ignore[attr-defined]
        err.exc_type = "Timeout" if timed_out else "WorkerDied"  # type: ignore[attr-defined]
        self._note = self._lost_note()
        self._known_vars = []
        if not self._closed:
            self._spawn()  # warm replacement: the next run does not wait for a cold start
        else:
            self._worker = None
        return err

    # -- tool calls --------------------------------------------------------------------------
    def _start_tool(
        self, run: Run, cid: int, name: str, args: Any, kwargs: Any, sync: bool, box: bool, text: bool
    ) -> None:
        """The one place where the host starts a tool call from code (approval and telemetry hook here).

        The parts of a parsed call frame: ``cid`` an int, ``name`` a str, ``args`` and ``kwargs``
        whatever JSON the worker sent (``text``: all of them str, nothing to decode); ``sync``: the
        code waits for this call alone; ``box``: it came, and its answer goes, through the mailbox."""
        worker = run.worker
        tool, how = self._routes.get(name, _NO_ROUTE)
        if tool is None:
            reply(worker, cid, error=("NameError", f"no tool named {name!r}"), box=box)
            return
        if not text:
            try:
                if type(args) is not list or type(kwargs) is not dict:
                    raise codec.CodecError("bad call arguments")
                args = codec.decode_list(args)
                if kwargs:
                    kwargs = codec.decode(kwargs)
                    if not all(type(k) is str for k in kwargs):
                        raise codec.CodecError("bad call arguments")
            except codec.CodecError as exc:
                reply(worker, cid, error=("ValueError", str(exc)), box=box)
                return
        if sync and (run.plain_inline if how == "thread" else how == "inline" and run.inline):
            # An instant tool (blocking = False), or a plain function while a thread of its own drives
            # the run (see _drive_from_thread; _drive hands a run over before the first such call):
            # run it right here, with no thread or event-loop hop.
            try:
                value = tool(*args, **kwargs) if kwargs else tool(*args)
            except BaseException as exc:  # noqa: BLE001 - any tool error goes back to the code
                reply(worker, cid, error=error_of(exc), box=box)
            else:
                reply(worker, cid, value, None, box)
        elif how == "thread":  # concurrent calls (acall from code) of a plain function
            fut = TOOLS.submit(functools.partial(tool, *args, **kwargs))
            fut.add_done_callback(lambda f: reply_from_future(worker, cid, f, box))
        else:
            loop = run.loop
            acall = getattr(tool, "acall", None)
            coro = await_tool(acall if callable(acall) else tool, args, kwargs)
            target = loop if loop is not None and loop.is_running() else background_loop()
            fut = asyncio.run_coroutine_threadsafe(coro, target)
            fut.add_done_callback(lambda f: reply_from_future(worker, cid, f, box))


_NO_ROUTE: tuple[Any, str] = (None, "")
