"""Running saved tool code (a ``tool.py`` from a folder or the Hub) in this process.

Layer 2 (tools). Such code was written for smolagents or codeloop, so it imports ``Tool`` from either:
``smolagents`` and ``smolagents.<module>`` resolve to the codeloop module of the same name (else to
``codeloop`` itself), so a tool saved by smolagents loads without smolagents installed. The code runs
with the full rights of this process, like any import: callers ask for ``trust_remote_code=True``.
"""

from __future__ import annotations

import builtins
import importlib
from typing import Any

__all__ = ["run_tool_code", "tool_classes"]

MODULE_NAME = "codeloop_dynamic_tool"


def _import(name: str, globals: Any = None, locals: Any = None, fromlist: Any = (), level: int = 0) -> Any:
    if level == 0 and (name == "smolagents" or name.startswith("smolagents.")):
        target = "codeloop" + name[len("smolagents"):]
        try:
            module = importlib.import_module(target)
        except ImportError:
            module = importlib.import_module("codeloop")
        return module if fromlist else importlib.import_module("codeloop")
    return builtins.__import__(name, globals, locals, fromlist, level)


def run_tool_code(code: str, filename: str = "<tool code>", extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """Execute ``code`` as a fresh module and return its namespace."""
    namespace: dict[str, Any] = {
        "__name__": MODULE_NAME,
        "__builtins__": {**vars(builtins), "__import__": _import},
        **(extra or {}),
    }
    exec(compile(code, filename, "exec"), namespace)  # noqa: S102 - the caller passed trust_remote_code=True
    return namespace


def tool_classes(namespace: dict[str, Any]) -> list[type]:
    """Tool subclasses the code itself defined, in definition order."""
    from .base import Tool

    return [
        v
        for v in namespace.values()
        if isinstance(v, type) and issubclass(v, Tool) and v is not Tool and v.__module__ == MODULE_NAME
    ]
