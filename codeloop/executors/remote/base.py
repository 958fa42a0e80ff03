"""The shared base of remote sandboxes: ``RemoteExecutor``, the ``Sandbox`` transport and ``RemoteWorker``.

Layer 3 (executors). A remote executor is the local executor (worker/host.py's
``LocalPythonExecutor``) whose worker process runs in a sandbox a backend opens, instead of coming
from the local WorkerPool. Everything else is host.py's own code, unchanged: the policy, variables
kept across steps, printed output, tools that stay on the host (code calls proxies; the host runs the
tool and answers over the frame protocol, so tool source and credentials never enter the sandbox),
values through the safe codec (the host never unpickles what the sandbox sends), and timeouts that
kill the sandbox, start a fresh one and tell the model which variables were lost.

The contract for a backend (docker.py is the worked example):

1. Subclass ``Sandbox``: one running sandbox with codeloop's worker in it. Either give real file
   descriptors (``fds()`` -> (read, write): the worker's stdout and stdin) or implement ``read``,
   ``write`` and ``close_input`` on the SDK's stream (a relay thread pair then pumps it through a
   socketpair, see relay.py). Implement ``poll``/``wait`` (exit status; ``wait`` raises
   ``subprocess.TimeoutExpired``; a negative status -N means "ended by signal N") and ``kill``
   (stop and delete the sandbox for good; idempotent, any thread). Optionally ``stderr_tail``
   (the worker's last error output, shown when it dies).
2. Subclass ``RemoteExecutor``; in ``__init__``, check the configuration and connect (so that a
   mistake fails at construction, not at the first step), set ``self.backend`` (a short name) and
   ``self.sandbox_isolation`` (what the sandbox itself gives: a dict like ``executor.isolation``,
   e.g. {"sandbox": "docker", "network": "none", ...}, with a "missing" list), then call
   ``super().__init__``; implement ``_open_sandbox(cfg)``: start the sandbox, run
   ``ship.boot_argv(cfg)`` in it (the worker modules from ``ship.worker_files()``/``worker_tar()``
   placed under ``ship.SANDBOX_ROOT``, or another root given to ``_worker_config``; a runtime that
   cannot run that command, such as Pyodide, boots ``child.main(cfg)`` its own way with ``cfg["fds"]``
   set to its frame stream), and return the ``Sandbox``. It runs on a background thread; raise an
   exception with a clear message on failure. Override ``_worker_config`` to change where the
   modules live, or to turn off seccomp/site/Landlock (confine.py reports what it could not apply).
   Tests: tests/remote_standin.py is a minimal backend (a local process) to copy from.
3. Optionally ``close`` (release the client), calling ``super().close()``.

A sandbox is opened in the background when the executor is created and again right after one is lost
(a timeout, a crash), so a step rarely waits for a cold start. ``executor.isolation`` merges the
backend's report with the worker's own (resource limits, seccomp...), "missing" listing every layer
that is not active.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import io
import logging
import threading
import time
import weakref
from abc import ABC, abstractmethod
from typing import Any

from codeloop._sync import at_exit_before_thread_joins
from codeloop.executors.worker.host import LocalPythonExecutor
from codeloop.executors.worker.process import WorkerDied, WorkerProcess
from codeloop.executors.worker.sandbox import Limits, SandboxPlan

from .relay import relay
from .ship import worker_config

__all__ = ["Sandbox", "RemoteWorker", "RemoteExecutor", "track", "untrack"]

# Sandboxes a backend started and has not ended yet, killed at interpreter exit (also those no
# executor holds any more, such as a spare still opening).
_LIVE: weakref.WeakSet[Sandbox] = weakref.WeakSet()


def track(sandbox: Sandbox) -> None:
    """Have ``sandbox`` killed at interpreter exit unless ``untrack`` comes first."""
    _LIVE.add(sandbox)


def untrack(sandbox: Sandbox) -> None:
    _LIVE.discard(sandbox)


def _kill_live() -> None:
    for sandbox in list(_LIVE):
        sandbox.kill()


at_exit_before_thread_joins(_kill_live)

logger = logging.getLogger("codeloop.executors.remote")

# Threads that open sandboxes (mostly waiting on an SDK or engine).
_OPENERS = concurrent.futures.ThreadPoolExecutor(max_workers=32, thread_name_prefix="codeloop-sandbox-open")

_NOT_FOR_REMOTE = ("pool", "pool_size", "max_workers", "pool_timeout", "sandbox")


class Sandbox(ABC):
    """One running sandbox with codeloop's worker in it (see the module docstring for the contract)."""

    returncode: int | None = None

    def fds(self) -> tuple[int, int] | None:
        """Real descriptors of the worker's stdout (read) and stdin (write), owned by the caller; or None."""
        return None

    def read(self, n: int) -> bytes:
        """Up to ``n`` bytes the worker wrote to stdout (blocking); b"" once it ended."""
        raise NotImplementedError

    def write(self, data: bytes) -> None:
        """Send all of ``data`` to the worker's stdin."""
        raise NotImplementedError

    def close_input(self) -> None:  # noqa: B027 - optional
        """The host will send nothing more (the worker sees end of file)."""

    @abstractmethod
    def poll(self) -> int | None:
        """The exit status once the worker ended, else None."""

    @abstractmethod
    def wait(self, timeout: float | None = None) -> int:
        """Wait for the end; raise ``subprocess.TimeoutExpired`` after ``timeout`` seconds."""

    @abstractmethod
    def kill(self) -> None:
        """Stop the worker and delete the sandbox (idempotent; any thread)."""

    def sweep(self) -> None:
        """Last resort when ``wait`` after ``kill`` timed out."""
        self.kill()

    def stderr_tail(self) -> str:
        return ""


class RemoteWorker(WorkerProcess):
    """host.py's worker over a sandbox: frames on the sandbox's byte stream, no shared-memory mailbox."""

    def __init__(self, sandbox: Sandbox, host_report: dict[str, Any], name: str = "sandbox"):
        try:
            fds = sandbox.fds() or relay(sandbox, name)
        except BaseException:
            sandbox.kill()
            raise
        plan = SandboxPlan(
            argv=[], env={}, cwd="", scratch="", uid=None, child_cfg={}, host_report=host_report
        )
        # (adopt's path: a worker not started by WorkerProcess itself; it is killed, never asked to exit)
        self.started = 0.0
        self.plan, self.proc, self._stderr = plan, sandbox, io.BytesIO()
        self.sandbox = sandbox
        self._setup(fds[0], fds[1], None)

    def _forked(self) -> bool:
        return False  # a sandbox is ended by its own transport, never through a fork server

    def kill(self, reason: str | None = None) -> None:
        super().kill(reason)
        # the base kills only a process still running; a cloud sandbox outlives a worker command that
        # ended by itself (a crash, no Python), so it is deleted here too (Sandbox.kill is idempotent)
        self.sandbox.kill()

    def _stderr_tail(self, limit: int = 2000) -> str:
        try:
            return self.sandbox.stderr_tail()[-limit:].strip()
        except Exception:  # noqa: BLE001 - the sandbox may be gone
            return ""


class _Flavor:
    def __init__(self, limits: Limits, timeout: float | None, policy: dict[str, Any]):
        self.limits, self.timeout, self.policy = limits, timeout, policy


class _SandboxSource:
    """What host.py asks of a WorkerPool, for one remote executor: one sandbox in use, the next one
    opened in the background as soon as it is wanted (at creation and after a loss)."""

    def __init__(self, opener: weakref.WeakMethod):
        self._opener = opener
        self._next: concurrent.futures.Future | None = None
        self._lock = threading.Lock()
        self._closed = False
        self.armed = False  # the executor is fully built: sandboxes may be opened in the background
        self.spare = False  # keep the next sandbox opening while one is in use (slow-starting backends)

    def flavor(self, sandbox: str, limits: Limits, timeout: float | None, policy: dict[str, Any]) -> _Flavor:
        return _Flavor(limits, timeout, policy)

    def _open(self, flavor: _Flavor) -> RemoteWorker:
        opener = self._opener()
        if opener is None:
            raise WorkerDied("the executor was deleted")
        try:
            return opener(flavor)
        except WorkerDied:
            raise
        except Exception as exc:  # noqa: BLE001 - any backend or SDK error: told to the model and user
            raise WorkerDied(f"the sandbox could not be started: {type(exc).__name__}: {exc}") from exc

    def _take(self, flavor: _Flavor) -> concurrent.futures.Future:
        with self._lock:
            if self._closed:
                raise WorkerDied("the executor is closed")
            fut, self._next = self._next, None
            if fut is None:
                fut = _OPENERS.submit(self._open, flavor)
            if self.spare and self.armed:
                self._next = _OPENERS.submit(self._open, flavor)
            return fut

    def try_checkout(self, flavor: _Flavor) -> RemoteWorker | None:
        with self._lock:
            if self._closed or not self.armed:
                return None
            if self._next is None:
                self._next = _OPENERS.submit(self._open, flavor)
            fut = self._next
            if not fut.done() or fut.exception() is not None:
                return None
            self._next = _OPENERS.submit(self._open, flavor) if self.spare else None
            return fut.result()

    def checkout(self, flavor: _Flavor, timeout: float | None = None) -> RemoteWorker:
        return self._take(flavor).result()

    async def acheckout(self, flavor: _Flavor, timeout: float | None = None) -> RemoteWorker:
        return await asyncio.wrap_future(self._take(flavor))

    def close(self) -> None:
        with self._lock:
            self._closed = True
            fut, self._next = self._next, None
        if fut is not None:  # one still opening: close it when it is there
            fut.add_done_callback(_close_opened)


def _close_opened(fut: concurrent.futures.Future) -> None:
    if fut.exception() is None:
        fut.result().close(graceful=False)


class RemoteExecutor(LocalPythonExecutor):
    """Runs agent code in a remote sandbox with host.py's behaviour (see the module docstring).

    Args:
        additional_imports: smolagents' name: modules code may import (and, where the backend can,
            packages installed in the sandbox); merged with ``additional_authorized_imports``.
        logger: accepted for smolagents compatibility (codeloop logs to ``codeloop.executors.remote``).
        allow_pickle: smolagents' fallback to pickle for values from the sandbox; codeloop never
            unpickles what a sandbox sends (values the safe codec cannot carry arrive as their repr),
            so True only logs a warning.
        **kwargs: ``LocalPythonExecutor``'s arguments (timeout_seconds, memory_mb, max_processes,
            max_print_outputs_length, additional_functions, policy options...), except the local pool's.
    """

    backend = "remote"
    sandbox_isolation: dict[str, Any] = {}
    #: keep a spare sandbox starting while one is in use, so a lost one is replaced at once
    keep_spare = False

    def __init__(
        self,
        additional_imports: list[str] | tuple[str, ...] | None = None,
        logger: Any = None,
        allow_pickle: bool = False,
        *,
        additional_authorized_imports: list[str] | tuple[str, ...] | set[str] | None = None,
        **kwargs: Any,
    ):
        wrong = sorted(set(kwargs) & set(_NOT_FOR_REMOTE))
        if wrong:
            raise TypeError(
                f"{type(self).__name__} does not take {', '.join(wrong)} (the local worker pool's options)"
            )
        if allow_pickle:
            logging.getLogger("codeloop.executors.remote").warning(
                "allow_pickle=True is ignored: codeloop never unpickles values from a sandbox; "
                "values the safe codec cannot carry arrive as their repr"
            )
        self.logger = logger
        self.allow_pickle = False
        imports = sorted({*(additional_imports or ()), *(additional_authorized_imports or ())})
        self._source = _SandboxSource(weakref.WeakMethod(self._open_worker))
        self._source.spare = self.keep_spare
        # The policy is built without the imports first: Policy.from_args checks that they are
        # installed on the host, but they only need to be in the sandbox (the backend sees to it).
        super().__init__((), pool=self._source, sandbox="none", **kwargs)  # type: ignore[arg-type]
        self.sandbox = self.backend
        self.additional_authorized_imports = imports
        self.policy = self.policy.with_imports(*imports)
        self._policy_data = self.policy.to_dict()
        self._flavor = self._source.flavor(self.sandbox, self.limits, self.timeout_seconds, self._policy_data)
        self._source.armed = True
        self._spawn()  # the first sandbox starts opening now

    @property
    def additional_imports(self) -> list[str]:
        return list(self.additional_authorized_imports)

    def _worker_config(self, flavor: Any) -> dict[str, Any]:
        """The worker's config in the sandbox (see ship.worker_config)."""
        return worker_config(flavor.limits, flavor.timeout, flavor.policy)

    @abstractmethod
    def _open_sandbox(self, cfg: dict[str, Any]) -> Sandbox:
        """Start a sandbox running ``ship.boot_argv(cfg)`` and return it (background thread)."""

    def _open_worker(self, flavor: Any) -> RemoteWorker:
        report = {k: v for k, v in self.sandbox_isolation.items() if k != "missing"}
        report["missing"] = list(self.sandbox_isolation.get("missing", []))
        report.setdefault("sandbox", self.backend)
        started = time.perf_counter()
        worker = RemoteWorker(self._open_sandbox(self._worker_config(flavor)), report, self.backend)
        worker.started = started
        return worker

    def close(self) -> None:
        super().close()
        self._source.close()

    async def aclose(self) -> None:
        await super().aclose()
        self._source.close()  # the warm spare too, or it outlives the executor

    cleanup = close

    def __del__(self) -> None:
        try:
            self._source.close()
        except Exception:  # noqa: BLE001
            pass
        super().__del__()
