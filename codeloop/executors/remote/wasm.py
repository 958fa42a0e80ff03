"""WasmExecutor: agent code runs in codeloop's worker inside Pyodide (CPython on WebAssembly) in Deno.

Layer 3 (executors). No Python extra: Deno and Pyodide are the npm packages ``deno`` and ``pyodide``,
which ``scripts/install-wasm-sandbox.sh`` installs into codeloop's cache directory (the executor
finds them there, or takes ``deno_path=``/``pyodide_path=``, or ``CODELOOP_DENO``/``CODELOOP_PYODIDE``).

One Deno process per sandbox runs ``wasm_runner.js`` with the permission to read Pyodide's own
files (and the start-up snapshot below) and nothing else: no network, no environment, no writes, no
subprocesses, no FFI. The runner gets codeloop's worker modules and the boot code over stdin (the
same boot as every remote backend, ``ship.boot_argv``), places the modules in Pyodide's in-memory
file system and runs the worker, whose frames then travel on the process's stdin and stdout; Python
blocks in Deno's synchronous stdin reads while it waits for the host (the next request, or the answer
to a tool call). The worker's policy and session are the local worker's, so code sees the same
imports, the same errors and the same tools (proxies to the host).

What WebAssembly gives in place of the OS layers of the local worker: the code runs in Wasm linear
memory (at most 4 GiB, wasm32) and reaches the outside only through Emscripten's emulation, which
has no sockets to connect, no processes to start, no threads and no signals; its file system is an
in-memory one holding Pyodide's stdlib and the worker. Resource limits and seccomp do not exist
there: they are listed under ``isolation["missing"]``. The host bounds the Deno process itself:
a data-segment limit (``memory_mb``; Wasm memory counts), a lifetime CPU limit, death with the
host (``PR_SET_PDEATHSIG``), and the timeout, which kills the process and opens a fresh one.

Start-up: Pyodide takes 2-5 s to boot. The first sandbox of a machine makes a memory snapshot of a
booted Pyodide (kept in the cache, keyed by the Pyodide and runner versions), and later ones start
from it in a few hundred milliseconds; each executor also keeps a spare sandbox warm, so a lost
sandbox (a timeout, a crash) is replaced at once.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import resource
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

from .base import RemoteExecutor, Sandbox, track, untrack
from .ship import boot_argv, worker_config, worker_files

__all__ = ["WasmExecutor", "WasmSandbox", "find_runtime"]

RUNNER = Path(__file__).with_name("wasm_runner.js")
_SNAPSHOT_LOCK = threading.Lock()
_PR_SET_PDEATHSIG = 1
# V8's stack limit for the Deno process (KiB; V8's default is under 1 MiB). Pyodide's recursion
# checks watch Wasm's own stack; deep C recursion (the repr of a deeply nested list) also uses V8's
# native stack, and running out of that is a fatal error, not a RecursionError: give it room.
_V8_STACK_KB = 32768


def cache_dir() -> Path:
    """Where scripts/install-wasm-sandbox.sh installs Deno and Pyodide (and snapshots are kept)."""
    base = os.environ.get("CODELOOP_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "codeloop"
    )
    return Path(base) / "wasm"


_INSTALL_HINT = "run scripts/install-wasm-sandbox.sh (npm packages deno and pyodide)"


def find_runtime(deno_path: str | None = "deno", pyodide_path: str | None = None) -> tuple[str, Path]:
    """(Deno executable, Pyodide directory), or a FileNotFoundError saying how to install them.

    ``deno_path`` "deno" (smolagents' default) means: ``CODELOOP_DENO``, else codeloop's install,
    else ``deno`` on PATH; any other value is used as given.
    """
    modules = cache_dir() / "node_modules"
    deno: str | None
    if deno_path in (None, "deno"):
        installed = sorted(modules.glob("@deno/*/deno"))
        deno = os.environ.get("CODELOOP_DENO") or (str(installed[0]) if installed else shutil.which("deno"))
    else:
        deno = shutil.which(deno_path) or (deno_path if os.path.isfile(deno_path) else None)
    if not deno or not os.access(deno, os.X_OK):
        raise FileNotFoundError(f"WasmExecutor needs Deno: none found ({deno_path!r}); {_INSTALL_HINT}")
    pyodide = Path(pyodide_path or os.environ.get("CODELOOP_PYODIDE") or modules / "pyodide").resolve()
    if not (pyodide / "pyodide.mjs").is_file() or not (pyodide / "python_stdlib.zip").is_file():
        raise FileNotFoundError(f"WasmExecutor needs Pyodide: none at {pyodide}; {_INSTALL_HINT}")
    return deno, pyodide


def _version(path: Path) -> str:
    try:
        return str(json.loads((path / "package.json").read_text())["version"])
    except (OSError, ValueError, KeyError):
        return "unknown"


def _v8_stack_kb() -> int:
    """V8's stack limit for Deno: _V8_STACK_KB where the stack rlimit lets the main thread have it."""
    hard = resource.getrlimit(resource.RLIMIT_STACK)[1]
    if hard == resource.RLIM_INFINITY:
        return _V8_STACK_KB
    return max(984, min(_V8_STACK_KB, hard // 1024 - 8192))  # (984: V8's own default)


def _limit_child(data_bytes: int | None, cpu_seconds: int, stack_kb: int) -> Any:
    """preexec_fn for the Deno process: die with the host, bound memory and lifetime CPU, and size
    the main thread's stack (fixed at exec) for V8's stack limit. Prepared here: the forked child
    only makes system calls (an import there could wait on a lock another thread held at fork)."""
    import ctypes

    prctl = ctypes.CDLL(None, use_errno=True).prctl
    setrlimit, hard_stack = resource.setrlimit, resource.getrlimit(resource.RLIMIT_STACK)[1]
    stack = (stack_kb + 8192) * 1024
    if hard_stack != resource.RLIM_INFINITY:
        stack = min(stack, hard_stack)

    def apply() -> None:
        prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if data_bytes:
            setrlimit(resource.RLIMIT_DATA, (data_bytes, data_bytes))
        setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds))
        setrlimit(resource.RLIMIT_CORE, (0, 0))
        setrlimit(resource.RLIMIT_STACK, (stack, hard_stack))

    return apply


class WasmSandbox(Sandbox):
    """One Deno process running Pyodide and the worker; its stdin/stdout are the frame stream."""

    def __init__(self, argv: list[str], env: dict[str, str], boot: bytes, preexec: Any):
        self._err = bytearray()
        self.proc = subprocess.Popen(
            argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            cwd="/",
            start_new_session=True,
            preexec_fn=preexec,
        )
        track(self)
        threading.Thread(target=self._drain, name="codeloop-wasm-stderr", daemon=True).start()
        assert self.proc.stdin is not None and self.proc.stdout is not None
        try:
            self.proc.stdin.write(struct.pack(">I", len(boot)) + boot)
            self.proc.stdin.flush()
        except OSError as exc:
            self.kill()
            self.proc.wait()
            raise RuntimeError(
                f"the Deno process ended at start ({exc}): {self.stderr_tail()[-2000:]}"
            ) from None
        # The host owns the two pipe ends from now on (plain fds; closing them ends the worker).
        self._fds = (os.dup(self.proc.stdout.fileno()), os.dup(self.proc.stdin.fileno()))
        self.proc.stdout.close()
        self.proc.stdin.close()

    def _drain(self) -> None:
        stream = self.proc.stderr
        assert stream is not None
        while True:
            chunk = stream.read1(65536)  # type: ignore[attr-defined]
            if not chunk:
                break
            self._err += chunk
            if len(self._err) > 65536:  # keep a tail only (code may flood its stderr)
                del self._err[:-16384]
        stream.close()

    def fds(self) -> tuple[int, int]:
        return self._fds

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def returncode(self) -> int | None:  # type: ignore[override]
        return self.proc.returncode

    def poll(self) -> int | None:
        return self.proc.poll()

    def wait(self, timeout: float | None = None) -> int:
        return self.proc.wait(timeout)

    def kill(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(OSError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            with contextlib.suppress(OSError):
                self.proc.kill()
        untrack(self)

    def stderr_tail(self) -> str:
        return bytes(self._err[-4000:]).decode("utf-8", "replace")


class WasmExecutor(RemoteExecutor):
    """Runs agent code in Pyodide inside Deno (see the module docstring). smolagents' parameters:

    Args:
        additional_imports: modules code may import. Standard-library modules only: Pyodide's
            packages are not installed (nothing is fetched at run time); anything else is refused here.
        logger: as ``RemoteExecutor``.
        deno_path: the Deno executable ("deno": codeloop's install, else PATH).
        deno_permissions: extra Deno permissions, smolagents-style (e.g. ``["allow-net=example.org"]``);
            codeloop needs none beyond reading Pyodide's files, so each one widens the sandbox and
            ``isolation["missing"]`` says so.
        timeout: smolagents' per-run timeout in seconds (the same as ``timeout_seconds``).
        pyodide_path: the npm ``pyodide`` package directory (default: codeloop's install).
        snapshot: start sandboxes from a memory snapshot of a booted Pyodide (made once, cached).
        warm_spare: keep one more sandbox started, so a lost one is replaced at once.
        **kwargs: ``LocalPythonExecutor``'s (timeout_seconds, memory_mb, max_print_outputs_length...).
    """

    backend = "wasm"

    def __init__(
        self,
        additional_imports: list[str] | None = None,
        logger: Any = None,
        deno_path: str = "deno",
        deno_permissions: list[str] | None = None,
        timeout: int | None = None,
        *,
        pyodide_path: str | None = None,
        snapshot: bool = True,
        warm_spare: bool = True,
        allow_pickle: bool = False,
        **kwargs: Any,
    ):
        if timeout is not None:
            kwargs.setdefault("timeout_seconds", timeout)
        imports = {*(additional_imports or ()), *(kwargs.get("additional_authorized_imports") or ())}
        foreign = sorted(
            name for name in imports if name != "*" and name.split(".")[0] not in sys.stdlib_module_names
        )
        if foreign:
            raise ValueError(
                f"WasmExecutor runs Python's standard library only; cannot import {', '.join(foreign)} "
                "(no packages are installed in Pyodide); use executor_type='local' or 'docker' for them"
            )
        self.deno_path, self.pyodide_path = find_runtime(deno_path, pyodide_path)
        self.deno_permissions = [p if p.startswith("--") else f"--{p}" for p in (deno_permissions or [])]
        self.keep_spare = warm_spare
        self._use_snapshot = snapshot
        self._deno_version = _run_text([self.deno_path, "--version"]).split("\n")[0].strip()
        self.pyodide_version = _version(self.pyodide_path)
        memory_mb = kwargs.get("memory_mb", 2048)
        self._stack_kb = _v8_stack_kb()
        self._preexec = _limit_child(memory_mb * 1024 * 1024 if memory_mb else None, 3600, self._stack_kb)
        self.sandbox_isolation = self._isolation(memory_mb)
        self._files = [[f"/opt/codeloop/{rel}", data.decode("utf-8")] for rel, data in worker_files()]
        super().__init__(sorted(imports), logger, allow_pickle, **kwargs)

    # -- what the sandbox gives ------------------------------------------------------------------
    def _isolation(self, memory_mb: int | None) -> dict[str, Any]:
        missing = [
            "seccomp filter: none (WebAssembly code makes no system calls of its own; "
            "Deno's permission checks stand in)",
            "Landlock: none (Deno may read Pyodide's files only; the code sees an in-memory file system)",
            "resource limits inside: none in WebAssembly (per-run CPU time, file size and open files "
            "are unbounded; the timeout kills the Deno process)",
            "own uid: the Deno process keeps the host's user (its permissions confine it)",
        ]
        granted = [p for p in self.deno_permissions if p.startswith("--allow")]
        if granted:
            missing.append(f"extra Deno permissions (deno_permissions): {' '.join(granted)}")
        net = any(p.startswith(("--allow-net", "--allow-all", "-A")) for p in self.deno_permissions)
        return {
            "sandbox": "wasm",
            "runtime": f"Pyodide {self.pyodide_version} in {self._deno_version}",
            "network": "granted by deno_permissions"
            if net
            else "none (no --allow-net; Pyodide opens no sockets)",
            "filesystem": "Pyodide's in-memory file system (the host's is not mounted); "
            "Deno reads only Pyodide's own files and writes nothing",
            "processes": "none (no subprocesses, fork, threads or signals in WebAssembly; no --allow-run)",
            "environment": "empty (no --allow-env)",
            "memory": f"{memory_mb} MB data limit on the Deno process; wasm32 at most 4 GiB"
            if memory_mb
            else "wasm32 at most 4 GiB",
            "missing": missing,
        }

    # -- opening sandboxes ----------------------------------------------------------------------
    def _worker_config(self, flavor: Any) -> dict[str, Any]:
        cfg = worker_config(flavor.limits, flavor.timeout, flavor.policy, seccomp=False, site=False)
        cfg["rlimits"] = {}  # none in Wasm (reported in sandbox_isolation)
        cfg["lazy"] = []  # Pyodide has imported asyncio at its own start: a lazy stand-in would shadow it
        return cfg

    def _env(self) -> dict[str, str]:
        deno_dir = cache_dir() / "deno_dir"
        return {"DENO_DIR": str(deno_dir), "DENO_NO_UPDATE_CHECK": "1", "NO_COLOR": "1"}

    def _deno_argv(self, read: list[Path], *args: str) -> list[str]:
        allow = ",".join(str(p) for p in read)
        return [
            self.deno_path, "run", "--quiet", "--no-prompt", "--no-config", "--no-lock", "--no-remote",
            "--no-npm", f"--v8-flags=--stack-size={self._stack_kb}", f"--allow-read={allow}",
            *self.deno_permissions, str(RUNNER), *args,
        ]  # fmt: skip

    def _open_sandbox(self, cfg: dict[str, Any]) -> Sandbox:
        snap = self._snapshot() if self._use_snapshot else None
        argv = boot_argv(cfg)
        boot = json.dumps({"files": self._files, "argv": ["-c", argv[-1]], "code": argv[-2]}).encode()
        read = [self.pyodide_path] + ([snap] if snap else [])
        deno = self._deno_argv(read, str(self.pyodide_path), str(snap or ""))
        return WasmSandbox(deno, self._env(), boot, self._preexec)

    def _snapshot(self) -> Path | None:
        """The start-up snapshot for this Pyodide and runner, made on first use (None if it cannot be)."""
        key = hashlib.sha256(
            RUNNER.read_bytes() + self.pyodide_version.encode() + self._deno_version.encode()
        ).hexdigest()[:16]
        path = cache_dir() / "snapshots" / f"pyodide-{self.pyodide_version}-{key}.bin"
        if path.is_file():
            return path
        with _SNAPSHOT_LOCK:
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                lock = open(path.parent / ".lock", "w")  # noqa: SIM115 - closed below
            except OSError:  # a read-only cache: every sandbox boots in full
                return None
            with lock:
                fcntl.flock(lock, fcntl.LOCK_EX)  # another process may be making it
                if path.is_file():
                    return path
                return _make_snapshot(
                    self._deno_argv([self.pyodide_path], str(self.pyodide_path), "--make-snapshot"),
                    self._env(),
                    path,
                )


def _make_snapshot(argv: list[str], env: dict[str, str], path: Path) -> Path | None:
    try:
        done = subprocess.run(argv, capture_output=True, env=env, cwd="/", timeout=120, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if done.returncode != 0 or len(done.stdout) < 1024 * 1024:
        import logging

        logging.getLogger("codeloop.executors.remote").warning(
            "Pyodide start-up snapshot could not be made (each sandbox boots in full): %s",
            done.stderr.decode("utf-8", "replace")[-500:],
        )
        return None
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".snapshot-")
        with os.fdopen(fd, "wb") as f:
            f.write(done.stdout)
        os.replace(tmp, path)
    except OSError:  # a full disk: boot in full
        return None
    for old in path.parent.glob("pyodide-*.bin"):  # made for another Pyodide or runner
        if old != path:
            old.unlink(missing_ok=True)
    return path


def _run_text(argv: list[str]) -> str:
    try:
        return subprocess.run(argv, capture_output=True, text=True, timeout=30, check=True).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        raise RuntimeError(f"Deno at {argv[0]} does not run: {exc}") from exc
