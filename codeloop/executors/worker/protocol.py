"""Framing for the host <-> worker protocol (the pipe, and the shared-memory mailbox of shm.py).

Imported by both sides (the child imports it with no package ``__init__`` run, so it must only import
the standard library). A frame is a 4-byte big-endian length followed by a body. Most bodies are UTF-8
JSON holding one message dict with an ``"op"`` key. JSON is used (never pickle) because the host must
be able to parse anything the worker sends without running code chosen by the worker.

The messages of a tool call from code, the hot path of the protocol, have a compact form instead
(``pack_call``, ``pack_result``, ``pack_result_str``): a kind byte, the call id and the tool name
in binary, then a JSON payload (or, for a result that is a str, its raw UTF-8). Parsing a JSON object
envelope costs about a microsecond per message (its keys), once a tenth of a whole call. The
payload, the only part with values from code, stays JSON. ``parse_body`` turns a compact frame into
the same message dict as the JSON form would be, and refuses a "call" in JSON form, so the host can
rely on a call's keys and their types. The one-byte DOORBELL says "look in the mailbox", and
LOGGED carries the end of a run: its JSON message, then the printed output as raw text.

Messages, host -> worker:
    {"op": "tools", "names": [...]}                 register tool proxies (replaces the previous set)
    {"op": "vars", "vars": <encoded dict>}           add variables to the session
    {"op": "run", "id": n, "code": str, "timeout": float | None}
    {"op": "result", "cid": k, "ok": bool, "value": <encoded> | "error": {"type", "message"}}
        (compact when ok: RESULT with the JSON of the encoded value, or RESULT_STR with the text)
    {"op": "state", "id": n}                         ask for the user variables (encoded, repr fallback)
    {"op": "exit"}
Messages, worker -> host:
    {"op": "hello", "isolation": {...}, "pid": int}
    {"op": "call", "cid": k, "tool": name, "args": [...], "kwargs": {...}, "sync": bool}
        a tool call from code (always compact: CALL or ACALL, cid, tool name, JSON ``[args, kwargs]``;
        or CALL_TEXT, whose arguments are all str: its message also has ``"text": True``, so the host
        knows there is nothing to decode)
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
    *("pack_call", "pack_result", "pack_result_str", "pack_logged", "parse_frame", "parse_body"),
    *("parse_box_call", "parse_box_str_result"),
    *("dumps", "dumps_str", "LOGGED", "CALL_TEXT", "pack_call_text", "pack_call_str"),
    *("CALL", "ACALL", "RESULT", "RESULT_STR", "DOORBELL", "DOORBELL_FRAME", "RING", "CID"),
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
# Measured here (2-core VM): a sync tool call from code fell from 150-170 us to 27-38 us over the
# pipe (6-9 us now, through the mailbox), and a warm trivial run from 0.24-0.5 ms to 0.05 ms
# (benchmarks/worker.py); the polls cost no measurable CPU when the peer is slow or idle, thanks to
# the back-off in Spinner. Polling longer does not pay: between an agent's runs the worker waits for
# a model; and polling through the gap between back-to-back runs, or through a whole short run,
# (both tried) slowed the other process's work on this 2-core VM nearly as much as it saved.
SPIN_SECONDS = 100e-6
# A blocking wait shorter than this means the peer answers quickly (the miss was the wake-up latency
# of a peer that had itself blocked): polling resumes at once. Longer: the peer does long work.
_QUICK_SECONDS = 0.5e-3
_MAX_MISSES = 5  # after n long waits in a row, the next 2**n - 1 waits block at once (at most 31)
# Mailbox flag reads per poll of the pipe while spinning: a read costs tens of nanoseconds, a poll
# about a microsecond, during which a frame in the mailbox goes unnoticed (the pipe only carries
# rarer frames there: doorbells, concurrent calls).
_ROUND = range(256)
_ROUND_PIPE = range(16)  # when the frame expected next comes through the pipe


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

    def ready(self, box: Any = None, box_first: bool = True) -> bool:
        """Poll (the pipe, and ``box``, a shm.Mailbox, when given) for at most SPIN_SECONDS.
        ``box_first``: the frame expected next comes through the mailbox (else through the pipe,
        which is then polled more often)."""
        clock = time.perf_counter
        if self._skip:
            self._skip -= 1
            self._since = clock()
            return False
        window = SPIN_SECONDS
        if window <= 0:
            return False
        poll = self._poll.poll
        yield_cpu = os.sched_yield
        end = clock() + window
        if box is None:
            while not poll(0):
                if clock() > end:
                    return self._missed()
        else:
            # A flag in shared memory costs tens of nanoseconds to read, a poll of the pipe a system
            # call: look at the flag most of the time.
            view, slot = box.lens, box.incoming
            rounds = _ROUND if box_first else _ROUND_PIPE
            while not view[slot]:
                for _ in rounds:
                    if view[slot]:
                        break
                else:
                    if poll(0):
                        break
                    if clock() > end:
                        return self._missed()
                    yield_cpu()  # a peer sharing this CPU gets to run and answer
                    continue
                break
        self._misses = 0
        return True

    def _missed(self) -> bool:
        self._misses = min(self._misses + 1, _MAX_MISSES)
        self._skip = (1 << self._misses) - 1
        self._since = time.perf_counter()
        return False

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
dumps = _dumps  # JSON text of codec output, compact, non-ASCII kept as is
dumps_str = json.encoder.encode_basestring  # JSON text of one str (the C version): the usual tool result
_DECODER = json.JSONDecoder()
# The (C) scanner that raw_decode wraps, called directly: (value, end), StopIteration when not JSON.
_scan_once = _DECODER.scan_once

# Compact frame kinds (first body byte; a JSON frame starts with "{"). DOORBELL: "look in the mailbox"
# (shm.py), sent on the pipe when a frame was put in the mailbox while the peer was not watching it.
# RESULT_STR: a result that is a str, as raw UTF-8 (tools mostly return text: no JSON either side).
# LOGGED: a JSON message followed by raw UTF-8 text, its "logs" (printed output: up to 50,000
# characters, mostly newlines, whose JSON escaping and unescaping cost ~0.2 ms a run).
# CALL_TEXT: a sync call whose arguments are all str (the usual call: a query, a URL, a path), as
# length-prefixed UTF-8 (no JSON either side).
CALL, ACALL, RESULT, DOORBELL, RESULT_STR, LOGGED, CALL_TEXT = 1, 2, 3, 4, 5, 6, 7
DOORBELL_FRAME = struct.pack(">IB", 1, DOORBELL)
_CALL_HEAD = struct.Struct(">IBQB")  # frame length, kind, call id, length of the tool name
_RESULT_HEAD = struct.Struct(">IBQ")  # frame length, kind, call id
_LOGGED_HEAD = struct.Struct(">IBI")  # frame length, kind, length of the JSON part
_TEXT_HEAD = struct.Struct(">IBQBBB")  # frame length, kind, call id, name length, args, keyword args
_TEXT_BODY = _TEXT_HEAD.size - 4
_U32 = struct.Struct(">I")
_CALL_BODY = _CALL_HEAD.size - _HEADER.size
_RESULT_BODY = _RESULT_HEAD.size - _HEADER.size


def pack(message: dict[str, Any]) -> bytes:
    """Serialize one message to a complete frame (header + JSON)."""
    body = _dumps(message).encode("utf-8", "surrogatepass")
    return _HEADER.pack(len(body)) + body


def pack_call(cid: int, name: bytes, sync: bool, payload: str) -> bytes:
    """A compact tool-call frame: ``name`` is the tool name in UTF-8 (< 256 bytes), ``payload`` the
    JSON text of ``[encoded args, encoded kwargs]``; ``sync``: the code waits for this call alone."""
    data = payload.encode("utf-8", "surrogatepass")
    size = _CALL_BODY + len(name) + len(data)
    return _CALL_HEAD.pack(size, CALL if sync else ACALL, cid, len(name)) + name + data


def pack_call_text(cid: int, name: bytes, args: tuple, kwargs: dict) -> bytes | None:
    """A sync call whose arguments and keyword values are all str, or None if it cannot be one
    (the caller checked the types; a keyword longer than 255 bytes, or too many of them, is refused)."""
    if len(args) == 1 and not kwargs:
        return pack_call_str(cid, name, args[0])
    if len(args) > 255 or len(kwargs) > 255:
        return None
    parts = [name]
    for arg in args:
        data = arg.encode("utf-8", "surrogatepass")
        parts += (_U32.pack(len(data)), data)
    for key, value in kwargs.items():
        k = key.encode("utf-8", "surrogatepass")
        if len(k) > 255:
            return None
        data = value.encode("utf-8", "surrogatepass")
        parts += (bytes((len(k),)), k, _U32.pack(len(data)), data)
    tail = b"".join(parts)
    return _TEXT_HEAD.pack(_TEXT_BODY + len(tail), CALL_TEXT, cid, len(name), len(args), len(kwargs)) + tail


def pack_call_str(cid: int, name: bytes, arg: str) -> bytes:
    """``pack_call_text`` of the usual call: one str argument."""
    data = arg.encode("utf-8", "surrogatepass")
    n = len(data)
    return (
        _TEXT_HEAD.pack(_TEXT_BODY + len(name) + 4 + n, CALL_TEXT, cid, len(name), 1, 0)
        + name
        + _U32.pack(n)
        + data
    )


def pack_result(cid: int, payload: str) -> bytes:
    """A compact successful tool result: ``payload`` is the JSON text of the encoded value."""
    data = payload.encode("utf-8", "surrogatepass")
    return _RESULT_HEAD.pack(_RESULT_BODY + len(data), RESULT, cid) + data


def pack_logged(message: dict[str, Any], logs: str) -> bytes:
    """``message`` with ``logs`` as raw text after it (the reader puts it back under "logs")."""
    head = _dumps(message).encode("utf-8", "surrogatepass")
    tail = logs.encode("utf-8", "surrogatepass")
    return _LOGGED_HEAD.pack(5 + len(head) + len(tail), LOGGED, len(head)) + head + tail


def pack_result_str(cid: int, value: str) -> bytes:
    """A compact successful tool result that is a str."""
    data = value.encode("utf-8", "surrogatepass")
    return _RESULT_HEAD.pack(_RESULT_BODY + len(data), RESULT_STR, cid) + data


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
                out.append(parse_body(data, pos + _HEADER.size, end))
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
            body = bytes(self._buf[:end])
            del self._buf[:end]
            out.append(parse_body(body, _HEADER.size, end))
        return out


NO_KWARGS: dict[str, Any] = {}  # (read-only: the keyword arguments of every one-argument call)


def call_parts(frame: Any) -> tuple | None:
    """A tool call message as ``(cid, tool, args, kwargs, sync, boxed, text)``; None for anything else.

    A tuple is the usual call (one str argument, through the mailbox); a dict call is a compact frame
    whose keys are all there (see ``parse_body``)."""
    if type(frame) is tuple:
        cid, name, arg = frame
        return (cid, name, [arg], NO_KWARGS, True, True, True)
    if type(frame) is not dict or frame["op"] != "call":  # (None: nothing was read)
        return None
    return (frame["cid"], frame["tool"], frame["args"], frame["kwargs"], frame["sync"], "box" in frame, "text" in frame)


CID = struct.Struct(">Q")  # the call id in a compact frame, after the kind byte
CID_LEN = struct.Struct(">QB")  # call id and tool-name length in a call frame


def parse_body(buf: bytes, start: int, end: int) -> dict[str, Any]:
    """The message in ``buf[start:end]`` (a frame body)."""
    if end <= start:
        raise ProtocolError("empty frame")
    kind = buf[start]
    if kind == CALL_TEXT:  # the usual call first
        return _parse_call_text(buf, start, end)
    if kind == CALL or kind == ACALL:
        if end - start < _CALL_BODY:
            raise ProtocolError("truncated call frame")
        cid, size = CID_LEN.unpack_from(buf, start + 1)
        name_end = start + _CALL_BODY + size
        try:
            name = buf[start + _CALL_BODY : name_end].decode("utf-8")
        except UnicodeDecodeError:
            raise ProtocolError("tool name is not UTF-8") from None
        payload = _json(buf[name_end:end])
        if type(payload) is not list or len(payload) != 2:
            raise ProtocolError("call payload is not [args, kwargs]")
        args, kwargs = payload
        return {"op": "call", "cid": cid, "tool": name, "args": args, "kwargs": kwargs, "sync": kind == CALL}
    if kind == RESULT_STR:
        if end - start < _RESULT_BODY:
            raise ProtocolError("truncated result frame")
        (cid,) = CID.unpack_from(buf, start + 1)
        try:
            value = buf[start + _RESULT_BODY : end].decode("utf-8", "surrogatepass")
        except UnicodeDecodeError:
            raise ProtocolError("result text is not UTF-8") from None
        return {"op": "result", "cid": cid, "ok": True, "value": value}
    if kind == RESULT:
        if end - start < _RESULT_BODY:
            raise ProtocolError("truncated result frame")
        (cid,) = CID.unpack_from(buf, start + 1)
        return {"op": "result", "cid": cid, "ok": True, "value": _json(buf[start + _RESULT_BODY : end])}
    if kind == 0x7B:  # "{": a JSON message
        message = _json(buf[start:end])
        if type(message) is not dict or type(message.get("op")) is not str:
            raise ProtocolError("frame is not a message object with an 'op' key")
        if message["op"] in _COMPACT_ONLY:  # their readers rely on the keys and types given here
            raise ProtocolError(f"a {message['op']!r} message must come as a compact frame")
        return message
    if kind == LOGGED:
        if end - start < 5:
            raise ProtocolError("truncated logged frame")
        (size,) = _U32.unpack_from(buf, start + 1)
        split = start + 5 + size
        if split > end:
            raise ProtocolError("logged frame: the message runs past the frame")
        message = _json(buf[start + 5 : split])
        if type(message) is not dict or type(message.get("op")) is not str or message["op"] in _COMPACT_ONLY:
            raise ProtocolError("logged frame: not a message object with an allowed 'op'")
        try:
            message["logs"] = buf[split:end].decode("utf-8", "surrogatepass")
        except UnicodeDecodeError:
            raise ProtocolError("logged frame: the text is not UTF-8") from None
        return message
    if kind == DOORBELL and end - start == 1:
        return RING
    raise ProtocolError(f"unknown frame kind {kind}")


def parse_box_call(buf: bytes) -> tuple[int, str, str] | None:
    """(call id, tool name, argument) of a whole frame (header included, as the mailbox holds it)
    that is the usual call, CALL_TEXT with one str argument; None for any other frame. The host's
    hot path: no message dict. Malformed: ProtocolError, as from ``parse_body``."""
    # (the body starts at 4: kind, call id at 5, name length at 13, argument counts at 14 and 15)
    if len(buf) < _TEXT_HEAD.size or buf[4] != CALL_TEXT or buf[14] != 1 or buf[15]:
        return None
    return _one_text_call(buf, 4, len(buf))


def parse_box_str_result(buf: bytes, cid: int) -> str | None:
    """The text of a whole frame that is a RESULT_STR for call ``cid`` (the usual answer, as the
    mailbox holds it: the worker's hot path, no message dict); None for any other frame.
    Malformed text: ProtocolError."""
    if len(buf) < _RESULT_HEAD.size or buf[4] != RESULT_STR or CID.unpack_from(buf, 5)[0] != cid:
        return None
    try:
        return buf[_RESULT_HEAD.size :].decode("utf-8", "surrogatepass")
    except UnicodeDecodeError:
        raise ProtocolError("result text is not UTF-8") from None


def _one_text_call(buf: bytes, start: int, end: int) -> tuple[int, str, str]:
    """The body ``buf[start:end]`` of a CALL_TEXT frame with one argument (counts checked)."""
    cid, size = CID_LEN.unpack_from(buf, start + 1)
    pos = start + _TEXT_BODY + size
    try:
        (n,) = _U32.unpack_from(buf, pos)
        if pos + 4 + n != end:
            raise ProtocolError("call frame: the argument does not end with the frame")
        name = buf[start + _TEXT_BODY : pos].decode("utf-8")
        return cid, name, buf[pos + 4 : end].decode("utf-8", "surrogatepass")
    except (struct.error, UnicodeDecodeError):
        raise ProtocolError("call frame: bad arguments") from None


def _parse_call_text(buf: bytes, start: int, end: int) -> dict[str, Any]:
    if end - start < _TEXT_BODY:
        raise ProtocolError("truncated call frame")
    if buf[start + 10] == 1 and not buf[start + 11]:  # the usual call: one str (counts at 10 and 11)
        cid, name, arg = _one_text_call(buf, start, end)
        return {
            "op": "call",
            "cid": cid,
            "tool": name,
            "args": [arg],
            "kwargs": {},
            "sync": True,
            "text": True,
        }
    cid, size, nargs, nkw = _TEXT_IDS.unpack_from(buf, start + 1)
    pos = start + _TEXT_BODY + size
    try:
        name = buf[start + _TEXT_BODY : pos].decode("utf-8")
        args: list[str] = []
        for _ in range(nargs):
            (n,) = _U32.unpack_from(buf, pos)
            pos += 4
            if pos + n > end:
                raise ProtocolError("call frame: an argument runs past the frame")
            args.append(buf[pos : pos + n].decode("utf-8", "surrogatepass"))
            pos += n
        kwargs: dict[str, str] = {}
        for _ in range(nkw):
            k = buf[pos]
            key = buf[pos + 1 : pos + 1 + k].decode("utf-8", "surrogatepass")
            pos += 1 + k
            (n,) = _U32.unpack_from(buf, pos)
            pos += 4
            if pos + n > end:
                raise ProtocolError("call frame: an argument runs past the frame")
            kwargs[key] = buf[pos : pos + n].decode("utf-8", "surrogatepass")
            pos += n
    except (struct.error, IndexError, UnicodeDecodeError):
        raise ProtocolError("call frame: bad arguments") from None
    if pos != end:
        raise ProtocolError("call frame: extra data after the arguments")
    return {
        "op": "call",
        "cid": cid,
        "tool": name,
        "args": args,
        "kwargs": kwargs,
        "sync": True,
        "text": True,
    }


_TEXT_IDS = struct.Struct(">QBBB")
_COMPACT_ONLY = frozenset({"call", "doorbell"})
RING: dict[str, Any] = {"op": "doorbell"}  # read-only: the same dict for every doorbell


def parse_frame(data: bytes) -> dict[str, Any]:
    """One whole frame as taken from the mailbox, whose own length field delimits it (the frame
    header is not needed there, and not trusted)."""
    return parse_body(data, _HEADER.size, len(data))


def _json(data: bytes) -> Any:
    try:
        text = data.decode("utf-8", "surrogatepass")
        value, end = _scan_once(text, 0)  # the writer never puts whitespace around the value
    except StopIteration:
        raise ProtocolError("frame is not valid JSON") from None
    except (ValueError, RecursionError, UnicodeDecodeError) as exc:
        raise ProtocolError(f"frame is not valid JSON: {type(exc).__name__}") from None
    if end != len(text):
        raise ProtocolError("frame is not valid JSON: extra data after the message")
    return value
