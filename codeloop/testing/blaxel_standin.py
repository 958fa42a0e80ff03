"""A stand-in for the Blaxel SDK's ``blaxel.core.SyncSandboxInstance``, for tests that cannot reach Blaxel.

Layer 2 (testing). ``BlaxelCloud().patch()`` replaces ``blaxel.core.SyncSandboxInstance`` (the real SDK
stays installed: its ``ProcessResponse`` model and error classes are used as they are) with a class
whose ``create(config)``, ``delete()``, ``process.exec(request)``, ``process.stream_logs(name,
options)`` (stdout and stderr as lines without their newline, from a background thread),
``process.write_stdin(name, data)``, ``process.wait(name, max_wait, interval)`` and
``process.kill(name)`` take the real parameters and run each command as a local process
(sandbox_standin.py). ``duplicate_every=N`` sends every Nth stdout line twice, as a log stream that
reconnected may. Credentials: BL_API_KEY must be one of ``api_keys`` (and BL_WORKSPACE set), else the
SDK's ``CredentialsError`` (missing) or ``SandboxAPIError`` with status 401 (rejected).
"""

from __future__ import annotations

import contextlib
import os
import shlex
import threading
import time
from collections.abc import Callable, Iterator
from types import SimpleNamespace
from typing import Any

from .sandbox_standin import CallLog, LocalProcess, LocalSandbox

__all__ = ["BlaxelCloud"]


class BlaxelCloud:
    """The fake Blaxel service: accepted keys, the sandboxes created, the log of every call."""

    def __init__(
        self, api_keys: tuple[str, ...] = ("bl_test_key",), pip_failure: str | None = None, duplicate_every: int = 0
    ):
        self.api_keys = api_keys
        self.pip_failure = pip_failure
        self.duplicate_every = duplicate_every
        self.log = CallLog()
        self.sandboxes: list[Any] = []
        self.SyncSandboxInstance = _instance_class(self)

    def running(self) -> list[Any]:
        return [s for s in self.sandboxes if s._local.alive]

    @contextlib.contextmanager
    def patch(self) -> Iterator[BlaxelCloud]:
        import blaxel.core

        saved = blaxel.core.SyncSandboxInstance
        blaxel.core.SyncSandboxInstance = self.SyncSandboxInstance
        try:
            yield self
        finally:
            blaxel.core.SyncSandboxInstance = saved


def _response(name: str, command: str, proc: LocalProcess | None, status: str, code: int, out: str = "", err: str = ""):
    from blaxel.core.sandbox.client.models import ProcessResponse
    from blaxel.core.sandbox.client.models.process_response_status import ProcessResponseStatus

    return ProcessResponse(
        command=command,
        completed_at="" if status == "running" else time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime()),
        exit_code=code,
        logs=out + err,
        name=name,
        pid=str(proc.pid if proc else 0),
        started_at=time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime()),
        status=ProcessResponseStatus(status),
        stderr=err,
        stdout=out,
        working_dir="/tmp",
    )


class _Process:
    def __init__(self, cloud: BlaxelCloud, instance: Any):
        self._cloud, self._instance = cloud, instance
        self._procs: dict[str, tuple[LocalProcess, str, bool]] = {}

    def _get(self, identifier: str) -> tuple[LocalProcess, str, bool]:
        from blaxel.core.sandbox.default.sandbox import SandboxAPIError

        entry = self._procs.get(identifier)
        if entry is None:
            raise SandboxAPIError(f"process {identifier} not found", status_code=404)
        return entry

    def exec(self, process: Any) -> Any:
        request = dict(process) if isinstance(process, dict) else process.to_dict()
        callbacks = {k: request.pop(k, None) for k in ("on_log", "on_stdout", "on_stderr")}
        self._cloud.log.record("process.exec", request)
        local: LocalSandbox = self._instance._local
        name, command = request.get("name") or f"proc-{len(self._procs)}", request["command"]
        argv = shlex.split(command)
        if local.is_pip(argv):
            local.commands.append(command)
            code, out, err = local.pip(argv)
            for line in (out + err).splitlines():
                for key in ("on_log", "on_stdout" if not err else "on_stderr"):
                    if callbacks.get(key):
                        callbacks[key](line)
            return _response(name, command, None, "failed" if code else "completed", code, out, err)
        if name in self._procs and self._procs[name][0].proc.poll() is None:
            from blaxel.core.sandbox.default.sandbox import SandboxAPIError

            raise SandboxAPIError(f"process {name} is already running", status_code=400)
        env = request.get("env") or None
        proc = local.start(["sh", "-c", command], env=env, cwd=request.get("working_dir"), command=command)
        stdin = bool(request.get("stdin"))
        if not stdin:
            proc.close_stdin()
        self._procs[name] = (proc, command, stdin)
        if request.get("wait_for_completion"):
            out, err = (b"".join(proc.chunks(s)).decode("utf-8", "replace") for s in ("stdout", "stderr"))
            code = proc.wait()
            for line in (out + err).splitlines():
                if callbacks.get("on_log"):
                    callbacks["on_log"](line)
            return _response(name, command, proc, "completed" if code == 0 else "failed", code, out, err)
        return _response(name, command, proc, "running", 0)

    def stream_logs(self, process_name: str, options: dict[str, Callable[[str], None]] | None = None) -> Any:
        self._cloud.log.record("process.stream_logs", process_name)
        proc, _, _ = self._get(process_name)
        options = options or {}
        closed = threading.Event()
        every = self._cloud.duplicate_every

        def pump(stream: str, key: str) -> None:
            buffer, n = b"", 0
            for chunk in proc.chunks(stream):
                buffer += chunk
                *lines, buffer = buffer.split(b"\n")
                for raw in lines:
                    line = raw.decode("utf-8", "replace")
                    n += 1
                    for _ in range(2 if every and n % every == 0 else 1):
                        if closed.is_set():
                            return
                        for k in (key, "on_log"):
                            if options.get(k):
                                options[k](line)

        threads = [
            threading.Thread(target=pump, args=(s, k), daemon=True)
            for s, k in (("stdout", "on_stdout"), ("stderr", "on_stderr"))
        ]
        for t in threads:
            t.start()

        def wait(timeout: float | None = None) -> None:
            for t in threads:
                t.join(timeout)

        from blaxel.core.sandbox.types import StreamHandle

        return StreamHandle(closed.set, wait)

    def write_stdin(self, identifier: str, data: str | bytes) -> Any:
        self._cloud.log.record("process.write_stdin", identifier, data)
        proc, _, stdin = self._get(identifier)
        if not stdin or proc.proc.poll() is not None:
            from blaxel.core.sandbox.default.sandbox import SandboxAPIError

            raise SandboxAPIError(f"process {identifier} has no open stdin", status_code=409)
        proc.write(data.encode() if isinstance(data, str) else bytes(data))
        return SimpleNamespace(message="ok")

    def wait(self, identifier: str, max_wait: int = 60000, interval: int = 1000) -> Any:
        self._cloud.log.record("process.wait", identifier, max_wait=max_wait)
        proc, command, _ = self._get(identifier)
        try:
            code = proc.wait(None if max_wait == -1 else max_wait / 1000)
        except Exception:
            raise TimeoutError(f"Process did not finish in time ({identifier}); it may still be running") from None
        status = "killed" if code < 0 else ("completed" if code == 0 else "failed")
        return _response(identifier, command, proc, status, code)

    def kill(self, identifier: str) -> Any:
        self._cloud.log.record("process.kill", identifier)
        proc, _, _ = self._get(identifier)
        proc.kill()
        return SimpleNamespace(message="ok")


def _instance_class(cloud: BlaxelCloud) -> type:
    class SyncSandboxInstance:
        """Stand-in for ``blaxel.core.SyncSandboxInstance`` (see the module docstring)."""

        def __init__(self, config: dict[str, Any]):
            envs = {e["name"]: e["value"] for e in config.get("envs") or []}
            self.config = config
            self.metadata = SimpleNamespace(name=config.get("name"), labels=config.get("labels"))
            self._local = LocalSandbox(cloud.log, envs, cloud.pip_failure)
            self.process = _Process(cloud, self)

        @classmethod
        def create(
            cls,
            sandbox: Any = None,
            safe: bool = False,
            create_if_not_exist: bool = False,
            timeout: int | None = None,
            *,
            mount_drives: Any = None,
        ) -> Any:
            from blaxel.core.authentication.types import CredentialsError
            from blaxel.core.sandbox.default.sandbox import SandboxAPIError

            config = dict(sandbox or {})
            cloud.log.record("SyncSandboxInstance.create", config)
            key, workspace = os.environ.get("BL_API_KEY"), os.environ.get("BL_WORKSPACE")
            if not key or not workspace:
                raise CredentialsError(
                    "No Blaxel credentials found. Set the BL_API_KEY and BL_WORKSPACE environment variables, "
                    "or run `bl login`."
                )
            if key not in cloud.api_keys:
                raise SandboxAPIError("Unauthorized", status_code=401, code="UNAUTHORIZED")
            if any(s.config.get("name") == config.get("name") for s in cloud.running()):
                raise SandboxAPIError("sandbox already exists", status_code=409, code="SANDBOX_ALREADY_EXISTS")
            instance = cls(config)
            cloud.sandboxes.append(instance)
            return instance

        def delete(self) -> Any:
            cloud.log.record("SyncSandboxInstance.delete", self.metadata.name)
            self._local.kill()
            return self

    return SyncSandboxInstance
