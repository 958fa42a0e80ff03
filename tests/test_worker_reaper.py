"""reaper.kill_uids against a live fork bomb of its own uid: nothing of that uid is left running."""

import os
import random
import subprocess
import time

import pytest

from codeloop.executors.worker.reaper import kill_uids

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="signalling another uid needs root")

# A shell tree that keeps forking (the Python here may sit in a folder another uid cannot read).
BOMB = 'd=$1; if [ "$d" -gt 0 ]; then sh -c "$S" x $((d-1)) & sh -c "$S" x $((d-1)) & fi; exec sleep 30'


def _alive(uid):
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.stat(f"/proc/{entry}").st_uid != uid:
                    continue
                with open(f"/proc/{entry}/stat", "rb") as f:
                    if f.read().rsplit(b")", 1)[1].split()[0] not in (b"Z", b"X"):
                        out.append(int(entry))
            except (OSError, IndexError):
                pass
    return out


def _start_bomb(at_least: int) -> tuple[int, subprocess.Popen]:
    """A fork bomb under a fresh uid, once at least ``at_least`` of its processes are alive (or 10 s)."""
    uid = random.randrange(1_000_000_000, 2_000_000_000)
    proc = subprocess.Popen(
        ["/bin/sh", "-c", BOMB, "x", "5"], env={"S": BOMB}, user=uid, group=uid, cwd="/", start_new_session=True
    )
    deadline = time.monotonic() + 10
    while len(_alive(uid)) < at_least and time.monotonic() < deadline:
        time.sleep(0.02)
    return uid, proc


def test_kill_uids_stops_a_fork_bomb():
    uid, proc = _start_bomb(32)
    assert len(_alive(uid)) >= 32  # 2**6 - 1 processes, some still forking
    kill_uids({uid})
    proc.wait(timeout=5)
    deadline = time.monotonic() + 3  # SIGKILL is delivered when each process is next scheduled
    while _alive(uid) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert _alive(uid) == []
    kill_uids({uid})  # nothing left: returns at once


def test_kill_uids_without_freezing_still_kills_a_forking_bomb():
    # freeze_for=0: no SIGSTOP pass at all, so only the repeated kill passes stand between the bomb's
    # children (forked between a pass's read of /proc and its kills) and survival
    uid, proc = _start_bomb(16)
    kill_uids({uid}, freeze_for=0)
    proc.wait(timeout=5)
    deadline = time.monotonic() + 3
    while _alive(uid) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert _alive(uid) == []
