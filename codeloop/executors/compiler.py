"""Check and rewrite agent code, then compile it to ordinary CPython bytecode.

Layer 3 (executors). The executor does not interpret the AST: it parses the code, refuses what the
policy forbids when that is visible in the source (``x.__globals__``, ``f.gi_frame``, rebinding a
tool), rewrites the few places that need a run-time check, and hands the tree to ``compile()``.
The result runs at CPython speed; only the inserted guards cost anything.

Rewrites (every inserted node keeps the line number of the code it guards):

* ``obj._x`` (load, store, del)      -> ``__codeloop_priv__(obj, '_x')._x``  (owner check)
* ``obj.x = v`` / ``del obj.x``      -> ``__codeloop_store__(obj, 'x').x = v`` (no writes to classes
  the code did not define)
* ``obj.format`` / ``obj.format_map`` -> ``__codeloop_attr__(obj, 'format')`` (format traversal); also
  ``obj.now`` / ``obj.today`` / ``obj.utcnow`` (datetime's clocks, recorded for replay: tape.py)
* at module and class level, ``for x in it`` -> ``for x in __codeloop_loop__(it, __codeloop_ops__)``
  (``itertools.compress`` over the operation budget: each iteration counts one operation with no
  inserted statement; see limits.py); other loop bodies (``for`` in functions, ``while``, ``async
  for``) start with ``__codeloop_tick__(__codeloop_ops__)``, that is ``next(ops)`` (counts an
  operation). Compress costs less per iteration and more per loop (about 90 ns to start: it only pays
  from about 14 iterations on), and the long loops of agent code are mostly at module level, while
  functions often loop over a few items; function bodies start with the bare name
  ``__codeloop_live__``, lambdas become
  ``body if __codeloop_live__ else None`` and comprehensions get a first ``if __codeloop_live__``
  clause (no call: about free; the limits delete that name to stop the code, so these are bounded
  by the deadline and the loops around them, not counted as operations)
* in a method whose first parameter ``self`` is never rebound, ``self._x`` becomes
  ``(__codeloop_priv__(self, '_x') if not __codeloop_self_ok__ else self)._x`` (``self.x = v``
  likewise with ``__codeloop_store__``), the ownership check done once at entry: ``type(self) is
  __codeloop_self_types__[k] or id(type(self)) in __codeloop_owned_ids__ and
  __codeloop_claim_self__(self, __codeloop_self_types__, k)``. Slot ``k`` of that per-session list
  (emptied after each run) keeps the last owned class the method saw, so a call usually costs one
  identity test; only the claim fills it, with a class registered as owned that the slot keeps
  alive (so its id cannot be reused). Slots are handed out round-robin; sharing one only costs speed
* every ``class`` gets a first body statement ``__codeloop_class_token__ = __codeloop_token__`` and
  the decorators ``@__codeloop_mark__`` (innermost) and ``@__codeloop_seal__`` (outermost); a class
  is registered as the code's own only if it carries the token in its own ``__dict__`` (so a
  metaclass or decorator returning a host class gets nothing); the seal removes the token again
* ``case C(p, ...)``: ``C`` is evaluated just before the ``match`` through
  ``__codeloop_match_class__`` (checks the names in ``__match_args__``); an error is kept and raised
  when that case is tried, as CPython would
* ``from m import *`` at module level -> ``__codeloop_import_star__('m')`` (skips tool names)
* the last top-level expression statement -> ``__codeloop_result__(expr)``

The helpers (their names are in names.py) live in the session's builtins dict (the budget's also in
the namespace, where module-level code finds them first); code cannot name anything starting with
``__codeloop``, and
``state`` leaves dunder names out. Imports go through a guarded ``__import__`` in the same dict.
"""

from __future__ import annotations

import ast
import copy
import itertools
import threading
from collections import OrderedDict
from types import CodeType

from . import names, opcount
from .astnodes import binds as _binds
from .astnodes import call as _call
from .astnodes import const as _const
from .astnodes import live_stmt as _live_stmt
from .astnodes import name as _name
from .astnodes import self_check as _self_check
from .astnodes import tick_stmt as _tick_stmt
from .policy import (
    ALLOWED_DUNDER_NAMES,
    ALLOWED_PRIVATE,
    attribute_violation,
    dunder_store_violation,
    format_attribute_violation,
    format_attributes,
    is_dunder,
    needs_owner_check,
)
from .tape import CLOCK_ATTRS

__all__ = ["FILENAME", "StaticViolation", "compile_code", "check_expression_source"]

FILENAME = "<agent-code>"
_SELF_SLOTS = itertools.count()  # handed out round-robin over names.SELF_TYPE_SLOTS, across compilations

_FORMAT_ATTRS = frozenset({"format", "format_map"})
# dunder names a class body may bind that are still refused (they break the class machinery)
# copy/pickle call these and then write whatever they return into whatever object they name
REDUCE_HOOKS = frozenset({"__reduce__", "__reduce_ex__"})
_CLASS_BODY_DENIED = frozenset(
    {"__class__", "__classcell__", "__builtins__", "__dict__", "__weakref__", "__import__", "__build_class__"}
)


class StaticViolation(Exception):
    """A rule broken visibly in the source; raised before anything runs."""

    def __init__(
        self, message: str, lineno: int | None, exc_type: str = "PolicyViolation", col_offset: int = 0
    ):
        super().__init__(message)
        self.message = message
        self.lineno = lineno
        self.col_offset = col_offset  # where on the line the offence starts
        self.exc_type = exc_type


def _check_format_literal(fmt: str) -> str | None:
    """For a literal format string: a refusal message, "" when it needs the run-time check (private
    attributes), None when it is fine as it is."""
    for key in format_attributes(fmt):
        if needs_owner_check(key):
            return ""  # private: allowed on the code's own objects, so checked at run time
        message = format_attribute_violation(key)
        if message:
            return message
    return None


class _Rewriter(ast.NodeTransformer):
    def __init__(self, protected: frozenset[str]):
        self.protected = protected
        self.class_depth = 0  # >0 while directly inside a class body
        self.scope_stack: list[str] = ["module"]
        # per function scope: the name of the method's first parameter when it is never rebound
        # (so one ownership check at entry serves every ``self._x`` in the body), else None
        self.self_stack: list[str | None] = [None]
        self.self_used: list[bool] = [False]
        self.match_counter = 0

    # ---- helpers -------------------------------------------------------------------------
    def fail(self, message: str, node: ast.AST) -> None:
        raise StaticViolation(message, getattr(node, "lineno", None), col_offset=getattr(node, "col_offset", 0))

    def check_binding(self, name: str | None, node: ast.AST) -> None:
        """A name the code binds (assignment target, def, import as, parameter, ...)."""
        if name is None:
            return
        if name.startswith(names.RESERVED_PREFIX):
            self.fail(f"The name '{name}' is reserved by the executor (rule: reserved names)", node)
        if name in self.protected:
            self.fail(
                f"Cannot assign to name '{name}': doing this would erase the existing tool! Use another name "
                "(rule: tools are read-only)",
                node,
            )
        if is_dunder(name):
            in_class = self.scope_stack[-1] == "class"
            if in_class and name in REDUCE_HOOKS:
                self.fail(
                    f"Classes may not define '{name}': copy and pickle would call it with the power to "
                    "write any attribute of any object (rule: no pickling hooks)",
                    node,
                )
            if name == "__builtins__" or (in_class and name in _CLASS_BODY_DENIED):
                self.fail(f"Forbidden binding of dunder name '{name}' (rule: no dunder names)", node)
            if not in_class and name not in ALLOWED_DUNDER_NAMES and not isinstance(node, ast.FunctionDef):
                self.fail(f"Forbidden binding of dunder name '{name}' (rule: no dunder names)", node)

    def check_attr_name(self, attr: str, node: ast.AST) -> None:
        if is_dunder(attr) or not attr.startswith("_"):
            message = attribute_violation(attr)
            if message:
                self.fail(message, node)

    def check_annotation(self, ann: ast.expr | None) -> None:
        """String annotations can be evaluated later by typing.get_type_hints: check them now."""
        if isinstance(ann, ast.Constant) and isinstance(ann.value, str):
            try:
                check_expression_source(ann.value)
            except StaticViolation as exc:
                lineno, col = getattr(ann, "lineno", None), getattr(ann, "col_offset", 0)
                raise StaticViolation(exc.message, lineno, col_offset=col) from None

    def body_with_tick(self, body: list[ast.stmt], node: ast.AST) -> list[ast.stmt]:
        anchor = body[0] if body else node
        return [_tick_stmt(anchor), *body]

    # ---- names ---------------------------------------------------------------------------
    def visit_Name(self, node: ast.Name) -> ast.AST:
        if isinstance(node.ctx, ast.Load):
            if opcount.is_own(node):
                return node
            if node.id.startswith(names.RESERVED_PREFIX):
                self.fail(f"The name '{node.id}' is reserved by the executor (rule: reserved names)", node)
            if is_dunder(node.id) and node.id not in ALLOWED_DUNDER_NAMES:
                in_class = self.scope_stack[-1] == "class"
                if not in_class or node.id in _CLASS_BODY_DENIED:
                    self.fail(f"Forbidden access to dunder name '{node.id}' (rule: no dunder names)", node)
        else:
            self.check_binding(node.id, node)
        return node

    def visit_Global(self, node: ast.Global) -> ast.AST:
        for n in node.names:
            self.check_binding(n, node)
        return node

    visit_Nonlocal = visit_Global  # type: ignore[assignment]

    def visit_alias(self, node: ast.alias) -> ast.AST:
        if node.name != "*":
            bound = node.asname or node.name.partition(".")[0]
            self.check_binding(bound, node)
        return node

    def visit_ImportFrom(self, node: ast.ImportFrom) -> ast.AST:
        for alias in node.names:
            if alias.name != "*" and alias.name.startswith("_") and node.module != "__future__":
                self.fail(
                    f"Forbidden import of private name '{alias.name}' (rule: no private attributes)", node
                )
        if any(a.name == "*" for a in node.names) and self.scope_stack == ["module"]:
            return ast.copy_location(
                ast.Expr(
                    value=_call(
                        names.IMPORT_STAR, [_const(node.module or "", node), _const(node.level, node)], node
                    )
                ),
                node,
            )
        self.generic_visit(node)
        return node

    def visit_ExceptHandler(self, node: ast.ExceptHandler) -> ast.AST:
        self.check_binding(node.name, node)
        self.generic_visit(node)
        return node

    def visit_arg(self, node: ast.arg) -> ast.AST:
        self.check_binding(node.arg, node)
        self.check_annotation(node.annotation)
        self.generic_visit(node)
        return node

    def visit_MatchAs(self, node: ast.MatchAs) -> ast.AST:
        self.check_binding(node.name, node)
        self.generic_visit(node)
        return node

    def visit_MatchStar(self, node: ast.MatchStar) -> ast.AST:
        self.check_binding(node.name, node)
        return node

    def visit_MatchMapping(self, node: ast.MatchMapping) -> ast.AST:
        self.check_binding(node.rest, node)
        self.generic_visit(node)
        return node

    def visit_Match(self, node: ast.Match) -> ast.AST | list[ast.stmt]:
        """``case C(p, q)`` makes CPython read the attributes named by ``C.__match_args__``: check those
        names first. Each such class expression is evaluated into a temporary just before the match
        and passed through ``__codeloop_match_class__``; an error (NameError...) or a refusal is kept
        and raised only when that case is tried, as CPython would."""
        self.generic_visit(node)
        prelude: list[ast.stmt] = []
        for case in node.cases:
            for pat in ast.walk(case.pattern):
                if isinstance(pat, ast.MatchClass) and pat.patterns:
                    self.match_counter += 1
                    temp = f"__codeloop_mc{self.match_counter}__"
                    prelude.append(self._match_prelude(temp, pat.cls, pat))
                    pat.cls = ast.copy_location(ast.Name(id=temp, ctx=ast.Load()), pat.cls)
        return [*prelude, node] if prelude else node

    def _match_prelude(self, temp: str, cls: ast.expr, anchor: ast.AST) -> ast.stmt:
        exc_name = "__codeloop_exc__"
        store = ast.Name(id=temp, ctx=ast.Store())
        body = [ast.Assign(targets=[store], value=_call(names.MATCH_CLASS, [cls], anchor))]
        handler = ast.ExceptHandler(
            type=_name("Exception", anchor),
            name=exc_name,
            body=[
                ast.Assign(
                    targets=[ast.Name(id=temp, ctx=ast.Store())],
                    value=_call(names.MATCH_ERROR, [_name(exc_name, anchor)], anchor),
                )
            ],
        )
        stmt = ast.Try(body=body, handlers=[handler], orelse=[], finalbody=[])
        for n in ast.walk(stmt):
            if "lineno" in n._attributes and not hasattr(n, "lineno"):
                ast.copy_location(n, anchor)
        return ast.copy_location(stmt, anchor)

    def visit_MatchClass(self, node: ast.MatchClass) -> ast.AST:
        for attr in node.kwd_attrs:
            message = attribute_violation(attr)
            if message:
                self.fail(message, node)
        self.generic_visit(node)
        return node

    # ---- attributes ----------------------------------------------------------------------
    def _guard_value(self, node: ast.Attribute, helper: str) -> None:
        """Wrap ``node.value`` in ``helper(value, attr)``; on a method's ``self``, only when the
        ownership check done at entry failed (``self if __codeloop_self_ok__ else helper(...)``)."""
        value = node.value
        if isinstance(value, ast.Name) and value.id is not None and value.id == self.self_stack[-1]:
            self.self_used[-1] = True
            guarded = _call(helper, [_name(value.id, value), _const(node.attr, node)], node)
            # ``not`` first: the owned case falls through to the attribute, one jump fewer
            not_ok = ast.copy_location(ast.UnaryOp(op=ast.Not(), operand=_name(names.SELF_OK, node)), node)
            node.value = ast.copy_location(
                ast.IfExp(test=not_ok, body=guarded, orelse=_name(value.id, value)), node
            )
        else:
            node.value = _call(helper, [value, _const(node.attr, node)], node)

    def visit_Attribute(self, node: ast.Attribute) -> ast.AST:
        attr = node.attr
        node.value = self.visit(node.value)  # inner first: report the first offence in reading order
        self.check_attr_name(attr, node)
        loading = isinstance(node.ctx, ast.Load)
        if attr.startswith("_") and not is_dunder(attr):
            if attr not in ALLOWED_PRIVATE or not loading:
                self._guard_value(node, names.PRIV)
            return node
        if not loading:
            if message := dunder_store_violation(attr):
                self.fail(message, node)
            # writes: refused on classes the code did not define (no monkeypatching host classes)
            self._guard_value(node, names.STORE)
            return node
        if attr in CLOCK_ATTRS:  # datetime.now() & co: the time comes from the session's tape
            return _call(names.ATTR, [node.value, _const(attr, node)], node)
        if attr in _FORMAT_ATTRS:
            if isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
                check = _check_format_literal(node.value.value)
                if check:
                    self.fail(check, node)
                if check is None:
                    return node  # a literal format string is checked here, once: no run-time guard
            return _call(names.ATTR, [node.value, _const(attr, node)], node)
        return node

    # ---- scopes --------------------------------------------------------------------------
    def _visit_function(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> ast.AST | list[ast.stmt]:
        if self.scope_stack[-1] == "module":  # keep its source on the function (fn.__source__)
            source = opcount.source_of(node)
            node = self._rewrite_function(node)
            keep = _call(names.SOURCE, [_name(node.name, node), _const(source, node)], node)
            return [node, ast.copy_location(ast.Expr(keep), node)]
        return self._rewrite_function(node)

    def _rewrite_function(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> ast.FunctionDef | ast.AsyncFunctionDef:
        self.check_binding(node.name, node)
        self.check_annotation(node.returns)
        node.decorator_list = [self.visit(d) for d in node.decorator_list]
        node.args = self.visit(node.args)
        if node.returns is not None:
            node.returns = self.visit(node.returns)
        self_name = None
        positional = [*node.args.posonlyargs, *node.args.args]
        if self.scope_stack[-1] == "class" and positional and not _binds(node, positional[0].arg):
            self_name = positional[0].arg
        self.scope_stack.append("function")
        self.self_stack.append(self_name)
        self.self_used.append(False)
        try:
            node.body = self._visit_body(node.body)
        finally:
            self.scope_stack.pop()
            self.self_stack.pop()
            used = self.self_used.pop()
        body = node.body
        has_doc = bool(body) and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant)
        has_doc = has_doc and isinstance(body[0].value.value, str)  # type: ignore[union-attr]
        doc, rest = (body[:1], body[1:]) if has_doc else ([], body)
        anchor = body[0] if body else node
        prologue = [_live_stmt(anchor)]
        if used and self_name is not None:
            prologue.append(_self_check(self_name, next(_SELF_SLOTS) % names.SELF_TYPE_SLOTS, anchor))
        node.body = [*doc, *prologue, *rest]
        return node

    visit_FunctionDef = _visit_function  # type: ignore[assignment]
    visit_AsyncFunctionDef = _visit_function  # type: ignore[assignment]

    def visit_Lambda(self, node: ast.Lambda) -> ast.AST:
        node.args = self.visit(node.args)
        self.scope_stack.append("function")
        self.self_stack.append(None)
        try:
            body = self.visit(node.body)
        finally:
            self.scope_stack.pop()
            self.self_stack.pop()
        node.body = ast.copy_location(
            ast.IfExp(test=_name(names.LIVE, body), body=body, orelse=_const(None, body)), body
        )
        return node

    def visit_ClassDef(self, node: ast.ClassDef) -> ast.AST:
        self.check_binding(node.name, node)
        node.decorator_list = [self.visit(d) for d in node.decorator_list]
        node.bases = [self.visit(b) for b in node.bases]
        node.keywords = [self.visit(k) for k in node.keywords]
        self.scope_stack.append("class")
        self.self_stack.append(None)
        try:
            for stmt in node.body:
                self._check_match_args(stmt)
            node.body = self._visit_body(node.body)
        finally:
            self.scope_stack.pop()
            self.self_stack.pop()
        body = node.body
        has_doc = bool(body) and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant)
        has_doc = has_doc and isinstance(body[0].value.value, str)  # type: ignore[union-attr]
        anchor = body[0] if body else node
        token = ast.copy_location(
            ast.Assign(
                targets=[ast.Name(id=names.CLASS_TOKEN, ctx=ast.Store())], value=_name(names.TOKEN, anchor)
            ),
            anchor,
        )
        node.body = [body[0], token, *body[1:]] if has_doc else [token, *body]
        node.decorator_list = [_name(names.SEAL, node), *node.decorator_list, _name(names.MARK, node)]
        return node

    def _check_match_args(self, stmt: ast.stmt) -> None:
        """``__match_args__`` names attributes that ``match`` reads: they follow the attribute rules."""
        if not isinstance(stmt, ast.Assign | ast.AnnAssign):
            return
        targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
        if not any(isinstance(t, ast.Name) and t.id == "__match_args__" for t in targets):
            return
        value = stmt.value
        if not isinstance(value, ast.Tuple | ast.List) or not all(
            isinstance(e, ast.Constant) and isinstance(e.value, str) for e in value.elts
        ):
            self.fail(
                "__match_args__ must be a literal tuple of attribute names (rule: no dunder names)", stmt
            )
        for e in value.elts:  # type: ignore[union-attr]
            message = attribute_violation(e.value)  # type: ignore[attr-defined]
            if message:
                self.fail(message, stmt)

    def _visit_body(self, body: list[ast.stmt]) -> list[ast.stmt]:
        out: list[ast.stmt] = []
        for stmt in body:
            new = self.visit(stmt)
            if new is None:
                continue
            if isinstance(new, list):
                out.extend(new)
            else:
                out.append(new)
        return out

    def visit_AnnAssign(self, node: ast.AnnAssign) -> ast.AST:
        self.check_annotation(node.annotation)
        self.generic_visit(node)
        return node

    # ---- loops ---------------------------------------------------------------------------
    def visit_For(self, node: ast.For) -> ast.AST:
        self.generic_visit(node)
        if self.scope_stack[-1] == "function":
            node.body = self.body_with_tick(node.body, node)
        else:
            it = node.iter
            node.iter = _call(names.LOOP, [it, _name(names.OPS, it)], it)
        return node

    def visit_While(self, node: ast.AsyncFor | ast.While) -> ast.AST:
        self.generic_visit(node)
        node.body = self.body_with_tick(node.body, node)
        return node

    visit_AsyncFor = visit_While  # type: ignore[assignment]

    def visit_comprehension(self, node: ast.comprehension) -> ast.AST:
        self.generic_visit(node)
        node.ifs = [_name(names.LIVE, node.target), *node.ifs]
        return node

    def _visit_comp(self, node: ast.AST) -> ast.AST:
        self.scope_stack.append("function")
        self.self_stack.append(None)
        try:
            self.generic_visit(node)
        finally:
            self.scope_stack.pop()
            self.self_stack.pop()
        return node

    visit_ListComp = _visit_comp  # type: ignore[assignment]
    visit_SetComp = _visit_comp  # type: ignore[assignment]
    visit_DictComp = _visit_comp  # type: ignore[assignment]
    visit_GeneratorExp = _visit_comp  # type: ignore[assignment]


def check_expression_source(source: str) -> None:
    """Strict check of an expression that will be evaluated without our rewrites (string annotations).

    Every ``_``-prefixed attribute (dunder or private) and every reserved or dunder name is refused.
    """
    try:
        tree = ast.parse(source.strip(), mode="eval")
    except SyntaxError:
        return  # it fails the same way when typing evaluates it
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute):
            message = attribute_violation(node.attr)
            if node.attr.startswith("_") and not message:
                kind = "dunder" if is_dunder(node.attr) else "private"
                message = (
                    f"Forbidden access to {kind} attribute '{node.attr}' in an annotation (rule: annotations "
                    "may not read attributes that start with '_')"
                )
            if message:
                raise StaticViolation(message, None)
        elif isinstance(node, ast.Name) and (is_dunder(node.id) or node.id.startswith(names.RESERVED_PREFIX)):
            raise StaticViolation(
                f"Forbidden access to dunder name '{node.id}' (rule: no dunder names)", None
            )
        elif isinstance(node, ast.Lambda | ast.NamedExpr):
            raise StaticViolation(
                "Annotations may not contain lambdas or assignments (rule: annotations)", None
            )


def _rewrite(tree: ast.Module, protected: frozenset[str]) -> ast.Module:
    rewriter = _Rewriter(protected)
    tree.body = rewriter._visit_body(tree.body)
    _report_last(tree.body)
    ast.fix_missing_locations(tree)
    return tree


def _report_last(body: list[ast.stmt]) -> None:
    """Make the last statement report its value, as smolagents' evaluator does: an expression's value, an
    assignment's value, the new value after ``+=``, the function or class defined; inside ``if``/loops/
    ``try``/``with``, the last statement of the branch that ran."""
    if not body:
        return
    last = body[-1]
    if isinstance(last, ast.Expr | ast.Assign) or (isinstance(last, ast.AnnAssign) and last.value is not None):
        last.value = _call(names.RESULT, [last.value], last.value)  # type: ignore[arg-type]
    elif isinstance(last, ast.AugAssign) and isinstance(last.target, ast.Name | ast.Attribute | ast.Subscript):
        target = copy.deepcopy(last.target)
        for node in ast.walk(target):
            if hasattr(node, "ctx"):
                node.ctx = ast.Load()  # type: ignore[attr-defined]
        body.append(ast.copy_location(ast.Expr(_call(names.RESULT, [target], last)), last))
    elif isinstance(last, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
        body.append(ast.copy_location(ast.Expr(_call(names.RESULT, [_name(last.name, last)], last)), last))
    elif isinstance(last, ast.If | ast.For | ast.While | ast.AsyncFor):
        _report_last(last.body)
        _report_last(last.orelse)
    elif isinstance(last, ast.With | ast.AsyncWith):
        _report_last(last.body)
    elif isinstance(last, ast.Try | ast.TryStar):
        _report_last(last.orelse or last.body)
        for handler in last.handlers:
            _report_last(handler.body)


_CACHE: OrderedDict[tuple[str, frozenset[str], bool], CodeType] = OrderedDict()
_CACHE_LOCK = threading.Lock()
_CACHE_SIZE = 512
_FLAGS = ast.PyCF_ALLOW_TOP_LEVEL_AWAIT


def compile_code(source: str, protected: frozenset[str], count: bool = False) -> CodeType:
    """Parse, check, rewrite and compile ``source``; cached by (source, protected names, count).
    ``count``: with smolagents' operation counter (opcount.py; evaluate_python_code only).

    Raises ``SyntaxError`` for code CPython itself rejects and ``StaticViolation`` for policy breaks.
    """
    key = (source, protected, count)
    code = _CACHE.get(key)
    if code is not None:
        return code
    tree = ast.parse(source, filename=FILENAME, mode="exec")
    if count:
        tree = opcount.instrument(tree)
    tree = _rewrite(tree, protected)
    code = compile(tree, FILENAME, "exec", flags=_FLAGS, dont_inherit=True)
    with _CACHE_LOCK:
        _CACHE[key] = code
        while len(_CACHE) > _CACHE_SIZE:
            _CACHE.popitem(last=False)
    return code
