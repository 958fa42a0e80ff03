"""E2BExecutor: agent code in an E2B cloud sandbox (a Firecracker microVM), through the ``e2b`` SDK.

Layer 3 (executors); extra ``codeloop[e2b]``. Each sandbox is ``e2b.Sandbox.create(...)``; the worker
is one long-lived background command (``sandbox.commands.run(cmd, background=True, stdin=True)``):
frames go in with ``commands.send_stdin`` and come out through the command's stdout, which the SDK
hands back as decoded text, hence the line relay (textpipe.py). The worker modules arrive on stdin
(cloud.py). Packages for ``additional_authorized_imports`` are pip-installed in the sandbox
(``commands.run``), with internet access only for that: afterwards egress is closed with
``update_network`` (unless you configured the network yourself). ``kill()`` deletes the sandbox at
close, at interpreter exit and after a timeout; after a crash of the host, E2B ends it when its
lifetime (``timeout``, 900 s here unless given) runs out.
"""

from __future__ import annotations

import inspect
import os
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
    sdk_names,
    shell,
)
from .ship import boot_argv
from .textpipe import relay_argv

__all__ = ["E2BExecutor"]

#: E2B's code-interpreter template: Python 3.12 and pip (smolagents' E2B executor uses it too)
DEFAULT_TEMPLATE = "code-interpreter-v1"
#: the sandbox's lifetime in seconds: how long it can outlive a host that crashed
DEFAULT_LIFETIME = 900
#: where packages are installed in the sandbox (pip --target; put on the worker's sys.path)
SITE = "/tmp/codeloop-site"
_SEND_CHUNK = 256 * 1024
_INSTALL_SECONDS = 900


def _sdk() -> Any:
    try:
        import e2b
    except ModuleNotFoundError as exc:
        if exc.name != "e2b":
            raise
        raise ImportError("E2BExecutor needs the E2B SDK: pip install 'codeloop[e2b]'") from None
    return e2b


class E2BExecutor(CloudExecutor):
    """Runs agent code in an E2B sandbox; tools stay on the host (see the module docstring).

    Args:
        additional_imports: smolagents' name: packages to install in the sandbox, which code may import.
        logger: accepted for smolagents compatibility.
        allow_pickle: smolagents' option; codeloop never unpickles values from a sandbox.
        **kwargs: ``e2b.Sandbox.create``'s options (``template``, default "code-interpreter-v1";
            ``timeout``, the sandbox's lifetime, default 900 s; ``api_key``, default $E2B_API_KEY;
            ``metadata``, ``envs``, ``allow_internet_access``, ``network``, ``domain``, ...) and the
            local executor's (``timeout_seconds``, ``memory_mb``, ``additional_authorized_imports``,
            ``max_print_outputs_length``, policy options).
    """

    backend = "e2b"

    def __init__(
        self,
        additional_imports: list[str] | tuple[str, ...] | None = None,
        logger: Any = None,
        allow_pickle: bool = False,
        **kwargs: Any,
    ):
        e2b = _sdk()
        from e2b.connection_config import ApiParams

        names = sdk_names(e2b.Sandbox.create, extra=getattr(ApiParams, "__annotations__", {}))
        self.sandbox_kwargs = {k: kwargs.pop(k) for k in list(kwargs) if k in names}
        self.sandbox_kwargs.setdefault("template", DEFAULT_TEMPLATE)
        self.sandbox_kwargs.setdefault("timeout", DEFAULT_LIFETIME)
        if not (self.sandbox_kwargs.get("api_key") or os.environ.get("E2B_API_KEY")):
            raise SandboxConfigurationError(
                "E2BExecutor needs an E2B API key: set the E2B_API_KEY environment variable or pass "
                "api_key='e2b_...' (create one at https://e2b.dev/dashboard?tab=keys)"
            )
        imports = sorted({*(additional_imports or ()), *(kwargs.pop("additional_authorized_imports", None) or ())})
        self.requirements = pip_requirements(imports)
        # the sandbox's network: yours if you set it; else open only while packages install
        self._own_network = "network" in self.sandbox_kwargs or "allow_internet_access" in self.sandbox_kwargs
        if not self._own_network:
            self.sandbox_kwargs["allow_internet_access"] = bool(self.requirements)
        if self._own_network:
            network = "as configured by the network/allow_internet_access options"
        elif self.requirements:
            network = "egress open while pip installs the packages, then closed (update_network: deny 0.0.0.0/0)"
        else:
            network = "no egress (allow_internet_access=False)"
        self.sandbox_isolation = {
            "sandbox": "e2b",
            "vm": "a Firecracker microVM of its own (E2B cloud)",
            "network": network,
            "filesystem": "the sandbox's own disk; the worker runs in a fresh directory there",
            "credentials": "none in the sandbox: tools and their keys stay on the host (called over RPC)",
            "missing": [],
        }
        self._begin(imports, logger, allow_pickle, **kwargs)

    def _create(self) -> Any:
        e2b = _sdk()
        try:
            sandbox = e2b.Sandbox.create(**self.sandbox_kwargs)
        except e2b.AuthenticationException as exc:
            raise SandboxConfigurationError(
                f"E2B rejected the API key ({exc}); check E2B_API_KEY or the api_key option"
            ) from None
        try:
            if self.requirements:
                self._install(sandbox)
        except BaseException:
            sandbox.kill()
            raise
        return sandbox

    def _install(self, sandbox: Any) -> None:
        e2b = _sdk()
        try:
            sandbox.commands.run(shell(pip_argv(self.requirements, target=SITE)), timeout=_INSTALL_SECONDS)
        except e2b.CommandExitException as exc:
            tail = str(exc.stderr or exc.stdout or "").strip()[-1500:]
            raise SandboxConfigurationError(
                f"installing {', '.join(self.requirements)} in the E2B sandbox failed (exit {exc.exit_code}): {tail}"
            ) from None
        if not self._own_network:
            try:
                sandbox.update_network({"deny_out": [e2b.ALL_TRAFFIC]})
            except Exception as exc:  # noqa: BLE001 - said in executor.isolation, never silent
                note = f"egress: still open after installing packages (update_network failed: {describe(exc)})"
                if note not in self.sandbox_isolation["missing"]:
                    self.sandbox_isolation["missing"].append(note)

    def _delete(self, sandbox: Any) -> None:
        sandbox.kill()

    def _start(self, sandbox: Any, cfg: dict[str, Any]) -> StreamedSandbox:
        root = f"/tmp/codeloop-{secrets.token_hex(6)}"
        site = [SITE] if self.requirements else []
        argv = bootstrap_argv(root, relay_argv(boot_argv(rooted(cfg, root, site))))
        run = sandbox.commands.run
        extra = {"retain_output": False} if "retain_output" in inspect.signature(run).parameters else {}
        # timeout=0: the command may live as long as the sandbox (the SDK's default ends it after 60 s)
        handle = run(shell(argv), background=True, stdin=True, timeout=0, envs={}, **extra)

        def send(data: bytes) -> None:
            for i in range(0, len(data), _SEND_CHUNK):
                sandbox.commands.send_stdin(handle.pid, data[i : i + _SEND_CHUNK])

        streamed = StreamedSandbox(f"e2b sandbox {sandbox.sandbox_id}", send, sandbox.kill, text=True)
        threading.Thread(target=_follow, args=(handle, streamed), name="codeloop-e2b-out", daemon=True).start()
        return streamed


def _follow(handle: Any, streamed: StreamedSandbox) -> None:
    """The reader: the command's output into the sandbox's stream, then its exit status."""
    try:
        result = handle.wait(on_stdout=streamed.feed_text, on_stderr=streamed.feed_stderr)
        streamed.finished(result.exit_code)
    except Exception as exc:  # noqa: BLE001 - CommandExitException (has exit_code) or a broken stream
        code = getattr(exc, "exit_code", None)
        streamed.finished(code, None if code is not None else f"the output stream ended: {describe(exc)}")
