"""A stand-in remote backend for the shared base's tests: the "sandbox" is a plain local process.

The worker modules are shipped into a fresh directory (``ship.worker_tar``, as a backend would upload
them), and the worker is started with ``ship.boot_argv``; its byte stream is either real pipe fds or,
with ``relayed=True``, the relay threads over ``read``/``write`` (as SDK streams are).
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import tarfile
import tempfile
import threading
from typing import Any

from codeloop.executors.remote.base import RemoteExecutor, Sandbox
from codeloop.executors.remote.ship import boot_argv, worker_tar


class ProcessSandbox(Sandbox):
    def __init__(self, argv: list[str], root: str, relayed: bool):
        self.root = root
        self.relayed = relayed
        self.proc = subprocess.Popen(
            argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=root, env={}
        )
        self._err = bytearray()
        threading.Thread(target=self._drain, daemon=True).start()

    def _drain(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self._err += line

    def fds(self) -> tuple[int, int] | None:
        if self.relayed:
            return None
        assert self.proc.stdout is not None and self.proc.stdin is not None
        return os.dup(self.proc.stdout.fileno()), os.dup(self.proc.stdin.fileno())

    def read(self, n: int) -> bytes:
        return os.read(self.proc.stdout.fileno(), n)  # type: ignore[union-attr]

    def write(self, data: bytes) -> None:
        self.proc.stdin.write(data)  # type: ignore[union-attr]
        self.proc.stdin.flush()  # type: ignore[union-attr]

    def close_input(self) -> None:
        try:
            self.proc.stdin.close()  # type: ignore[union-attr]
        except OSError:
            pass

    def poll(self) -> int | None:
        return self.proc.poll()

    def wait(self, timeout: float | None = None) -> int:
        return self.proc.wait(timeout)

    @property
    def returncode(self) -> int | None:  # type: ignore[override]
        return self.proc.returncode

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()

    def stderr_tail(self) -> str:
        return self._err.decode("utf-8", "replace")


class ProcessExecutor(RemoteExecutor):
    backend = "process-standin"

    def __init__(self, *args: Any, relayed: bool = False, **kwargs: Any):
        self.relayed = relayed
        self.roots: list[str] = []
        self.sandboxes: list[ProcessSandbox] = []
        self.sandbox_isolation = {"process": True, "missing": ["stand-in: no sandbox at all"]}
        super().__init__(*args, **kwargs)

    def _open_sandbox(self, cfg: dict[str, Any]) -> Sandbox:
        root = tempfile.mkdtemp(prefix="codeloop-standin-")
        with tarfile.open(fileobj=io.BytesIO(worker_tar("")), mode="r") as tar:
            tar.extractall(root, filter="data")
        cfg = dict(cfg)
        pkg = os.path.join(root, "codeloop")
        cfg["packages"] = [[n, pkg + p[len("/opt/codeloop/codeloop") :]] for n, p in cfg["packages"]]
        cfg["landlock"] = {"ro": ["/usr", "/lib", "/lib64", sys.base_prefix, root], "rw": ["/dev/null"]}
        sandbox = ProcessSandbox(boot_argv(cfg, sys.executable), root, self.relayed)
        self.roots.append(root)
        self.sandboxes.append(sandbox)
        return sandbox
