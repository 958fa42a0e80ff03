"""The policy's recursion limit is the one the isolated worker applies (it owns its whole process)."""

from __future__ import annotations

import pytest

from codeloop.errors import InterpreterError
from codeloop.executors import LocalPythonExecutor

DEEP = "def f(n):\n    return f(n + 1) if n < DEPTH else n\nf(0)"


def test_worker_applies_the_policy_recursion_limit_both_ways():
    with LocalPythonExecutor(max_recursion_depth=2500) as executor:
        # deeper than CPython's default limit of 1000: allowed because the policy says 2500
        assert executor(DEEP.replace("DEPTH", "1800")).output == 1800
        with pytest.raises(InterpreterError) as info:
            executor(DEEP.replace("DEPTH", "5000"))
        assert info.value.exc_type == "RecursionError"
        assert executor("1 + 1").output == 2  # the worker survived
    with LocalPythonExecutor(max_recursion_depth=300) as executor, pytest.raises(InterpreterError) as info:
        executor(DEEP.replace("DEPTH", "600"))
    assert info.value.exc_type == "RecursionError"
