"""Run-time guards: the checks the compiler cannot do from the source alone.

Layer 3 (executors). The compiler refuses what it can see (``x.__globals__``); what it cannot see
(``getattr(x, name)``, ``"{0.__globals__}".format(x)``, ``operator.attrgetter(name)``, a private
attribute whose owner is only known at run time) goes through the functions here. Every builtin or
library callable that looks attributes up by a string the code controls is replaced by a version
that applies ``policy.attribute_violation`` first.

Ownership: classes created by ``class`` statements in sandboxed code are marked (by a decorator the
compiler adds); their instances and subclasses may use private attributes. The mark is kept by
identity (``id`` -> weak reference), so no metaclass trick (``__eq__``/``__hash__``/``__getattr__``
on a metaclass) can make a foreign class look marked.
"""

from __future__ import annotations

import _string  # type: ignore[import-not-found]  # C helpers behind str.format's parser
import builtins
import contextvars
import functools
import string
import sys
import types
import weakref
from collections import UserString
from typing import Any

from .compiler import FILENAME
from .names import CLASS_TOKEN
from .policy import (
    ALLOWED_DUNDERS,
    ALLOWED_PRIVATE,
    FORBIDDEN_ATTRIBUTES,
    PolicyViolation,
    dunder_store_violation,
    format_attribute_violation,
    format_attributes,
    is_dunder,
    needs_owner_check,
)
from .tape import CLOCK_ATTRS, clock_attr

__all__ = [
    "ACTIVE_SESSION",
    "mark_class",
    "seal_class",
    "claim_self",
    "priv_guard",
    "store_guard",
    "attr_guard",
    "safe_getattr",
    "safe_hasattr",
    "safe_setattr",
    "safe_delattr",
    "SafeFormatter",
    "SafeUserString",
    "safe_attrgetter",
    "safe_methodcaller",
    "check_format_string",
    "is_code_function",
    "is_owned",
    "class_owned",
    "may_write",
]

# Set while sandboxed code runs in this context (tools or patches may look at it).
ACTIVE_SESSION: contextvars.ContextVar[Any] = contextvars.ContextVar("codeloop_active_session", default=None)

_real_getattr = builtins.getattr
_type_mro = type.__dict__["__mro__"].__get__
_super_thisclass = super.__dict__["__thisclass__"].__get__

# ---- ownership -------------------------------------------------------------------------------
# Two registries keyed by id() (entries leave when the class is collected, so a stale id never
# matches): classes whose every base is the code's own or defines no private names ("pure": their
# instances take the fast path in compiled methods), and classes with a foreign base that has private
# names (e.g. Enum, ABC subclasses), where each private name is checked for where it is defined.
_marked: dict[int, weakref.ref[type]] = {}
_marked_foreign: dict[int, weakref.ref[type]] = {}
owned_ids = _marked  # compiled methods test ``id(type(self)) in owned_ids`` (then claim_self)
TOKEN = object()  # the value of __codeloop_class_token__ in classes made by the code's class statements
TOKEN_NAME = CLASS_TOKEN
_type_dict = type.__dict__["__dict__"].__get__


def _register(cls: type, registry: dict[int, weakref.ref[type]]) -> None:
    key = id(cls)

    def forget(_ref: Any, key: int = key) -> None:
        _marked.pop(key, None)
        _marked_foreign.pop(key, None)

    registry[key] = weakref.ref(cls, forget)


def _in(registry: dict[int, weakref.ref[type]], cls: type) -> bool:
    ref = registry.get(id(cls))
    return ref is not None and ref() is cls


def _is_marked(cls: type) -> bool:
    return _in(_marked, cls) or _in(_marked_foreign, cls)


def _has_private_names(cls: type) -> bool:
    return any(k[:1] == "_" and not is_dunder(k) for k in _type_dict(cls))


def _refuse_reduce_hooks(cls: type) -> None:
    own = _type_dict(cls)
    for name in ("__reduce__", "__reduce_ex__"):
        if name in own:
            raise PolicyViolation(
                f"Classes may not define '{name}': copy and pickle would call it with the power to write "
                "any attribute of any object (rule: no pickling hooks)"
            )


def _classify(cls: type) -> None:
    foreign = any(not _is_marked(b) and _has_private_names(b) for b in _type_mro(cls)[1:])
    _register(cls, _marked_foreign if foreign else _marked)


def mark_class(cls: Any) -> Any:
    """Innermost decorator the compiler puts on every class statement: register the new class."""
    if isinstance(cls, type) and not _is_marked(cls) and _type_dict(cls).get(TOKEN_NAME) is TOKEN:
        _refuse_reduce_hooks(cls)
        _classify(cls)
    return cls


def seal_class(cls: Any) -> Any:
    """Outermost decorator: register what the decorators returned if it carries the token (e.g. the
    new class ``dataclass(slots=True)`` builds), then remove the token so ``dir()`` shows nothing."""
    if isinstance(cls, type) and _type_dict(cls).get(TOKEN_NAME) is TOKEN:
        _refuse_reduce_hooks(cls)
        if not _is_marked(cls):
            _classify(cls)
        try:
            type.__delattr__(cls, TOKEN_NAME)
        except (AttributeError, TypeError):
            pass
    return cls


def claim_self(obj: Any, self_types: list[Any], slot: int) -> bool:
    """A compiled method's entry check missed its slot of the session's ``self_types`` list: if
    ``type(obj)`` is registered as owned (pure), remember it there and answer True.

    The slot then holds a strong reference, so that class stays registered and its id is not
    reused: ``type(self) is self_types[slot]`` holds only where ``id(type(self)) in owned_ids``
    does. Both tests are by identity, so no ``__eq__``/``__hash__``/``__instancecheck__`` or
    ``__class__`` of the code's takes part in them."""
    t = type(obj)
    if _in(_marked, t):
        self_types[slot] = t
        return True
    return False


def _class_owned(cls: type) -> bool:
    if _is_marked(cls):
        return True
    for base in _type_mro(cls)[1:]:
        if _is_marked(base):
            _classify(cls)  # made from the code's classes (e.g. by type()): the code's own too
            return True
    return False


def _definer(cls: type, name: str) -> type | None:
    for k in _type_mro(cls):
        if name in _type_dict(k):
            return k
    return None


def private_ok(obj: Any, name: str) -> bool:
    """May the code use private attribute ``name`` on ``obj``? Only on its own objects, and never
    for a private name that a class it did not define provides (``MyEnum._member_map_``)."""
    t = type(obj)
    if _in(_marked, t):
        return True
    if t is super:
        cls = _super_thisclass(obj)
        return _class_owned(cls) and _definer_ok(cls, name)
    if isinstance(obj, type) and _class_owned(obj):
        return _definer_ok(obj, name)
    if _class_owned(t):
        return _definer_ok(t, name)
    return False


def _definer_ok(cls: type, name: str) -> bool:
    if _in(_marked, cls):
        return True
    owner = _definer(cls, name)
    return owner is None or _is_marked(owner)


def is_owned(obj: Any) -> bool:
    """True for instances of classes the code defined, and for those classes themselves."""
    t = type(obj)
    if _is_marked(t):
        return True
    if t is super:
        return _class_owned(_super_thisclass(obj))
    if isinstance(obj, type) and _class_owned(obj):
        return True
    return _class_owned(t)


def _private_message(name: str) -> str:
    return (
        f"Forbidden access to private attribute '{name}' (rule: private attributes are only allowed on "
        "objects the code defined itself)"
    )


def _refused_private(obj: Any, name: str) -> PolicyViolation:
    message = _private_message(name)
    if type(obj) is types.ModuleType:  # a module proxy: say which module the name leads to, if it is one
        real = sys.modules.get(vars(obj).get("__name__") or "")
        value = getattr(real, "__dict__", {}).get(name)
        session = ACTIVE_SESSION.get()
        if isinstance(value, types.ModuleType) and not (
            session is not None and session.policy.is_import_authorized(value.__name__)
        ):
            message = f"Forbidden access to module: {value.__name__} ({message})"
    return PolicyViolation(message)


def priv_guard(obj: Any, name: str) -> Any:
    """``obj._x`` becomes ``priv_guard(obj, '_x')._x``."""
    if private_ok(obj, name):
        return obj
    raise _refused_private(obj, name)


def store_guard(obj: Any, name: str) -> Any:
    """``obj.x = v`` / ``del obj.x``: refused on classes the code did not define."""
    if isinstance(obj, type) and not _class_owned(obj):
        raise PolicyViolation(
            f"Forbidden write of attribute '{name}' on class '{obj.__name__}' that the code did not define "
            "(rule: no writes to classes the code did not define)"
        )
    return obj


def _check_name(obj: Any, name: Any) -> str:
    if type(name) is not str:
        if not isinstance(name, str):
            raise TypeError(f"attribute name must be string, not '{type(name).__name__}'")
        name = str.__str__(name)  # an exact str: a subclass cannot lie about its value
    if name[:1] == "_":
        if is_dunder(name):
            if name not in ALLOWED_DUNDERS:
                raise PolicyViolation(
                    f"Forbidden access to dunder attribute: {name} (reading '{name}' is refused; rule: no dunder attributes)"
                )
        elif name not in ALLOWED_PRIVATE and not private_ok(obj, name):
            raise _refused_private(obj, name)
    elif name in FORBIDDEN_ATTRIBUTES:
        raise PolicyViolation(
            f"Forbidden access to interpreter internals '{name}' (rule: no frame/code/generator internals)"
        )
    return name


# ---- str.format traversal --------------------------------------------------------------------
_format_ok: dict[str, bool] = {}  # format string -> whether it reads private attributes


def check_format_string(fmt: str) -> bool:
    """Refuse ``{0.__globals__}``-style traversal in a format string; cached per string.

    Returns True when the string reads private attributes (``{0._x}``): those are allowed only on the
    code's own objects, so formatting must then look at the objects (``SafeFormatter``).
    """
    known = _format_ok.get(fmt)
    if known is not None:
        return known
    private = False
    for key in format_attributes(fmt):
        if needs_owner_check(key):
            private = True
        elif message := format_attribute_violation(key):
            raise PolicyViolation(message)
    if len(_format_ok) > 4096:
        _format_ok.clear()
    _format_ok[fmt] = private
    return private


class SafeFormatter(string.Formatter):
    """``string.Formatter`` whose field lookup applies the attribute rules (code sees it as
    ``string.Formatter``; ``str.format`` uses it too when a format string reads private attributes)."""

    def get_field(self, field_name: str, args: Any, kwargs: Any) -> Any:
        first, rest = _string.formatter_field_name_split(field_name)
        obj = self.get_value(first, args, kwargs)
        for is_attr, i in rest:
            obj = safe_getattr(obj, i) if is_attr else obj[i]
        return obj, first


_CHECKING_FORMATTER = SafeFormatter()


def _safe_format(self: str, /, *args: Any, **kwargs: Any) -> str:
    if not isinstance(self, str):
        return str.format(self, *args, **kwargs)  # raises CPython's own TypeError
    fmt = str.__str__(self)
    if check_format_string(fmt):
        return _CHECKING_FORMATTER.vformat(fmt, args, kwargs)
    return str.format(self, *args, **kwargs)


def _safe_format_map(self: str, mapping: Any, /) -> str:
    if isinstance(self, str):
        fmt = str.__str__(self)
        if check_format_string(fmt):
            return _CHECKING_FORMATTER.vformat(fmt, (), mapping)
    return str.format_map(self, mapping)


_safe_format.__name__ = "format"
_safe_format.__qualname__ = "str.format"
_safe_format_map.__name__ = "format_map"
_safe_format_map.__qualname__ = "str.format_map"


_super_self = super.__dict__["__self__"].__get__


def attr_guard(obj: Any, name: str) -> Any:
    """``obj.format`` / ``obj.format_map`` loads.

    On a string the format string is checked once (cached) and, unless it reads private attributes,
    the real bound method is returned, so checked formatting runs at C speed. Also ``obj.now`` /
    ``obj.today`` / ``obj.utcnow`` loads: datetime's clocks, recorded for replay (see tape.py).
    """
    if name in CLOCK_ATTRS:
        return clock_attr(obj, name)
    if isinstance(obj, str):
        fmt = obj if type(obj) is str else str.__str__(obj)
        needs_objects = _format_ok.get(fmt)
        if needs_objects is None:
            needs_objects = check_format_string(fmt)
        if needs_objects:
            return functools.partial(_safe_format if name == "format" else _safe_format_map, obj)
        return _real_getattr(obj, name)
    if isinstance(obj, type) and issubclass(obj, str):
        return _safe_format if name == "format" else _safe_format_map
    if type(obj) is super:
        inner = _super_self(obj)
        if isinstance(inner, str) and check_format_string(str.__str__(inner)):
            return functools.partial(_safe_format if name == "format" else _safe_format_map, inner)
    return _real_getattr(obj, name)


# ---- builtins that take attribute names ------------------------------------------------------
def safe_getattr(obj: Any, name: Any, *default: Any) -> Any:
    if len(default) > 1:
        raise TypeError(f"getattr expected at most 3 arguments, got {2 + len(default)}")
    name = _check_name(obj, name)
    if name == "format" or name == "format_map" or name in CLOCK_ATTRS:
        try:
            return attr_guard(obj, name)
        except AttributeError:
            if default:
                return default[0]
            raise
    return _real_getattr(obj, name, *default)


def safe_hasattr(obj: Any, name: Any) -> bool:
    name = _check_name(obj, name)
    return hasattr(obj, name)


def _check_dunder_store(name: str) -> None:
    if message := dunder_store_violation(name):
        raise PolicyViolation(message)


def safe_setattr(obj: Any, name: Any, value: Any) -> None:
    name = _check_name(obj, name)
    _check_dunder_store(name)
    store_guard(obj, name)
    setattr(obj, name, value)


def safe_delattr(obj: Any, name: Any) -> None:
    name = _check_name(obj, name)
    _check_dunder_store(name)
    store_guard(obj, name)
    delattr(obj, name)


safe_getattr.__name__ = "getattr"
safe_hasattr.__name__ = "hasattr"
safe_setattr.__name__ = "setattr"
safe_delattr.__name__ = "delattr"


class safe_attrgetter:  # noqa: N801 - stands in for operator.attrgetter
    """``operator.attrgetter`` that checks every dotted part."""

    __slots__ = ("_paths",)

    def __init__(self, attr: str, *attrs: str):
        paths = []
        for a in (attr, *attrs):
            if not isinstance(a, str):
                raise TypeError("attribute name must be a string")
            paths.append(tuple(a.split(".")))
        self._paths = tuple(paths)

    def _get(self, obj: Any, path: tuple[str, ...]) -> Any:
        for part in path:
            obj = safe_getattr(obj, part)
        return obj

    def __call__(self, obj: Any) -> Any:
        if len(self._paths) == 1:
            return self._get(obj, self._paths[0])
        return tuple(self._get(obj, p) for p in self._paths)

    def __repr__(self) -> str:
        return f"operator.attrgetter({', '.join(repr('.'.join(p)) for p in self._paths)})"


class safe_methodcaller:  # noqa: N801 - stands in for operator.methodcaller
    """``operator.methodcaller`` that checks the method name."""

    __slots__ = ("_name", "_args", "_kwargs")

    def __init__(self, name: str, /, *args: Any, **kwargs: Any):
        if not isinstance(name, str):
            raise TypeError("method name must be a string")
        self._name = name
        self._args = args
        self._kwargs = kwargs

    def __call__(self, obj: Any) -> Any:
        return safe_getattr(obj, self._name)(*self._args, **self._kwargs)

    def __repr__(self) -> str:
        return f"operator.methodcaller({self._name!r})"


class SafeUserString(UserString):
    """``collections.UserString`` whose format methods go through the checked ``str.format``."""

    def format(self, /, *args: Any, **kwds: Any) -> str:
        return _safe_format(self.data, *args, **kwds)

    def format_map(self, mapping: Any) -> str:
        return _safe_format_map(self.data, mapping)


SafeFormatter.__name__ = "Formatter"
SafeFormatter.__qualname__ = "Formatter"
SafeUserString.__name__ = "UserString"
SafeUserString.__qualname__ = "UserString"
safe_attrgetter.__name__ = "attrgetter"
safe_methodcaller.__name__ = "methodcaller"


# ---- stdlib helpers that read or write attributes by caller-chosen names ----------------------
def is_code_function(obj: Any) -> bool:
    """A function (or method of one) the sandboxed code defined."""
    func = getattr(obj, "__func__", obj)
    code = getattr(func, "__code__", None)
    return isinstance(func, types.FunctionType) and code is not None and code.co_filename == FILENAME


def may_write(obj: Any) -> bool:
    """The code's own functions and objects: the ones stdlib helpers may write into for it."""
    return is_code_function(obj) or is_owned(obj)


class_owned = _class_owned  # public name for patches.py
