"""A stand-in for the E2B SDK's ``e2b.Sandbox`` (sync API of e2b 2.x), for tests that cannot reach E2B.

Layer 2 (testing). ``E2BCloud().patch()`` replaces ``e2b.Sandbox`` (the real SDK stays installed: its
exception and result classes are used as they are) with a class whose ``create``, ``commands.run``,
``commands.send_stdin``, ``files.write``, ``update_network``, ``kill``... take the real parameters,
return the real shapes (a ``CommandHandle``-like object iterating ``(stdout, stderr, pty)`` tuples of
text decoded like the SDK does, ``e2b.CommandResult``, ``e2b.CommandExitException``) and run each
command as a local process (sandbox_standin.py). API keys: ``api_key=`` or ``E2B_API_KEY`` must be
one of ``api_keys``, else ``e2b.AuthenticationException`` as the SDK raises it. ``greeting``: a line
the login shell prints before each command; ``python``: another program as the sandbox's python3.
"""

from __future__ import annotations

import codecs
import contextlib
import itertools
import os
import shlex
import threading
from collections.abc import Callable, Iterator
from typing import Any

from .sandbox_standin import CallLog, LocalProcess, LocalSandbox

__all__ = ["E2BCloud"]

_IDS = itertools.count(1)


class E2BCloud:
    """The fake E2B service: accepted keys, the sandboxes created, the log of every call."""

    def __init__(
        self,
        api_keys: tuple[str, ...] = ("e2b_test_key",),
        pip_failure: str | None = None,
        python: str | None = None,
        greeting: str = "",
    ):
        self.api_keys = api_keys
        self.greeting = greeting
        self.pip_failure = pip_failure
        self.python = python
        self.log = CallLog()
        self.sandboxes: list[Any] = []
        self.Sandbox = _sandbox_class(self)

    def running(self) -> list[Any]:
        """Sandboxes not killed yet."""
        return [s for s in self.sandboxes if s._local.alive]

    @contextlib.contextmanager
    def patch(self) -> Iterator[E2BCloud]:
        import e2b

        saved = e2b.Sandbox
        e2b.Sandbox = self.Sandbox
        try:
            yield self
        finally:
            e2b.Sandbox = saved


class _Handle:
    """Like e2b's CommandHandle: pid, iteration over output, wait, kill, send_stdin, close_stdin."""

    def __init__(self, commands: _Commands, proc: LocalProcess, timeout: float | None):
        self._commands, self._proc, self.pid = commands, proc, proc.pid
        self._result: Any = None
        self._out: list[Any] = []
        self._ready = threading.Condition()
        self._open = 2
        if timeout:  # the SDK's command timeout ends the command (0/None: no limit)
            timer = threading.Timer(timeout, proc.kill)
            timer.daemon = True
            timer.start()
        for stream in ("stdout", "stderr"):
            threading.Thread(target=self._pump, args=(stream,), daemon=True).start()

    def _pump(self, stream: str) -> None:
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        for chunk in self._proc.chunks(stream):
            text = decoder.decode(chunk)
            if text:
                with self._ready:
                    self._out.append((text, None, None) if stream == "stdout" else (None, text, None))
                    self._ready.notify_all()
        with self._ready:
            self._open -= 1
            self._ready.notify_all()

    def __iter__(self) -> Iterator[tuple[str | None, str | None, None]]:
        i = 0
        while True:
            with self._ready:
                while i >= len(self._out) and self._open:
                    self._ready.wait()
                if i >= len(self._out):
                    break
                item = self._out[i]
            i += 1
            yield item
        import e2b

        code = self._proc.wait()
        out = "".join(o for o, _, _ in self._out if o)
        err = "".join(e for _, e, _ in self._out if e)
        self._result = e2b.CommandResult(stderr=err, stdout=out, exit_code=code, error=None)

    def wait(
        self,
        on_pty: Callable[[Any], None] | None = None,
        on_stdout: Callable[[str], None] | None = None,
        on_stderr: Callable[[str], None] | None = None,
    ) -> Any:
        import e2b

        for out, err, _ in self:
            if out is not None and on_stdout:
                on_stdout(out)
            elif err is not None and on_stderr:
                on_stderr(err)
        result = self._result
        if result.exit_code != 0:
            raise e2b.CommandExitException(
                stdout=result.stdout, stderr=result.stderr, exit_code=result.exit_code, error=result.error
            )
        return result

    def kill(self) -> bool:
        return self._commands.kill(self.pid)

    def send_stdin(self, data: str | bytes, request_timeout: float | None = None) -> None:
        self._commands.send_stdin(self.pid, data, request_timeout)

    def close_stdin(self, request_timeout: float | None = None) -> None:
        self._commands.close_stdin(self.pid, request_timeout)

    def disconnect(self) -> None:
        pass


class _Commands:
    def __init__(self, sandbox: Any):
        self._sandbox = sandbox
        self._procs: dict[int, LocalProcess] = {}

    def run(
        self,
        cmd: str,
        background: bool | None = None,
        envs: dict[str, str] | None = None,
        user: str | None = None,
        cwd: str | None = None,
        on_stdout: Callable[[str], None] | None = None,
        on_stderr: Callable[[str], None] | None = None,
        stdin: bool | None = None,
        timeout: float | None = 60,
        request_timeout: float | None = None,
        *,
        retain_output: bool = True,
    ) -> Any:
        import e2b

        sb = self._sandbox
        sb._cloud.log.record(
            "commands.run", cmd, background=background, envs=envs, user=user, cwd=cwd, stdin=stdin, timeout=timeout
        )
        local: LocalSandbox = sb._local
        argv = shlex.split(cmd) if cmd.strip() else []
        if local.is_pip(argv):
            local.commands.append(cmd)
            code, out, err = local.pip(argv)
            if code:
                raise e2b.CommandExitException(stdout=out, stderr=err, exit_code=code, error=None)
            return e2b.CommandResult(stderr=err, stdout=out, exit_code=code, error=None)
        # (E2B runs `bash -l -c cmd`: a login shell may greet first, on stdout)
        greet = f"printf '%s\\n' {shlex.quote(sb._cloud.greeting)}; " if sb._cloud.greeting else ""
        proc = local.start(["bash", "-c", greet + cmd], env=envs, cwd=cwd, command=cmd)
        if not stdin:
            proc.close_stdin()
        self._procs[proc.pid] = proc
        handle = _Handle(self, proc, timeout)
        if background:
            return handle
        return handle.wait(on_stdout=on_stdout, on_stderr=on_stderr)

    def send_stdin(self, pid: int, data: str | bytes, request_timeout: float | None = None) -> None:
        import e2b

        self._sandbox._cloud.log.record("commands.send_stdin", pid, data)
        proc = self._procs.get(pid)
        if proc is None or proc.proc.poll() is not None:
            raise e2b.SandboxException(f"process with pid {pid} not found")
        proc.write(data.encode() if isinstance(data, str) else bytes(data))

    def close_stdin(self, pid: int, request_timeout: float | None = None) -> None:
        self._sandbox._cloud.log.record("commands.close_stdin", pid)
        proc = self._procs.get(pid)
        if proc is not None:
            proc.close_stdin()

    def kill(self, pid: int, request_timeout: float | None = None) -> bool:
        self._sandbox._cloud.log.record("commands.kill", pid)
        proc = self._procs.get(pid)
        if proc is None or proc.proc.poll() is not None:
            return False
        proc.kill()
        return True


class _Files:
    def __init__(self, sandbox: Any):
        self._sandbox = sandbox

    def write(
        self,
        path: str,
        data: str | bytes | Any,
        user: str | None = None,
        request_timeout: float | None = None,
        gzip: bool = False,
        use_octet_stream: bool | None = None,
        metadata: dict[str, str] | None = None,
    ) -> Any:
        self._sandbox._cloud.log.record("files.write", path, data)
        if not path.startswith("/tmp/"):
            raise PermissionError(f"stand-in sandbox: writes go under /tmp only, not {path}")
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(data.encode() if isinstance(data, str) else bytes(data))
        self._sandbox._local.commands.append(path)  # so kill() removes it
        return None


def _sandbox_class(cloud: E2BCloud) -> type:
    class Sandbox:
        """Stand-in for ``e2b.Sandbox`` (see the module docstring)."""

        default_template = "base"
        _cloud = cloud

        def __init__(self, sandbox_id: str, envs: dict[str, str] | None):
            self.sandbox_id = sandbox_id
            self._local = LocalSandbox(cloud.log, envs, cloud.pip_failure, cloud.python)
            self.commands = _Commands(self)
            self.files = _Files(self)

        @classmethod
        def create(
            cls,
            template: str | None = None,
            timeout: int | None = None,
            metadata: dict[str, str] | None = None,
            envs: dict[str, str] | None = None,
            secure: bool | None = None,
            allow_internet_access: bool | None = None,
            mcp: Any = None,
            network: Any = None,
            iam: Any = None,
            lifecycle: Any = None,
            volume_mounts: Any = None,
            logger: Any = None,
            idempotency_key: str | None = None,
            **opts: Any,
        ) -> Any:
            import e2b

            cloud.log.record(
                "Sandbox.create",
                template=template,
                timeout=timeout,
                metadata=metadata,
                envs=envs,
                allow_internet_access=allow_internet_access,
                network=network,
                **opts,
            )
            key = opts.get("api_key") or os.environ.get("E2B_API_KEY")
            if key is None:
                raise e2b.AuthenticationException(
                    "API key is required, please visit the API Keys tab at https://e2b.dev/dashboard?tab=keys"
                )
            if key not in cloud.api_keys:
                raise e2b.AuthenticationException("401: Unauthorized, please check your credentials.")
            sandbox = cls(f"standin{next(_IDS)}", envs)
            sandbox.template, sandbox.network = template, {"allow_internet_access": allow_internet_access}
            cloud.sandboxes.append(sandbox)
            return sandbox

        def update_network(self, network: Any, **opts: Any) -> None:
            cloud.log.record("Sandbox.update_network", network)
            self.network = network

        def set_timeout(self, timeout: int, **opts: Any) -> None:
            cloud.log.record("Sandbox.set_timeout", timeout)

        def is_running(self, request_timeout: float | None = None) -> bool:
            return self._local.alive

        def kill(self, **opts: Any) -> bool:
            cloud.log.record("Sandbox.kill", self.sandbox_id)
            return self._local.kill()

    return Sandbox
