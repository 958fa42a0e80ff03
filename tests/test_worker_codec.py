"""The worker's safe codec and pipe framing (pure functions, no process)."""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import json
import os
import pickle
import struct
import uuid

import numpy as np
import pytest

from codeloop.executors.worker import codec
from codeloop.executors.worker.protocol import FrameReader, ProtocolError, pack


def roundtrip(value, fallback="error"):
    return codec.decode(json.loads(json.dumps(codec.encode(value, fallback))))


@pytest.mark.parametrize(
    "value",
    [
        None,
        True,
        3,
        -2.5,
        "héllo",
        [1, [2, "x"]],
        {"a": 1, "b": [None]},
        (1, (2, 3)),
        {1, 2},
        frozenset({"a"}),
        b"\x00\xff",
        bytearray(b"ab"),
        {1: "one", (2, 3): "pair"},
        {"$t": "looks like a tag"},
        dt.datetime(2024, 5, 6, 7, 8, 9, 10, tzinfo=dt.UTC),
        dt.date(2024, 1, 2),
        dt.time(3, 4, 5),
        dt.timedelta(days=2, seconds=3, microseconds=4),
        decimal.Decimal("1.10"),
        uuid.UUID(int=5),
        complex(1, -2),
    ],
)
def test_roundtrip_keeps_type_and_value(value):
    back = roundtrip(value)
    assert back == value
    assert type(back) is type(value)


def test_numpy_arrays_roundtrip_but_object_arrays_do_not():
    arr = np.arange(6, dtype=np.int32).reshape(2, 3)
    back = roundtrip(arr)
    assert isinstance(back, np.ndarray) and back.dtype == arr.dtype and (back == arr).all()
    obj = np.array([object()], dtype=object)
    assert isinstance(roundtrip(obj, "repr"), str)
    with pytest.raises(codec.CodecError):
        codec.decode({"$t": "ndarray", "v": ["|O", [1], base64.b64encode(b"\0" * 8).decode()]})


def test_unknown_objects_follow_the_fallback():
    class Thing:
        def __repr__(self):
            return "<thing>"

    assert roundtrip(Thing(), "repr") == "<thing>"
    assert roundtrip([Thing()], "repr") == ["<thing>"]
    with pytest.raises(codec.CodecError, match="Thing"):
        codec.encode(Thing())


def test_repr_fallback_survives_a_raising_repr_and_cycles():
    class Bad:
        def __repr__(self):
            raise RuntimeError("no")

    assert "repr failed" in codec.encode(Bad(), "repr")
    loop: list = []
    loop.append(loop)
    assert codec.encode(loop, "repr") == ["[[...]]"]


def test_host_never_unpickles_worker_data(tmp_path):
    marker = tmp_path / "unpickled"

    class Evil:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    payload = {"$t": "_pickle", "v": base64.b64encode(pickle.dumps(Evil())).decode()}
    with pytest.raises(codec.CodecError, match="refusing to unpickle"):
        codec.decode(payload)
    with pytest.raises(codec.CodecError):
        codec.decode({"k": [payload]})
    assert not marker.exists()


def test_pickle_fallback_only_when_asked():
    frac = __import__("fractions").Fraction(1, 3)
    enc = codec.encode(frac, "pickle")
    assert enc["$t"] == "_pickle"
    assert codec.decode(enc, allow_pickle=True) == frac


def test_register_type_roundtrip_and_unknown_tag():
    class Point:
        def __init__(self, x, y):
            self.x, self.y = x, y

    codec.register_type("test-point", Point, lambda p: [p.x, p.y], lambda v: Point(*v))
    try:
        back = roundtrip(Point(1, 2))
        assert isinstance(back, Point) and (back.x, back.y) == (1, 2)
    finally:
        codec._REGISTRY.pop("test-point")
    assert codec.decode({"$t": "nobody-knows", "v": [1]}) == {"type": "nobody-knows", "value": [1]}
    with pytest.raises(ValueError):
        codec.register_type("tuple", Point, str, str)


def test_subclasses_of_builtins_become_plain_builtins():
    from collections import OrderedDict, namedtuple

    P = namedtuple("P", "a b")
    assert roundtrip(P(1, 2)) == (1, 2)
    assert type(roundtrip(OrderedDict(a=1))) is dict


def test_frame_reader_splits_and_joins_frames():
    data = pack({"op": "a", "n": 1}) + pack({"op": "b"})
    reader = FrameReader()
    out = []
    for i in range(len(data)):
        out += reader.feed(data[i : i + 1])
    assert [m["op"] for m in out] == ["a", "b"]


@pytest.mark.parametrize(
    "raw",
    [
        struct.pack(">I", 2**31) + b"x",
        struct.pack(">I", 5) + b"nope!",
        struct.pack(">I", 2) + b"[]",
        struct.pack(">I", 20001) + b"[" * 20000 + b"]",
    ],
)
def test_frame_reader_rejects_bad_frames(raw):
    with pytest.raises(ProtocolError):
        FrameReader(max_frame=1 << 20).feed(raw)


def test_decode_refuses_huge_image_bombs_gracefully():
    # not a PNG: PIL is optional; either PIL refuses or raw bytes come back, never a crash
    try:
        out = codec.decode({"$t": "image", "v": base64.b64encode(os.urandom(64)).decode()})
    except codec.CodecError:
        return
    assert isinstance(out, bytes)
