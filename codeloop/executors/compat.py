"""``evaluate_python_code``: the smolagents-compatible one-shot entry point.

Layer 3 (executors). Runs one piece of code in a fresh in-process session and returns
``(result, is_final_answer)`` like smolagents does; ``state`` (if given) provides the variables and
receives them back afterwards, with the printed text under ``state["_print_outputs"]``.
"""

from __future__ import annotations

from typing import Any

from .policy import DEFAULT_AUTHORIZED_IMPORTS, Policy
from .session import ExecutionSession

__all__ = ["evaluate_python_code", "BASE_BUILTIN_MODULES"]

BASE_BUILTIN_MODULES = sorted(DEFAULT_AUTHORIZED_IMPORTS)


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
    session = ExecutionSession(policy, tools=dict(static_tools or {}))
    variables = {k: v for k, v in (state or {}).items() if k.isidentifier() and not k.startswith("__")}
    variables.pop("_print_outputs", None)
    variables.update(custom_tools or {})
    for name in session.protected_names:
        variables.pop(name, None)
    session.add_variables(variables)
    try:
        out = session.run(code)
    finally:
        if state is not None:
            state.update(session.state)
    if state is not None:
        state["_print_outputs"] = out.logs
    return out.output, out.is_final_answer
