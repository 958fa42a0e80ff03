"""Policy: the data, the import rules and the compiler's static refusals."""

from __future__ import annotations

import pytest

from codeloop.executors.compiler import StaticViolation, compile_code
from codeloop.executors.policy import (
    ALLOWED_DUNDER_NAMES,
    ALLOWED_DUNDER_STORES,
    ALLOWED_DUNDERS,
    DEFAULT_AUTHORIZED_IMPORTS,
    FORBIDDEN_ATTRIBUTES,
    Policy,
    attribute_violation,
    dunder_store_violation,
    format_attribute_violation,
)


def test_default_imports_cover_the_contract():
    required = {
        "collections", "datetime", "itertools", "math", "queue", "random", "re", "stat", "statistics",
        "time", "unicodedata", "json", "string", "functools", "operator", "decimal", "fractions", "heapq",
        "bisect", "textwrap", "dataclasses", "enum", "typing", "copy",
    }  # fmt: skip
    assert required <= DEFAULT_AUTHORIZED_IMPORTS
    assert not {"os", "sys", "subprocess", "importlib", "builtins"} & DEFAULT_AUTHORIZED_IMPORTS


def test_from_args_adds_modules_and_submodules():
    p = Policy.from_args(["numpy", "pandas.*"])
    assert p.is_import_authorized("numpy")
    assert p.is_import_authorized("numpy.linalg")
    assert p.is_import_authorized("pandas.core.frame")
    assert p.is_import_authorized("json.decoder")
    assert not p.is_import_authorized("os")
    assert not p.is_import_authorized("numpyx")


def test_star_allows_everything():
    p = Policy.from_args(["*"])
    assert p.allows_all_imports and p.is_import_authorized("os.path")


def test_import_refusal_message_names_the_rule_and_the_fix():
    msg = Policy().import_refusal("os")
    assert "Import of os is not allowed" in msg and "additional_authorized_imports" in msg
    assert "'math'" in msg


def test_policy_round_trips_through_dict():
    p = Policy.from_args(["numpy"], max_operations=123, timeout_seconds=4.5, max_print_outputs_length=77)
    q = Policy.from_dict(p.to_dict())
    assert q == p


def test_policy_rejects_bad_limits():
    with pytest.raises(ValueError, match="max_operations"):
        Policy(max_operations=0)
    with pytest.raises(ValueError, match="timeout_seconds"):
        Policy(timeout_seconds=-1)


@pytest.mark.parametrize(
    ("name", "fragment"),
    [
        ("__base__", "dunder"),
        ("__bases__", "dunder"),
        ("__mro__", "dunder"),
        ("__dict__", "dunder"),
        ("__getattribute__", "dunder"),
        ("__globals__", "dunder"),
        ("__subclasses__", "dunder"),
        ("_secret", "private"),
        ("gi_frame", "internals"),
        ("f_back", "internals"),
        ("tb_frame", "internals"),
        ("co_code", "internals"),
        ("cr_frame", "internals"),
        ("ag_frame", "internals"),
    ],
)
def test_attribute_violation_names_the_rule(name, fragment):
    msg = attribute_violation(name)
    assert msg is not None and fragment in msg and name in msg


def test_allowlisted_names_pass():
    for name in ("__init__", "__name__", "__doc__", "append", "format", "_asdict"):
        assert attribute_violation(name) is None
    assert attribute_violation("_cache", private_ok=True) is None
    assert "__dict__" not in ALLOWED_DUNDERS and "__base__" not in ALLOWED_DUNDERS
    # x.__class__ is type(x): readable, never writable, and not a bare name
    assert attribute_violation("__class__") is None and format_attribute_violation("__class__") is None
    assert "__class__" not in ALLOWED_DUNDER_STORES and "__class__" not in ALLOWED_DUNDER_NAMES
    assert "'__class__'" in (dunder_store_violation("__class__") or "")
    assert dunder_store_violation("__name__") is None and dunder_store_violation("name") is None
    assert {"gi_frame", "gi_code", "gi_yieldfrom", "f_locals", "f_globals", "tb_next"} <= FORBIDDEN_ATTRIBUTES


@pytest.mark.parametrize(
    ("code", "line"),
    [
        ("x = 1\ny = x.__class__.__base__", 2),
        ("x = 1\nx.__class__ = int", 2),
        ("def f():\n    pass\n\n\nf.__globals__", 5),
        ("g = (i for i in [])\ng.gi_frame", 2),
        ("__builtins__", 1),
        ("x = __import__", 1),
        ("'{0.__class__.__mro__}'.format(1)", 1),
        ("final_answer = 1", 1),
        ("def f(x: '().__class__'):\n    pass", 1),
    ],
)
def test_static_refusals_carry_the_line(code, line):
    with pytest.raises(StaticViolation) as info:
        compile_code(code, frozenset({"final_answer"}))
    assert info.value.lineno == line


def test_compile_cache_is_keyed_by_protected_names():
    code = "tool_x = 1"
    assert compile_code(code, frozenset()) is compile_code(code, frozenset())
    with pytest.raises(StaticViolation):
        compile_code(code, frozenset({"tool_x"}))


def test_rewritten_code_keeps_line_numbers():
    code = "a = 1\nfor i in range(3):\n    a += i\nclass K:\n    def m(self):\n        return self._x\n"
    co = compile_code(code, frozenset())

    def lines(c):
        out = {ln for *_, ln in c.co_lines() if ln}
        for const in c.co_consts:
            if hasattr(const, "co_lines"):
                out |= lines(const)
        return out

    assert lines(co) == {1, 2, 3, 4, 5, 6}
