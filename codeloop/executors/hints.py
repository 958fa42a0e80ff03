"""Hints added to the message of a Python error that ends a run: what the failing statement did.

Layer 3 (executors). Called only on the failure path (never while code runs), by the session that
builds the ``InterpreterError``. The error is still reported as itself (``KeyError: 'a'``); the hint
adds the statement-level reading an agent needs to fix its code, in the words smolagents' evaluator
uses for the same error, so that a migrated prompt or test that looks for them finds them:

* ``Could not index {...} with 'key'`` (and ``Maybe you meant one of these indexes instead: [...]``)
  when a subscript of a variable fails;
* ``Cannot unpack non-dict value in **kwargs: list``, ``Cannot unpack tuple of wrong size``;
* ``Cannot delete name 'x': name is not defined``; ``Assertion failed: 1 == 2`` for a bare assert;
* ``Forbidden function evaluation: 'f' is not among the explicitly allowed tools or defined/imported in
  the preceding code`` when the undefined name is called (``The variable `x` is not defined.`` when it
  is read, added by the session);
* ``Cannot add non-list value 1 to a list.`` for ``a_list += 1``.

Nothing here runs the code's own methods: values are looked up in the failing frame's variables and
shown only when they are builtin containers and scalars (their ``repr`` runs no agent code).
"""

from __future__ import annotations

import ast
import difflib
import re
import types
from typing import Any

__all__ = ["explain", "located"]

_SCALARS = (str, int, float, bool, type(None), bytes)
_CONTAINERS = (dict, list, tuple, str, bytes, range)
_KWARGS = re.compile(r"argument after \*\* must be a mapping, not (\w+)")
_UNPACK = ("too many values to unpack", "not enough values to unpack")
_MAX_SHOWN = 200


def explain(exc: BaseException, source: str | None, filename: str) -> str:
    """A hint for ``exc`` raised by the code ``source`` (compiled under ``filename``), or ""."""
    try:
        return _explain(exc, source, filename)
    except Exception:  # noqa: BLE001 - a hint is best effort: the error itself is still reported
        return ""


def _explain(exc: BaseException, source: str | None, filename: str) -> str:
    text = str(exc) if type(exc) in (TypeError, ValueError) else ""
    if type(exc) is TypeError and (m := _KWARGS.search(text)):
        return f"Cannot unpack non-dict value in **kwargs: {m.group(1)}"
    if type(exc) is ValueError and text.startswith(_UNPACK):
        return "Cannot unpack tuple of wrong size"
    if not source or type(exc) not in (NameError, AssertionError, TypeError, KeyError, IndexError):
        return ""
    frame, lineno = _agent_frame(exc, filename)
    if frame is None or lineno is None:
        return ""
    stmt = _statement_at(source, lineno)
    if stmt is None:
        return ""
    if type(exc) is NameError and isinstance(stmt, ast.Delete):
        name = getattr(exc, "name", None)
        if any(isinstance(t, ast.Name) and t.id == name for t in stmt.targets):
            return f"Cannot delete name '{name}': name is not defined"
        return ""
    if type(exc) is NameError:
        name = getattr(exc, "name", None)
        if any(isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id == name for n in ast.walk(stmt)):
            return (
                f"Forbidden function evaluation: '{name}' is not among the explicitly allowed tools or "
                "defined/imported in the preceding code"
            )
        return ""
    if type(exc) is AssertionError:
        return f"Assertion failed: {ast.unparse(stmt.test)}" if isinstance(stmt, ast.Assert) and not exc.args else ""
    scope = _Scope(frame)
    if (
        type(exc) is TypeError
        and isinstance(stmt, ast.AugAssign)
        and isinstance(stmt.op, ast.Add)
        and type(scope.value(stmt.target)) is list
    ):
        value = scope.value(stmt.value)
        if value is not _UNKNOWN and type(value) is not list:
            return f"Cannot add non-list value {_shown(value)} to a list."
    return _subscript_hint(exc, stmt, scope)


def _subscript_hint(exc: BaseException, stmt: ast.stmt, scope: _Scope) -> str:
    for node in ast.walk(stmt):
        if not isinstance(node, ast.Subscript) or not isinstance(node.ctx, ast.Load):
            continue
        container, key = scope.value(node.value), scope.value(node.slice)
        if container is _UNKNOWN or not _is_scalar(key) or not _fails_as(exc, container, key):
            continue
        builtin = type(container) in _CONTAINERS or type(container) in _SCALARS
        shown = _shown(container) if builtin else f"<{type(container).__name__} object>"
        hint = f"Could not index {shown} with '{key}'"
        if type(exc) is KeyError and type(key) is str and type(container) is dict:
            keys = [k for k in container if type(k) is str]
            close = difflib.get_close_matches(key, keys)
            if close:
                hint += f". Maybe you meant one of these indexes instead: {close}"
        return hint
    return ""


def _fails_as(exc: BaseException, container: Any, key: Any) -> bool:
    """Whether ``container[key]`` is what raised ``exc`` (decided without calling any of the code's methods)."""
    if type(exc) is KeyError:
        return type(container) is dict and exc.args == (key,) and key not in container
    if type(exc) is IndexError:
        return type(container) in (list, tuple, str, bytes, range) and type(key) is int and not (
            -len(container) <= key < len(container)
        )
    text = str(exc)
    return text.endswith("is not subscriptable") and f"'{type(container).__name__}'" in text


def _is_scalar(value: Any) -> bool:
    if type(value) is tuple:
        return all(_is_scalar(v) for v in value)
    return type(value) in _SCALARS


def _shown(value: Any) -> str:
    text = repr(value) if type(value) not in (str,) else value
    return text if len(text) <= _MAX_SHOWN else text[:_MAX_SHOWN] + "..."


_MAX_QUOTED = 200


def located(message: str, source: str | None, line: int | None, outer: int | None = None) -> str:
    """The text of an error that ends a run, in smolagents' words plus the line numbers.

    smolagents quotes the top-level statement that failed (``Code execution failed at line
    'counts += 1' due to: TypeError: ...``); codeloop keeps that phrase and adds where the error
    happened: ``line`` is the innermost line of agent code, ``outer`` the module-level line that was
    running (they differ when the error is inside a function the code called). A multi-line statement
    is quoted by its first line."""
    if line is None:
        return f"Code execution failed: {message}"
    outer = line if outer is None else outer
    stmts = _top_statements(source or "", outer)
    if not stmts:
        return f"Code execution failed at line {line} due to: {message}"
    quoted = "; ".join((ast.get_source_segment(source or "", s) or "").split("\n")[0].strip() for s in stmts)
    if len(quoted) > _MAX_QUOTED:
        quoted = quoted[:_MAX_QUOTED] + "..."
    elif any(s.end_lineno != s.lineno for s in stmts):
        quoted += " ..."
    inside = any(s.lineno <= line <= (s.end_lineno or s.lineno) for s in stmts)
    where = f"line {line}" if inside else f"line {line}, called from line {outer}"
    return f"Code execution failed at line '{quoted}' ({where}) due to: {message}"


def _top_statements(source: str, lineno: int) -> list[ast.stmt]:
    """The module-level statements of ``source`` that span line ``lineno`` (``a = 1; b = c[0]``
    puts two on one line, and a traceback names only the line)."""
    try:
        body = ast.parse(source).body if source else []
    except SyntaxError:
        return []
    return [s for s in body if s.lineno <= lineno <= (s.end_lineno or s.lineno)]


def _agent_frame(exc: BaseException, filename: str) -> tuple[types.FrameType | None, int | None]:
    frame, line = None, None
    tb = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == filename:
            frame, line = tb.tb_frame, tb.tb_lineno
        tb = tb.tb_next
    return frame, line


def _statement_at(source: str, lineno: int) -> ast.stmt | None:
    """The innermost statement of ``source`` that spans line ``lineno``."""
    found: ast.stmt | None = None
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.stmt) and node.lineno <= lineno <= (node.end_lineno or node.lineno):
            if found is None or node.lineno >= found.lineno and (node.end_lineno or 0) <= (found.end_lineno or 0):
                found = node
    return found


class _Unknown:
    pass


_UNKNOWN: Any = _Unknown()


class _Scope:
    """Reads names and literals the way the failing frame saw them; anything else is unknown."""

    def __init__(self, frame: types.FrameType):
        self._locals = frame.f_locals
        self._globals = frame.f_globals

    def value(self, node: ast.expr) -> Any:
        if isinstance(node, ast.Constant) and isinstance(node.value, _SCALARS):
            return node.value
        if isinstance(node, ast.Name):
            for scope in (self._locals, self._globals):
                if node.id in scope:
                    value = scope[node.id]
                    return value if type(value) in _CONTAINERS + _SCALARS or _plain_object(value) else _UNKNOWN
            return _UNKNOWN
        if isinstance(node, ast.Tuple):
            items = tuple(self.value(e) for e in node.elts)
            return _UNKNOWN if any(i is _UNKNOWN for i in items) else items
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            inner = self.value(node.operand)
            return -inner if type(inner) in (int, float) else _UNKNOWN
        return _UNKNOWN


def _plain_object(value: Any) -> bool:
    # an instance is shown by its type's name only; it is never asked for its repr or items
    return not isinstance(value, type | types.ModuleType)
