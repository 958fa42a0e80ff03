"""Counting operations the way smolagents' evaluator does, for ``evaluate_python_code`` only.

Layer 3 (executors). smolagents' tree-walking evaluator counts every node it evaluates and leaves the
total in ``state["_operations_count"]``; it stops code past ``MAX_OPERATIONS`` nodes and a ``while`` loop
past ``MAX_WHILE_ITERATIONS`` iterations. codeloop's executors do not walk the tree (they compile it,
and bound loops with the operation budget of limits.py), so ``evaluate_python_code``, the smolagents
entry point, compiles code with this instrumentation instead: each statement and each expression the
evaluator would visit adds to the session's count when it runs. Executors never use it (it costs a
call per node); the compiled result is cached separately (``compile_code(..., count=True)``).

What counts, as in smolagents: a statement when it runs (a loop body's statements at each iteration),
an expression when it is evaluated, a format string's literal parts and fields. What does not: the
targets of an assignment, the name of a called function, keyword and ``*`` wrappers, annotations,
``match`` patterns.
"""

from __future__ import annotations

import ast
from typing import Any

from . import names

__all__ = ["instrument"]

_OWN = "_codeloop_own"  # marks the Name nodes this module adds (the compiler accepts only these)


def instrument(tree: ast.Module) -> ast.Module:
    """Add the counting calls to ``tree`` (in place) and return it."""
    counter = _Counter()
    tree.body = counter.body(tree.body, module=True)
    return tree


def source_of(node: ast.FunctionDef | ast.AsyncFunctionDef) -> str:
    """The function's source as the code wrote it (without the counting calls added here)."""
    return getattr(node, _SOURCE, None) or ast.unparse(node)


_SOURCE = "_codeloop_source"


def _own_name(name: str) -> ast.Name:
    node = ast.Name(id=name, ctx=ast.Load())
    setattr(node, _OWN, True)
    return node


def is_own(node: ast.AST) -> bool:
    """Whether ``node`` is a name this module added (not one the code wrote)."""
    return getattr(node, _OWN, False) is True


def _count(value: ast.expr | None, n: int = 1, *extra: ast.expr) -> ast.Call:
    args: list[ast.expr] = [value if value is not None else ast.Constant(None), ast.Constant(n), *extra]
    return ast.Call(func=_own_name(names.COUNT), args=args, keywords=[])


def _is_docstring(stmt: ast.stmt) -> bool:
    return isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant) and isinstance(stmt.value.value, str)


class _Counter:
    def __init__(self) -> None:
        self.loops = 0

    # ---- statements ----------------------------------------------------------------------------
    def body(self, stmts: list[ast.stmt], docstring: bool = False, module: bool = False) -> list[ast.stmt]:
        out: list[ast.stmt] = []
        first = True
        for stmt in stmts:
            keep_first = first and (
                (docstring or module) and _is_docstring(stmt)
                or module and isinstance(stmt, ast.ImportFrom) and stmt.module == "__future__"
            )
            first = False
            if keep_first:  # a docstring or a __future__ import must stay first: count it after
                out.append(stmt)
                out.append(ast.copy_location(ast.Expr(_count(None, 2 if _is_docstring(stmt) else 1)), stmt))
                continue
            extra: list[ast.expr] = []
            if module and isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef):
                setattr(stmt, _SOURCE, ast.unparse(stmt))
            if isinstance(stmt, ast.While):
                self.loops += 1
                extra = [ast.Constant(self.loops)]
            self.statement(stmt)
            out.append(ast.copy_location(ast.Expr(_count(None, 1, *extra)), stmt))
            out.append(stmt)
            if extra:  # the loop test also counts the loop's iterations (MAX_WHILE_ITERATIONS)
                assert isinstance(stmt, ast.While)
                stmt.test = ast.Call(func=_own_name(names.COUNT_WHILE), args=[extra[0], stmt.test], keywords=[])
        return out

    def statement(self, stmt: ast.stmt) -> None:
        for field, value in ast.iter_fields(stmt):
            if field in ("annotation", "returns", "type_comment", "type_params"):
                continue
            if field in ("body", "orelse", "finalbody"):
                is_def = isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
                setattr(stmt, field, self.body(value, docstring=is_def and field == "body"))
            elif field == "handlers":
                for handler in value:
                    if handler.type is not None:
                        handler.type = self.expr(handler.type)
                    handler.body = self.body(handler.body)
            elif field == "cases":
                for case in value:
                    if case.guard is not None:
                        case.guard = self.expr(case.guard)
                    case.body = self.body(case.body)
            elif field == "items":  # with
                for item in value:
                    item.context_expr = self.expr(item.context_expr)
                    if item.optional_vars is not None:
                        self.children(item.optional_vars)
            elif field == "args" and isinstance(value, ast.arguments):
                value.defaults = [self.expr(d) for d in value.defaults]
                value.kw_defaults = [self.expr(d) if d is not None else None for d in value.kw_defaults]
            else:
                setattr(stmt, field, self.value(value))

    # ---- expressions ---------------------------------------------------------------------------
    def value(self, value: Any) -> Any:
        if isinstance(value, ast.expr):
            return self.expr(value)
        if isinstance(value, list):
            return [self.value(v) for v in value]
        if isinstance(value, ast.keyword):
            value.value = self.expr(value.value)
        elif isinstance(value, ast.comprehension):
            value.iter = self.expr(value.iter)
            value.ifs = [self.expr(i) for i in value.ifs]
        return value

    def children(self, node: ast.AST) -> None:
        for field, value in ast.iter_fields(node):
            if field not in ("ctx", "annotation", "returns"):
                setattr(node, field, self.value(value))

    def expr(self, node: ast.expr) -> ast.expr:
        if isinstance(getattr(node, "ctx", None), ast.Store | ast.Del):
            self.children(node)  # a target: not evaluated itself, but its parts are (a[i] = ...)
            return node
        if isinstance(node, ast.Starred | ast.Slice):
            self.children(node)
            return node
        if isinstance(node, ast.JoinedStr):
            return _count(node, self.fstring(node))
        if isinstance(node, ast.Call):
            if isinstance(node.func, ast.Attribute):
                node.func.value = self.expr(node.func.value)
            elif not isinstance(node.func, ast.Name):
                node.func = self.expr(node.func)
            node.args = [self.expr(a) for a in node.args]
            node.keywords = [self.value(k) for k in node.keywords]
            return _count(node)
        if isinstance(node, ast.Lambda):
            node.args.defaults = [self.expr(d) for d in node.args.defaults]
            node.args.kw_defaults = [self.expr(d) if d is not None else None for d in node.args.kw_defaults]
            node.body = self.expr(node.body)
            return _count(node)
        self.children(node)
        return _count(node, 2 if isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Slice) else 1)

    def fstring(self, node: ast.JoinedStr) -> int:
        """Counts the parts of a format string that cannot be wrapped (literals, fields, format specs) and
        wraps the fields' values; returns the static count, the string itself included."""
        n = 1
        for part in node.values:
            n += 1
            if isinstance(part, ast.FormattedValue):
                part.value = self.expr(part.value)
                if isinstance(part.format_spec, ast.JoinedStr):
                    n += self.fstring(part.format_spec)
        return n
