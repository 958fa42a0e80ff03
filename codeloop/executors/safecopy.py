"""Copying for sandboxed code without the ``__reduce__`` write gadget.

Layer 3 (executors). ``copy.copy``/``copy.deepcopy`` ask an object's class for ``__reduce_ex__`` and
then do what the answer says: call any callable, then write attributes and items into whatever it
returned. A class the code defines could thereby write any attribute of any host object. Class
statements may not define these hooks (the compiler refuses them), but ``type(name, bases, ns)``
can; so code gets a private instance of the ``copy`` module (its own globals, the same source) whose
``getattr`` refuses reducers written by the code and whose ``dispatch_table`` is its own. The
helpers of other modules that deep-copy (``dataclasses.asdict``/``astuple``,
``collections.UserDict.copy``) are given versions that copy through it.
"""

from __future__ import annotations

import builtins
import collections
import copyreg
import dataclasses
import importlib.util
import types
from typing import Any

from .guards import is_code_function
from .policy import PolicyViolation

__all__ = ["private_copy_module", "safe_asdict", "safe_astuple", "SafeUserDict"]

_REDUCERS = ("__reduce_ex__", "__reduce__")


def _checking_getattr(obj: Any, name: str, *default: Any) -> Any:
    value = getattr(obj, name, *default)
    if name in _REDUCERS and is_code_function(value):
        raise PolicyViolation(
            f"Objects whose class the code gave a '{name}' cannot be copied: copy would let it write "
            "any attribute of any object (rule: no pickling hooks)"
        )
    return value


def _build() -> types.ModuleType:
    spec = importlib.util.find_spec("copy")
    if spec is None or spec.loader is None or spec.origin is None:
        raise ImportError("the copy module's source is not available")
    source = spec.loader.get_source("copy")  # type: ignore[attr-defined]
    mod = types.ModuleType("copy", "Shallow and deep copy operations (codeloop's private instance).")
    mod.__dict__["__builtins__"] = dict(vars(builtins), getattr=_checking_getattr)
    exec(compile(source, spec.origin, "exec"), mod.__dict__)  # noqa: S102 - the stdlib's own source
    mod.__dict__["dispatch_table"] = dict(copyreg.dispatch_table)  # not the process-wide table
    return mod


_PRIVATE: types.ModuleType | None = None


def private_copy_module() -> types.ModuleType:
    global _PRIVATE
    if _PRIVATE is None:
        _PRIVATE = _build()
    return _PRIVATE


def _is_dataclass_instance(obj: Any) -> bool:
    return dataclasses.is_dataclass(obj) and not isinstance(obj, type)


def _convert(obj: Any, factory: Any, as_dict: bool) -> Any:
    """Recursive part of asdict/astuple: dataclasses, lists, tuples (named too) and dicts are rebuilt,
    anything else is deep-copied through the private copy module."""
    if _is_dataclass_instance(obj):
        values = [(f.name, _convert(getattr(obj, f.name), factory, as_dict)) for f in dataclasses.fields(obj)]
        return factory(values) if as_dict else factory([v for _, v in values])
    if isinstance(obj, tuple) and hasattr(obj, "_fields"):
        return type(obj)(*[_convert(v, factory, as_dict) for v in obj])
    if isinstance(obj, list | tuple):
        return type(obj)(_convert(v, factory, as_dict) for v in obj)
    if isinstance(obj, dict):
        return type(obj)(
            (_convert(k, factory, as_dict), _convert(v, factory, as_dict)) for k, v in obj.items()
        )
    return private_copy_module().deepcopy(obj)


def safe_asdict(obj: Any, *, dict_factory: Any = dict) -> Any:
    if not _is_dataclass_instance(obj):
        raise TypeError("asdict() should be called on dataclass instances")
    return _convert(obj, dict_factory, True)


def safe_astuple(obj: Any, *, tuple_factory: Any = tuple) -> Any:
    if not _is_dataclass_instance(obj):
        raise TypeError("astuple() should be called on dataclass instances")
    return _convert(obj, tuple_factory, False)


safe_asdict.__name__ = "asdict"
safe_astuple.__name__ = "astuple"


class SafeUserDict(collections.UserDict):  # type: ignore[type-arg]
    """``collections.UserDict`` whose ``copy()`` of a subclass goes through the private copy module."""

    def copy(self) -> Any:
        if type(self) is SafeUserDict:
            return SafeUserDict(self.data.copy())
        data = self.data
        try:
            self.data = {}
            duplicate = private_copy_module().copy(self)
        finally:
            self.data = data
        duplicate.update(self)
        return duplicate


SafeUserDict.__name__ = "UserDict"
SafeUserDict.__qualname__ = "UserDict"
