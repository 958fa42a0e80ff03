"""Images for DockerExecutor: the user's base image plus codeloop's worker and any extra packages.

Layer 3 (executors). The worker image is built ``FROM`` the base image (any image with Python 3.11+
as ``python3``): it adds codeloop's worker modules under /opt/codeloop, compiled to bytecode for the
image's own Python (the container's root file system is read-only, so the worker could never cache
bytecode itself), and the packages code may import. It is tagged by a hash of everything that goes
into it, so it is built once and reused by every executor and process until something changes.

Packages are resolved on the host by pip, for the image's Python version and platform (binary wheels
only: nothing is compiled or run at install time), and copied into the image: the build itself needs
no network and the image needs no pip. What to install: ``packages`` (pip requirement strings or wheel
paths) when given, else each authorized import the base image cannot import, by that name (as
smolagents installs its ``additional_imports``).
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path
from typing import Any

from .ship import SANDBOX_ROOT, worker_tar

__all__ = ["worker_image", "SITE_DIR"]

logger = logging.getLogger("codeloop.executors.remote")

#: where extra packages live in the worker image (on the worker's sys.path)
SITE_DIR = SANDBOX_ROOT + "/site"
_IMAGE_REPO = "codeloop-worker"
_IMAGE_VERSION = "1"  # bump when the Dockerfile below changes

_PROBE = (
    "import sys,json,platform,sysconfig,importlib.util as u\n"
    "m=json.loads(sys.argv[1])\n"
    "print(json.dumps({'version':list(sys.version_info[:2]),'platform':sysconfig.get_platform(),"
    "'libc':platform.libc_ver(),'missing':[n for n in m if u.find_spec(n) is None]}))\n"
)


def _top_level(imports: list[str]) -> list[str]:
    names = set()
    for name in imports:
        top = name.split(".")[0]
        if top and top != "*" and top not in sys.stdlib_module_names:
            names.add(top)
    return sorted(names)


def _probe(client: Any, base: str, modules: list[str]) -> dict[str, Any]:
    """Python version, platform and which of ``modules`` are missing, in a throwaway container."""
    out = client.containers.run(
        base,
        ["python3", "-I", "-c", _PROBE, json.dumps(modules)],
        network_mode="none",
        remove=True,
        stdout=True,
        stderr=True,
    )
    info = json.loads(out.decode().strip().splitlines()[-1])
    if tuple(info["version"]) < (3, 11):
        raise RuntimeError(
            f"the image {base!r} has Python {'.'.join(map(str, info['version']))}; "
            "codeloop's worker needs Python 3.11 or newer as python3"
        )
    return info


def _pip_platforms(info: dict[str, Any]) -> list[str]:
    arch = info["platform"].rsplit("-", 1)[-1]
    libc, version = info.get("libc") or ["", ""]
    tags = []
    if libc == "glibc" and version:
        minor = int(version.split(".")[1])
        tags = [f"manylinux_2_{m}_{arch}" for m in range(minor, 16, -1)]
        tags += [f"manylinux2014_{arch}"]
    elif libc == "" and arch:  # musl (Alpine): libc_ver() says nothing
        tags = [f"musllinux_1_{m}_{arch}" for m in range(2, 0, -1)]
    return [*tags, f"linux_{arch}"]


def _install_packages(packages: list[str], info: dict[str, Any], target: Path) -> None:
    major, minor = info["version"]
    cmd = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-cache-dir"]
    cmd += ["--target", str(target), "--only-binary=:all:", "--python-version", f"{major}.{minor}"]
    cmd += ["--implementation", "cp", "--abi", f"cp{major}{minor}"]
    for tag in _pip_platforms(info):
        cmd += ["--platform", tag]
    if all(os.path.isfile(p) for p in packages):  # local wheels only: no index is asked
        cmd += ["--no-index"]
    proc = subprocess.run([*cmd, *packages], capture_output=True, text=True, timeout=900)
    if proc.returncode != 0:
        raise RuntimeError(
            f"could not install {', '.join(packages)} for the sandbox (Python {major}.{minor}, "
            f"{info['platform']}; binary wheels only): {proc.stderr.strip()[-1500:]}\n"
            "Pass packages=[...] with the pip names (or wheel paths) if they differ from the import names."
        )


def _add_tree(tar: tarfile.TarFile, src: Path, arcname: str) -> None:
    for path in sorted(src.rglob("*")):
        if "__pycache__" in path.parts:
            continue
        info = tar.gettarinfo(str(path), f"{arcname}/{path.relative_to(src).as_posix()}")
        info.uid = info.gid = 0
        info.uname = info.gname = "root"
        info.mode = 0o755 if info.isdir() else 0o644
        if info.isfile():
            with open(path, "rb") as f:
                tar.addfile(info, f)
        elif info.isdir() or info.issym():
            tar.addfile(info)


def _context(base_id: str, site: Path | None) -> bytes:
    root = SANDBOX_ROOT.lstrip("/")
    dockerfile = (
        f"FROM {base_id}\n"
        f"COPY {root} /{root}\n"
        # bytecode for the image's own Python (also checks that the worker modules compile on it)
        f"RUN python3 -m compileall -q /{root}\n"
        f"LABEL codeloop.worker-image={_IMAGE_VERSION}\n"
    ).encode()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo("Dockerfile")
        info.size = len(dockerfile)
        tar.addfile(info, io.BytesIO(dockerfile))
        with tarfile.open(fileobj=io.BytesIO(worker_tar(root, mode=0o644)), mode="r") as worker:
            for member in worker.getmembers():
                tar.addfile(member, worker.extractfile(member) if member.isfile() else None)
        if site is not None:
            _add_tree(tar, site, SITE_DIR.lstrip("/"))
    return buf.getvalue()


def worker_image(
    client: Any,
    base: str,
    imports: list[str],
    packages: list[str] | None,
    rebuild: bool = False,
) -> str:
    """The tag of the worker image for ``base`` with these imports/packages (built now if needed)."""
    base_id = client.images.get(base).id
    wheels = [p for p in packages or [] if os.path.isfile(p)]
    digest = hashlib.sha256()
    digest.update(json.dumps([_IMAGE_VERSION, base_id, sorted(imports), packages]).encode())
    digest.update(worker_tar())
    for wheel in wheels:
        digest.update(Path(wheel).read_bytes())
    tag = f"{_IMAGE_REPO}:{digest.hexdigest()[:20]}"
    if not rebuild:
        try:
            client.images.get(tag)
            return tag
        except Exception as exc:  # noqa: BLE001 - docker.errors.ImageNotFound: build it below
            if type(exc).__name__ != "ImageNotFound":
                raise
    wanted = _top_level(imports)
    with tempfile.TemporaryDirectory(prefix="codeloop-image-") as tmp:
        site: Path | None = None
        todo = list(packages or [])
        if wanted or todo:
            info = _probe(client, base_id, wanted)
            if packages is None:
                todo = info["missing"]
            if todo:
                site = Path(tmp) / "site"
                logger.info("installing %s for the Docker sandbox", ", ".join(todo))
                _install_packages(todo, info, site)
        logger.info("building the Docker worker image %s", tag)
        try:
            client.images.build(
                fileobj=io.BytesIO(_context(base_id, site)),
                custom_context=True,
                tag=tag,
                network_mode="none",
                rm=True,
                forcerm=True,
                labels={"codeloop.worker-image": _IMAGE_VERSION},
            )
        except Exception as exc:  # noqa: BLE001 - docker.errors.BuildError carries the build log
            log = "".join(
                str(x.get("stream") or x.get("error") or "") for x in getattr(exc, "build_log", []) or []
            )
            raise RuntimeError(
                f"building the worker image from {base!r} failed: {exc}\n{log[-2000:]}"
            ) from exc
    return tag
