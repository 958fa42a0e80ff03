"""Prices and cost of a model call.

Units: **US dollars per million tokens**, for input (prompt), cached input and output (completion).
Prices are list prices published by the providers (2025); they change, so treat them as estimates and
override them: ``register_price("my-model", input=1.0, output=2.0)`` globally, or ``Model(prices={...})``
for one model. A model id matches its bare name, or a dated snapshot / "-latest" of a table key
("gpt-4o-mini-2024-07-18" -> "gpt-4o-mini", but "o3-pro" is not "o3"); unknown models get
``cost=None`` (unknown, not free).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from ..messages import TokenUsage
from .profiles import model_name

__all__ = ["Price", "PRICES", "register_price", "price_for", "compute_cost", "with_cost"]


@dataclass(frozen=True)
class Price:
    input: float  # USD per million input tokens
    output: float  # USD per million output tokens
    cached_input: float | None = None  # USD per million cached input tokens (defaults to input)


PRICES: dict[str, Price] = {
    "gpt-4o": Price(2.50, 10.00, 1.25),
    "gpt-4o-mini": Price(0.15, 0.60, 0.075),
    "gpt-4.1": Price(2.00, 8.00, 0.50),
    "gpt-4.1-mini": Price(0.40, 1.60, 0.10),
    "gpt-4.1-nano": Price(0.10, 0.40, 0.025),
    "gpt-5": Price(1.25, 10.00, 0.125),
    "gpt-5-mini": Price(0.25, 2.00, 0.025),
    "gpt-5-nano": Price(0.05, 0.40, 0.005),
    "o1": Price(15.00, 60.00, 7.50),
    "o3": Price(2.00, 8.00, 0.50),
    "o3-mini": Price(1.10, 4.40, 0.55),
    "o4-mini": Price(1.10, 4.40, 0.275),
    "claude-3-5-haiku": Price(0.80, 4.00, 0.08),
    "claude-3-7-sonnet": Price(3.00, 15.00, 0.30),
    "claude-sonnet-4": Price(3.00, 15.00, 0.30),
    "claude-opus-4": Price(15.00, 75.00, 1.50),
    "claude-sonnet-4-5": Price(3.00, 15.00, 0.30),
    "claude-haiku-4-5": Price(1.00, 5.00, 0.10),
}


_SNAPSHOT = re.compile(r"^(\d{4}-\d{2}-\d{2}|\d{8}|\d{4}|latest)$")


def _as_price(value: Price | dict[str, Any] | tuple[float, ...]) -> Price:
    if isinstance(value, Price):
        return value
    if isinstance(value, dict):
        return Price(**value)
    return Price(*value)


def register_price(model_id: str, input: float, output: float, cached_input: float | None = None) -> None:
    """Set the price of a model (USD per million tokens); overrides the table for every Model."""
    PRICES[model_name(model_id)] = Price(input, output, cached_input)


def price_for(model_id: str | None) -> Price | None:
    name = model_name(model_id)
    if not name:
        return None
    if name in PRICES:
        return PRICES[name]
    # Only dated snapshots and "-latest" share a price with their base id; "o3-pro" is not "o3".
    for key in sorted((k for k in PRICES if name.startswith(k + "-")), key=len, reverse=True):
        if _SNAPSHOT.match(name[len(key) + 1 :]):
            return PRICES[key]
    return None


def compute_cost(usage: TokenUsage, price: Price) -> float:
    """Dollars for ``usage``. ``input_tokens`` includes cached ones (OpenAI counts them that way)."""
    cached = min(usage.cached_input_tokens, usage.input_tokens)
    cached_rate = price.input if price.cached_input is None else price.cached_input
    return (
        (usage.input_tokens - cached) * price.input
        + cached * cached_rate
        + usage.output_tokens * price.output
    ) / 1_000_000


def with_cost(
    usage: TokenUsage | None, model_id: str | None, prices: Price | dict[str, Any] | None = None
) -> TokenUsage | None:
    """Fill ``usage.cost`` (in place, and return it) from the model's own prices or the table."""
    if usage is None:
        return None
    price = _as_price(prices) if prices is not None else price_for(model_id)
    if price is not None:
        usage.cost = compute_cost(usage, price)
    return usage
