"""Killing every process of a worker's own uid, fork bombs included (host side and fork server side).

A plain sweep (read /proc, SIGKILL what it finds, repeat a few times) loses to a fork bomb: the
survivors of one pass fork into the slots the killed ones freed while the next pass reads /proc. So
the sweep first freezes: it SIGSTOPs every process of the uids until a pass finds none still running
(a stopped process cannot fork), and only then SIGKILLs them all. Standard library only: the fork
server imports it inside the sandbox.
"""

from __future__ import annotations

import os
import signal
import time

__all__ = ["kill_uids"]

_FROZEN = frozenset("TtZX")  # stopped, traced, zombie, dead: none of these can fork again


def _procs_of(uids: set[int] | frozenset[int]) -> list[tuple[int, str]]:
    found = []
    try:
        entries = os.listdir("/proc")
    except OSError:
        return found
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            if os.stat(f"/proc/{entry}").st_uid not in uids:
                continue
            with open(f"/proc/{entry}/stat", "rb") as f:
                state = f.read().rsplit(b")", 1)[1].split()[0].decode()
        except (OSError, IndexError):
            continue
        found.append((int(entry), state))
    return found


def _signal(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except OSError:
        pass


def kill_uids(uids: set[int] | frozenset[int], *, freeze_for: float = 2.0) -> None:
    """SIGKILL every process owned by ``uids`` (uids only these workers use); needs the right to signal
    them (root, or CAP_KILL). Freezing gives up after ``freeze_for`` seconds and kills what it has."""
    if not uids:
        return
    deadline = time.monotonic() + freeze_for
    while True:
        procs = _procs_of(uids)
        if not procs:
            return
        running = [pid for pid, state in procs if state not in _FROZEN]
        if not running or time.monotonic() > deadline:
            break
        for pid in running:
            _signal(pid, signal.SIGSTOP)
        time.sleep(0.001)
    for pid, state in procs:
        if state not in "ZX":
            _signal(pid, signal.SIGKILL)
    # Anything the freeze deadline left running may have forked between a pass's read of /proc and its
    # kills, so kill again until a pass finds nothing alive: a killed process forks no more, so this
    # ends once the last live ones are hit (bounded, for a process this sweep may not signal).
    give_up = time.monotonic() + max(freeze_for, 1.0)
    while True:
        alive = [pid for pid, state in _procs_of(uids) if state not in "ZX"]
        if not alive or time.monotonic() > give_up:
            return
        for pid in alive:
            _signal(pid, signal.SIGKILL)
        time.sleep(0.001)
