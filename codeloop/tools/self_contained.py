"""Checks that a tool's source stands on its own, so that it can be saved, shared and loaded elsewhere.

Layer 2 (tools). A saved tool (``Tool.save``, ``to_dict``, ``push_to_hub``) is its source code alone: names
it takes from the module it was written in (a module-level ``import numpy as np``, a global constant) do
not exist where it is loaded. smolagents applies the same rules in ``validate_tool_attributes``, with the
messages kept here so that code matching on them keeps working:

* class attributes are literals (anything computed belongs in ``__init__``);
* ``__init__`` parameters have literal defaults (a loader calls ``ToolClass()``);
* methods use only their own names, ``self``, the class's attributes and builtins (imports go inside).
"""

from __future__ import annotations

import ast
import builtins
import inspect
import textwrap
from typing import Any

from ..errors import ToolDefinitionError

__all__ = ["MethodChecker", "check_self_contained", "check_function_self_contained", "get_source", "is_builtin_tool"]

_BUILTINS = frozenset(dir(builtins)) | {"__class__", "__name__", "__file__", "__doc__"}


def get_source(obj: Any) -> str:
    """The source code of a class or function, dedented; also for one defined in an IPython/Jupyter cell,
    where ``inspect`` cannot find a class's source (it is then read from the session's cell history)."""
    if not (inspect.isclass(obj) or callable(obj)):
        raise TypeError(f"Expected class or callable, got {type(obj).__name__}.")
    try:
        return textwrap.dedent(inspect.getsource(obj)).strip()
    except (OSError, TypeError) as error:
        inspect_error: Exception = error
    try:
        from IPython import get_ipython  # only when IPython is already in use
    except ImportError:
        get_ipython = None  # type: ignore[assignment]
    shell = get_ipython() if get_ipython is not None else None
    if shell is None:
        raise OSError(f"The source code of {obj!r} cannot be found: {inspect_error}") from inspect_error
    cells = [cell for cell in shell.user_ns.get("In", []) if isinstance(cell, str) and cell.strip()]
    if not cells:
        raise ValueError("No code cells found in IPython session")
    name = getattr(obj, "__name__", None)
    for cell in reversed(cells):  # the latest definition is the one in use
        try:
            tree = ast.parse(cell)
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef) and node.name == name:
                segment = ast.get_source_segment(cell, node)
                if segment:
                    return textwrap.dedent(segment).strip()
    raise ValueError(f"Could not find source code for {name} in IPython history")


def is_builtin_tool(cls: type) -> bool:
    """codeloop's own tools are part of the installed package: a copy of their source is not what a
    loader uses (it imports codeloop), so the stand-alone rule is for the tools users write."""
    return cls.__module__ == "codeloop" or cls.__module__.startswith("codeloop.")


def _target_names(target: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(target) if isinstance(n, ast.Name)}


class _Scope(ast.NodeVisitor):
    """Collects the names a function binds anywhere in its body (Python's own scoping rule)."""

    def __init__(self) -> None:
        self.bound: set[str] = set()

    def visit_Name(self, node: ast.Name) -> None:
        if isinstance(node.ctx, ast.Store | ast.Del):
            self.bound.add(node.id)

    def visit_alias(self, node: ast.alias) -> None:
        self.bound.add(node.asname or node.name.split(".")[0])

    def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda) -> None:
        if not isinstance(node, ast.Lambda):
            self.bound.add(node.name)
        for default in [*node.args.defaults, *node.args.kw_defaults]:
            if default is not None:
                self.visit(default)
        # the nested function's own locals are its own scope; its free names are checked by MethodChecker

    visit_AsyncFunctionDef = visit_FunctionDef
    visit_Lambda = visit_FunctionDef

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        self.bound.add(node.name)

    def visit_ExceptHandler(self, node: ast.ExceptHandler) -> None:
        if node.name:
            self.bound.add(node.name)
        self.generic_visit(node)

    def visit_MatchAs(self, node: ast.MatchAs) -> None:
        if node.name:
            self.bound.add(node.name)
        self.generic_visit(node)

    def visit_MatchStar(self, node: ast.MatchStar) -> None:
        if node.name:
            self.bound.add(node.name)


def _arguments(args: ast.arguments) -> set[str]:
    names = {a.arg for a in [*args.posonlyargs, *args.args, *args.kwonlyargs]}
    names |= {a.arg for a in (args.vararg, args.kwarg) if a is not None}
    return names


class MethodChecker(ast.NodeVisitor):
    """Finds the names a function (or method) reads that it does not define: ``errors`` lists them.

    ``class_attributes`` are names the enclosing class defines (readable through ``self``); ``visit`` a
    module, a function definition or a class method. Comprehensions, lambdas and nested functions each
    see their own names and those of the functions around them.
    """

    def __init__(self, class_attributes: set[str], check_imports: bool = True):
        self.class_attributes = set(class_attributes)
        self.check_imports = check_imports
        self.errors: list[str] = []
        self._scopes: list[set[str]] = []

    def _defined(self, name: str) -> bool:
        return name in _BUILTINS or name in self.class_attributes or any(name in s for s in self._scopes)

    def _function(self, node: ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda) -> None:
        for default in [*node.args.defaults, *node.args.kw_defaults]:
            if default is not None:
                self.visit(default)
        if not isinstance(node, ast.Lambda):
            for decorator in node.decorator_list:
                self.visit(decorator)
        scope = _Scope()
        body = node.body if isinstance(node.body, list) else [node.body]
        for statement in body:
            scope.visit(statement)
        self._scopes.append(_arguments(node.args) | scope.bound)
        for statement in body:
            self.visit(statement)
        self._scopes.pop()

    def visit_Module(self, node: ast.Module) -> None:
        # a module given to the checker holds the function(s) to check; their names are known to each other
        self._scopes.append({s.name for s in node.body if isinstance(s, ast.FunctionDef | ast.AsyncFunctionDef)})
        self.generic_visit(node)
        self._scopes.pop()

    def visit_FunctionDef(self, node: ast.FunctionDef) -> None:
        self._function(node)

    visit_AsyncFunctionDef = visit_FunctionDef  # type: ignore[assignment]
    visit_Lambda = _function  # type: ignore[assignment]

    def _comprehension(self, node: ast.ListComp | ast.SetComp | ast.GeneratorExp | ast.DictComp) -> None:
        self.visit(node.generators[0].iter)  # evaluated outside the comprehension's scope
        self._scopes.append(set().union(*(_target_names(g.target) for g in node.generators)))
        for i, generator in enumerate(node.generators):
            if i:
                self.visit(generator.iter)
            for condition in generator.ifs:
                self.visit(condition)
        for part in ("elt", "key", "value"):
            if hasattr(node, part):
                self.visit(getattr(node, part))
        self._scopes.pop()

    visit_ListComp = visit_SetComp = visit_GeneratorExp = visit_DictComp = _comprehension  # type: ignore[assignment]

    def visit_Name(self, node: ast.Name) -> None:
        if isinstance(node.ctx, ast.Load) and not self._defined(node.id):
            message = f"Name '{node.id}' is undefined."
            if message not in self.errors:
                self.errors.append(message)


def _is_literal(node: ast.AST) -> bool:
    try:
        ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return False
    return True


def _class_node(cls: type) -> ast.ClassDef | None:
    try:
        source = get_source(cls)
    except (OSError, TypeError, ValueError):
        return None
    tree = ast.parse(source)
    return next((n for n in tree.body if isinstance(n, ast.ClassDef)), None)


def _fail(owner: str, errors: list[str]) -> None:
    if errors:
        raise ToolDefinitionError(
            f"Tool validation failed for {owner}: it cannot be saved or shared as source code on its own:\n- "
            + "\n- ".join(errors)
        )


def check_self_contained(cls: type, check_imports: bool = True) -> None:
    """Raise ToolDefinitionError listing what keeps a Tool subclass's source from standing on its own.

    A class whose source cannot be read (defined in a REPL without one) is not checked here; saving it
    fails later with its own message.
    """
    node = _class_node(cls)
    if node is None:
        return
    errors: list[str] = []
    attributes: set[str] = set()
    complex_attributes: list[str] = []
    for statement in node.body:
        if isinstance(statement, ast.Assign | ast.AnnAssign):
            targets = statement.targets if isinstance(statement, ast.Assign) else [statement.target]
            names = set().union(*(_target_names(t) for t in targets))
            attributes |= names
            if statement.value is not None and not _is_literal(statement.value):
                complex_attributes += sorted(names)
        elif isinstance(statement, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            attributes.add(statement.name)
    if complex_attributes:
        errors.append(
            "Complex attributes should be defined in __init__, not as class attributes: "
            + ", ".join(complex_attributes)
        )
    for statement in node.body:
        if isinstance(statement, ast.FunctionDef) and statement.name == "__init__":
            args = statement.args
            positional = [*args.posonlyargs, *args.args][1:]  # without self
            required = [a.arg for a in positional[: len(positional) - len(args.defaults)]]
            required += [a.arg for a, d in zip(args.kwonlyargs, args.kw_defaults, strict=True) if d is None]
            if required:
                errors.append(
                    "Parameters in __init__ must have default values, found required parameters: "
                    + ", ".join(required)
                )
            defaults = [*zip(positional[len(positional) - len(args.defaults) :], args.defaults, strict=True)]
            defaults += [(a, d) for a, d in zip(args.kwonlyargs, args.kw_defaults, strict=True) if d is not None]
            non_literal = [a.arg for a, d in defaults if not _is_literal(d)]
            if non_literal:
                errors.append(
                    "Parameters in __init__ must have literal default values, found non-literal defaults: "
                    + ", ".join(non_literal)
                )
    for statement in node.body:
        if isinstance(statement, ast.FunctionDef | ast.AsyncFunctionDef):
            checker = MethodChecker(attributes, check_imports=check_imports)
            checker.visit(statement)
            errors += [f"{statement.name}: {e}" for e in checker.errors]
    _fail(cls.__name__, errors)


def check_function_self_contained(func: Any, owner: str) -> None:
    """The same rule for a ``@tool`` function: it may read only its arguments, its own names and builtins."""
    try:
        source = get_source(func)
    except (OSError, TypeError, ValueError):
        return
    tree = ast.parse(source)
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            node.decorator_list = []  # the decorators ran where the tool was made, not where it is loaded
    checker = MethodChecker(set())
    checker.visit(tree)
    _fail(owner, checker.errors)
