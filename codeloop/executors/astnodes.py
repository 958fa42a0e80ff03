"""Constructors of the AST nodes that compiler.py's rewriter inserts into agent code.

Each new node takes the source location of the node it stands for, so tracebacks and error messages
point at the agent's own line. Standard library only (the worker imports it inside the sandbox).
"""

from __future__ import annotations

import ast

from . import names

__all__ = ["name", "call", "const", "tick_stmt", "live_stmt", "binds", "self_check"]


def name(id_: str, node: ast.AST) -> ast.Name:
    return ast.copy_location(ast.Name(id=id_, ctx=ast.Load()), node)


def call(func: str, args: list[ast.expr], node: ast.AST) -> ast.Call:
    return ast.copy_location(ast.Call(func=name(func, node), args=args, keywords=[]), node)


def const(value: object, node: ast.AST) -> ast.Constant:
    return ast.copy_location(ast.Constant(value=value), node)


def tick_stmt(node: ast.AST) -> ast.stmt:
    return ast.copy_location(ast.Expr(value=call(names.TICK, [name(names.OPS, node)], node)), node)


def live_stmt(node: ast.AST) -> ast.stmt:
    """``__codeloop_live__``: a bare builtins lookup (no call); the limits delete the name to stop code."""
    return ast.copy_location(ast.Expr(value=name(names.LIVE, node)), node)


def binds(tree: ast.AST, name: str) -> bool:
    """Whether ``name`` is (re)bound anywhere in ``tree``, nested scopes included (conservative)."""
    for n in ast.walk(tree):
        if isinstance(n, ast.Name) and n.id == name and not isinstance(n.ctx, ast.Load):
            return True
        if isinstance(n, ast.Global | ast.Nonlocal) and name in n.names:
            return True
        if isinstance(n, ast.MatchAs | ast.MatchStar | ast.ExceptHandler) and n.name == name:
            return True
        if isinstance(n, ast.MatchMapping) and n.rest == name:
            return True
        if isinstance(n, ast.alias) and (n.asname or n.name.partition(".")[0]) == name:
            return True
        if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) and n.name == name:
            return True
    return False


def self_check(self_name: str, slot: int, anchor: ast.AST) -> ast.stmt:
    """A method's entry check (see the module docstring). The ``id`` test comes before the claim so
    that the code's classes with foreign private names, never cached, cost no Python call."""
    t = f"{names.TYPE}({self_name})"
    stmt = ast.parse(
        f"{names.SELF_OK} = {t} is {names.SELF_TYPES}[{slot}] or "
        f"{names.ID}({t}) in {names.OWNED_IDS} and {names.CLAIM_SELF}({self_name}, {names.SELF_TYPES}, {slot})"
    ).body[0]
    for n in ast.walk(stmt):
        ast.copy_location(n, anchor)
    return stmt
