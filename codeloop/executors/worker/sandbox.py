"""Host side of the sandbox: decide the isolation layers and build the worker's command line.

Preferred: bubblewrap (``bwrap``), which gives the worker its own mount view (the Python installation
and site-packages read-only, the codeloop package read-only, a private size-capped tmpfs scratch as
cwd and /tmp, nothing else: no /etc, no home, no repository), and new network, pid, ipc and uts
namespaces.
Without bubblewrap the worker confines itself (see confine.py): unshare for the network, Landlock for
the file system. In both cases the worker gets resource limits, a seccomp filter, a scrubbed
environment and, when the host runs as root, its own unprivileged uid (so RLIMIT_NPROC means something
and the worker cannot read or signal the host's processes).

``scripts/install-os-deps.sh`` installs bubblewrap where it can.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import secrets
import shutil
import site
import subprocess
import sys
import sysconfig
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

logger = logging.getLogger("codeloop.executors.worker")

__all__ = ["Limits", "SandboxPlan", "plan_sandbox", "bwrap_path", "isolation_report"]

_PKG_ROOT = str(Path(__file__).resolve().parents[2])  # .../codeloop
_SANDBOX_PKG = "/opt/codeloop/codeloop"
_SANDBOX_SITE = "/opt/site-packages"


@dataclass
class Limits:
    """OS resource limits for one worker. None leaves a limit unset."""

    memory_mb: int | None = 2048  # RLIMIT_AS
    cpu_seconds: int | None = None  # per run; None: derived from the timeout
    cpu_lifetime_seconds: int = 3600  # hard RLIMIT_CPU: the worker is replaced after this much CPU
    file_size_mb: int | None = 256  # RLIMIT_FSIZE
    open_files: int | None = 256  # RLIMIT_NOFILE
    processes: int | None = 64  # RLIMIT_NPROC, only when the worker has its own uid
    scratch_mb: int = 512  # size of the scratch tmpfs (bubblewrap only)

    def rlimits(self, timeout: float | None, own_uid: bool) -> dict[str, int | None]:
        cpu = self.cpu_seconds or (int(timeout) + 2 if timeout else 600)
        mb = 1024 * 1024
        return {
            "as": self.memory_mb * mb if self.memory_mb else None,
            "cpu": cpu,
            "cpu_lifetime": max(cpu, self.cpu_lifetime_seconds),
            "fsize": self.file_size_mb * mb if self.file_size_mb else None,
            "nofile": self.open_files,
            "nproc": self.processes if own_uid else None,
            "core": 0,
        }


@dataclass
class SandboxPlan:
    argv: list[str]
    env: dict[str, str]
    cwd: str
    scratch: str
    uid: int | None
    child_cfg: dict[str, Any]
    host_report: dict[str, Any] = field(default_factory=dict)


@functools.lru_cache(maxsize=1)
def bwrap_path() -> str | None:
    """Path of a bubblewrap that works here (probed once per process), else None."""
    path = shutil.which("bwrap")
    if not path:
        return None
    probe = [path, "--unshare-net", "--unshare-pid", "--die-with-parent", "--ro-bind", "/", "/", "true"]
    try:
        ok = (
            subprocess.run(probe, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=10).returncode
            == 0
        )
    except (OSError, subprocess.SubprocessError):
        ok = False
    return path if ok else None


@functools.lru_cache(maxsize=1)
def _python_layout() -> tuple[str, list[str], list[str]]:
    """(real python executable, read-only dirs it needs, site-packages dirs to put on sys.path)."""
    exe = os.path.realpath(sys.executable)
    prefixes = {os.path.realpath(p) for p in (sys.base_prefix, sys.base_exec_prefix)}
    sites: list[str] = []
    for p in [*site.getsitepackages(), sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]]:
        rp = os.path.realpath(p)
        if os.path.isdir(rp) and rp not in sites:
            sites.append(rp)
    ro = sorted(prefixes | {os.path.dirname(os.path.dirname(exe))})
    return exe, ro, sites


@functools.lru_cache(maxsize=1)
def ensure_bytecode() -> None:
    """Write .pyc files for the modules the child imports, once per host process.

    The child runs with -B on a read-only view, so it can never cache bytecode itself; without
    these files it would compile about 4,000 lines of codeloop on every start (tens of ms).
    Best effort: a read-only installation simply keeps compiling. This writes the package's own
    ``__pycache__`` even under PYTHONDONTWRITEBYTECODE (a pip install would have written it anyway).
    """
    import importlib.util
    import py_compile

    root = Path(_PKG_ROOT)
    sources = [
        root / "errors.py",
        *sorted((root / "executors").glob("*.py")),
        *sorted(Path(__file__).parent.glob("*.py")),
    ]
    for src in sources:
        try:
            cached = Path(importlib.util.cache_from_source(str(src)))
            if cached.exists() and cached.stat().st_mtime >= src.stat().st_mtime:
                continue
            py_compile.compile(str(src), cfile=str(cached), doraise=True)
        except (OSError, py_compile.PyCompileError, ValueError):
            continue


def _world_traversable(path: str) -> bool:
    """Can an unrelated uid reach ``path``? (every parent needs o+x, the target o+r)."""
    parts = Path(path).parts
    for i in range(2, len(parts) + 1):
        try:
            if not os.stat(os.path.join(*parts[:i])).st_mode & 0o001:
                return False
        except OSError:
            return False
    return True


def _scrubbed_env(home: str, tmp: str) -> dict[str, str]:
    # Only what Python and numeric libraries need: no API keys, tokens or proxies from the host.
    return {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": home,
        "TMPDIR": tmp,
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "TZ": "UTC",
        "OPENBLAS_NUM_THREADS": "1",
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        "NUMEXPR_NUM_THREADS": "1",
    }


# The child's first code: register the codeloop packages without running their __init__ modules,
# and load asyncio lazily (it is a third of the import time and only code with top-level await needs it).
_BOOT = (
    "import sys,json,types\n"
    "c=json.loads(sys.argv[1])\n"
    "for n,p in c['packages']:\n"
    " m=types.ModuleType(n);m.__path__=[p];sys.modules[n]=m\n"
    "sys.path.extend(c['sys_path'])\n"
    "class L(types.ModuleType):\n"
    " def __getattr__(s,a):\n"
    "  n=s.__name__;del sys.modules[n];r=__import__(n);s.__dict__.update(r.__dict__);return getattr(r,a)\n"
    "for n in c['lazy']:\n"
    " sys.modules[n]=L(n)\n"
    "from codeloop.executors.worker.child import main\n"
    "main(c)\n"
)


def plan_sandbox(
    *,
    limits: Limits,
    timeout: float | None,
    sandbox: str,
    fds: tuple[int, int],
    policy: dict[str, Any],
    shm_fd: int | None = None,
    zygote_fd: int | None = None,
) -> SandboxPlan:
    """Create the scratch directory and the command line for one worker.

    ``sandbox``: "auto" (bubblewrap if it works, else self-confinement), "bwrap" (fail without it),
    "self" (never bubblewrap), "none" (a bare process with rlimits only; for debugging).
    """
    exe, ro_dirs, sites = _python_layout()
    ensure_bytecode()
    bwrap = bwrap_path() if sandbox in ("auto", "bwrap") else None
    if sandbox == "bwrap" and bwrap is None:
        raise RuntimeError(
            "sandbox='bwrap' was asked for but bubblewrap is not installed or cannot create namespaces "
            "here; run scripts/install-os-deps.sh or use sandbox='auto'"
        )
    is_root = os.geteuid() == 0
    uid: int | None = None
    if (
        sandbox != "none"
        and is_root
        and (bwrap or all(_world_traversable(p) for p in [*ro_dirs, *sites, _PKG_ROOT]))
    ):
        uid = 1_000_000_000 + secrets.randbelow(1_000_000_000)  # a fresh uid no other process has
    scratch = ""  # with bubblewrap the scratch is a size-capped tmpfs that lives and dies with the sandbox
    if not bwrap:
        scratch = tempfile.mkdtemp(prefix="codeloop-worker-")
        os.mkdir(os.path.join(scratch, "tmp"))
        if uid is not None:
            for d in (scratch, os.path.join(scratch, "tmp")):
                os.chown(d, uid, uid)
    host_report: dict[str, Any] = {"process": True, "env": "scrubbed (no host variables)", "missing": []}
    if uid is None and sandbox != "none":
        if is_root:
            why = "the python installation is not readable by other uids, so the worker stays uid 0 (all "
            why += "capabilities dropped) and process count is bounded only by the timeout kill"
        else:
            why = "the host is not root, so the worker shares the host's uid"
        host_report["missing"].append(f"own uid and RLIMIT_NPROC: {why}")
    cfg: dict[str, Any] = {
        "fds": list(fds),
        "shm": shm_fd,
        "rlimits": limits.rlimits(timeout, own_uid=uid is not None),
        "uid": uid,
        "gid": uid,
        "policy": policy,
        "seccomp": sandbox != "none",
    }
    if bwrap:
        pkg = _SANDBOX_PKG
        argv = [bwrap, *_bwrap_args(ro_dirs, sites, limits.scratch_mb), exe]
        env = _scrubbed_env("/scratch", "/tmp")
        cwd = "/"
        host_report["sandbox"] = "bubblewrap"
        host_report["filesystem"] = (
            f"mount namespace: python read-only; private {limits.scratch_mb} MB tmpfs scratch as cwd and /tmp"
        )
        host_report["network"] = "network namespace (bubblewrap --unshare-net, no interfaces up)"
        host_report["pid_namespace"] = True
    else:
        pkg = _PKG_ROOT
        argv = [exe]
        env = _scrubbed_env(scratch, os.path.join(scratch, "tmp"))
        cwd = scratch
        host_report["sandbox"] = "self-confined" if sandbox != "none" else "none"
        host_report["pid_namespace"] = False
        if sandbox != "none":
            cfg["unshare_net"] = True
            cfg["landlock"] = {
                "ro": [
                    *ro_dirs,
                    *sites,
                    _PKG_ROOT,
                    "/usr",
                    "/lib",
                    "/lib64",
                    "/etc/ld.so.cache",
                    "/dev/urandom",
                    "/dev/zero",
                ],
                "rw": [scratch, "/dev/null"],
            }
            if sandbox == "self":
                host_report["missing"].append(
                    "bubblewrap mount view and pid namespace: not used (sandbox='self')"
                )
            elif shutil.which("bwrap") is None:
                host_report["missing"].append("bubblewrap: not installed (run scripts/install-os-deps.sh)")
            else:
                host_report["missing"].append("bubblewrap: installed but cannot create namespaces here")
        else:
            host_report["missing"].append(
                "sandbox disabled (sandbox='none'): no namespaces, Landlock or seccomp"
            )
    cfg["packages"] = [
        ["codeloop", pkg],
        ["codeloop.executors", pkg + "/executors"],
        ["codeloop.executors.worker", pkg + "/executors/worker"],
    ]
    cfg["lazy"] = ["asyncio"]
    cfg["sys_path"] = [f"{_SANDBOX_SITE}/{i}" for i in range(len(sites))] if bwrap else sites
    if zygote_fd is not None:  # a fork server (forkserver.py): it forks workers with their own uids
        cfg.update(zygote=zygote_fd, fork_uids=uid is not None, uid=None, gid=None, rlimits={"core": 0})
        cfg["scratch_root"] = "/scratch" if bwrap else scratch
        cfg["pid_namespace"] = bool(bwrap)
        cfg["host_pid"] = os.getpid()  # lets a test (or an operator) find what this process started
        if uid is not None and not bwrap:
            for d in (scratch, os.path.join(scratch, "tmp")):
                os.chown(d, 0, 0)
    argv += ["-I", "-S", "-B", "-c", _BOOT, json.dumps(cfg)]
    return SandboxPlan(
        argv=argv, env=env, cwd=cwd, scratch=scratch, uid=uid, child_cfg=cfg, host_report=host_report
    )


def _bwrap_args(ro_dirs: list[str], sites: list[str], scratch_mb: int) -> list[str]:
    """bubblewrap options: read-only Python, neutral mounts for site-packages and codeloop, scratch."""
    args = [
        "--unshare-net", "--unshare-pid", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try",
        "--hostname", "sandbox", "--die-with-parent", "--new-session",
        "--ro-bind", "/usr", "/usr",
    ]  # fmt: skip
    for top in ("/lib", "/lib64", "/lib32", "/bin", "/sbin"):
        if os.path.islink(top):
            args += ["--symlink", os.readlink(top), top]
        elif os.path.isdir(top):
            args += ["--ro-bind", top, top]
    # The Python installation keeps its path (the interpreter finds its stdlib from it); site-packages
    # directories and the codeloop package are mounted at neutral paths, so their host location (often
    # inside a project checkout) is neither shown nor listable.
    binds = [(d, d) for d in ro_dirs if not d.startswith("/usr/")]
    binds += [(d, f"{_SANDBOX_SITE}/{i}") for i, d in enumerate(sites)] + [(_PKG_ROOT, _SANDBOX_PKG)]
    # bubblewrap creates missing parents of a mount point with mode 0700, which an unprivileged uid
    # cannot cross: create them first, world-traversable.
    parents: list[str] = []
    for _, dest in binds:
        for parent in reversed(Path(dest).parents):
            p = str(parent)
            if p != "/" and p not in parents and not p.startswith("/usr"):
                parents.append(p)
    for p in parents:
        args += ["--perms", "0755", "--dir", p]
    for src, dest in binds:
        args += ["--ro-bind", src, dest]
    args += ["--ro-bind-try", "/etc/ld.so.cache", "/etc/ld.so.cache"]
    args += ["--proc", "/proc", "--dev", "/dev"]
    # scratch: a tmpfs capped in size (a disk-backed directory could fill the host's disk), world-writable
    # inside the sandbox only, since the worker drops to its own uid after bubblewrap set it up
    args += ["--perms", "1777", "--size", str(scratch_mb * 1024 * 1024), "--tmpfs", "/scratch"]
    args += ["--perms", "1777", "--dir", "/scratch/tmp", "--symlink", "/scratch/tmp", "/tmp"]
    args += ["--chdir", "/scratch"]
    return args


_LOGGED: set[str] = set()


def isolation_report(host: dict[str, Any], child: dict[str, Any]) -> dict[str, Any]:
    """One report of the layers in force: the host's plan merged with what the worker says it applied.

    Logged once per distinct report (a warning naming every layer that is not active), so a pool of
    identical workers says it once, not once per worker."""
    report = {k: v for k, v in host.items() if k != "missing"}
    report.update({k: v for k, v in child.items() if k != "missing"})
    report["missing"] = [*host.get("missing", []), *child.get("missing", [])]
    summary = ", ".join(f"{k}={v}" for k, v in sorted(report.items()) if k != "missing")
    key = summary + repr(report.get("missing"))
    if key not in _LOGGED:
        _LOGGED.add(key)
        logger.info("isolated Python worker: %s", summary)
        if report["missing"]:
            logger.warning("isolated Python worker: layers NOT active: %s", "; ".join(report["missing"]))
    return report
