"""``evaluate_python_code``: the smolagents-compatible one-shot entry point, and the small helpers of
smolagents' ``local_python_executor`` module that user code calls (``timeout``, ``fix_final_answer_code``).

Layer 3 (executors). Runs one piece of code in a fresh in-process session and returns
``(result, is_final_answer)`` like smolagents does; ``state`` (if given) provides the variables and
receives them back afterwards, with the printed text under ``state["_print_outputs"]``.
"""

from __future__ import annotations

import ast
import asyncio
import contextvars
import functools
import inspect
import re
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from ..errors import ExecutionTimeoutError
from .policy import DEFAULT_AUTHORIZED_IMPORTS, Policy
from .session import BASE_PYTHON_TOOLS, ExecutionSession

__all__ = [
    "evaluate_python_code",
    "BASE_BUILTIN_MODULES",
    "check_import_authorized",
    "timeout",
    "fix_final_answer_code",
]

_F = TypeVar("_F", bound=Callable[..., Any])

BASE_BUILTIN_MODULES = sorted(DEFAULT_AUTHORIZED_IMPORTS)
_MISSING = object()
# smolagents' evaluator limits, read at each call (a test may patch them): nodes evaluated by one call of
# evaluate_python_code, and iterations of one while loop. codeloop's executors have an operation budget
# (Policy.max_operations) instead.
MAX_OPERATIONS = 10_000_000
MAX_WHILE_ITERATIONS = 1_000_000



class PrintContainer:
    """The printed text of a run, as smolagents keeps it in ``state["_print_outputs"]`` (kept for
    compatibility): ``.value`` holds the text; ``append`` / ``+=`` add to it; it compares equal to its
    text and ``str()`` gives the text."""

    def __init__(self, value: str = ""):
        self.value = value

    def append(self, text: str) -> PrintContainer:
        self.value += text
        return self

    def __iadd__(self, other: str) -> PrintContainer:
        return self.append(other)

    def __str__(self) -> str:
        return self.value

    def __repr__(self) -> str:
        return f"PrintContainer({self.value})"

    def __len__(self) -> int:
        return len(self.value)

    def __contains__(self, text: str) -> bool:
        return text in self.value

    def __eq__(self, other: object) -> bool:
        if isinstance(other, PrintContainer):
            return self.value == other.value
        return self.value == other

    __hash__ = None  # type: ignore[assignment]  # mutable


def evaluate_python_code(
    code: str,
    static_tools: dict[str, Any] | None = None,
    custom_tools: dict[str, Any] | None = None,
    state: dict[str, Any] | None = None,
    authorized_imports: Any = BASE_BUILTIN_MODULES,
    max_print_outputs_length: int | None = 50_000,
    timeout_seconds: float | None = 30.0,
    max_operations: int | None = 10_000_000,
) -> tuple[Any, bool]:
    """Run ``code``; tools in ``static_tools`` are read-only, ``custom_tools`` are plain variables.

    Raises ``InterpreterError`` (message names the line and the error or the broken rule).
    """
    policy = Policy(
        authorized_imports=frozenset(authorized_imports or ()),
        max_operations=max_operations,
        timeout_seconds=timeout_seconds,
        max_print_outputs_length=max_print_outputs_length,
    )
    # smolagents callers pass BASE_PYTHON_TOOLS (the builtins, constants included) as static tools: the
    # builtins are there already, so only what differs from them is a tool
    tools = {k: v for k, v in (static_tools or {}).items() if BASE_PYTHON_TOOLS.get(k, _MISSING) is not v}
    session = ExecutionSession(policy, tools=tools, count_operations=(MAX_OPERATIONS, MAX_WHILE_ITERATIONS))
    variables = {k: v for k, v in (state or {}).items() if k.isidentifier() and not k.startswith("__")}
    variables.pop("_print_outputs", None)
    variables.pop("_operations_count", None)
    variables.update(custom_tools or {})
    for name in session.protected_names:
        variables.pop(name, None)
    session.add_variables(variables)
    try:
        out = session.run(code)
    finally:
        if state is not None:
            after = session.state
            for name in [k for k in variables if k not in after]:  # deleted by the code (del x)
                state.pop(name, None)
            state.update(after)
    if state is not None:
        state["_print_outputs"] = PrintContainer(out.logs)
        state["_operations_count"] = {"counter": session.operations_count}
    return out.output, out.is_final_answer


def check_import_authorized(import_to_check: str, authorized_imports: Any) -> bool:
    """Whether ``import_to_check`` may be imported under ``authorized_imports`` (smolagents' helper, kept
    for compatibility; codeloop's rule: a name authorizes its submodules, ``"*"`` authorizes all)."""
    return Policy(authorized_imports=frozenset(authorized_imports or ())).is_import_authorized(import_to_check)


def _evaluate_node(
    node: ast.AST,
    state: dict[str, Any],
    static_tools: dict[str, Any] | None,
    custom_tools: dict[str, Any] | None,
    authorized_imports: Any,
) -> Any:
    code = ast.unparse(node)
    had = {k for k in ("_print_outputs", "_operations_count") if k in state}
    try:
        return evaluate_python_code(code, static_tools, custom_tools, state, authorized_imports or [])[0]
    finally:
        for key in {"_print_outputs", "_operations_count"} - had:  # smolagents' per-node functions leave
            state.pop(key, None)  # the state's print buffer and counter alone


# smolagents exposes its evaluator's per-node functions; code that calls them gets the value the same
# node has when run by codeloop's executor (the node is unparsed and run under the same policy).
evaluate_subscript = _evaluate_node
evaluate_condition = _evaluate_node
evaluate_boolop = _evaluate_node
evaluate_delete = _evaluate_node


def _timed_out(timeout_seconds: float) -> ExecutionTimeoutError:
    return ExecutionTimeoutError(
        f"Code execution exceeded the maximum execution time of {timeout_seconds} seconds (rule: timeout)"
    )


def timeout(timeout_seconds: float) -> Callable[[_F], _F]:
    """Decorator: a call that takes longer than ``timeout_seconds`` raises ``ExecutionTimeoutError``.

    A plain function runs in a daemon thread (with the caller's context variables) and the caller gets
    the error at the deadline; Python cannot stop a thread, so the function runs on to its end and its
    result is dropped. A coroutine function is cancelled at the deadline instead."""

    def decorator(func: _F) -> _F:
        if inspect.iscoroutinefunction(func):

            @functools.wraps(func)
            async def awaiting(*args: Any, **kwargs: Any) -> Any:
                try:
                    return await asyncio.wait_for(func(*args, **kwargs), timeout_seconds)
                except TimeoutError:
                    raise _timed_out(timeout_seconds) from None

            return awaiting  # type: ignore[return-value]

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            box: dict[str, Any] = {}
            context = contextvars.copy_context()

            def target() -> None:
                try:
                    box["value"] = context.run(func, *args, **kwargs)
                except BaseException as exc:  # noqa: BLE001 - handed to the caller below
                    box["error"] = exc

            thread = threading.Thread(target=target, name=f"codeloop-timeout-{func.__name__}", daemon=True)
            thread.start()
            thread.join(timeout_seconds)
            if thread.is_alive():
                raise _timed_out(timeout_seconds)
            if "error" in box:
                raise box["error"]
            return box["value"]

        return wrapper  # type: ignore[return-value]

    return decorator


def fix_final_answer_code(code: str) -> str:
    """Rename a variable called ``final_answer`` to ``final_answer_variable`` in code that also calls
    the ``final_answer`` tool (smolagents' helper: LLMs sometimes write ``final_answer = x`` before
    ``final_answer(final_answer)``). Calls, attributes (``obj.final_answer``), keyword names, strings and
    comments are left alone; code that does not both bind and call the name is returned unchanged, as
    is code that does not parse. codeloop's executors refuse the binding instead (tools are read-only),
    so an agent learns to use another name; this helper is for callers who want smolagents' rewrite."""
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return code
    callees = {id(n.func) for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)}
    called = bound = False
    spots: list[tuple[int, int]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and node.id == "final_answer":
            if id(node) in callees:
                called = True
                continue
            bound = bound or isinstance(node.ctx, ast.Store)
            spots.append((node.lineno, node.col_offset))
        elif isinstance(node, ast.arg) and node.arg == "final_answer":
            bound = True
            spots.append((node.lineno, node.col_offset))
    if not (called and bound):
        return code
    lines = re.split(r"(?<=\n)", code)
    old, new = b"final_answer", b"final_answer_variable"
    for lineno, col in sorted(spots, reverse=True):  # right to left: earlier offsets stay valid
        raw = lines[lineno - 1].encode()  # ast offsets count UTF-8 bytes
        lines[lineno - 1] = (raw[:col] + new + raw[col + len(old) :]).decode()
    return "".join(lines)
