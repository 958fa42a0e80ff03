"""Executors: run agent code under one policy, in-process or in an isolated worker process.

Layer 3. ``create_executor("local")`` gives the isolated worker (the default for agents),
``create_executor("inprocess")`` the faster in-process executor for trusted code, and "docker", "wasm",
"e2b", "modal", "blaxel" the remote sandboxes of ``executors.remote`` (imported only when asked for).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ..errors import InterpreterError
from .base import CodeOutput, PythonExecutor
from .compat import evaluate_python_code
from .inprocess import InProcessExecutor
from .policy import DEFAULT_AUTHORIZED_IMPORTS, Policy
from .session import ExecutionSession

if TYPE_CHECKING:
    from .worker import LocalPythonExecutor

__all__ = [
    "CodeOutput",
    "PythonExecutor",
    "Policy",
    "DEFAULT_AUTHORIZED_IMPORTS",
    "ExecutionSession",
    "InProcessExecutor",
    "LocalPythonExecutor",
    "evaluate_python_code",
    "InterpreterError",
    "create_executor",
]


def __getattr__(name: str) -> Any:
    if name == "LocalPythonExecutor":  # the worker package is heavier and built separately
        value = importlib.import_module(".worker", __name__).LocalPythonExecutor
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def create_executor(executor_type: str = "local", **kwargs: Any) -> PythonExecutor:
    """Build an executor by name: "local" (isolated worker process), "inprocess", or a remote sandbox
    ("docker", "wasm", "e2b", "modal", "blaxel"; see ``codeloop.executors.remote``)."""
    if executor_type == "local":
        return __getattr__("LocalPythonExecutor")(**kwargs)
    if executor_type in ("inprocess", "in_process", "in-process"):
        return InProcessExecutor(**kwargs)
    remote = importlib.import_module(".remote", __name__)
    if executor_type in remote.BACKENDS:
        return remote.load(executor_type)(**kwargs)
    names = ", ".join(repr(n) for n in ["local", "inprocess", *remote.BACKENDS])
    raise ValueError(f"Unknown executor_type {executor_type!r}: use one of {names}")
