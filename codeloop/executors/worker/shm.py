"""Shared-memory mailbox between the host and its worker, for the hot path: a sync tool call and its answer.

A tool call from code over the pipe costs four system calls (a write and a read on each side) plus
the polls that notice the answer, several microseconds on a virtual machine, more inside the
worker's seccomp filter. Through the mailbox a frame is a memory copy and a flag, and the waiting side
notices it by reading that flag. Everything else (runs, results of runs, concurrent calls, frames
too large for a slot) keeps using the pipe, which also carries a one-byte "doorbell" frame when the
receiving side is not watching the mailbox (it blocks on the pipe only).

Layout of the shared file (a memfd made by the host, passed to the worker like the pipes): four
32-bit words (the length of the frame waiting in each direction, 0 when its slot is empty, and each
side's "away" flag), then one slot per direction. A side writes only its outgoing slot, and only
while it is empty; the receiver copies the frame out before it sets the length back to 0, so the
worker can never change a frame the host is parsing. The host trusts nothing it reads there: a bad
length or frame is a protocol error, exactly as on the pipe.

The mailbox relies on x86-64's memory order (stores become visible in program order, loads are not
reordered with loads), so it is only used there; elsewhere everything goes through the pipe.
"Am I going to block?" races with "does the peer watch?": a side that is about to block sets its
"away" flag, fences and looks once more; a poster stores the frame, fences and reads that flag. So
one of them always sees the other (acquiring and releasing an uncontended lock executes locked
instructions: a full fence on x86-64, with no system call).

Standard library only; imported by the child with no package ``__init__`` run.
"""

from __future__ import annotations

import mmap
import os
import sys
import threading
from typing import Any

from codeloop.executors.worker.protocol import ProtocolError

__all__ = ["AVAILABLE", "SIZE", "SLOT", "Mailbox", "create", "attach"]

AVAILABLE = (
    sys.platform == "linux"
    and os.uname().machine.lower() in ("x86_64", "amd64")
    and hasattr(os, "memfd_create")
)

SLOT = 256 * 1024  # largest frame carried by the mailbox; larger ones go through the pipe
_HEAD = 64
SIZE = _HEAD + 2 * SLOT

# 32-bit words at the start: a frame length per direction (0: the slot is empty), then "away" flags.
_W2H_LEN, _H2W_LEN, _HOST_AWAY, _WORKER_AWAY = 0, 1, 2, 3


def create() -> int | None:
    """A new mailbox file for one worker (the host keeps the fd and passes it on), or None."""
    if not AVAILABLE:
        return None
    try:
        fd = os.memfd_create("codeloop-rpc", os.MFD_CLOEXEC)
    except OSError:
        return None
    try:
        os.ftruncate(fd, SIZE)
    except OSError:
        os.close(fd)
        return None
    return fd


class Mailbox:
    """One side's view of the mailbox: ``post`` a frame, ``take`` the peer's, ``away`` before blocking.

    ``lens[incoming]`` is non-zero while a frame waits for this side (the spin loops read it).
    """

    __slots__ = (
        *("_mm", "lens", "incoming", "_out", "_my_away", "_peer_away"),
        *("_in_data", "_out_data", "_fence_lock"),
    )

    def __init__(self, fd: int, host: bool):
        self._mm = mmap.mmap(fd, SIZE)
        # Native aligned 32-bit words: one store or load each, so a length is never seen half written.
        self.lens = memoryview(self._mm)[:_HEAD].cast("I")
        # (incoming length, outgoing length, own flag, peer's flag, incoming slot, outgoing slot)
        host_side = (_W2H_LEN, _H2W_LEN, _HOST_AWAY, _WORKER_AWAY, _HEAD, _HEAD + SLOT)
        worker_side = (_H2W_LEN, _W2H_LEN, _WORKER_AWAY, _HOST_AWAY, _HEAD + SLOT, _HEAD)
        (self.incoming, self._out, self._my_away, self._peer_away, self._in_data, self._out_data) = (
            host_side if host else worker_side
        )
        self._fence_lock = threading.Lock()
        self.lens[self._my_away] = 0  # "away" only from away() to back(): around a blocking wait

    def post(self, frame: bytes) -> bool | None:
        """Put ``frame`` in the outgoing slot. None: it did not fit (or the slot is still full; the
        caller uses the pipe). True: posted and the peer is away (ring the doorbell); False: posted.

        The frame is stored before its length, and x86-64 makes stores visible in program order, so
        a peer that sees the length sees the frame. The fence keeps the length from sitting in this
        CPU's store buffer while the peer's flag is read: a peer going away meanwhile would miss it."""
        n = len(frame)
        lens = self.lens
        if n > SLOT or lens[self._out]:
            return None
        start = self._out_data
        self._mm[start : start + n] = frame
        lens[self._out] = n
        lock = self._fence_lock  # (blocking: threads answering at once must not release each other's)
        lock.acquire()
        lock.release()
        return lens[self._peer_away] != 0

    def take(self) -> bytes | None:
        """The peer's frame, copied out (the slot is free again), or None."""
        lens = self.lens
        n = lens[self.incoming]
        if not n:
            return None
        if n > SLOT:
            raise ProtocolError(f"mailbox frame length {n} exceeds the slot of {SLOT} bytes")
        start = self._in_data
        data = self._mm[start : start + n]
        lens[self.incoming] = 0
        return data

    def away(self) -> bool:
        """Mark this side away (about to block on the pipe); True if a frame arrived meanwhile.
        Call ``back()`` when the blocking wait is over (or was not started)."""
        lens = self.lens
        lens[self._my_away] = 1
        lock = self._fence_lock  # acquire + release: locked instructions, a full fence on x86-64
        lock.acquire()
        lock.release()
        return lens[self.incoming] != 0

    def back(self) -> None:
        """This side watches the mailbox again (the peer need not ring)."""
        self.lens[self._my_away] = 0


def attach(fd: Any, host: bool) -> Mailbox | None:
    """Map the mailbox file; None when there is none or it cannot be mapped (then the pipe serves all)."""
    if fd is None or not AVAILABLE:
        return None
    try:
        return Mailbox(int(fd), host)
    except (OSError, ValueError):
        return None
