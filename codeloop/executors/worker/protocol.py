"""Framing for the host <-> worker pipe protocol.

Imported by both sides (the child imports it with no package ``__init__`` run, so it must only import
the standard library). A frame is a 4-byte big-endian length followed by that many bytes of UTF-8 JSON
holding one message dict with an ``"op"`` key. JSON is used (never pickle) because the host must be able
to parse anything the worker sends without running code chosen by the worker.

Messages, host -> worker:
    {"op": "tools", "names": [...]}                 register tool proxies (replaces the previous set)
    {"op": "vars", "vars": <encoded dict>}           add variables to the session
    {"op": "run", "id": n, "code": str, "timeout": float | None}
    {"op": "result", "cid": k, "ok": bool, "value": <encoded> | "error": {"type", "message"}}
    {"op": "state", "id": n}                         ask for the user variables (encoded, repr fallback)
    {"op": "exit"}
Messages, worker -> host:
    {"op": "hello", "isolation": {...}, "pid": int}
    {"op": "call", "cid": k, "tool": name, "args": [...], "kwargs": {...}}    a tool call from code
    {"op": "done", "id": n, "ok": true, "output": <encoded>, "logs": str, "final": bool, "vars": [names]}
    {"op": "done", "id": n, "ok": false, "error": {"message", "exc_type", "logs"}, "fatal": bool, "vars": [...]}
    {"op": "state", "id": n, "vars": <encoded dict>}
"""

from __future__ import annotations

import json
import os
import select
import struct
import time
from typing import Any

__all__ = [
    *("ProtocolError", "FrameReader", "Spinner", "pack", "write_frame"),
    *("MAX_FRAME", "READ_CHUNK", "SPIN_SECONDS"),
]

_HEADER = struct.Struct(">I")
# Largest frame accepted from the worker by default; a bigger one means a misbehaving worker and kills it.
MAX_FRAME = 64 * 1024 * 1024
# Bytes asked of one os.read when no large frame is pending. os.read allocates a buffer of the size it
# is asked for: 1 MiB goes to mmap/mremap/munmap on every call (about 20 us each side per message
# here), 64 KiB comes from the heap. A frame known to be larger is read in bigger pieces (read_size).
READ_CHUNK = 64 * 1024
_BIG_READ = 8 * 1024 * 1024


# How long a side that expects an answer soon polls its pipe before it blocks. Waking a process or
# thread blocked on a pipe costs from tens to hundreds of microseconds of OS (and VM) latency per
# message; polling skips it when the peer answers within this window, as a quick tool call does.
# Measured here (2-core VM): a sync tool call from code fell from 150-170 us to 27-38 us, and a warm
# trivial run from 0.24-0.5 ms to 0.05 ms (benchmarks/worker.py); the polls cost no measurable CPU
# when the peer is slow or idle, thanks to the back-off in Spinner.
SPIN_SECONDS = 100e-6
# A blocking wait shorter than this means the peer answers quickly (the miss was the wake-up latency
# of a peer that had itself blocked): polling resumes at once. Longer: the peer does long work.
_QUICK_SECONDS = 0.5e-3
_MAX_MISSES = 5  # after n long waits in a row, the next 2**n - 1 waits block at once (at most 31)


class Spinner:
    """Bounded, adaptive polling of one fd before a blocking read (see SPIN_SECONDS).

    ``ready()`` polls for at most SPIN_SECONDS and says whether data (or EOF) is there; after a False
    the caller blocks and then calls ``settle()``. A poll that missed, followed by a long blocking
    wait, means the peer does long work: the next waits then block at once, twice as many per such
    wait in a row (up to 31), so a slow tool or code that runs long costs at most one short poll now
    and then, and an idle wait burns no CPU. A hit, or a blocking wait that ended quickly (the peer
    was only slow to wake up), makes it poll on every wait again; without that, once both sides had
    blocked, each would see the other's wake-up latency as a miss and neither would poll again.
    """

    __slots__ = ("_poll", "_skip", "_misses", "_since")

    def __init__(self, fd: int):
        self._poll = select.poll()
        self._poll.register(fd, select.POLLIN)
        self._skip = 0
        self._misses = 0
        self._since = 0.0  # when the caller started a blocking wait (0: it did not)

    def ready(self) -> bool:
        clock = time.perf_counter
        if self._skip:
            self._skip -= 1
            self._since = clock()
            return False
        window = SPIN_SECONDS
        if window <= 0:
            return False
        poll = self._poll.poll
        end = clock() + window
        while not poll(0):
            now = clock()
            if now > end:
                self._misses = min(self._misses + 1, _MAX_MISSES)
                self._skip = (1 << self._misses) - 1
                self._since = now
                return False
        self._misses = 0
        return True

    def settle(self) -> None:
        """Call after the blocking wait that followed a False ``ready()``: was the wait short?"""
        if self._since:
            if time.perf_counter() - self._since < _QUICK_SECONDS:
                self._misses = self._skip = 0
            self._since = 0.0


class ProtocolError(Exception):
    """The peer sent bytes that are not a valid frame (too large, not JSON, not a message dict)."""


def _make_dumps() -> Any:
    # json.dumps with non-default options builds a JSONEncoder on every call; calling the C encoder
    # directly costs a third of that (a tool call from code packs two messages, so it shows).
    encoder = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:
        return encoder.encode
    # The arguments JSONEncoder.iterencode passes (NaN allowed, keys unsorted), except the cycle check
    # (markers=None): a shared markers dict would be state shared by threads, and messages hold codec
    # output, which is never cyclic (a cycle would still end in RecursionError, not hang).
    c_encoder = make(
        None, encoder.default, json.encoder.encode_basestring, None, ":", ",", False, False, True
    )

    def dumps(message: Any) -> str:
        return "".join(c_encoder(message, 0))

    return dumps


_dumps = _make_dumps()
_DECODER = json.JSONDecoder()


def pack(message: dict[str, Any]) -> bytes:
    """Serialize one message to a complete frame (header + JSON)."""
    body = _dumps(message).encode("utf-8", "surrogatepass")
    return _HEADER.pack(len(body)) + body


def write_frame(fd: int, data: bytes) -> None:
    """Write a whole frame to a blocking fd (os.write may write less than asked on pipes)."""
    written = os.write(fd, data)
    if written == len(data):  # the usual case: one call
        return
    view = memoryview(data)[written:]
    while view:
        written = os.write(fd, view)
        view = view[written:]


class FrameReader:
    """Incremental frame parser: feed bytes as they arrive, get complete messages back."""

    def __init__(self, max_frame: int = MAX_FRAME):
        self.max_frame = max_frame
        self._buf = bytearray()

    def read_size(self) -> int:
        """How many bytes to ask for next: the rest of a large pending frame, else READ_CHUNK."""
        if len(self._buf) >= _HEADER.size:
            (size,) = _HEADER.unpack_from(self._buf)
            missing = _HEADER.size + size - len(self._buf)
            if missing > READ_CHUNK:
                return min(missing, _BIG_READ)
        return READ_CHUNK

    def feed(self, data: bytes) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        if not self._buf:  # the usual case: whole frames, parsed straight from ``data`` (no copies)
            pos, n = 0, len(data)
            while n - pos >= _HEADER.size:
                (size,) = _HEADER.unpack_from(data, pos)
                end = pos + _HEADER.size + size
                if size > self.max_frame or end > n:
                    break
                out.append(_parse(data[pos + _HEADER.size : end]))
                pos = end
            if pos == n:
                return out
            data = data[pos:]
        self._buf += data
        while len(self._buf) >= _HEADER.size:
            (size,) = _HEADER.unpack_from(self._buf)
            if size > self.max_frame:
                raise ProtocolError(f"frame of {size} bytes exceeds the limit of {self.max_frame} bytes")
            end = _HEADER.size + size
            if len(self._buf) < end:
                break
            body = bytes(self._buf[_HEADER.size : end])
            del self._buf[:end]
            out.append(_parse(body))
        return out


def _parse(body: bytes) -> dict[str, Any]:
    try:
        text = body.decode("utf-8", "surrogatepass")
        message, end = _DECODER.raw_decode(text)  # pack() never writes surrounding whitespace
    except (ValueError, RecursionError, UnicodeDecodeError) as exc:
        raise ProtocolError(f"frame is not valid JSON: {type(exc).__name__}") from None
    if end != len(text):
        raise ProtocolError("frame is not valid JSON: extra data after the message")
    if type(message) is not dict or type(message.get("op")) is not str:
        raise ProtocolError("frame is not a message object with an 'op' key")
    return message
