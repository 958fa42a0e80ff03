"""``SafeSerializer``: smolagents' value serializer, kept for compatibility, over codeloop's safe codec.

Layer 3 (executors). smolagents uses ``SafeSerializer`` to move values between a host and a remote
sandbox as text. codeloop's worker does the same with ``worker/codec.py`` (tagged JSON, no pickle from the
sandbox); this class gives that codec smolagents' interface: ``dumps(obj) -> "safe:<json>"`` and
``loads(text)``. Deliberate difference: codeloop never unpickles. ``allow_pickle=True`` is accepted, but a
value the codec cannot express raises ``SerializationError`` and ``pickle:`` data is refused.

It carries what smolagents' does without pickle: ``pathlib`` paths, numpy scalars (as Python scalars) and
dataclass instances (loaded as a dict of their fields with ``"__dataclass__"``: the class is never
rebuilt). ``loads`` also reads the JSON that smolagents' own ``SafeSerializer`` writes
(``{"__type__": "bytes", "data": ...}``), for the types both know; a ``__type__`` it does not know stays a
dict, as in smolagents.
"""

from __future__ import annotations

import base64
import datetime as _dt
import json
import pathlib
from typing import Any

from .worker.codec import CodecError, decode, encode

__all__ = ["SafeSerializer", "SerializationError"]


class SerializationError(Exception):
    """A value cannot be serialized safely, or the text is not safe serialized data."""


class SafeSerializer:
    """Text serialization of Python values with no code execution on load (smolagents' interface)."""

    SAFE_PREFIX = "safe:"

    @staticmethod
    def to_json_safe(obj: Any) -> Any:
        """JSON-compatible data for ``obj``; raises ``SerializationError`` for an unsupported value."""
        try:
            return encode(obj, dataclasses=True)
        except CodecError as exc:
            raise SerializationError(f"Cannot safely serialize object of type {type(obj).__name__}: {exc}") from None

    @staticmethod
    def from_json_safe(data: Any) -> Any:
        try:
            return _load(data)
        except (CodecError, ValueError, TypeError, KeyError) as exc:
            raise SerializationError(f"Invalid safe serialized data: {type(exc).__name__}: {exc}") from None

    @staticmethod
    def get_deserializer_code(allow_pickle: bool = False) -> str:
        """Python source that defines ``_deserialize(text)``, which loads what ``dumps`` wrote with the
        standard library only (for code run where codeloop is not installed, e.g. in a remote sandbox).
        ``allow_pickle`` is accepted for compatibility: the generated code never unpickles either."""
        from .worker import codec

        return pathlib.Path(codec.__file__).read_text(encoding="utf-8") + _DESERIALIZE

    @staticmethod
    def dumps(obj: Any, allow_pickle: bool = False) -> str:
        """``"safe:" + JSON``. ``allow_pickle`` is accepted for compatibility; codeloop never pickles."""
        data = SafeSerializer.to_json_safe(obj)
        try:
            return SafeSerializer.SAFE_PREFIX + json.dumps(data, allow_nan=True)
        except (TypeError, ValueError) as exc:
            raise SerializationError(f"Cannot serialize object of type {type(obj).__name__}: {exc}") from None

    @staticmethod
    def loads(data: str, allow_pickle: bool = False) -> Any:
        """The value ``dumps`` wrote. Anything else (pickle data included) raises ``SerializationError``."""
        if not isinstance(data, str) or not data.startswith(SafeSerializer.SAFE_PREFIX):
            raise SerializationError(
                "Pickle data rejected: the text is not safe serialized data (codeloop never unpickles, even "
                "with allow_pickle=True)."
            )
        try:
            payload = json.loads(data[len(SafeSerializer.SAFE_PREFIX) :])
        except ValueError as exc:
            raise SerializationError(f"Invalid safe serialized data: {exc}") from None
        return SafeSerializer.from_json_safe(payload)


_DESERIALIZE = '''

def _deserialize(text):
    """The value SafeSerializer.dumps wrote ("safe:" + JSON); anything else is refused (never unpickled)."""
    import json as _json

    if not isinstance(text, str) or not text.startswith("safe:"):
        raise ValueError("not safe serialized data: codeloop never unpickles")
    return decode(_json.loads(text[len("safe:"):]), allow_pickle=False)
'''


def _load(data: Any) -> Any:
    """Values from JSON data in codeloop's tagged form or in smolagents' (``{"__type__": ..., "data": ...}``,
    for the types it writes that carry no code); other dicts and lists are walked."""
    if type(data) is list:
        return [_load(x) for x in data]
    if type(data) is not dict:
        return data
    if "$t" in data:
        return decode(data, allow_pickle=False)
    kind = data.get("__type__")
    if isinstance(kind, str) and kind in _SMOLAGENTS_TYPES:
        return _SMOLAGENTS_TYPES[kind](data)
    return {k: _load(v) for k, v in data.items()}


def _items(data: dict[str, Any]) -> list[Any]:
    return [_load(x) for x in data["data"]]


def _dataclass(data: dict[str, Any]) -> dict[str, Any]:
    fields = {k: _load(v) for k, v in data["data"].items()}
    return {"__dataclass__": str(data["class_name"]), "__module__": str(data["module"]), **fields}


def _ndarray(data: dict[str, Any]) -> Any:
    import numpy as np

    dtype = np.dtype(str(data["dtype"]))
    if dtype.kind not in "biufc":
        raise ValueError(f"ndarray dtype {dtype} is not allowed")
    return np.array(data["data"], dtype=dtype)


def _path(data: dict[str, Any]) -> Any:
    return pathlib.Path(str(data["data"]))


def _decimal(data: dict[str, Any]) -> Any:
    import decimal

    return decimal.Decimal(str(data["data"]))


_SMOLAGENTS_TYPES: dict[str, Any] = {
    "bytes": lambda d: base64.b64decode(d["data"], validate=True),
    "tuple": lambda d: tuple(_items(d)),
    "set": lambda d: set(_items(d)),
    "frozenset": lambda d: frozenset(_items(d)),
    "complex": lambda d: complex(float(d["real"]), float(d["imag"])),
    "dict_with_complex_keys": lambda d: {_load(k): _load(v) for k, v in d["data"]},
    "datetime": lambda d: _dt.datetime.fromisoformat(d["data"]),
    "date": lambda d: _dt.date.fromisoformat(d["data"]),
    "time": lambda d: _dt.time.fromisoformat(d["data"]),
    "timedelta": lambda d: _dt.timedelta(seconds=float(d["total_seconds"])),
    "Decimal": _decimal,
    "Path": _path,
    "ndarray": _ndarray,
    "dataclass": _dataclass,
}
