"""BlaxelExecutor: agent code in a Blaxel sandbox (a micro-VM in Blaxel's cloud), through ``blaxel``.

Layer 3 (executors); extra ``codeloop[blaxel]``. Each sandbox is ``SyncSandboxInstance.create(...)``;
the worker is one named process started with ``sandbox.process.exec({..., "stdin": True,
"keep_alive": True})``. Frames go in with ``process.write_stdin`` (one HTTP request per write, bytes
verbatim) and come out through ``process.stream_logs``, which delivers stdout as text lines (and
reconnects every 30 s), hence the numbered line relay (textpipe.py), which also drops a line sent
twice and notices one lost. ``process.wait`` (a long poll) reports the worker's end. The worker
modules arrive on stdin (cloud.py). Packages for ``additional_authorized_imports`` are pip-installed
in the sandbox. ``delete()`` removes the sandbox at close, at interpreter exit and after a timeout;
after a crash of the host, a lifecycle rule deletes it once idle (``idle_ttl``, 15 minutes unless given).

Cost of this transport: a tool call from code is two HTTP requests (the call comes out on the log
stream, the answer goes in with one write), so it takes a network round trip or two, not microseconds.
"""

from __future__ import annotations

import secrets
import threading
from typing import Any

from .cloud import (
    CloudExecutor,
    SandboxConfigurationError,
    StreamedSandbox,
    bootstrap_argv,
    describe,
    pip_argv,
    pip_requirements,
    rooted,
    shell,
)
from .ship import boot_argv
from .textpipe import relay_argv

__all__ = ["BlaxelExecutor"]

#: where packages are installed in the sandbox (pip --target; put on the worker's sys.path)
SITE = "/tmp/codeloop-site"
_WORKER = "codeloop-worker"
_SEND_CHUNK = 256 * 1024
_INSTALL_SECONDS = 900
_AUTH_CODES = {
    "UNAUTHORIZED",
    "UNAUTHORIZED_WORKSPACE",
    "AUTHENTICATION_REQUIRED",
    "AUTHENTICATION_FAILED",
    "TOKEN_REVOKED",
    "FORBIDDEN",
    "WORKSPACE_REQUIRED",
}


def _sdk() -> Any:
    try:
        import blaxel.core
    except ModuleNotFoundError as exc:
        if not (exc.name or "").startswith("blaxel"):
            raise
        raise ImportError("BlaxelExecutor needs the Blaxel SDK: pip install 'codeloop[blaxel]'") from None
    return blaxel.core


class BlaxelExecutor(CloudExecutor):
    """Runs agent code in a Blaxel sandbox; tools stay on the host (see the module docstring).

    Args:
        additional_imports: smolagents' name: packages to install in the sandbox, which code may import.
        logger: accepted for smolagents compatibility.
        allow_pickle: smolagents' option; codeloop never unpickles values from a sandbox.
        sandbox_name: the first sandbox's name (a replacement gets a suffix); default "codeloop-<random>".
        image: the sandbox image; it needs python3 >= 3.11 (smolagents' default image).
        memory: MB of memory for the sandbox.
        ttl: delete the sandbox this long after its creation (e.g. "1h"), as in smolagents.
        region: the Blaxel region (default: Blaxel picks one).
        idle_ttl: delete the sandbox after this long without activity (default "15m"; None: no such rule).
        **kwargs: the local executor's options (``timeout_seconds``, ``memory_mb``, policy options...).
    """

    backend = "blaxel"

    def __init__(
        self,
        additional_imports: list[str] | tuple[str, ...] | None = None,
        logger: Any = None,
        allow_pickle: bool = False,
        sandbox_name: str | None = None,
        image: str = "blaxel/jupyter-notebook",
        memory: int = 4096,
        ttl: str | None = None,
        region: str | None = None,
        *,
        idle_ttl: str | None = "15m",
        **kwargs: Any,
    ):
        _sdk()
        self.sandbox_name = sandbox_name or f"codeloop-{secrets.token_hex(4)}"
        self.image, self.memory, self.ttl, self.region, self.idle_ttl = image, memory, ttl, region, idle_ttl
        self._count = 0
        imports = sorted({*(additional_imports or ()), *(kwargs.pop("additional_authorized_imports", None) or ())})
        self.requirements = pip_requirements(imports)
        self.sandbox_isolation = {
            "sandbox": "blaxel",
            "vm": "a micro-VM of its own (Blaxel cloud)",
            "network": "not restricted by the sandbox (Blaxel has no off switch); the worker's seccomp filter "
            "refuses network sockets",
            "filesystem": "the sandbox's own filesystem; the worker runs in a fresh directory there",
            "credentials": "none in the sandbox: tools and their keys stay on the host (called over RPC)",
            "missing": ["network: the sandbox itself may reach the internet (only seccomp stops the code)"],
        }
        self._begin(imports, logger, allow_pickle, **kwargs)

    def _config(self) -> dict[str, Any]:
        self._count += 1
        name = self.sandbox_name if self._count == 1 else f"{self.sandbox_name}-{self._count}"
        config: dict[str, Any] = {
            "name": name,
            "image": self.image,
            "memory": self.memory,
            "labels": {"created-by": "codeloop"},
        }
        if self.region:
            config["region"] = self.region
        if self.ttl:
            config["ttl"] = self.ttl
        if self.idle_ttl:
            config["lifecycle"] = {
                "expiration_policies": [{"type": "ttl-idle", "value": self.idle_ttl, "action": "delete"}]
            }
        return config

    def _create(self) -> Any:
        core = _sdk()
        from blaxel.core.authentication.types import CredentialsError
        from blaxel.core.errors import BlaxelError

        try:
            sandbox = core.SyncSandboxInstance.create(self._config())
        except CredentialsError as exc:
            raise SandboxConfigurationError(f"BlaxelExecutor has no Blaxel credentials: {exc}") from None
        except BlaxelError as exc:
            if getattr(exc, "status", None) in (401, 403) or getattr(exc, "code", None) in _AUTH_CODES:
                raise SandboxConfigurationError(
                    f"Blaxel did not accept the credentials ({exc}); check BL_API_KEY and BL_WORKSPACE, "
                    "or run `bl login`"
                ) from None
            raise
        try:
            if self.requirements:
                self._install(sandbox)
        except BaseException:
            sandbox.delete()
            raise
        return sandbox

    def _install(self, sandbox: Any) -> None:
        lines: list[str] = []
        result = sandbox.process.exec(
            {
                "name": f"codeloop-pip-{secrets.token_hex(3)}",
                "command": shell(pip_argv(self.requirements, target=SITE)),
                "wait_for_completion": True,
                "timeout": _INSTALL_SECONDS,
                "on_log": lines.append,  # a streamed wait: the edge does not cut a long install
            }
        )
        if result.exit_code != 0 or result.status != "completed":
            tail = "\n".join(lines)[-1500:] or str(getattr(result, "stderr", ""))[-1500:]
            raise SandboxConfigurationError(
                f"installing {', '.join(self.requirements)} in the Blaxel sandbox failed "
                f"({result.status}, exit {result.exit_code}): {tail}"
            )

    def _delete(self, sandbox: Any) -> None:
        sandbox.delete()

    def _start(self, sandbox: Any, cfg: dict[str, Any]) -> StreamedSandbox:
        root = f"/tmp/codeloop-{secrets.token_hex(6)}"
        site = [SITE] if self.requirements else []
        argv = bootstrap_argv(root, relay_argv(boot_argv(rooted(cfg, root, site))))
        # timeout 0: no limit (keep_alive alone would end it after 600 s); keep_alive: no scale-to-zero meanwhile
        sandbox.process.exec(
            {"name": _WORKER, "command": shell(argv), "stdin": True, "keep_alive": True, "timeout": 0}
        )
        streamed: StreamedSandbox

        def send(data: bytes) -> None:
            for i in range(0, len(data), _SEND_CHUNK):
                sandbox.process.write_stdin(_WORKER, data[i : i + _SEND_CHUNK])

        logs: list[Any] = []

        def delete() -> None:
            for handle in logs:
                handle.close()
            sandbox.delete()

        name = getattr(getattr(sandbox, "metadata", None), "name", None) or "?"
        streamed = StreamedSandbox(f"blaxel sandbox {name}", send, delete, text=True)
        logs.append(
            sandbox.process.stream_logs(_WORKER, {"on_stdout": streamed.feed_line, "on_stderr": streamed.feed_stderr})
        )
        threading.Thread(
            target=_watch, args=(sandbox, streamed, logs[0]), name="codeloop-blaxel-wait", daemon=True
        ).start()
        return streamed


def _watch(sandbox: Any, streamed: StreamedSandbox, logs: Any) -> None:
    """Wait (a long poll) for the worker process's end; then let the log stream deliver its last lines."""
    try:
        result = sandbox.process.wait(_WORKER, max_wait=-1, interval=1000)
        code, error = result.exit_code, None
    except Exception as exc:  # noqa: BLE001 - the sandbox was deleted, or the API is unreachable
        code, error = None, f"waiting for the worker failed: {describe(exc)}"
    try:
        logs.wait(timeout=5)
    except Exception:  # noqa: BLE001
        pass
    logs.close()
    streamed.finished(code, error)
