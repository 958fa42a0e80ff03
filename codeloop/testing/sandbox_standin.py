"""What the stand-in cloud SDKs share: a "sandbox" that runs its commands as local processes, and a log.

Layer 2 (testing). The clouds (E2B, Modal, Blaxel) cannot be reached from a test, so their SDK classes
are replaced, at the SDK's own import path, by stand-ins with the same method names, parameters and
return shapes (``e2b_standin``, ``modal_standin``, ``blaxel_standin``). Behind them, a ``LocalSandbox``
runs each command as a local process: ``python3`` is this interpreter (so the worker really runs), the
environment holds only what the SDK call passed (never the test's own variables), and ``kill`` ends
every process of the sandbox and deletes the ``/tmp/codeloop-*`` directories its commands named.
(``python`` picks another program to be the sandbox's ``python3``.) ``python3 -m pip install ...`` is not run (no network in tests): it is recorded and answered as the
cloud would (success, or the failure set in ``pip_failure``).

Every SDK call is recorded in ``CallLog`` with its arguments, so a test can assert what crossed the
boundary: ``log.blob()`` holds every string and byte string any call carried (commands, files,
environment, stdin data), to check that no tool source or credential ever reached a sandbox.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

__all__ = ["CallLog", "LocalSandbox", "LocalProcess"]

_ROOTS = re.compile(r"/tmp/codeloop-[0-9a-zA-Z_-]+")


@dataclass
class CallLog:
    """Every SDK call a stand-in received: (name, args, kwargs), in order."""

    calls: list[tuple[str, tuple, dict]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def record(self, name: str, *args: Any, **kwargs: Any) -> None:
        with self._lock:
            self.calls.append((name, args, kwargs))

    def named(self, name: str) -> list[tuple[tuple, dict]]:
        with self._lock:
            return [(a, k) for n, a, k in self.calls if n == name]

    def names(self) -> list[str]:
        with self._lock:
            return [n for n, _, _ in self.calls]

    def blob(self) -> bytes:
        """Every str/bytes value in every recorded call (nested in lists, tuples and dicts too)."""
        out: list[bytes] = []

        def walk(value: Any) -> None:
            if isinstance(value, str):
                out.append(value.encode("utf-8", "replace"))
            elif isinstance(value, (bytes, bytearray, memoryview)):
                out.append(bytes(value))
            elif isinstance(value, dict):
                for k, v in value.items():
                    walk(k)
                    walk(v)
            elif isinstance(value, (list, tuple, set)):
                for v in value:
                    walk(v)

        with self._lock:
            for name, args, kwargs in self.calls:
                walk(name)
                walk(args)
                walk(kwargs)
        return b"\n".join(out)


def _python_shim(python: str | None = None) -> str:
    """A bin directory whose ``python3`` runs ``python`` (default: this interpreter, with its packages)."""
    python = python or sys.executable
    if python not in _SHIMS:
        d = tempfile.mkdtemp(prefix="codeloop-standin-bin-")
        path = os.path.join(d, "python3")
        with open(path, "w") as f:
            f.write(f'#!/bin/sh\nexec {shlex.quote(python)} "$@"\n')
        os.chmod(path, 0o755)
        _SHIMS[python] = d
    return _SHIMS[python]


_SHIMS: dict[str, str] = {}


class LocalProcess:
    """One command "in the sandbox": a local process group with piped stdin, stdout and stderr."""

    def __init__(self, argv: list[str], env: dict[str, str], cwd: str | None):
        self.argv = argv
        self.proc = subprocess.Popen(
            argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            cwd=cwd,
            start_new_session=True,
        )
        self.pid = self.proc.pid
        self._stdin_lock = threading.Lock()

    def write(self, data: bytes) -> None:
        with self._stdin_lock:
            assert self.proc.stdin is not None
            try:
                self.proc.stdin.write(data)
                self.proc.stdin.flush()
            except (BrokenPipeError, ValueError):
                pass

    def close_stdin(self) -> None:
        with self._stdin_lock:
            try:
                self.proc.stdin.close()  # type: ignore[union-attr]
            except OSError:
                pass

    def chunks(self, stream: str) -> Iterator[bytes]:
        """What the process writes to ``stream`` ("stdout"/"stderr"), as it comes, until it closes."""
        f = getattr(self.proc, stream)
        while True:
            data = os.read(f.fileno(), 65536)
            if not data:
                return
            yield data

    def kill(self) -> None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.pid, signal.SIGKILL)
            except OSError:
                pass
        self.proc.wait()

    def wait(self, timeout: float | None = None) -> int:
        return self.proc.wait(timeout)


class LocalSandbox:
    """One stand-in cloud sandbox: its environment, its processes, alive until ``kill``."""

    def __init__(
        self,
        log: CallLog,
        env: dict[str, str] | None = None,
        pip_failure: str | None = None,
        python: str | None = None,
    ):
        self.log = log
        self.env = dict(env or {})
        self.pip_failure = pip_failure
        self.python = python
        self.alive = True
        self.processes: list[LocalProcess] = []
        self.commands: list[str] = []
        self._lock = threading.Lock()

    def _env(self, extra: dict[str, Any] | None) -> dict[str, str]:
        env = {"PATH": f"{_python_shim(self.python)}:/usr/local/bin:/usr/bin:/bin", "HOME": "/tmp", "LANG": "C.UTF-8"}
        env.update(self.env)
        env.update({k: str(v) for k, v in (extra or {}).items() if v is not None})
        return env

    def is_pip(self, argv: list[str]) -> bool:
        return argv[:4] in (["python3", "-m", "pip", "install"], ["python", "-m", "pip", "install"]) or argv[
            :2
        ] in (["pip", "install"], ["pip3", "install"])

    def pip(self, argv: list[str]) -> tuple[int, str, str]:
        """A pip install, answered without running it: (exit code, stdout, stderr)."""
        if self.pip_failure:
            return 1, "", self.pip_failure
        names = [a for a in argv[4:] if not a.startswith("-")]
        return 0, "Successfully installed " + " ".join(names) + "\n", ""

    def start(
        self, argv: list[str], env: dict[str, Any] | None = None, cwd: str | None = None, command: str = ""
    ) -> LocalProcess:
        with self._lock:
            if not self.alive:
                raise RuntimeError("stand-in sandbox: the sandbox was killed")
            self.commands.append(command or shlex.join(argv))
            proc = LocalProcess(argv, self._env(env), cwd if cwd and os.path.isdir(cwd) else "/tmp")
            self.processes.append(proc)
            return proc

    def running(self) -> list[LocalProcess]:
        return [p for p in self.processes if p.proc.poll() is None]

    def kill(self) -> bool:
        with self._lock:
            was, self.alive = self.alive, False
            procs = list(self.processes)
        for p in procs:
            p.kill()
        for command in self.commands:
            for root in _ROOTS.findall(command):
                shutil.rmtree(root, ignore_errors=True)
        return was
