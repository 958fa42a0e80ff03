"""Checked stand-ins for stdlib helpers that read, write or evaluate by names the caller chooses.

Layer 3 (executors). ``modules.py`` puts these into the module proxies code receives (and
``session.py`` puts the match helpers into the builtins): ``typing.get_type_hints`` and
``functools.singledispatch`` (they eval() annotation strings), ``functools.update_wrapper``/``wraps``
(they copy any attribute names they are given), class decorators that rewrite a class in place
(``dataclasses.dataclass``, ``functools.total_ordering``, ``abc.update_abstractmethods``), and the
``__match_args__`` check behind ``case C(x)`` patterns. The rules themselves live in ``policy.py``.
"""

from __future__ import annotations

import functools
import types
from typing import Any

from .compiler import StaticViolation, check_expression_source
from .guards import _type_dict, _type_mro, class_owned, may_write
from .policy import PolicyViolation, attribute_violation, is_dunder

__all__ = [
    "check_annotations",
    "safe_get_type_hints",
    "safe_singledispatch",
    "SafeSingledispatchmethod",
    "safe_update_wrapper",
    "safe_wraps",
    "owned_class_only",
    "match_class",
    "match_error",
]

_real_getattr = getattr


# ---- late evaluation of annotation strings ---------------------------------------------------
# typing.get_type_hints (and functools.singledispatch, which calls it) eval() annotation strings and
# ForwardRefs without our rewrites. The code's own string annotations are checked by the compiler;
# these check whatever reaches those functions at run time (strings built by the code, ForwardRef).
# (An audit hook on "compile" would also catch this, but any audit hook makes every id() call in
# the process run Python code, which is too high a price.)
def _check_annotation_value(value: Any, depth: int = 0) -> None:
    import typing

    if depth > 20:
        return
    if isinstance(value, str):
        source = value
    elif isinstance(value, typing.ForwardRef):
        source = value.__forward_arg__
    else:
        for arg in typing.get_args(value):
            _check_annotation_value(arg, depth + 1)
        return
    try:
        check_expression_source(source)
    except StaticViolation as exc:
        raise PolicyViolation(exc.message) from None


def check_annotations(obj: Any) -> None:
    """Refuse get_type_hints-style evaluation of annotations that break the attribute rules."""
    holders = list(_type_mro(obj)) if isinstance(obj, type) else [obj]
    for holder in holders:
        try:
            anns = (
                holder.__dict__.get("__annotations__") if isinstance(holder, type) else holder.__annotations__
            )
        except AttributeError:
            continue
        if isinstance(anns, dict):
            for value in anns.values():
                _check_annotation_value(value)


def safe_get_type_hints(
    obj: Any, globalns: Any = None, localns: Any = None, include_extras: bool = False
) -> Any:
    """typing.get_type_hints without caller namespaces (they would feed eval()) and with checked strings."""
    import typing

    if globalns is not None or localns is not None:
        raise PolicyViolation("typing.get_type_hints with explicit namespaces is not allowed (rule: no eval)")
    check_annotations(obj)
    return typing.get_type_hints(obj, include_extras=include_extras)


safe_get_type_hints.__name__ = "get_type_hints"


def safe_singledispatch(func: Any) -> Any:
    """functools.singledispatch whose register() checks annotations before typing evaluates them."""
    import functools

    dispatcher = functools.singledispatch(func)
    real_register = dispatcher.register

    def register(cls: Any, func: Any = None) -> Any:
        if func is None and not isinstance(cls, type):
            check_annotations(cls)
        elif func is not None:
            check_annotations(func)
        return real_register(cls, func)

    dispatcher.register = register  # type: ignore[attr-defined]
    return dispatcher


safe_singledispatch.__name__ = "singledispatch"


def _make_safe_singledispatchmethod() -> type:
    import functools

    class singledispatchmethod(functools.singledispatchmethod):  # noqa: N801
        def register(self, cls: Any, method: Any = None) -> Any:
            target = method if method is not None else cls
            if not isinstance(target, type):
                check_annotations(getattr(target, "__func__", target))
            return super().register(cls, method=method)

    return singledispatchmethod


SafeSingledispatchmethod = _make_safe_singledispatchmethod()


def safe_update_wrapper(
    wrapper: Any,
    wrapped: Any,
    assigned: Any = functools.WRAPPER_ASSIGNMENTS,
    updated: Any = functools.WRAPPER_UPDATES,
) -> Any:
    """functools.update_wrapper limited to its standard attribute names, written only on the code's
    own functions and objects (the real one reads and writes any attribute names it is given)."""
    assigned, updated = tuple(assigned), tuple(updated)
    for name in (*assigned, *updated):
        if name not in functools.WRAPPER_ASSIGNMENTS and name not in functools.WRAPPER_UPDATES:
            raise PolicyViolation(
                f"functools.update_wrapper/wraps may only copy the standard attributes, not {name!r} "
                "(rule: no dunder attributes)"
            )
    if not may_write(wrapper):
        raise PolicyViolation(
            "functools.update_wrapper/wraps may only update functions or objects the code defined "
            "(rule: no writes to objects the code did not define)"
        )
    for name in assigned:
        try:
            value = _real_getattr(wrapped, name)
        except AttributeError:
            continue
        setattr(wrapper, name, value)
    if "__dict__" in updated and may_write(wrapped):
        target = _real_getattr(wrapper, "__dict__", None)
        source = _real_getattr(wrapped, "__dict__", None)
        if type(target) is dict and type(source) is dict:
            target.update(source)
    wrapper.__wrapped__ = wrapped
    return wrapper


def safe_wraps(
    wrapped: Any, assigned: Any = functools.WRAPPER_ASSIGNMENTS, updated: Any = functools.WRAPPER_UPDATES
) -> Any:
    return functools.partial(safe_update_wrapper, wrapped=wrapped, assigned=assigned, updated=updated)


safe_update_wrapper.__name__ = "update_wrapper"
safe_wraps.__name__ = "wraps"


def owned_class_only(real: Any, label: str) -> Any:
    """Wrap a class decorator that rewrites the class (dataclass, total_ordering...) so that it
    refuses classes the code did not define (it would otherwise rewrite a host class in place)."""

    def check(cls: Any) -> None:
        if isinstance(cls, type) and not class_owned(cls):
            raise PolicyViolation(
                f"{label} may only be applied to classes the code defined, not {cls.__name__!r} "
                "(rule: no writes to classes the code did not define)"
            )

    def wrapper(cls: Any = None, /, **kwargs: Any) -> Any:
        if cls is None:

            def deco(c: Any) -> Any:
                check(c)
                return real(c, **kwargs)

            return deco
        check(cls)
        return real(cls, **kwargs)

    wrapper.__name__ = getattr(real, "__name__", label)
    wrapper.__doc__ = getattr(real, "__doc__", None)
    return wrapper


# ---- match statements --------------------------------------------------------------------------
def _raising_class(exc: BaseException) -> type:
    """A class whose isinstance() check raises ``exc``: the error surfaces when that case is tried."""

    class _Meta(type):
        def __instancecheck__(cls, instance: Any) -> bool:
            raise exc

    return _Meta("RefusedPattern", (), {})


def match_error(exc: BaseException) -> type:
    return _raising_class(exc)


_LOOKUP_HOOKS = ("__getattribute__", "__getattr__", "__match_args__")


def match_class(cls: Any) -> Any:
    """Check the class of a ``case C(p, ...)`` pattern: its ``__match_args__`` (read from the class
    dicts, the way the interpreter will find it) must be a tuple of names the attribute rules allow,
    and its metaclass must not customize attribute lookup (it could show the check other names)."""
    if not isinstance(cls, type):
        return cls  # CPython raises its own TypeError when the case is tried
    for meta in _type_mro(type(cls)):
        if meta is type or meta is object:
            continue
        for hook in _LOOKUP_HOOKS:
            if hook in _type_dict(meta):
                return _raising_class(
                    PolicyViolation(
                        f"Class patterns with positional arguments are not allowed for classes whose metaclass "
                        f"defines {hook} (rule: no dunder attributes)"
                    )
                )
    for k in _type_mro(cls):
        own = _type_dict(k)
        if "__match_args__" in own:
            names = own["__match_args__"]
            if type(names) is not tuple or not all(type(n) is str for n in names):
                return cls  # CPython raises its own TypeError for a non-tuple
            for n in names:
                message = attribute_violation(n)
                if message is None and n[:1] == "_" and not is_dunder(n):
                    message = f"Forbidden access to private attribute '{n}' through __match_args__"
                if message:
                    return _raising_class(PolicyViolation(message + " (in __match_args__)"))
            break
    return cls


def keep_source(fn: Any, source: str) -> Any:
    """After a module-level ``def``: the function keeps its source in ``__source__``, as in smolagents (a
    function handed out of the isolated worker travels as its name and source, see worker/codec.py)."""
    if type(fn) is types.FunctionType:
        fn.__source__ = source  # type: ignore[attr-defined]
    return fn
