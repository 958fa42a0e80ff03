"""Fidelity cases: loader and the CPython reference runner.

The case files next to this module (``*.py``) are not importable modules; each holds many snippets
separated by header lines (so each snippet stays real, editable Python text, without string escaping)::

    # %% case_name [raises=ExcTypeName] [imports=mod1,mod2] [worker]

- ``raises=`` declares that real CPython raises that exception type (checked, so a typo in a case is
  caught by the suite itself rather than silently compared).
- ``imports=`` lists modules the case needs beyond the executor's default authorized imports; the
  harness authorizes exactly those for the executor side (that is the only per-case widening of policy).
- ``worker`` marks the case as part of the sample also run through the isolated worker; such cases only
  produce plain data values (the worker sends results back through a safe codec).

A line ``# --- step ---`` splits a case into agent steps: CPython runs them one after another in one
namespace, the executor runs them as successive calls on one executor (state persists), and every
step's outcome must match, errors included (a failed step leaves its partial state, as in CPython).

A snippet containing top-level ``await`` is detected automatically and run as a coroutine on both sides.

The reference outcome is what CPython 3.11 does with ``exec`` in a fresh namespace: printed stdout, the
value of the final expression statement (split off with ``ast`` and evaluated separately, exactly as an
agent's executor reports it) and the type name and text of an exception that escapes. Both sides also
get the same tools: ``search_tool`` and ``lookup_tool`` (plain functions) and ``final_answer``.

Used by tests/test_fidelity.py and benchmarks/interpreter.py.
"""

from __future__ import annotations

import ast
import asyncio
import contextlib
import dataclasses
import inspect
import io
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

CASES_DIR = Path(__file__).resolve().parent
_HEADER = re.compile(r"^# %% (?P<name>[A-Za-z0-9_]+)(?P<opts>.*)$")


@dataclasses.dataclass(frozen=True)
class Case:
    name: str
    code: str
    source: str  # "file.py:line" of the header, for failure messages
    raises: str | None = None
    imports: tuple[str, ...] = ()
    worker: bool = False

    @property
    def steps(self) -> list[str]:
        """The agent steps of the case: code split at ``# --- step ---`` lines (usually just one)."""
        parts = re.split(r"(?m)^# --- step ---$", self.code)
        return [p.strip("\n") + "\n" for p in parts]

    @property
    def is_async(self) -> bool:
        """True when the snippet has top-level ``await`` / ``async for`` / ``async with``."""
        return any(step_is_async(step) for step in self.steps)


def step_is_async(code: str) -> bool:
    """True when ``code`` only compiles with top-level ``await`` allowed."""
    try:
        compile(code, "<case>", "exec", dont_inherit=True)
    except SyntaxError:
        try:
            compile(code, "<case>", "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT, dont_inherit=True)
        except SyntaxError:
            return False
        return True
    return False


@dataclasses.dataclass
class Outcome:
    """What running a snippet produced; compared field by field between CPython and an executor."""

    stdout: str
    value_repr: str | None = None  # repr of the final expression's value, None when no final expression
    value_type: str | None = None
    exc_type: str | None = None
    exc_message: str | None = None
    exc_line: int | None = None  # snippet line of the innermost snippet frame in the traceback
    is_final_answer: bool = False

    def comparable(self, with_value: bool) -> dict[str, Any]:
        data = {"stdout": self.stdout, "exc_type": self.exc_type, "is_final_answer": self.is_final_answer}
        if with_value and self.exc_type is None:
            data["value_repr"] = self.value_repr
            data["value_type"] = self.value_type
        return data


def load_cases(directory: Path = CASES_DIR) -> list[Case]:
    cases: list[Case] = []
    seen: set[str] = set()
    for path in sorted(directory.glob("*.py")):
        if path.name.startswith("_"):
            continue
        blocks: list[tuple[dict[str, Any], list[str]]] = []
        for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            m = _HEADER.match(line)
            if not m:
                if blocks:
                    blocks[-1][1].append(line)
                continue
            name = m["name"]
            if name in seen:
                raise ValueError(f"duplicate fidelity case name {name!r} at {path.name}:{lineno}")
            seen.add(name)
            blocks.append((_parse_options(name, m["opts"], f"{path.name}:{lineno}"), []))
        for options, lines in blocks:
            cases.append(Case(code="\n".join(lines).strip("\n") + "\n", **options))
    return cases


def _parse_options(name: str, opts: str, source: str) -> dict[str, Any]:
    options: dict[str, Any] = {"name": name, "source": source}
    for opt in opts.split():
        key, _, val = opt.partition("=")
        if key == "raises":
            options["raises"] = val
        elif key == "imports":
            options["imports"] = tuple(v for v in val.split(",") if v)
        elif key == "worker":
            options["worker"] = True
        else:
            raise ValueError(f"unknown case option {opt!r} at {source}")
    return options


# ---------------------------------------------------------------- shared tools (both sides get these)


def search_tool(query: str) -> str:
    """A stand-in for an agent tool: deterministic, pure, cheap."""
    return f"results for {query!r}: {len(query)} hits"


def lookup_tool(key: str, limit: int = 3) -> dict[str, Any]:
    """A stand-in tool returning structured data (crosses the worker's codec as plain data)."""
    return {"key": key, "values": list(range(limit)), "meta": {"ok": True, "score": 0.5, "tags": ("a", "b")}}


class FinalAnswerSignal(BaseException):
    """How the reference side models final_answer(): it ends the code at once, like the executor."""

    def __init__(self, value: Any):
        super().__init__(value)
        self.value = value


def reference_final_answer(answer: Any) -> Any:
    raise FinalAnswerSignal(answer)


def tools_for_executor() -> dict[str, Callable[..., Any]]:
    """Tools handed to the executor under test (final_answer is the executor's own built-in)."""
    return {"search_tool": search_tool, "lookup_tool": lookup_tool}


# ---------------------------------------------------------------- CPython reference


_CO_COROUTINE = inspect.CO_COROUTINE


class CompiledCase:
    """A case compiled once for CPython, split into the body and the final expression (if any)."""

    def __init__(self, code: str):
        flags = ast.PyCF_ALLOW_TOP_LEVEL_AWAIT
        tree = ast.parse(code, filename="<snippet>")  # may raise SyntaxError
        self.expr_code = None
        last_expr = None
        if tree.body and isinstance(tree.body[-1], ast.Expr):
            last_expr = ast.Expression(tree.body.pop().value)
        self.body_code = compile(tree, "<snippet>", "exec", flags=flags, dont_inherit=True)
        if last_expr is not None:
            self.expr_code = compile(last_expr, "<snippet>", "eval", flags=flags, dont_inherit=True)

    @property
    def is_async(self) -> bool:
        codes = [c for c in (self.body_code, self.expr_code) if c is not None]
        return any(c.co_flags & _CO_COROUTINE for c in codes)

    def fresh_namespace(self) -> dict[str, Any]:
        return fresh_namespace()

    def run_sync(self, ns: dict[str, Any]) -> Any:
        exec(self.body_code, ns)
        if self.expr_code is not None:
            return eval(self.expr_code, ns)
        return None

    async def run_async(self, ns: dict[str, Any]) -> Any:
        result = eval(self.body_code, ns)
        if self.body_code.co_flags & _CO_COROUTINE:
            await result
        if self.expr_code is None:
            return None
        value = eval(self.expr_code, ns)
        if self.expr_code.co_flags & _CO_COROUTINE:
            value = await value
        return value


def fresh_namespace() -> dict[str, Any]:
    return {
        "__name__": "__main__",
        "search_tool": search_tool,
        "lookup_tool": lookup_tool,
        "final_answer": reference_final_answer,
    }


def run_cpython(case: Case) -> Outcome:
    """Run ``case`` with CPython's own exec in a fresh namespace and record what it did."""
    return run_cpython_code(case.code, fresh_namespace())


def run_cpython_steps(case: Case) -> list[Outcome]:
    """Run each step of a multi-step case in one namespace, as an agent's steps share executor state."""
    ns = fresh_namespace()
    return [run_cpython_code(step, ns) for step in case.steps]


def run_cpython_code(code: str, ns: dict[str, Any]) -> Outcome:
    buf = io.StringIO()
    try:
        compiled = CompiledCase(code)
    except SyntaxError as exc:
        return Outcome(stdout="", exc_type=type(exc).__name__, exc_message=exc.msg, exc_line=exc.lineno)
    value: Any = None
    try:
        with contextlib.redirect_stdout(buf):
            if compiled.is_async:
                value = asyncio.run(compiled.run_async(ns))
            else:
                value = compiled.run_sync(ns)
    except FinalAnswerSignal as signal:
        return Outcome(
            stdout=buf.getvalue(),
            value_repr=safe_repr(signal.value),
            value_type=type(signal.value).__name__,
            is_final_answer=True,
        )
    except Exception as exc:  # the snippet's own error: record it as the reference outcome
        return Outcome(
            stdout=buf.getvalue(),
            exc_type=type(exc).__name__,
            exc_message=exc.msg if isinstance(exc, SyntaxError) else safe_str(exc),
            exc_line=_snippet_line(exc),
        )
    if compiled.expr_code is None:
        return Outcome(stdout=buf.getvalue())
    return Outcome(stdout=buf.getvalue(), value_repr=safe_repr(value), value_type=type(value).__name__)


def safe_str(value: Any) -> str:
    """str() that cannot fail (a snippet's exception may define a raising __str__)."""
    try:
        return str(value)
    except Exception as exc:  # noqa: BLE001
        return f"<str raised {type(exc).__name__}>"


def safe_repr(value: Any) -> str:
    """repr() that cannot fail (a snippet's own __repr__ may raise)."""
    try:
        return repr(value)
    except Exception as exc:  # noqa: BLE001
        return f"<repr raised {type(exc).__name__}>"


def _snippet_line(exc: BaseException) -> int | None:
    """Line of the innermost traceback frame that belongs to the snippet (what an agent should be told)."""
    line = None
    tb = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == "<snippet>":
            line = tb.tb_lineno
        tb = tb.tb_next
    return line
