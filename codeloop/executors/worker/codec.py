"""Safe value codec for everything that crosses the worker boundary.

Values become JSON-compatible data; anything JSON cannot say directly is a tagged object
``{"$t": tag, "v": data}``. Supported: None, bool, int, float, str, list, dict (any encodable keys),
tuple, set, frozenset, bytes, bytearray, datetime/date/time/timedelta, Decimal, complex, UUID,
functions the agent code defined (as name and source: ``SandboxFunction``), pathlib paths, numpy arrays of plain numeric/bool dtypes and numpy scalars (as the Python scalar), PIL
images (PNG) and types added with :func:`register_type`. ``encode(..., dataclasses=True)`` also writes a
dataclass instance as its fields, which decode as a dict with ``"__dataclass__"`` (the class name): the
class itself is never rebuilt.

Direction matters:
- worker -> host: the host decodes with ``allow_pickle=False`` (always), so only the constructors of
  the types above run on the host; no object chosen by the worker is ever built, and none of its
  dunders (``__repr__``, ``__eq__``, ``__hash__``, ``__del__``...) can run on the host. The worker
  encodes with ``fallback="repr"``: a value it cannot encode becomes its ``repr`` string, computed in
  the worker.
- host -> worker: the host is trusted, so a value the codec cannot express (a DataFrame sent with
  ``send_variables``) may travel as a pickle that only the worker unpickles.

This module is imported by the child with no package ``__init__`` run: standard library only, and
optional modules (decimal, uuid, numpy, PIL) are looked up in ``sys.modules`` when encoding, so the
child never imports them just to check a type.
"""

from __future__ import annotations

import base64
import datetime as _dt
import reprlib
import sys
import types
from collections.abc import Callable
from typing import Any

__all__ = ["CodecError", "SandboxFunction", "encode", "decode", "decode_list", "register_type", "safe_repr"]

_TAG = "$t"
MAX_DEPTH = 100
REPR_LIMIT = 100_000
# The repr of a container past MAX_DEPTH: reprlib stops at a few levels, where repr() would recurse
# through the rest in C (very deep structures: slow, and under WebAssembly a native stack overflow).
_SHALLOW = reprlib.Repr()
_SHALLOW.maxlevel = 4
_SHALLOW.maxlist = _SHALLOW.maxtuple = _SHALLOW.maxset = _SHALLOW.maxfrozenset = _SHALLOW.maxdict = 20
_SHALLOW_TYPES = (list, tuple, set, frozenset, dict)


class CodecError(ValueError):
    """A value cannot be encoded (or a payload cannot be decoded) by the safe codec."""


# tag -> (class, to_plain, from_plain); to_plain output must itself be encodable.
_REGISTRY: dict[str, tuple[type, Callable[[Any], Any], Callable[[Any], Any]]] = {}


def register_type(
    tag: str, cls: type, to_plain: Callable[[Any], Any], from_plain: Callable[[Any], Any]
) -> None:
    """Teach the codec a type: ``to_plain(obj)`` gives encodable data, ``from_plain(data)`` rebuilds it.

    Register it on both sides to get the type back; a side that does not know the tag decodes it
    as ``{"type": tag, "value": data}``. ``from_plain`` runs on the host for values coming back from
    the worker, so it must only build the object from the data, never execute anything.
    """
    if tag.startswith("_") or tag in _BUILTIN_TAGS:
        raise ValueError(f"tag {tag!r} is reserved")
    _REGISTRY[tag] = (cls, to_plain, from_plain)


def safe_repr(value: Any, limit: int = REPR_LIMIT) -> str:
    """repr() that never raises and never returns more than ``limit`` characters."""
    try:
        text = repr(value)
        if type(text) is not str:
            text = str.__str__(text) if isinstance(text, str) else f"<{type(value).__name__} object>"
    except BaseException as exc:  # noqa: BLE001 - user-defined __repr__ can raise anything
        if isinstance(exc, (KeyboardInterrupt, SystemExit)):
            raise
        text = f"<{_type_name(value)} object (repr failed: {type(exc).__name__})>"
    if len(text) > limit:
        text = text[: limit // 2] + f"... [{len(text) - limit} characters cut] ..." + text[-limit // 2 :]
    return text


def _type_name(value: Any) -> str:
    try:
        return str(type(value).__name__)
    except Exception:  # noqa: BLE001
        return "object"


def encode(value: Any, fallback: str = "error", dataclasses: bool = False) -> Any:
    """Turn ``value`` into JSON-compatible data.

    ``fallback``: "error" raises CodecError for an unsupported value, "repr" replaces it with its repr
    string (worker side), "pickle" pickles it (host -> worker only). ``dataclasses``: a dataclass
    instance is written as its class name and fields (it decodes as a dict, see the module docstring).
    """
    t = type(value)
    if t is str or t is float or t is bool or value is None:  # most tool results: no encoder needed
        return value
    return _Encoder(fallback, dataclasses).enc(value, 0)


class _Encoder:
    def __init__(self, fallback: str, dataclasses: bool = False):
        self.fallback = fallback
        self.dataclasses = dataclasses
        self.active: set[int] = set()  # ids on the current path, to catch cycles

    def enc(self, v: Any, depth: int) -> Any:
        t = type(v)
        if v is None or t is bool or t is str:
            return v
        if t is int:
            if v.bit_length() > 10_000:  # JSON would need > 3000 digits; int parsing limits refuse those
                return self.other(v, depth)
            return v
        if t is float:
            return v
        if depth > MAX_DEPTH:
            return self.other(v, depth, "nested too deeply")
        if t is list or t is tuple or t is set or t is frozenset or t is dict:
            return self.container(v, t, depth)
        return self.special(v, t, depth)

    def container(self, v: Any, t: type, depth: int) -> Any:
        if id(v) in self.active:
            return self.other(v, depth, "contains itself")
        self.active.add(id(v))
        try:
            if t is list:
                return [self.enc(x, depth + 1) for x in v]
            if t is tuple:
                return {_TAG: "tuple", "v": [self.enc(x, depth + 1) for x in v]}
            if t is dict:
                if all(type(k) is str for k in v) and _TAG not in v:
                    return {k: self.enc(x, depth + 1) for k, x in v.items()}
                return {
                    _TAG: "dict",
                    "v": [[self.enc(k, depth + 1), self.enc(x, depth + 1)] for k, x in v.items()],
                }
            items = [self.enc(x, depth + 1) for x in v]
            return {_TAG: "set" if t is set else "frozenset", "v": items}
        finally:
            self.active.discard(id(v))

    def special(self, v: Any, t: type, depth: int) -> Any:
        if t is bytes or t is bytearray:
            return {_TAG: t.__name__, "v": base64.b64encode(v).decode("ascii")}
        if t is _dt.datetime:
            return {_TAG: "datetime", "v": v.isoformat()}
        if t is _dt.date:
            return {_TAG: "date", "v": v.isoformat()}
        if t is _dt.time:
            return {_TAG: "time", "v": v.isoformat()}
        if t is _dt.timedelta:
            return {_TAG: "timedelta", "v": [v.days, v.seconds, v.microseconds]}
        if t is complex:
            return {_TAG: "complex", "v": [v.real, v.imag]}
        mod = sys.modules
        if "decimal" in mod and t is mod["decimal"].Decimal:
            return {_TAG: "decimal", "v": str(v)}
        if "uuid" in mod and t is mod["uuid"].UUID:
            return {_TAG: "uuid", "v": str(v)}
        if t is types.FunctionType and type(getattr(v, "__source__", None)) is str or t is SandboxFunction:
            return {_TAG: "function", "v": [str(v.__name__), str(v.__source__)]}  # one the agent code defined
        if "pathlib" in mod and isinstance(v, mod["pathlib"].PurePath):
            return {_TAG: "path", "v": str(v)}
        if "numpy" in mod and t is getattr(mod["numpy"], "ndarray", None):
            encoded = _encode_ndarray(v)
            if encoded is not None:
                return encoded
        if "numpy" in mod and isinstance(v, mod["numpy"].generic) and v.dtype.kind in "biufc":
            return self.enc(v.item(), depth)  # a numpy scalar travels as the Python scalar it holds
        dc = mod.get("dataclasses") if self.dataclasses else None
        if dc is not None and dc.is_dataclass(v) and not isinstance(v, type):
            fields = {f.name: self.enc(getattr(v, f.name), depth + 1) for f in dc.fields(v)}
            return {_TAG: "dataclass", "v": [t.__name__, t.__module__, fields]}
        if "PIL.Image" in mod and isinstance(v, mod["PIL.Image"].Image):
            return _encode_image(v)
        for tag, (cls, to_plain, _) in _REGISTRY.items():
            if isinstance(v, cls):
                return {_TAG: tag, "v": self.enc(to_plain(v), depth + 1)}
        # Subclasses of builtins (IntEnum, namedtuple, OrderedDict, str subclasses...) lose their class.
        for base in (bool, int, float, str, tuple, list, dict, set, frozenset, bytes):
            if isinstance(v, base):
                try:
                    plain = base(v)
                except Exception:  # noqa: BLE001
                    break
                if type(plain) is base:
                    return self.enc(plain, depth)
                break
        return self.other(v, depth)

    def other(self, v: Any, depth: int, why: str = "") -> Any:
        if self.fallback == "repr":
            if depth > MAX_DEPTH:  # what is left may be nested far deeper: a few levels of it suffice
                return safe_repr(_SHALLOW.repr(v) if type(v) in _SHALLOW_TYPES else v)
            return safe_repr(v)
        if self.fallback == "pickle":
            import pickle

            try:
                data = pickle.dumps(v, protocol=pickle.HIGHEST_PROTOCOL)
            except Exception as exc:
                raise CodecError(
                    f"value of type {_type_name(v)} cannot be sent to the worker: {exc}"
                ) from None
            return {_TAG: "_pickle", "v": base64.b64encode(data).decode("ascii")}
        detail = f" ({why})" if why else ""
        raise CodecError(
            f"value of type {_type_name(v)}{detail} cannot cross the worker boundary; use JSON types, bytes, "
            "tuples, sets, datetimes, numpy arrays, images or a type added with register_type()"
        )


def _encode_ndarray(arr: Any) -> dict[str, Any] | None:
    if arr.dtype.kind not in "biufc" or arr.dtype.hasobject:
        return None  # object/str/structured arrays fall back to the generic rule
    data = arr.astype(arr.dtype.newbyteorder("<"), copy=False).tobytes(order="C")
    return {
        _TAG: "ndarray",
        "v": [arr.dtype.newbyteorder("<").str, list(arr.shape), base64.b64encode(data).decode()],
    }


def _encode_image(img: Any) -> dict[str, Any]:
    import io

    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return {_TAG: "image", "v": base64.b64encode(buf.getvalue()).decode("ascii")}


def decode(data: Any, allow_pickle: bool = False) -> Any:
    """Rebuild a value from :func:`encode` output. Only known constructors run; pickle only if allowed."""
    t = type(data)
    if data is None or t is bool or t is int or t is float or t is str:
        return data
    if t is list:
        return [decode(x, allow_pickle) for x in data]
    if t is not dict:
        raise CodecError(f"unexpected {t.__name__} in encoded data")
    if _TAG not in data:
        return {k: decode(x, allow_pickle) for k, x in data.items()}
    tag, v = data[_TAG], data.get("v")
    try:
        return _decode_tagged(tag, v, allow_pickle)
    except CodecError:
        raise
    except Exception as exc:
        raise CodecError(f"bad encoded {tag!r} value: {type(exc).__name__}: {exc}") from None


_SCALARS = frozenset((str, int, float, bool, type(None)))


def decode_list(data: list) -> list:
    """``decode`` of a list (call arguments): scalars, the usual arguments, are taken as they are."""
    scalars = _SCALARS
    for x in data:
        if type(x) not in scalars:
            return [decode(x, False) for x in data]
    return data


def _decode_tagged(tag: Any, v: Any, allow_pickle: bool) -> Any:
    if tag == "tuple":
        return tuple(decode(x, allow_pickle) for x in v)
    if tag == "dict":
        return {_hashable(decode(k, allow_pickle)): decode(x, allow_pickle) for k, x in v}
    if tag == "set":
        return {_hashable(decode(x, allow_pickle)) for x in v}
    if tag == "frozenset":
        return frozenset(_hashable(decode(x, allow_pickle)) for x in v)
    if tag == "bytes":
        return base64.b64decode(v, validate=True)
    if tag == "bytearray":
        return bytearray(base64.b64decode(v, validate=True))
    if tag == "datetime":
        return _dt.datetime.fromisoformat(v)
    if tag == "date":
        return _dt.date.fromisoformat(v)
    if tag == "time":
        return _dt.time.fromisoformat(v)
    if tag == "timedelta":
        return _dt.timedelta(days=int(v[0]), seconds=int(v[1]), microseconds=int(v[2]))
    if tag == "complex":
        return complex(float(v[0]), float(v[1]))
    if tag == "decimal":
        import decimal

        return decimal.Decimal(str(v))
    if tag == "uuid":
        import uuid

        return uuid.UUID(str(v))
    if tag == "ndarray":
        return _decode_ndarray(v)
    if tag == "function":
        return SandboxFunction(str(v[0]), str(v[1]))
    if tag == "path":
        import pathlib

        return pathlib.Path(str(v))
    if tag == "dataclass":
        fields = decode(v[2], allow_pickle)
        return {"__dataclass__": str(v[0]), "__module__": str(v[1]), **fields}
    if tag == "image":
        return _decode_image(v)
    if tag == "_pickle":
        if not allow_pickle:
            raise CodecError("refusing to unpickle data from the worker")
        import pickle

        return pickle.loads(base64.b64decode(v))
    if tag in _REGISTRY:
        return _REGISTRY[tag][2](decode(v, allow_pickle))
    return {"type": str(tag), "value": decode(v, allow_pickle)}


class SandboxFunction:
    """A function the code defined on the other side of the boundary: its name and source, not the
    function (it is never rebuilt, so nothing of it runs here). Calling it says so."""

    def __init__(self, name: str, source: str):
        self.__name__ = name
        self.__source__ = source

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        raise TypeError(
            f"{self.__name__}() was defined by code in the sandbox and cannot run outside it; its source is in "
            f"{self.__name__}.__source__"
        )

    def __repr__(self) -> str:
        return f"<function {self.__name__} defined in the sandbox>"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SandboxFunction) and (self.__name__, self.__source__) == (
            other.__name__,
            other.__source__,
        )

    __hash__ = None  # type: ignore[assignment]


def _hashable(key: Any) -> Any:
    # Decoded values are builtins only, so hashing them runs no foreign code; lists/dicts are unhashable.
    if type(key) in (list, dict, set, bytearray):
        raise CodecError(f"unhashable {type(key).__name__} used as a dict key or set member")
    return key


def _decode_ndarray(v: Any) -> Any:
    dtype, shape, payload = str(v[0]), [int(n) for n in v[1]], base64.b64decode(v[2], validate=True)
    try:
        import numpy as np
    except ImportError:
        return {"type": "ndarray", "value": [dtype, shape]}
    dt = np.dtype(dtype)
    if dt.kind not in "biufc" or dt.hasobject:
        raise CodecError(f"ndarray dtype {dtype!r} is not allowed")
    return np.frombuffer(payload, dtype=dt).reshape(shape).copy()


# Images from the worker are parsed by PIL on the host: cap their size so a decompression bomb is refused.
MAX_IMAGE_PIXELS = 64_000_000


def _decode_image(v: Any) -> Any:
    import io

    raw = base64.b64decode(v, validate=True)
    try:
        from PIL import Image
    except ImportError:
        return raw  # the PNG bytes, still useful without PIL
    Image.MAX_IMAGE_PIXELS = min(Image.MAX_IMAGE_PIXELS or MAX_IMAGE_PIXELS, MAX_IMAGE_PIXELS)
    img = Image.open(io.BytesIO(raw), formats=["PNG"])
    img.load()
    return img


_BUILTIN_TAGS = frozenset(
    (
        "tuple dict set frozenset bytes bytearray datetime date time timedelta complex decimal uuid ndarray image "
        "path dataclass function"
    ).split()
)
