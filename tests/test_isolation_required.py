"""The test suite runs the isolated worker under its real isolation, never a silent fallback.

``test.sh`` installs bubblewrap (scripts/install-os-deps.sh). If that failed on this machine, this test
fails and says so, because the worker tests would otherwise exercise only the self-confined fallback.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from codeloop.executors import LocalPythonExecutor

REPO = str(Path(__file__).resolve().parents[1])

PROBE = """
import os, socket
try:
    socket.create_connection(("127.0.0.1", 9), timeout=0.5)
    net = "open"
except OSError as e:
    net = type(e).__name__
home = sorted(os.listdir("/root")) if os.path.isdir("/root") else []
(net, os.path.exists("/etc/passwd"), home, os.path.exists(REPO), os.getcwd())
"""


def test_default_worker_runs_under_bubblewrap_with_every_layer_active():
    assert shutil.which("bwrap"), "bubblewrap is not installed: run scripts/install-os-deps.sh (as root)"
    with LocalPythonExecutor(additional_authorized_imports=["*"]) as executor:
        report = executor.isolation
        assert report["sandbox"] == "bubblewrap", report
        assert report["missing"] == [], f"isolation layers not active: {report['missing']}"
        net, sees_passwd, home, sees_repo, cwd = executor(PROBE.replace("REPO", repr(REPO))).output
        assert net != "open"
        assert not sees_passwd and not sees_repo
        assert home in ([], [".pyenv"])  # at most the Python installation, when it lives under /root
        assert cwd.startswith("/scratch/w")  # its own directory in the sandbox tmpfs
