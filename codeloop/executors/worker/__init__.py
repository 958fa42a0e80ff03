"""The isolated worker executor: agent code runs in a separate, sandboxed Python process.

Modules: host (LocalPythonExecutor), pool (WorkerPool: workers forked by a fork server, zygote.py on
the host, forkserver.py inside the sandbox), hosttools (how the host runs each tool call), process
(spawn/kill/frame I/O), sandbox (host-side layer plan), child (worker entry point), confine
(worker-side limits, Landlock, seccomp), rpc (worker-side tool proxies), protocol (framing), codec
(the safe value codec). The child imports its modules without running this ``__init__``, so it
stays free of host-only imports.
"""

from __future__ import annotations

from typing import Any

__all__ = ["LocalPythonExecutor", "WorkerPool", "register_type"]


def __getattr__(name: str) -> Any:
    if name == "LocalPythonExecutor":
        from codeloop.executors.worker.host import LocalPythonExecutor

        return LocalPythonExecutor
    if name == "WorkerPool":
        from codeloop.executors.worker.pool import WorkerPool

        return WorkerPool
    if name == "register_type":
        from codeloop.executors.worker.codec import register_type

        return register_type
    raise AttributeError(name)
