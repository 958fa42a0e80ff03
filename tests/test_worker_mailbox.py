"""The tool-call hot path: compact frames, the shared-memory mailbox, and calls through both transports."""

from __future__ import annotations

import os
import struct
import time

import pytest

from codeloop.executors.worker import shm
from codeloop.executors.worker.host import LocalPythonExecutor
from codeloop.executors.worker.pool import WorkerPool
from codeloop.executors.worker.process import WorkerDied
from codeloop.executors.worker.protocol import (
    DOORBELL_FRAME,
    FrameReader,
    ProtocolError,
    dumps,
    pack,
    pack_call,
    pack_call_text,
    pack_logged,
    pack_result,
    pack_result_str,
    parse_box_call,
    parse_box_str_result,
    parse_frame,
)

needs_mailbox = pytest.mark.skipif(not shm.AVAILABLE, reason="the mailbox is used on x86-64 Linux only")


# ---------------------------------------------------------------- compact frames


def test_compact_frames_parse_to_the_same_messages_as_their_json_form():
    reader = FrameReader()
    data = b"".join(
        [
            pack_call(7, b"search", True, dumps([["q", 1], {"k": None}])),
            pack_call(8, "pr\u00e9c\u00e9dent".encode(), False, "[[],{}]"),
            pack_result(7, dumps({"$t": "tuple", "v": [1, 2]})),
            pack_result_str(9, "caf\u00e9 \ud800 \U0001f600"),  # a lone surrogate survives
            DOORBELL_FRAME,
            pack_logged({"op": "done", "id": 4, "ok": True}, "line\n\ud800 \u00e9\n"),
            pack({"op": "done", "id": 3}),
        ]
    )
    data += b"".join(
        [
            pack_call_text(10, b"search", ("q",), {}),
            pack_call_text(11, b"t", ("a", "\ud800\u00e9"), {"x": "1", "\ud801": ""}),
            pack_call_text(12, b"t", (), {}),
        ]
    )
    frames = reader.feed(data)
    assert frames[-3:] == [
        {"op": "call", "cid": 10, "tool": "search", "args": ["q"], "kwargs": {}, "sync": True, "text": True},
        {
            "op": "call",
            "cid": 11,
            "tool": "t",
            "args": ["a", "\ud800\u00e9"],
            "kwargs": {"x": "1", "\ud801": ""},
            "sync": True,
            "text": True,
        },
        {"op": "call", "cid": 12, "tool": "t", "args": [], "kwargs": {}, "sync": True, "text": True},
    ]
    del frames[-3:]
    assert frames == [
        {"op": "call", "cid": 7, "tool": "search", "args": ["q", 1], "kwargs": {"k": None}, "sync": True},
        {"op": "call", "cid": 8, "tool": "pr\u00e9c\u00e9dent", "args": [], "kwargs": {}, "sync": False},
        {"op": "result", "cid": 7, "ok": True, "value": {"$t": "tuple", "v": [1, 2]}},
        {"op": "result", "cid": 9, "ok": True, "value": "caf\u00e9 \ud800 \U0001f600"},
        {"op": "doorbell"},
        {"op": "done", "id": 4, "ok": True, "logs": "line\n\ud800 \u00e9\n"},
        {"op": "done", "id": 3},
    ]
    # byte by byte: the same messages
    reader = FrameReader()
    out = [m for i in range(len(data)) for m in reader.feed(data[i : i + 1])]
    assert out[: len(frames)] == frames and len(out) == len(frames) + 3


@pytest.mark.parametrize(
    "body, why",
    [
        (b"", "empty"),
        (b"\x01\x00\x00", "truncated call"),
        (b"\x03\x00", "truncated result"),
        (b"\x05\x00\x00\x00", "truncated str result"),
        (struct.pack(">BQB", 1, 1, 2) + b"\xff\xfe[[],{}]", "name not UTF-8"),
        (struct.pack(">BQB", 1, 1, 1) + b"t" + b"[[]]", "payload not [args, kwargs]"),
        (struct.pack(">BQB", 1, 1, 1) + b"t" + b'{"a":1}', "payload not a list"),
        (struct.pack(">BQB", 1, 1, 1) + b"t" + b"[[],{}] ", "trailing data"),
        (struct.pack(">BQB", 1, 1, 1) + b"t" + b"[[],{}", "bad JSON"),
        (struct.pack(">BQ", 3, 1) + b"[1", "bad result JSON"),
        (struct.pack(">BQ", 5, 1) + b"\xc3", "result text not UTF-8"),
        (b"\x04\x00", "doorbell with a body"),
        (b"\x06\x00\x00", "truncated logged frame"),
        (b"\x06\x00\x00\x00\x09{}", "logged: message longer than the frame"),
        (b"\x06\x00\x00\x00\x02[]", "logged: not a message"),
        (b'\x06\x00\x00\x00\x0d{"op":"call"}', "logged: a call"),
        (b'\x06\x00\x00\x00\x0d{"op":"done"}\xff', "logged: text not UTF-8"),
        (
            struct.pack(">BQBBB", 7, 1, 1, 1, 0) + b"t" + struct.pack(">I", 5) + b"abc",
            "text arg past the end",
        ),
        (struct.pack(">BQBBB", 7, 1, 1, 1, 0) + b"t" + struct.pack(">I", 1) + b"ab", "text: extra data"),
        (struct.pack(">BQBBB", 7, 1, 1, 0, 1) + b"t" + b"\x05ab", "text: keyword runs past the end"),
        (struct.pack(">BQBBB", 7, 1, 2, 0, 0) + b"\xff\xfe", "text: name not UTF-8"),
        (struct.pack(">BQBB", 7, 1, 1, 0), "truncated text call"),
        (struct.pack(">BQBBB", 7, 1, 1, 1, 0) + b"t", "one-argument call without its argument"),
        (
            struct.pack(">BQBBB", 7, 1, 2, 1, 0) + b"\xff\xfe" + struct.pack(">I", 0),
            "one-argument call: name not UTF-8",
        ),
        (struct.pack(">BQBBB", 7, 1, 1, 1, 0) + b"t" + struct.pack(">I", 1) + b"\xff", "argument not UTF-8"),
        (b"\x09", "unknown kind"),
        (b'{"no_op":1}', "JSON without op"),
        (b'{"op":"call","cid":[],"tool":1}', "a call in JSON form (its reader relies on the compact form)"),
        (b'{"op":"doorbell"}', "a doorbell in JSON form"),
        (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
    ],
)
def test_malformed_frames_are_protocol_errors(body, why):
    with pytest.raises(ProtocolError):
        FrameReader().feed(struct.pack(">I", len(body)) + body)
    with pytest.raises(ProtocolError):
        parse_frame(b"\0\0\0\0" + body)
    with pytest.raises(ProtocolError):  # what the host does with a frame from the mailbox
        frame = b"\0\0\0\0" + body
        if parse_box_call(frame) is None:
            parse_frame(frame)


def test_the_usual_answer_parses_to_its_text_and_nothing_else_does():
    assert parse_box_str_result(pack_result_str(9, "caf\u00e9 \ud800"), 9) == "caf\u00e9 \ud800"
    assert parse_box_str_result(pack_result_str(9, ""), 9) == ""
    assert parse_box_str_result(pack_result_str(9, "x"), 10) is None  # another call's answer
    for other in (pack_result(9, '"x"'), pack_call_text(9, b"t", ("x",), {}), DOORBELL_FRAME, b"\0\0\0\0"):
        assert parse_box_str_result(other, 9) is None, other
    with pytest.raises(ProtocolError):
        parse_box_str_result(struct.pack(">IBQ", 10, 5, 9) + b"\xc3", 9)


def test_the_usual_call_parses_to_a_tuple_and_nothing_else_does():
    assert parse_box_call(pack_call_text(10, b"search", ("q \ud800\u00e9",), {})) == (
        10,
        "search",
        "q \ud800\u00e9",
    )
    assert parse_box_call(pack_call_text(11, "pr\u00e9".encode(), ("",), {})) == (11, "pr\u00e9", "")
    for other in (
        pack_call_text(12, b"t", ("a", "b"), {}),
        pack_call_text(13, b"t", (), {"k": "v"}),
        pack_call_text(14, b"t", (), {}),
        pack_call(15, b"t", True, '[["a"],{}]'),
        pack_result_str(16, "x" * 40),
        pack_result(17, "1"),
        DOORBELL_FRAME,
        pack({"op": "done", "id": 3}),
    ):
        assert parse_box_call(other) is None, other


# ---------------------------------------------------------------- the mailbox itself


@needs_mailbox
def test_mailbox_carries_frames_both_ways_and_falls_back_when_full_or_too_large():
    fd = shm.create()
    assert fd is not None
    try:
        host, worker = shm.Mailbox(fd, host=True), shm.Mailbox(fd, host=False)
    finally:
        os.close(fd)
    assert host.take() is None and worker.take() is None
    call = pack_call(1, b"t", True, "[[],{}]")
    assert worker.post(call) is False  # the host watches: no doorbell needed
    assert worker.post(call) is None  # the slot is still full: use the pipe
    assert host.lens[host.incoming] == len(call)
    assert host.take() == call and host.take() is None
    assert worker.post(b"x" * (shm.SLOT + 1)) is None  # too large for a slot
    assert worker.away() is False  # the worker is about to block on the pipe
    answer = pack_result_str(1, "ok")
    assert host.post(answer) is True  # ring the doorbell
    worker.back()
    assert parse_frame(worker.take()) == {"op": "result", "cid": 1, "ok": True, "value": "ok"}
    assert host.post(answer) is False  # the worker watches again
    assert host.away() is False
    worker.post(call)
    assert host.away() is True  # a frame arrived: do not block


@needs_mailbox
def test_a_worker_that_corrupts_the_mailbox_is_stopped_with_a_protocol_error():
    with LocalPythonExecutor() as ex:
        ex("x = 1")
        worker = ex.worker
        box = worker.mailbox
        assert box is not None
        box.lens[box.incoming] = shm.SLOT + 10  # a length beyond the slot
        with pytest.raises(WorkerDied, match="protocol"):
            worker.next_frame(time.monotonic() + 5)
    with LocalPythonExecutor() as ex:
        ex("x = 1")
        worker = ex.worker
        box = worker.mailbox
        start = shm._HEAD  # the worker -> host slot
        junk = b"\0\0\0\x03\x01\x02\x03"
        box._mm[start : start + len(junk)] = junk
        box.lens[box.incoming] = len(junk)
        with pytest.raises(WorkerDied, match="protocol"):
            worker.next_frame(time.monotonic() + 5)


# ---------------------------------------------------------------- calls through both transports


@pytest.fixture(params=["mailbox", "pipe"])
def transport(request, monkeypatch):
    if request.param == "mailbox" and not shm.AVAILABLE:
        pytest.skip("the mailbox is used on x86-64 Linux only")
    if request.param == "pipe":
        monkeypatch.setattr(shm, "AVAILABLE", False)
    # a pool of its own: workers forked after the patch (the shared pool keeps some ready)
    pool = WorkerPool(pool_size=0, max_workers=4)
    yield request.param, pool
    pool.close()


def test_sync_calls_return_every_kind_of_value_through_either_transport(transport):
    transport, pool = transport
    def echo(*args, **kwargs):
        return kwargs.get("value", args[0] if args else None)

    def big(n):
        return "z" * n

    with LocalPythonExecutor(timeout_seconds=30, pool=pool) as ex:
        assert (ex.worker.mailbox is not None) == (transport == "mailbox")
        ex.send_tools({"echo": echo, "big": big})
        out = ex(
            "r = [echo('caf\u00e9'), echo(value=(1, 2.5, None)), echo({'a': [1, {2, 3}]}), echo(b'\\x00\\xff'),"
            " echo('\\ud800'), echo(10**30), echo(value='kw')]\n"
            "n = len(big(300_000))\n"  # larger than a mailbox slot: the pipe carries it
            "m = len(echo('y' * 300_000))\n"  # a large argument too
            "r, n, m"
        ).output
        assert out == (
            ["caf\u00e9", (1, 2.5, None), {"a": [1, {2, 3}]}, b"\x00\xff", "\ud800", 10**30, "kw"],
            300_000,
            300_000,
        )


def test_tool_errors_and_unknown_values_through_either_transport(transport):
    transport, pool = transport
    def fail(kind):
        raise {"key": KeyError, "value": ValueError}[kind]("boom")

    def odd():
        return lambda: 0  # cannot be encoded or pickled for the worker

    with LocalPythonExecutor(timeout_seconds=30, pool=pool) as ex:
        ex.send_tools({"fail": fail, "odd": odd})
        out = ex(
            "seen = []\n"
            "for k in ['key', 'value']:\n"
            "    try:\n"
            "        fail(k)\n"
            "    except (KeyError, ValueError) as e:\n"
            "        seen.append(type(e).__name__)\n"
            "try:\n"
            "    odd()\n"
            "except Exception as e:\n"
            "    seen.append(type(e).__name__)\n"
            "seen"
        ).output
        assert out == ["KeyError", "ValueError", "TypeError"]


def test_calls_still_complete_when_either_side_has_stopped_watching(transport):
    transport, pool = transport
    """The doorbell path: the host blocks while code runs long between calls, and the code blocks
    while a tool runs long; every answer must still arrive (a lost wake-up would hang to the timeout)."""

    def slow(x):
        time.sleep(0.03)  # longer than the spin window: the worker stops watching and blocks
        return x * 2

    def fast(x):
        return x + 1

    with LocalPythonExecutor(timeout_seconds=20, additional_authorized_imports=["time"], pool=pool) as ex:
        ex.send_tools({"slow": slow, "fast": fast})
        start = time.monotonic()
        out = ex(
            "import time\n"
            "acc = []\n"
            "for i in range(12):\n"
            "    time.sleep(0.02)\n"  # the host stops watching meanwhile
            "    acc.append(fast(i))\n"
            "    acc.append(slow(i))\n"
            "acc"
        ).output
        assert out == [v for i in range(12) for v in (i + 1, i * 2)]
        assert time.monotonic() - start < 10  # far below the timeout: no wake-up was lost


def test_many_back_to_back_calls_keep_their_order_and_answers(transport):
    transport, pool = transport
    with LocalPythonExecutor(timeout_seconds=60, pool=pool) as ex:
        ex.send_tools({"sq": lambda i: i * i, "tag": lambda s: f"<{s}>"})
        out = ex("[(sq(i), tag(str(i))) for i in range(3000)][-3:]").output
        assert out == [(i * i, f"<{i}>") for i in range(2997, 3000)]


@needs_mailbox
def test_mailbox_fences_from_many_threads_at_once_never_trip_over_each_other():
    """Answers to calls can be posted from several host threads at once (async tools), while the
    driving thread marks itself away: their fences share one lock and must not release each other's."""
    import sys
    import threading

    fd = shm.create()
    try:
        host = shm.Mailbox(fd, host=True)
    finally:
        os.close(fd)
    errors: list[BaseException] = []

    def hammer() -> None:
        try:
            for _ in range(3000):
                host.away()
                host.back()
                host.post(b"\0\0\0\x01\x04")
                host.lens[1] = 0  # empty the worker-bound slot again
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible
    try:
        threads = [threading.Thread(target=hammer) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        sys.setswitchinterval(old)
    assert errors == []
