"""Entry point of the worker process (runs inside the sandbox).

Started by host.py through the bootstrap in sandbox.py with ``python -I -S -B``: no site, no user
environment, and the codeloop packages registered without running their ``__init__`` modules, so
only what the worker needs is imported. It confines itself (confine.py), says hello with the active
isolation layers, then serves frames: tools, variables, runs and state requests, one at a time.

A run that ends in MemoryError, or anything else that leaves the interpreter in doubt, is reported
as fatal and the worker exits; the host then starts a fresh one.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from codeloop.executors.worker import codec, confine, shm
from codeloop.executors.worker.protocol import MAX_FRAME, pack, pack_logged, write_frame
from codeloop.executors.worker.rpc import Channel, HostGone, ToolProxy

try:
    import resource
except ModuleNotFoundError:  # WebAssembly (Pyodide): no resource limits; confine.py reports them missing
    resource = None  # type: ignore[assignment]

# A result frame bigger than this is refused with a clear error (the host would kill the worker).
MAX_RESULT = MAX_FRAME // 2
MAX_VAR_NAMES = 2000


def main(cfg: dict[str, Any]) -> None:
    if cfg.get("zygote") is not None:  # a fork server: forkserver.py forks workers that call serve()
        from codeloop.executors.worker import forkserver

        forkserver.serve_forks(cfg)
        os._exit(0)
    if sys.platform == "emscripten":  # WebAssembly (Pyodide): an event loop that can block
        from codeloop.executors.worker import wasmloop

        wasmloop.install()
    box = shm.attach(cfg.get("shm"), host=False)
    if cfg.get("shm") is not None:
        _close_fds(int(cfg["shm"]))  # the mapping stays
    serve(cfg, box, confine.apply(cfg))


def serve(cfg: dict[str, Any], box: Any, report: dict[str, Any], session: Any = None) -> None:
    """Greet the host, then serve its frames until it says exit or goes away (never returns).
    ``session``: a fresh, never used session for ``cfg["policy"]`` (the fork server's spare)."""
    rfd, wfd = cfg["fds"]
    channel = Channel(rfd, wfd, box)
    # A forked copy of the worker must not talk on the host's pipe.
    os.register_at_fork(after_in_child=lambda: _close_fds(rfd, wfd))
    session_cls, policy_cls, interp_error = _load_core()
    # own_process: the worker owns its recursion limit
    if session is None:
        session = session_cls(policy_cls.from_dict(cfg["policy"]), own_process=True)
    channel.send({"op": "hello", "isolation": report, "pid": os.getpid()})
    cpu = (cfg.get("rlimits") or {}).get("cpu")
    _set_cpu_budget(cpu)  # for the first run (what starting up used is not counted against it)
    setup_errors: list[str] = []  # tools/variables that could not be installed; told at the next run
    try:
        while True:
            msg = channel.recv()
            op = msg["op"]
            if op == "run":
                if setup_errors:
                    reply = _error("; ".join(setup_errors), "SetupError", "") | {"vars": [], "fatal": False}
                    setup_errors.clear()
                    _send_reply(channel, reply, msg["id"])
                    continue
                channel.new_run()
                reply, fatal = _run(session, msg, interp_error)
                _send_reply(channel, reply, msg["id"])
                if fatal:
                    os._exit(4)
                # The next run's CPU budget, armed now rather than when it starts: off the path
                # between the host's request and the code (two system calls, slower right after
                # the worker wakes). What the worker uses between runs is next to nothing.
                _set_cpu_budget(cpu)
            elif op == "tools":
                for name in msg["names"]:
                    try:
                        session.add_tools({name: ToolProxy(name, channel)})
                    except (ValueError, TypeError) as exc:
                        setup_errors.append(f"tool {name!r} could not be installed: {exc}")
            elif op == "vars":
                for name, value in (msg["vars"] or {}).items():
                    try:
                        session.add_variables({name: codec.decode(value, allow_pickle=True)})
                    except Exception as exc:  # noqa: BLE001 - e.g. a pickled value whose module is not here
                        setup_errors.append(
                            f"variable {name!r} could not be loaded in the worker: {type(exc).__name__}: {exc}"
                        )
            elif op == "state":
                state = {k: v for k, v in _user_vars(session).items()}
                _send_reply(channel, {"op": "state", "vars": codec.encode(state, "repr")}, msg["id"])
            elif op == "exit":
                break
    except HostGone:
        pass
    sys.stdout.flush()
    os._exit(0)


def _load_core() -> tuple[Any, Any, type]:
    from codeloop.errors import InterpreterError
    from codeloop.executors.policy import Policy
    from codeloop.executors.session import ExecutionSession

    return ExecutionSession, Policy, InterpreterError


def _close_fds(*fds: int) -> None:
    for fd in fds:
        try:
            os.close(fd)
        except OSError:
            pass


def _set_cpu_budget(per_run: int | None) -> None:
    # RLIMIT_CPU counts the whole life of the process: give each run its own budget on top of what was used.
    if not per_run or resource is None:
        return
    try:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        soft, hard = resource.getrlimit(resource.RLIMIT_CPU)
        want = int(usage.ru_utime + usage.ru_stime) + per_run
        if hard != resource.RLIM_INFINITY:
            want = min(want, hard)
        if soft != want:  # whole seconds: mostly unchanged since the last run, which saves a syscall
            resource.setrlimit(resource.RLIMIT_CPU, (want, hard))
    except (ValueError, OSError):
        pass


def _user_vars(session: Any) -> dict[str, Any]:
    state = getattr(session, "state", None) or {}
    return {k: v for k, v in state.items() if type(k) is str and not k.startswith("_")}


def _run(session: Any, msg: dict[str, Any], interp_error: type) -> tuple[dict[str, Any], bool]:
    fatal = False
    if "tape" in msg:  # a stored run records (or replays) the clock and random values: see tape.py
        session.set_tape(msg["tape"])
    try:
        out = session.run(msg["code"])
        reply = {
            "op": "done",
            "ok": True,
            "output": codec.encode(out.output, "repr"),
            "logs": str(out.logs or ""),
            "final": bool(out.is_final_answer),
        }
    except interp_error as exc:
        reply = _error(
            str(exc), getattr(exc, "exc_type", None) or "InterpreterError", getattr(exc, "logs", "")
        )
        fatal = _is_fatal(exc)
    except HostGone:
        raise
    except MemoryError:
        reply, fatal = (
            _error("Code execution failed: MemoryError: the memory limit was reached", "MemoryError", ""),
            True,
        )
    except BaseException as exc:  # noqa: BLE001 - SystemExit, KeyboardInterrupt, session bugs
        reply = _error(
            f"Code execution failed: {type(exc).__name__}: {codec.safe_repr(exc, 2000)}",
            type(exc).__name__,
            "",
        )
        fatal = not isinstance(exc, (Exception, SystemExit, KeyboardInterrupt))
    # the names only (a cheap pass over the namespace: this runs after every run)
    names = sorted(k for k in session.namespace_keys() if type(k) is str and not k.startswith("_"))
    reply["vars"] = names[:MAX_VAR_NAMES]
    reply["fatal"] = fatal
    tape = session.take_tape()
    if tape is not None:
        reply["tape"] = tape
    return reply, fatal


def _is_fatal(exc: BaseException) -> bool:
    cause = exc.__cause__ or exc.__context__
    return getattr(exc, "exc_type", None) == "MemoryError" or isinstance(cause, MemoryError)


def _error(message: str, exc_type: str, logs: Any) -> dict[str, Any]:
    return {
        "op": "done",
        "ok": False,
        "error": {"message": message, "exc_type": str(exc_type), "logs": str(logs or "")},
    }


def _send_reply(channel: Channel, reply: dict[str, Any], req_id: int) -> None:
    reply["id"] = req_id
    logs: Any = None
    try:
        if reply.get("op") == "done":  # the printed output travels as raw text (see protocol.LOGGED)
            logs = reply.pop("logs", None)
            error = reply.get("error")
            if logs is None and isinstance(error, dict):
                logs = error.pop("logs", None)
            frame = pack_logged(reply, str(logs or ""))
        else:
            frame = pack(reply)
    except (ValueError, RecursionError, MemoryError) as exc:
        frame = pack(
            _error(f"the result could not be sent back: {type(exc).__name__}", "OutputError", "")
            | {"id": req_id}
        )
    if len(frame) > MAX_RESULT:
        logs = str(logs or "")[-10_000:]
        msg = (
            f"the result is too large to send back ({len(frame)} bytes, limit {MAX_RESULT}); "
            "return or print a smaller value (a summary, a slice, a file path in the scratch directory)"
        )
        frame = pack(_error(msg, "OutputTooLarge", logs) | {"id": req_id, "vars": reply.get("vars", [])})
    write_frame(channel.wfd, frame)
