"""Scorers for evals: how an agent's answer is compared with the expected one.

Layer 7 (faces). A scorer is ``scorer(output, expected, task) -> float | bool`` (1.0 / True is right);
by name: ``exact`` (same text, surrounding whitespace ignored), ``contains`` (the expected text appears in
the answer, case-insensitive), ``numeric`` (the first number in the answer equals the expected number,
relative tolerance 1e-6), or ``python:module.function`` / ``module:function`` for your own.
"""

from __future__ import annotations

import importlib
import math
import re
from collections.abc import Callable
from typing import Any

__all__ = ["exact", "contains", "numeric", "get_scorer", "SCORERS"]

Scorer = Callable[[Any, Any, dict[str, Any]], Any]

_NUMBER = re.compile(r"[-+]?(?:\d[\d,_]*\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")


def _as_text(value: Any) -> str:
    return value if isinstance(value, str) else ("" if value is None else str(value))


def exact(output: Any, expected: Any, task: dict[str, Any] | None = None) -> float:
    if output == expected:
        return 1.0
    return float(_as_text(output).strip() == _as_text(expected).strip())


def contains(output: Any, expected: Any, task: dict[str, Any] | None = None) -> float:
    return float(_as_text(expected).strip().lower() in _as_text(output).lower())


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, int | float):
        return float(value)
    match = _NUMBER.search(_as_text(value))
    if match is None:
        return None
    try:
        return float(match.group().replace(",", "").replace("_", ""))
    except ValueError:
        return None


def numeric(output: Any, expected: Any, task: dict[str, Any] | None = None) -> float:
    got, want = _number(output), _number(expected)
    if got is None or want is None:
        return 0.0
    return float(math.isclose(got, want, rel_tol=1e-6, abs_tol=1e-9))


SCORERS: dict[str, Scorer] = {"exact": exact, "contains": contains, "numeric": numeric}


def get_scorer(spec: str | Scorer) -> Scorer:
    """A scorer from a name (exact, contains, numeric), ``python:pkg.mod.fn``, ``pkg.mod:fn``, or a callable."""
    if callable(spec):
        return spec
    if spec in SCORERS:
        return SCORERS[spec]
    path = spec.removeprefix("python:")
    module_name, sep, attr = path.partition(":")
    if not sep:
        module_name, _, attr = path.rpartition(".")
    if not module_name or not attr:
        raise ValueError(
            f"Unknown scorer {spec!r}: use exact, contains, numeric, or python:module.function for your own."
        )
    try:
        fn = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as e:
        raise ValueError(f"Scorer {spec!r} cannot be loaded ({type(e).__name__}: {e}).") from e
    if not callable(fn):
        raise ValueError(f"Scorer {spec!r} is not callable.")
    return fn
