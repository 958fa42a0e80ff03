"""What goes into a remote sandbox: codeloop's own worker modules, their config and the boot command.

Layer 3 (executors). Every remote backend runs the same worker as the local executor
(``codeloop/executors/worker/child.py``), started with ``python3 -I -S -B -c <boot> <config JSON>``.
Only codeloop's worker modules are shipped (``worker_files``/``worker_tar``): the standard-library
modules of the worker and the policy/session/compiler modules it imports. Tools, credentials and
the host's environment never are: tools stay on the host and are called over the frame protocol.

The boot reads frames on stdin and writes them on stdout; it first moves those two descriptors out
of the way (stdout then points at stderr, stdin at /dev/null), so a stray ``print`` from a C extension
can never corrupt the frame stream. The shared-memory mailbox is off (``shm``: None): all frames go
through the one byte stream. The sandbox needs Python 3.11 or newer.
"""

from __future__ import annotations

import io
import json
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from codeloop.executors.worker.sandbox import _BOOT, Limits

__all__ = ["worker_files", "worker_tar", "worker_config", "boot_argv", "SANDBOX_ROOT"]

_PKG_ROOT = Path(__file__).resolve().parents[2]  # .../codeloop
#: where the worker modules live inside a sandbox unless a backend says otherwise
SANDBOX_ROOT = "/opt/codeloop"

# Moves the frame stream off fds 0/1 before the worker boots (see the module docstring); with
# c['site'], also the sandbox's site-packages on sys.path (-S keeps them off; -I the user's). As pid 1
# of its namespace (a container), it stays behind as a minimal init: it reaps orphans and exits with
# the worker's status (a pid 1 ignores signals it has no handler for, even SIGKILL from inside).
_REMOTE_BOOT = (
    "import os,sys,json\n"
    "K=os.fork() if os.getpid()==1 else 0\n"
    "while K:\n"
    " try:\n"
    "  p,s=os.wait()\n"
    " except ChildProcessError:\n"
    "  os._exit(0)\n"
    " if p==K:\n"
    "  c=os.waitstatus_to_exitcode(s);os._exit(c if c>=0 else 128-c)\n"
    "R=os.dup(0);W=os.dup(1);N=os.open('/dev/null',os.O_RDONLY);os.dup2(N,0);os.dup2(2,1);os.close(N)\n"
    "c=json.loads(sys.argv[1]);c['fds']=[R,W]\n"
    "if c.get('site'):\n"
    " import site;c['sys_path']=c['sys_path']+[p for p in site.getsitepackages() if os.path.isdir(p)]\n"
    "sys.argv[1]=json.dumps(c)\n"
)


def worker_files() -> Iterator[tuple[str, bytes]]:
    """(path relative to the sandbox root, content) of every module the worker may import.

    ``codeloop/errors.py`` and ``_sync.py``, the ``executors`` modules and the ``executors/worker``
    modules (package ``__init__`` files are shipped but never run; nothing else of codeloop).
    """
    sources = [
        _PKG_ROOT / "errors.py",
        _PKG_ROOT / "_sync.py",  # (executors/base.py imports it)
        *sorted((_PKG_ROOT / "executors").glob("*.py")),
        *sorted((_PKG_ROOT / "executors" / "worker").glob("*.py")),
    ]
    for src in sources:
        yield "codeloop/" + src.relative_to(_PKG_ROOT).as_posix(), src.read_bytes()


def worker_tar(prefix: str = SANDBOX_ROOT.lstrip("/"), mode: int = 0o444) -> bytes:
    """The worker files as an uncompressed tar, under ``prefix`` (e.g. for ``put_archive`` or a build
    context); files read-only and owned by root, directories 0755."""
    buf = io.BytesIO()
    dirs: set[str] = set()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for rel, data in worker_files():
            path = f"{prefix}/{rel}" if prefix else rel
            parts = path.split("/")
            for i in range(1, len(parts)):
                d = "/".join(parts[:i])
                if d not in dirs:
                    dirs.add(d)
                    info = tarfile.TarInfo(d)
                    info.type, info.mode = tarfile.DIRTYPE, 0o755
                    tar.addfile(info)
            info = tarfile.TarInfo(path)
            info.size, info.mode = len(data), mode
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def worker_config(
    limits: Limits,
    timeout: float | None,
    policy: dict[str, Any],
    *,
    root: str = SANDBOX_ROOT,
    seccomp: bool = True,
    site: bool = True,
    landlock: dict[str, list[str]] | None = None,
) -> dict[str, Any]:
    """The child's config (child.main) for a worker whose modules sit under ``root`` in the sandbox.

    The worker keeps the sandbox's user (the backend picks a non-root one), applies the resource
    limits and, with ``seccomp``, codeloop's seccomp filter on top of the sandbox's own; confine.py
    reports each layer it could not apply under "missing". ``site``: put the sandbox's
    site-packages on sys.path (where packages installed in the image live).
    """
    pkg = root.rstrip("/") + "/codeloop"
    cfg: dict[str, Any] = {
        "shm": None,
        "rlimits": limits.rlimits(timeout, own_uid=False),
        "uid": None,
        "gid": None,
        "policy": policy,
        "seccomp": seccomp,
        "site": site,
        "packages": [
            ["codeloop", pkg],
            ["codeloop.executors", pkg + "/executors"],
            ["codeloop.executors.worker", pkg + "/executors/worker"],
        ],
        "lazy": ["asyncio"],
        "sys_path": [],
    }
    if landlock:
        cfg["landlock"] = landlock
    return cfg


def boot_argv(cfg: dict[str, Any], python: str = "python3") -> list[str]:
    """The command that starts the worker in the sandbox (frames on its stdin and stdout)."""
    return [python, "-I", "-S", "-B", "-c", _REMOTE_BOOT + _BOOT, json.dumps(cfg, separators=(",", ":"))]
