"""ModalExecutor: agent code in a Modal sandbox (a gVisor container in Modal's cloud), through ``modal``.

Layer 3 (executors); extra ``codeloop[modal]``. Each sandbox is ``modal.Sandbox.create(app=, image=)``
with the network blocked; the worker is one process started with ``sb.exec(..., text=False)``, whose
stdin (``process.stdin.write`` + ``drain``) and stdout (iterated as bytes) carry the frames as they
are. The worker modules arrive on stdin (cloud.py). Packages for ``additional_authorized_imports`` are
installed in the image (``Image.pip_install``, built and cached by Modal), so the sandbox itself never
needs the network. ``terminate()`` ends the sandbox at close, at interpreter exit and after a timeout;
after a crash of the host, Modal ends it when its ``timeout`` (900 s here unless given) runs out.
"""

from __future__ import annotations

import secrets
import sys
import threading
from typing import Any

from .cloud import (
    CloudExecutor,
    SandboxConfigurationError,
    StreamedSandbox,
    bootstrap_argv,
    describe,
    pip_requirements,
    rooted,
)
from .ship import boot_argv

__all__ = ["ModalExecutor"]

#: the sandbox's lifetime in seconds: how long it can outlive a host that crashed
DEFAULT_LIFETIME = 900


def _sdk() -> Any:
    try:
        import modal
    except ModuleNotFoundError as exc:
        if exc.name != "modal":
            raise
        raise ImportError("ModalExecutor needs the Modal SDK: pip install 'codeloop[modal]'") from None
    return modal


def _auth_error(exc: BaseException) -> SandboxConfigurationError:
    return SandboxConfigurationError(
        f"Modal did not accept the credentials ({exc}); run `modal token new`, or set MODAL_TOKEN_ID "
        "and MODAL_TOKEN_SECRET"
    )


class ModalExecutor(CloudExecutor):
    """Runs agent code in a Modal sandbox; tools stay on the host (see the module docstring).

    Args:
        additional_imports: smolagents' name: packages installed in the sandbox's image, which code may import.
        logger: accepted for smolagents compatibility.
        allow_pickle: smolagents' option; codeloop never unpickles values from a sandbox.
        app_name: the Modal app the sandboxes belong to (looked up, created if missing).
        port: smolagents' Jupyter port; not used (codeloop's worker opens no port).
        create_kwargs: ``modal.Sandbox.create``'s options (``image``, default Debian slim with this
            Python version; ``timeout``, the lifetime, default 900 s; ``block_network``, default True;
            ``cpu``, ``memory``, ``region``, ``secrets``...).
        **kwargs: the local executor's options (``timeout_seconds``, ``memory_mb``, policy options...).
    """

    backend = "modal"

    def __init__(
        self,
        additional_imports: list[str] | tuple[str, ...] | None = None,
        logger: Any = None,
        allow_pickle: bool = False,
        app_name: str = "codeloop-executor",
        port: int = 8888,
        create_kwargs: dict[str, Any] | None = None,
        **kwargs: Any,
    ):
        modal = _sdk()
        self.app_name = app_name
        self.port = port
        imports = sorted({*(additional_imports or ()), *(kwargs.pop("additional_authorized_imports", None) or ())})
        self.requirements = pip_requirements(imports)
        create = dict(create_kwargs or {})
        if "app" not in create:
            try:
                create["app"] = modal.App.lookup(app_name, create_if_missing=True)
            except modal.exception.AuthError as exc:
                raise _auth_error(exc) from None
        image = create.get("image")
        if image is None:
            image = modal.Image.debian_slim(python_version=f"{sys.version_info.major}.{sys.version_info.minor}")
        if self.requirements:
            image = image.pip_install(*self.requirements)
        create["image"] = image
        create.setdefault("timeout", DEFAULT_LIFETIME)
        create.setdefault("block_network", True)
        self.create_kwargs = create
        blocked = create.get("block_network") and not create.get("cidr_allowlist")
        self.sandbox_isolation = {
            "sandbox": "modal",
            "vm": "a gVisor container of its own (Modal cloud)",
            "network": "blocked (block_network=True)" if blocked else "as configured by create_kwargs",
            "filesystem": "the sandbox's own filesystem (from the image); the worker runs in a fresh directory",
            "credentials": "none in the sandbox: tools and their keys stay on the host (called over RPC)",
            "missing": [] if blocked else ["network: not blocked (create_kwargs turned block_network off)"],
        }
        self._begin(imports, logger, allow_pickle, **kwargs)

    def _create(self) -> Any:
        modal = _sdk()
        try:
            return modal.Sandbox.create(**self.create_kwargs)
        except modal.exception.AuthError as exc:
            raise _auth_error(exc) from None

    def _delete(self, sandbox: Any) -> None:
        sandbox.terminate()

    def _start(self, sandbox: Any, cfg: dict[str, Any]) -> StreamedSandbox:
        root = f"/tmp/codeloop-{secrets.token_hex(6)}"
        process = sandbox.exec(*bootstrap_argv(root, boot_argv(rooted(cfg, root))), text=False)
        stdin_lock = threading.Lock()

        def send(data: bytes) -> None:
            with stdin_lock:
                process.stdin.write(data)
                process.stdin.drain()

        name = f"modal sandbox {getattr(sandbox, 'object_id', '?')}"
        streamed = StreamedSandbox(name, send, sandbox.terminate, text=False)
        threading.Thread(target=_follow, args=(process, streamed), name="codeloop-modal-out", daemon=True).start()
        threading.Thread(target=_errors, args=(process, streamed), name="codeloop-modal-err", daemon=True).start()
        return streamed


def _follow(process: Any, streamed: StreamedSandbox) -> None:
    """The reader: stdout bytes into the sandbox's stream, then the exit status."""
    try:
        for chunk in process.stdout:
            streamed.feed_bytes(chunk if isinstance(chunk, bytes) else chunk.encode())
        streamed.finished(process.wait())
    except Exception as exc:  # noqa: BLE001 - the stream broke (sandbox gone, network)
        streamed.finished(None, f"the output stream ended: {describe(exc)}")


def _errors(process: Any, streamed: StreamedSandbox) -> None:
    try:
        for chunk in process.stderr:
            streamed.feed_stderr(chunk.decode("utf-8", "replace") if isinstance(chunk, bytes) else chunk)
    except Exception:  # noqa: BLE001 - ends with the process
        pass
