"""A throwaway Docker engine for the tests: Debian's dockerd with no network bridge, its own data and
exec roots and unix socket in a temp dir, the sandbox base image imported from the tarball that
scripts/install-docker-sandbox.sh built. One engine per test session (``shared``), stopped at exit.
"""

from __future__ import annotations

import atexit
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from pathlib import Path

BASE_IMAGE = "codeloop-sandbox-base:bookworm"


def base_tarball() -> Path:
    cache = os.environ.get("CODELOOP_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "codeloop"
    )
    return Path(cache) / "sandbox-bookworm.tar"


class Engine:
    def __init__(self) -> None:
        dockerd = shutil.which("dockerd")
        if dockerd is None:
            raise RuntimeError("dockerd is not installed: run scripts/install-os-deps.sh (as root)")
        if os.geteuid() != 0:
            raise RuntimeError("the Docker tests start their own dockerd, which needs root")
        tarball = base_tarball()
        if not tarball.is_file():
            raise RuntimeError(f"{tarball} is missing: run scripts/install-docker-sandbox.sh (as root)")
        # (a short path: the unix socket path must stay under 108 bytes)
        self.root = tempfile.mkdtemp(prefix="cl-dockerd-")
        self.host = f"unix://{self.root}/docker.sock"
        self._log = open(os.path.join(self.root, "dockerd.log"), "wb")  # noqa: SIM115
        argv = [
            dockerd,
            *("--bridge=none", "--iptables=false", "--ip-forward=false", "--ip-masq=false"),
            *("--data-root", f"{self.root}/data", "--exec-root", f"{self.root}/exec"),
            *("-H", self.host, "--pidfile", f"{self.root}/docker.pid"),
        ]
        self.proc = subprocess.Popen(
            argv, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True, preexec_fn=_die_with_parent
        )
        import docker

        deadline = time.monotonic() + 60
        while True:
            try:  # (the client asks the engine for its API version at once)
                self.client = docker.DockerClient(base_url=self.host, timeout=60)
                self.client.ping()
                break
            except Exception:  # noqa: BLE001 - not up yet
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"dockerd did not start; its log:\n{self.log_tail()}") from None
                time.sleep(0.1)
        with open(tarball, "rb") as f:
            self.client.api.import_image_from_data(f, repository=BASE_IMAGE.split(":")[0], tag="bookworm")

    def log_tail(self) -> str:
        try:
            return Path(self.root, "dockerd.log").read_text(errors="replace")[-3000:]
        except OSError:
            return ""

    def containers(self, all: bool = True) -> list:
        return self.client.containers.list(all=all, filters={"label": "codeloop.executor"})

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self._log.close()
        # mounts dockerd may have left behind under its roots
        subprocess.run(["umount", "-R", "-l", f"{self.root}/exec"], stderr=subprocess.DEVNULL, check=False)
        subprocess.run(["umount", "-R", "-l", f"{self.root}/data"], stderr=subprocess.DEVNULL, check=False)
        shutil.rmtree(self.root, ignore_errors=True)


def _die_with_parent() -> None:
    # a test run killed outright (SIGKILL) still stops its engine: SIGTERM when the starter goes
    import ctypes

    ctypes.CDLL(None).prctl(1, signal.SIGTERM, 0, 0, 0)  # PR_SET_PDEATHSIG


_engine: Engine | None = None
_lock = threading.Lock()


def shared() -> Engine:
    """The session's engine (started at the first call, stopped at interpreter exit)."""
    global _engine
    with _lock:
        if _engine is None:
            _engine = Engine()
            atexit.register(_engine.stop)
        return _engine
