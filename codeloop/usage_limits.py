"""Usage limits of a run: tokens, dollars, model calls, tool calls and seconds.

``UsageLimits`` is configuration (on the agent, or per run). ``RunBudget`` is the per-run state the loop
consults *before* each model call and each tool call: when the call would cross a limit, the run stops
with :class:`UsageLimitExceeded`, which names the limit and carries the partial result (output so far,
steps, usage, cost). The counters serialize (``RunBudget.to_dict``) so a stored run resumes with the
usage it had, and a resumed run can be given higher limits (``budget.limits = ...``).

Before a model call, its input tokens are the offline estimate of the request (``models/tokens.py``,
calibrated from provider usage) and its cost the price of those input tokens; output tokens cannot be
known in advance, so ``max_output_tokens`` stops the run once the output so far has reached it (and the
remaining allowance is passed as the call's ``max_tokens`` when the model takes one). ``max_seconds``
is checked before each call and bounds the model call itself.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, fields
from typing import Any

from .messages import TokenUsage

__all__ = ["UsageLimits", "UsageLimitExceeded", "RunBudget"]


@dataclass(frozen=True)
class UsageLimits:
    """Limits of one run; None means no limit. Costs are in US dollars."""

    max_input_tokens: int | None = None
    max_output_tokens: int | None = None
    max_total_tokens: int | None = None
    max_cost_usd: float | None = None
    max_model_calls: int | None = None
    max_tool_calls: int | None = None
    max_seconds: float | None = None

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if value is not None and (not isinstance(value, int | float) or value < 0):
                raise ValueError(
                    f"UsageLimits.{f.name} must be a non-negative number or None, got {value!r}."
                )

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name) is not None}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> UsageLimits:
        return cls(**data)


class UsageLimitExceeded(Exception):
    """The run stopped before a call that would have crossed ``limit``.

    ``limit`` is the UsageLimits field, ``allowed`` its value, ``needed`` what the call would have
    brought the run to; ``result`` is the partial RunResult (state "usage_limit_exceeded", the steps,
    usage and cost so far), set when the run ends.
    """

    def __init__(self, limit: str, allowed: float, needed: float, detail: str = ""):
        self.limit = limit
        self.allowed = allowed
        self.needed = needed
        self.result: Any = None
        text = f"Usage limit {limit}={allowed:g} would be exceeded ({detail or f'would reach {needed:g}'})."
        super().__init__(text + " Raise the limit to continue.")

    def __reduce__(self) -> Any:
        return (type(self), (self.limit, self.allowed, self.needed))


class RunBudget:
    """Counters of one run checked against its limits."""

    __slots__ = ("limits", "model_calls", "tool_calls", "elapsed_before", "started", "exceeded")

    def __init__(self, limits: UsageLimits | None = None):
        self.limits = limits or UsageLimits()
        self.model_calls = 0
        self.tool_calls = 0
        self.elapsed_before = 0.0  # seconds spent by earlier sessions of a resumed run
        self.started = time.monotonic()
        self.exceeded: UsageLimitExceeded | None = None

    @property
    def elapsed(self) -> float:
        return self.elapsed_before + time.monotonic() - self.started

    def remaining_seconds(self) -> float | None:
        limit = self.limits.max_seconds
        return None if limit is None else limit - self.elapsed

    def _stop(self, limit: str, allowed: float, needed: float, detail: str) -> None:
        error = UsageLimitExceeded(limit, allowed, needed, detail)
        self.exceeded = error
        raise error

    def check_time(self) -> None:
        limit = self.limits.max_seconds
        if limit is not None and self.elapsed >= limit:
            self._stop("max_seconds", limit, self.elapsed, f"{self.elapsed:.2f} s elapsed")

    def time_out(self) -> None:
        """The call in flight ran out of ``max_seconds``."""
        limit = self.limits.max_seconds or 0.0
        self._stop("max_seconds", limit, self.elapsed, f"the call in flight ran past {limit:g} s")

    def before_model_call(self, usage: TokenUsage, input_tokens: int, input_cost: float | None) -> None:
        """Raise when a call sending about ``input_tokens`` (costing ``input_cost`` before output) would
        cross a limit."""
        limits = self.limits
        if limits.max_model_calls is not None and self.model_calls + 1 > limits.max_model_calls:
            self._stop("max_model_calls", limits.max_model_calls, self.model_calls + 1, "one more model call")
        self.check_time()
        if (
            limits.max_input_tokens is not None
            and usage.input_tokens + input_tokens > limits.max_input_tokens
        ):
            needed = usage.input_tokens + input_tokens
            self._stop(
                "max_input_tokens",
                limits.max_input_tokens,
                needed,
                f"{usage.input_tokens} used + ~{input_tokens} next",
            )
        if limits.max_output_tokens is not None and usage.output_tokens >= limits.max_output_tokens:
            self._stop(
                "max_output_tokens", limits.max_output_tokens, usage.output_tokens, "no output tokens left"
            )
        if (
            limits.max_total_tokens is not None
            and usage.total_tokens + input_tokens >= limits.max_total_tokens
        ):
            needed = usage.total_tokens + input_tokens
            self._stop(
                "max_total_tokens",
                limits.max_total_tokens,
                needed,
                f"{usage.total_tokens} used + ~{input_tokens} next",
            )
        if limits.max_cost_usd is not None:
            spent = usage.cost or 0.0
            needed = spent + (input_cost or 0.0)
            if needed >= limits.max_cost_usd:
                self._stop(
                    "max_cost_usd",
                    limits.max_cost_usd,
                    needed,
                    f"${spent:.6f} spent + ${input_cost or 0:.6f} input",
                )

    def output_allowance(self, usage: TokenUsage, input_tokens: int) -> int | None:
        """The most output tokens the next call may produce within the token limits (None: no cap)."""
        caps = []
        if self.limits.max_output_tokens is not None:
            caps.append(self.limits.max_output_tokens - usage.output_tokens)
        if self.limits.max_total_tokens is not None:
            caps.append(self.limits.max_total_tokens - usage.total_tokens - input_tokens)
        return max(1, min(caps)) if caps else None

    def model_called(self) -> None:
        self.model_calls += 1

    def before_tool_call(self, name: str) -> None:
        limit = self.limits.max_tool_calls
        if limit is not None and self.tool_calls + 1 > limit:
            self._stop("max_tool_calls", limit, self.tool_calls + 1, f"one more call, to {name!r}")
        self.check_time()
        self.tool_calls += 1

    def to_dict(self) -> dict[str, Any]:
        return {
            "limits": self.limits.to_dict(),
            "model_calls": self.model_calls,
            "tool_calls": self.tool_calls,
            "elapsed": self.elapsed,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any], limits: UsageLimits | None = None) -> RunBudget:
        """A budget with the counters of a stored run; ``limits`` (e.g. higher ones) replace the stored."""
        budget = cls(limits or UsageLimits.from_dict(data.get("limits") or {}))
        budget.model_calls = int(data.get("model_calls", 0))
        budget.tool_calls = int(data.get("tool_calls", 0))
        budget.elapsed_before = float(data.get("elapsed", 0.0))
        return budget
