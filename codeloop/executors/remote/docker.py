"""DockerExecutor: agent code runs in codeloop's worker inside a locked-down Docker container.

Layer 3 (executors). Extra "docker" (the ``docker`` SDK) and a Docker engine (``DOCKER_HOST`` or the
default socket). One container per executor, replaced after a timeout or crash, with: no network
(``--network none``), a read-only root file system, a size-capped tmpfs scratch as /tmp and cwd, the
user nobody (65534), every capability dropped, no-new-privileges, memory (no swap) and pids limits,
and the engine's seccomp profile under codeloop's own seccomp filter and Landlock rules.

The byte stream is the container's attach stream (stdin/stdout, opened before the container starts
so nothing is lost): it works with any engine, local or remote (tcp, ssh), needs no shared directory
and ends when the host goes away, which ends the worker. Its output is multiplexed (an 8-byte header
per chunk, stdout and stderr interleaved), so ``read`` demultiplexes it and the relay threads hand the
host a plain socket (about 0.1 ms a round trip more than a bind-mounted unix socket would cost).

Containers are never left behind: removed at ``close`` (and at interpreter exit), removed by the engine
when the worker exits (``auto_remove``), and the worker exits when the host dies (its stdin closes);
every container is labelled with the host machine, pid and that pid's start time, and
``sweep_containers()`` (run at each executor start) removes those whose host process is gone.
"""

from __future__ import annotations

import os
import socket
import struct
import subprocess
import threading
from typing import Any

from .base import RemoteExecutor, Sandbox, track, untrack
from .docker_image import SITE_DIR, worker_image
from .ship import SANDBOX_ROOT, boot_argv

__all__ = ["DockerExecutor", "DockerSandbox", "sweep_containers"]

try:
    import docker
    from docker.errors import APIError, DockerException, ImageNotFound, NotFound
except ModuleNotFoundError as exc:  # pragma: no cover - depends on the install
    raise ModuleNotFoundError(
        "DockerExecutor needs the docker SDK: pip install 'codeloop[docker]'", name=exc.name
    ) from exc

LABEL = "codeloop.executor"
_STDOUT, _STDERR = 1, 2


def _boot_id() -> str:
    try:
        with open("/proc/sys/kernel/random/boot_id") as f:
            return f.read().strip()
    except OSError:
        return socket.gethostname()


def _start_time(pid: int) -> str | None:
    """The process's start time (clock ticks since boot): a pid with another start time is another process."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def _host_labels() -> dict[str, str]:
    pid = os.getpid()
    return {
        LABEL: "1",
        "codeloop.host": _boot_id(),
        "codeloop.host_pid": str(pid),
        "codeloop.host_start": _start_time(pid) or "",
    }


def sweep_containers(client: Any = None) -> int:
    """Remove codeloop containers of this machine whose host process is gone; return how many.

    (A container outlives its host only if the engine kept it although the worker exited: for example
    an engine that was down when the host died.)"""
    client = client or docker.from_env()
    here = _boot_id()
    removed = 0
    for container in client.containers.list(all=True, filters={"label": [LABEL, f"codeloop.host={here}"]}):
        labels = container.labels or {}
        try:
            pid = int(labels.get("codeloop.host_pid", ""))
        except ValueError:
            continue
        if _start_time(pid) == labels.get("codeloop.host_start") and labels.get("codeloop.host_start"):
            continue  # its host is alive
        try:
            container.remove(force=True)
            removed += 1
        except (NotFound, APIError):
            pass
    return removed


class DockerSandbox(Sandbox):
    """One container running the worker, its attach stream demultiplexed (see the module docstring)."""

    def __init__(self, client: Any, image: str, argv: list[str], run_kwargs: dict[str, Any]):
        self.client = client
        self._err = bytearray()
        self._left = 0  # bytes left in the current stdout chunk
        self._killed = False
        self._lock = threading.Lock()
        self._exited = threading.Event()
        self.returncode: int | None = None
        self.container = client.containers.create(image, argv, stdin_open=True, tty=False, **run_kwargs)
        track(self)
        try:
            sock = self.container.attach_socket(params={"stdin": 1, "stdout": 1, "stderr": 1, "stream": 1})
            self._sock = getattr(sock, "_sock", sock)
            threading.Thread(target=self._wait, name="codeloop-docker-wait", daemon=True).start()
            self.container.start()
        except BaseException:
            self.kill()
            raise

    def _wait(self) -> None:
        try:
            status = self.client.api.wait(self.container.id, condition="next-exit").get("StatusCode")
        except Exception:  # noqa: BLE001 - removed meanwhile, engine gone: it ended, status unknown
            status = None
        code = -9 if status is None or self._killed else int(status)
        if 128 < code < 160:  # the engine says 128+N for "ended by signal N"
            code = 128 - code
        self.returncode = code
        self._exited.set()

    # -- the byte stream -----------------------------------------------------------------------
    def _exactly(self, n: int) -> bytes:
        data = b""
        while len(data) < n:
            chunk = self._sock.recv(n - len(data))
            if not chunk:
                return b""
            data += chunk
        return data

    def read(self, n: int) -> bytes:
        while self._left == 0:
            header = self._exactly(8)
            if not header:
                return b""
            kind, size = header[0], struct.unpack(">I", header[4:])[0]
            if kind == _STDOUT:
                self._left = size
            else:  # stderr (the worker's tracebacks, shown when it dies): keep the end
                self._err += self._exactly(size)
                del self._err[:-8192]
        data = self._sock.recv(min(n, self._left))
        self._left -= len(data)
        return data

    def write(self, data: bytes) -> None:
        self._sock.sendall(data)

    def close_input(self) -> None:
        try:
            self._sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    def stderr_tail(self) -> str:
        return self._err.decode("utf-8", "replace")

    # -- life ----------------------------------------------------------------------------------
    def poll(self) -> int | None:
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        if not self._exited.wait(timeout):
            raise subprocess.TimeoutExpired("docker container", timeout or 0)
        assert self.returncode is not None
        return self.returncode

    def kill(self) -> None:
        with self._lock:
            if self._killed:
                return
            self._killed = True
        try:
            self.client.api.remove_container(self.container.id, force=True)
        except (NotFound, APIError):
            pass  # gone already, or the engine is removing it (auto_remove)
        except Exception:  # noqa: BLE001 - engine unreachable: the worker still ends with its stream
            pass
        try:
            self._sock.close()
        except (OSError, AttributeError):
            pass
        untrack(self)


class DockerExecutor(RemoteExecutor):
    """Runs agent code in a Docker container (see the module docstring). smolagents' parameters:

    Args:
        additional_imports: modules code may import; those the image lacks are installed into it
            (see ``packages``).
        logger, allow_pickle: as ``RemoteExecutor`` (codeloop never unpickles sandbox values).
        host, port: smolagents' Jupyter gateway address; unused (no port is opened: the worker talks
            over the container's attach stream).
        image_name: the base image (Python 3.11+ as ``python3``); pulled if it is not there.
        build_new_image: rebuild the worker image even if one with the same content exists
            (smolagents rebuilds by default; codeloop reuses it unless asked).
        container_run_kwargs: extra ``docker.containers.create`` arguments; they override codeloop's
            defaults (e.g. ``{"network_mode": "bridge"}``), and ``isolation`` then says so.
        dockerfile_content: a Dockerfile to build ``image_name`` from (when it is missing or
            ``build_new_image``).
        packages: pip requirements or wheel paths to install in the image (default: the imports the
            base image cannot import, by name).
        docker_host: the engine's address (default: ``DOCKER_HOST``, else the local socket).
        user: the container's user (default nobody, 65534:65534).
        **kwargs: ``LocalPythonExecutor``'s (timeout_seconds, memory_mb, max_processes, scratch_mb...).
    """

    backend = "docker"

    def __init__(
        self,
        additional_imports: list[str] | None = None,
        logger: Any = None,
        allow_pickle: bool = False,
        host: str = "127.0.0.1",
        port: int = 8888,
        image_name: str = "python:3.12-slim",
        build_new_image: bool = False,
        container_run_kwargs: dict[str, Any] | None = None,
        dockerfile_content: str | None = None,
        *,
        packages: list[str] | None = None,
        docker_host: str | None = None,
        user: str = "65534:65534",
        **kwargs: Any,
    ):
        self.host, self.port = host, port
        self.image_name = image_name
        try:
            self.client = docker.DockerClient(base_url=docker_host) if docker_host else docker.from_env()
            self.client.ping()
            engine = self.client.info()
        except DockerException as exc:
            where = docker_host or os.environ.get("DOCKER_HOST") or "the default socket"
            raise RuntimeError(f"Could not connect to the Docker engine at {where}: {exc}") from exc
        sweep_containers(self.client)
        imports = sorted({*(additional_imports or ()), *(kwargs.get("additional_authorized_imports") or ())})
        self._base_image(image_name, dockerfile_content, build_new_image)
        self.image = worker_image(self.client, image_name, imports, packages, rebuild=build_new_image)
        memory_mb = kwargs.get("memory_mb", 2048)
        pids = kwargs.get("max_processes", 64)
        scratch_mb = kwargs.get("scratch_mb", 512)
        run: dict[str, Any] = {
            "network_mode": "none",
            "read_only": True,
            "user": user,
            "cap_drop": ["ALL"],
            "security_opt": ["no-new-privileges"],
            "tmpfs": {"/tmp": f"size={scratch_mb}m,mode=1777,nosuid,nodev"},
            "working_dir": "/tmp",
            "environment": {
                "HOME": "/tmp",
                "LANG": "C.UTF-8",
                "TMPDIR": "/tmp",
                "PYTHONDONTWRITEBYTECODE": "1",
            },
            "auto_remove": True,
            # the stream is the attach socket; a log driver would copy a stderr flood to the host's disk
            "log_config": {"type": "none"},
        }
        if memory_mb:
            run["mem_limit"] = run["memswap_limit"] = f"{memory_mb}m"
        if pids:
            run["pids_limit"] = pids
        run.update(container_run_kwargs or {})
        run["labels"] = {**(run.get("labels") or {}), **_host_labels()}
        self.run_kwargs = run
        self.sandbox_isolation = _isolation(run, engine, image_name, memory_mb, pids, scratch_mb)
        super().__init__(additional_imports, logger, allow_pickle, **kwargs)

    def _base_image(self, name: str, dockerfile: str | None, rebuild: bool) -> None:
        if dockerfile is None or not rebuild:
            try:
                self.client.images.get(name)
                return
            except ImageNotFound:
                pass
        if dockerfile is not None:
            import io

            self.client.images.build(fileobj=io.BytesIO(dockerfile.encode()), tag=name, rm=True)
            return
        try:
            self.client.images.pull(name)
        except DockerException as exc:
            raise RuntimeError(
                f"The Docker image {name!r} is not on the engine and could not be pulled ({exc}); "
                "pass image_name= an image with Python 3.11+ that is there, or dockerfile_content="
            ) from exc

    def _worker_config(self, flavor: Any) -> dict[str, Any]:
        cfg = super()._worker_config(flavor)
        cfg["sys_path"] = [SITE_DIR]
        cfg["landlock"] = {
            "ro": ["/usr", "/lib", "/lib64", "/bin", "/etc/ld.so.cache", "/etc/localtime", SANDBOX_ROOT,
                   "/dev/urandom", "/dev/zero"],
            "rw": ["/tmp", "/dev/null"],
        }  # fmt: skip
        return cfg

    def _open_sandbox(self, cfg: dict[str, Any]) -> Sandbox:
        return DockerSandbox(self.client, self.image, boot_argv(cfg), self.run_kwargs)

    @property
    def containers(self) -> list[Any]:
        """The containers this process has running now (for inspection)."""
        return self.client.containers.list(all=True, filters={"label": f"codeloop.host_pid={os.getpid()}"})


def _isolation(
    run: dict[str, Any], engine: dict[str, Any], image: str, memory_mb: Any, pids: Any, scratch_mb: int
) -> dict[str, Any]:
    missing: list[str] = []
    report: dict[str, Any] = {
        "sandbox": "docker",
        "container": f"{engine.get('DefaultRuntime', 'runc')} on Docker engine {engine.get('ServerVersion', '?')}",
        "image": image,
    }
    net = run.get("network_mode")
    report["network"] = "none (no interfaces but loopback)" if net == "none" else net
    if net != "none":
        missing.append(f"network isolation: network_mode={net!r} (container_run_kwargs)")
    if run.get("read_only"):
        report["filesystem"] = f"read-only root; {scratch_mb} MB tmpfs /tmp as scratch"
    else:
        missing.append("read-only root file system: turned off (container_run_kwargs)")
    user = str(run.get("user") or "")
    if user in ("", "0", "root") or user.startswith("0:"):
        missing.append("non-root user: the container runs as root")
    report["user"] = (
        f"{user or 'root'}; capabilities dropped: {', '.join(run.get('cap_drop') or []) or 'none'}"
    )
    if "no-new-privileges" not in (run.get("security_opt") or []):
        missing.append("no-new-privileges: not set")
    report["memory"] = run.get("mem_limit") or "unlimited"
    report["pids"] = run.get("pids_limit") or "unlimited"
    if not run.get("mem_limit"):
        missing.append("memory limit: none")
    if not run.get("pids_limit"):
        missing.append("pids limit: none")
    security = engine.get("SecurityOptions") or []
    if any("seccomp" in s for s in security):
        report["engine_seccomp"] = "default profile"
    else:
        missing.append(
            "engine seccomp profile: not enabled on this engine (codeloop's own filter still applies)"
        )
    report["missing"] = missing
    return report
