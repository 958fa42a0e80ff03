"""Remote sandboxes: the local worker's behaviour, with the worker running in Docker, Wasm or a cloud.

Layer 3 (executors). ``base.py`` holds the shared base (``RemoteExecutor``, the ``Sandbox`` transport
contract, ``RemoteWorker``), ``ship.py`` what is shipped into a sandbox (codeloop's worker modules and
their boot command), ``relay.py`` the pump for SDK streams. One module per backend:

    docker.py  DockerExecutor   extra "docker" (the docker SDK; a Docker engine)
    wasm.py    WasmExecutor     Pyodide in Deno (npm packages, no Python extra)
    e2b.py     E2BExecutor      extra "e2b"
    modal.py   ModalExecutor    extra "modal"
    blaxel.py  BlaxelExecutor   extra "blaxel"

``BACKENDS`` maps each ``executor_type`` to (module, class, how to install it); a backend module that
is not there yet, or whose SDK is missing, gives one error naming what to install (``load``).
Nothing here imports an SDK until a backend is used. ``BACKENDS`` lists all five already (a module
not yet there gives "not available in this version"); a backend's class is exported from ``codeloop``
(its ``_EXPORTS``, pointing at this package) in the same change that adds its module.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = [
    "BACKENDS",
    "load",
    "DockerExecutor",
    "WasmExecutor",
    "E2BExecutor",
    "ModalExecutor",
    "BlaxelExecutor",
]

#: executor_type -> (module under codeloop.executors.remote, class name, what to install)
BACKENDS: dict[str, tuple[str, str, str]] = {
    "docker": ("docker", "DockerExecutor", "pip install 'codeloop[docker]' and a running Docker engine"),
    "wasm": ("wasm", "WasmExecutor", "Deno and Pyodide (scripts/install-os-deps.sh installs them)"),
    "e2b": ("e2b", "E2BExecutor", "pip install 'codeloop[e2b]'"),
    "modal": ("modal", "ModalExecutor", "pip install 'codeloop[modal]'"),
    "blaxel": ("blaxel", "BlaxelExecutor", "pip install 'codeloop[blaxel]'"),
}
_BY_CLASS = {cls: key for key, (_, cls, _) in BACKENDS.items()}


def load(executor_type: str) -> type:
    """The executor class of a remote ``executor_type`` (its module imported now)."""
    module, cls, install = BACKENDS[executor_type]
    name = f"{__name__}.{module}"
    try:
        mod = importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name == name:
            raise ImportError(
                f"executor_type {executor_type!r} is not available in this version of codeloop"
            ) from None
        raise ImportError(
            f"executor_type {executor_type!r} needs {install} (missing module: {exc.name})"
        ) from exc
    return getattr(mod, cls)


def __getattr__(name: str) -> Any:
    key = _BY_CLASS.get(name)
    if key is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return load(key)
