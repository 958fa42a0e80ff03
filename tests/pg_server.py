"""A throwaway PostgreSQL server for the tests: initdb + pg_ctl on 127.0.0.1 and a free port, run as a
non-root user (``nobody`` when the tests run as root), removed afterwards."""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager


def pg_bin() -> str | None:
    for initdb in sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), reverse=True):
        return os.path.dirname(initdb)
    found = shutil.which("initdb")
    return os.path.dirname(found) if found else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def postgres_server() -> Iterator[str]:
    """Yields a DSN of a fresh server; the server and its files are gone after the block."""
    bindir = pg_bin()
    if bindir is None:
        raise RuntimeError(
            "PostgreSQL is not installed: run scripts/install-os-deps.sh (Debian 'postgresql')."
        )
    root = tempfile.mkdtemp(prefix="codeloop-pg-")
    data = os.path.join(root, "data")
    prefix: list[str] = []
    if os.geteuid() == 0:  # PostgreSQL refuses to run as root
        os.chmod(root, 0o755)
        shutil.chown(root, "nobody", "nogroup")
        prefix = ["runuser", "-u", "nobody", "--"]
    env = {**os.environ, "LC_ALL": "C", "LANG": "C"}
    port = _free_port()
    run = lambda *a: subprocess.run([*prefix, *a], check=True, capture_output=True, env=env, cwd=root)  # noqa: E731
    try:
        run(f"{bindir}/initdb", "-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync")
        opts = f"-h 127.0.0.1 -p {port} -k {root} -F -c fsync=off -c full_page_writes=off"
        run(
            f"{bindir}/pg_ctl",
            "-D",
            data,
            "-o",
            opts,
            "-l",
            os.path.join(root, "log"),
            "-w",
            "-t",
            "60",
            "start",
        )
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        if os.path.exists(os.path.join(data, "postmaster.pid")):
            subprocess.run(
                [*prefix, f"{bindir}/pg_ctl", "-D", data, "-m", "immediate", "-w", "stop"],
                capture_output=True,
                env=env,
                cwd=root,
            )
        deadline = time.time() + 10
        while os.path.exists(os.path.join(data, "postmaster.pid")) and time.time() < deadline:
            time.sleep(0.05)
        shutil.rmtree(root, ignore_errors=True)
