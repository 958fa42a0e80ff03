"""What the cloud backends (E2B, Modal, Blaxel) share: the bootstrap, packages, streamed sandboxes, errors.

Layer 3 (executors). A cloud sandbox runs codeloop's worker like any remote sandbox (ship.py), but
its modules are not copied with a file API: the process is started with ``UNPACK`` (a few lines of
stdlib Python, passed with ``python3 -c``), which reads one length-prefixed tar of the worker modules
(``ship.worker_tar``) from its stdin, unpacks it in a fresh directory and then replaces itself with the
worker (or the line relay, textpipe.py), whose stdin is the same stream: the frames follow the tar. One
round trip instead of one per file, and the same path for every SDK. Tools, their source and
credentials are never in it (tests check the bytes every SDK call carried).

``additional_authorized_imports`` become pip requirements (``pip_requirements``: the top-level
module names that are not in the standard library, with the usual module -> distribution renames);
each backend installs them with its SDK's own mechanism.
"""

from __future__ import annotations

import collections
import inspect
import logging
import shlex
import subprocess
import sys
import threading
from collections.abc import Callable, Iterable
from typing import Any

from codeloop.errors import CodeloopError
from codeloop.executors.policy import PIP_NAMES

from .base import RemoteExecutor, Sandbox
from .ship import SANDBOX_ROOT, worker_tar

__all__ = [
    "SandboxConfigurationError",
    "CloudExecutor",
    "UNPACK",
    "bootstrap_argv",
    "bundle",
    "pip_requirements",
    "pip_argv",
    "StreamedSandbox",
    "shell",
    "rooted",
    "sdk_names",
    "describe",
]

logger = logging.getLogger("codeloop.executors.remote")


class SandboxConfigurationError(CodeloopError, RuntimeError):
    """A cloud sandbox cannot be used as configured (missing or rejected credentials, a bad option)."""


# argv: [root, command...]. Reads an 8-byte big-endian length and that many bytes of tar from fd 0
# (exactly: the rest of the stream is the worker's), unpacks them under root, makes root/scratch the
# working directory and execs the command. A Python older than 3.11 is told plainly (exit 3).
UNPACK = (
    "import os,sys\n"
    "if sys.version_info<(3,11):\n"
    " sys.stderr.write('codeloop: the sandbox python3 is %d.%d; the worker needs Python 3.11 or newer\\n'"
    "%sys.version_info[:2]);sys.exit(3)\n"
    "import io,tarfile\n"
    "def rd(n):\n"
    " b=bytearray()\n"
    " while len(b)<n:\n"
    "  c=os.read(0,min(1<<20,n-len(b)))\n"
    "  if not c:sys.stderr.write('codeloop: the worker modules did not arrive\\n');sys.exit(5)\n"
    "  b+=c\n"
    " return bytes(b)\n"
    "r=sys.argv[1];os.makedirs(r+'/scratch',exist_ok=True)\n"
    "t=tarfile.open(fileobj=io.BytesIO(rd(int.from_bytes(rd(8),'big'))))\n"
    "try:t.extractall(r,filter='data')\n"
    "except TypeError:t.extractall(r)\n"
    "os.chdir(r+'/scratch');os.execvp(sys.argv[2],sys.argv[2:])\n"
)


def bootstrap_argv(root: str, command: list[str], python: str = "python3") -> list[str]:
    """The command that unpacks the worker modules under ``root`` (from stdin), then runs ``command``."""
    return [python, "-I", "-S", "-B", "-c", UNPACK, root, *command]


def bundle() -> bytes:
    """What the host writes first on the process's stdin: the worker modules for ``UNPACK``."""
    tar = worker_tar("")
    return len(tar).to_bytes(8, "big") + tar


def shell(argv: list[str]) -> str:
    """``argv`` as one shell command line (for SDKs that take a command string)."""
    return shlex.join(argv)


def pip_requirements(imports: Iterable[str]) -> list[str]:
    """The pip requirements for authorized imports: third-party top-level modules, renamed where the
    distribution has another name (policy.PIP_NAMES: "sklearn" -> scikit-learn; "numpy.*" -> numpy);
    the standard library and "*" need nothing."""
    wanted: set[str] = set()
    for name in imports:
        name = name.strip()
        if not name or name == "*":
            continue
        top = name.split(".")[0]
        if top in sys.stdlib_module_names or top.startswith("_"):
            continue
        wanted.add(PIP_NAMES.get(top, top))
    return sorted(wanted)


def pip_argv(requirements: list[str], target: str | None = None, python: str = "python3") -> list[str]:
    """``python3 -m pip install`` for ``requirements`` (into ``target`` when given)."""
    argv = [python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-input"]
    if target:
        argv += ["--target", target]
    return argv + list(requirements)


class StreamedSandbox(Sandbox):
    """A sandbox whose worker process is reached through SDK calls, not descriptors.

    ``send`` writes bytes to the process's stdin; ``terminate`` deletes the whole sandbox (it is
    called once, from ``kill``). The backend's reader thread feeds the output: ``feed_text`` /
    ``feed_line`` for the relay's text (textpipe.py), or ``feed_bytes`` for raw bytes, ``feed_stderr``
    for error output, and ``finished(code)`` when the process ended. ``read`` / ``write`` are what the
    shared relay pumps.
    """

    def __init__(self, name: str, send: Callable[[bytes], None], terminate: Callable[[], None], text: bool):
        from .textpipe import TextStream

        self.name = name
        self._terminate = terminate
        self._stream = TextStream(send)
        self._text = text
        self._raw: collections.deque[bytes] = collections.deque()
        self._raw_ready = threading.Condition()
        self._raw_ended = False
        self._err: collections.deque[str] = collections.deque(maxlen=64)
        self._done = threading.Event()
        self._kill_lock = threading.Lock()
        self.killed = False
        self.returncode: int | None = None

    # -- fed by the backend's reader --
    def feed_text(self, text: str) -> None:
        self._stream.feed_text(text)

    def feed_line(self, line: str) -> None:
        self._stream.feed_line(line)

    def feed_bytes(self, data: bytes) -> None:
        with self._raw_ready:
            self._raw.append(bytes(data))
            self._raw_ready.notify()

    def feed_stderr(self, text: str) -> None:
        self._err.append(text)

    def finished(self, code: int | None, error: str | None = None) -> None:
        """The process ended (``code`` None: unknown, e.g. the stream broke); ends the output."""
        if error:
            self._err.append(f"\n[{self.name}: {error}]\n")
        if self._stream.error:
            self._err.append(f"\n[{self.name}: {self._stream.error}]\n")
        preamble = self._stream.decoder.preamble
        if preamble and not self._stream.decoder.started:
            self._err.append(f"\n[{self.name}: its output before the worker started: {' | '.join(preamble)}]\n")
        if self.returncode is None:
            self.returncode = code if code is not None else -9
        self._stream.end()
        with self._raw_ready:
            self._raw_ended = True
            self._raw_ready.notify_all()
        self._done.set()

    # -- the byte stream --
    def read(self, n: int) -> bytes:
        if self._text:
            return self._stream.read(n)
        with self._raw_ready:
            while not self._raw and not self._raw_ended:
                self._raw_ready.wait()
            return self._raw.popleft() if self._raw else b""

    def write(self, data: bytes) -> None:
        self._stream.write(data)

    # -- life --
    def poll(self) -> int | None:
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        if not self._done.wait(timeout):
            raise subprocess.TimeoutExpired(self.name, timeout or 0)
        assert self.returncode is not None
        return self.returncode

    def kill(self) -> None:
        with self._kill_lock:
            if self.killed:
                return
            self.killed = True
        try:
            self._terminate()
        except Exception as exc:  # noqa: BLE001 - the SDK's error; the sandbox's own lifetime limit remains
            logger.warning("%s: deleting the sandbox failed (%s: %s)", self.name, type(exc).__name__, exc)
        self.finished(-9)

    def stderr_tail(self) -> str:
        return "".join(self._err)


def describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def rooted(cfg: dict[str, Any], root: str, site_dirs: Iterable[str] = ()) -> dict[str, Any]:
    """``cfg`` (ship.worker_config, modules under ship.SANDBOX_ROOT) with the modules under ``root``
    instead, and ``site_dirs`` (where packages were installed) on the worker's sys.path."""
    cfg = dict(cfg)
    cfg["packages"] = [
        [name, root + path[len(SANDBOX_ROOT) :] if path.startswith(SANDBOX_ROOT) else path]
        for name, path in cfg["packages"]
    ]
    cfg["sys_path"] = [*cfg.get("sys_path", []), *site_dirs]
    return cfg


def sdk_names(*callables: Any, extra: Iterable[str] = ()) -> set[str]:
    """The keyword parameters the SDK's own callables take (to tell SDK options from executor ones)."""
    names = set(extra)
    for fn in callables:
        for p in inspect.signature(fn).parameters.values():
            if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.name not in ("self", "cls"):
                names.add(p.name)
    return names


class CloudExecutor(RemoteExecutor):
    """A remote executor on a cloud SDK: the first sandbox is created while the executor is built (so
    missing or rejected credentials, or packages that do not install, fail there, once); the next ones
    in the background when one is lost. Subclasses implement ``_create`` (a new SDK sandbox, packages
    installed), ``_start`` (run the worker command in it, return the StreamedSandbox) and ``_delete``.
    """

    def _begin(self, imports: list[str], logger: Any, allow_pickle: bool, **kwargs: Any) -> None:
        """The end of a subclass's ``__init__``: create the first sandbox, then set up the executor."""
        self._ready_lock = threading.Lock()
        self._ready: Any = self._create()
        try:
            RemoteExecutor.__init__(self, imports, logger, allow_pickle, **kwargs)
        except BaseException:
            self._delete(self._ready)
            raise
        # Wait for the first worker's hello: a sandbox that cannot run it (no Python 3.11, a broken
        # image) fails here, once, rather than at every step of a run.
        try:
            self.isolation  # noqa: B018 - the property waits for the worker
        except CodeloopError as exc:
            self.close()
            raise SandboxConfigurationError(f"the {self.backend} sandbox could not run codeloop's worker: {exc}") from None

    def _create(self) -> Any:
        raise NotImplementedError

    def _start(self, sdk_sandbox: Any, cfg: dict[str, Any]) -> StreamedSandbox:
        raise NotImplementedError

    def _delete(self, sdk_sandbox: Any) -> None:
        raise NotImplementedError

    def _open_sandbox(self, cfg: dict[str, Any]) -> Sandbox:
        with self._ready_lock:
            sdk_sandbox, self._ready = self._ready, None
        if sdk_sandbox is None:
            sdk_sandbox = self._create()
        try:
            streamed = self._start(sdk_sandbox, cfg)
        except BaseException:
            self._delete(sdk_sandbox)
            raise
        try:
            streamed.write(bundle())  # the worker modules, for UNPACK
        except Exception as exc:  # noqa: BLE001 - most likely the process ended at once: say why
            try:
                streamed.wait(3)
            except subprocess.TimeoutExpired:
                pass
            streamed.kill()
            tail = streamed.stderr_tail().strip()[-1500:]
            raise RuntimeError(
                f"the worker process ended before it started ({describe(exc)})"
                + (f"; its error output: {tail}" if tail else "")
            ) from None
        except BaseException:
            streamed.kill()
            raise
        return streamed

    def close(self) -> None:
        super().close()
        lock = getattr(self, "_ready_lock", None)
        if lock is not None:
            with lock:
                ready, self._ready = self._ready, None
            if ready is not None:  # created, never used
                try:
                    self._delete(ready)
                except Exception as exc:  # noqa: BLE001
                    logger.warning("%s: deleting an unused sandbox failed (%s)", self.backend, describe(exc))

    cleanup = close
