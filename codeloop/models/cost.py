"""The cost in US dollars of a model call.

The source of prices is ``genai-prices`` (the maintained price database pydantic-ai uses; imported on
the first call priced): it knows input, cached input, cache writes, output and reasoning tokens, tiered
long-context prices and dated snapshots. Users add or override prices, in **US dollars per million
tokens**: ``register_price("my-model", input=1.0, output=2.0)`` for every Model, or
``Model(prices={...})`` for one model; those win over the database.

A model neither knows gets ``cost=None`` (unknown, never a guess) and one warning per model id saying
how to add a price.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass
from typing import Any

from ..messages import TokenUsage
from .profiles import model_name

__all__ = [
    "Price",
    "PRICES",
    "register_price",
    "price_for",
    "compute_cost",
    "with_cost",
    "cost_of",
    "UnknownPriceWarning",
]


class UnknownPriceWarning(UserWarning):
    """No price is known for a model: its calls have ``cost=None``."""


@dataclass(frozen=True)
class Price:
    """A user's price, USD per million tokens. ``cached_input`` defaults to ``input``,
    ``reasoning`` to ``output``, ``cache_write`` to ``input``."""

    input: float
    output: float
    cached_input: float | None = None
    reasoning: float | None = None
    cache_write: float | None = None


# Prices the user registered (bare model name -> Price); they override genai-prices.
PRICES: dict[str, Price] = {}

# Providers genai-prices knows under the same name as a codeloop model-id prefix.
_PROVIDERS = {"openai": "openai", "anthropic": "anthropic", "azure": "azure", "groq": "groq"}
_SNAPSHOT = re.compile(r"^(\d{4}-\d{2}-\d{2}|\d{8}|\d{4}|latest)$")
_warned: set[str] = set()
_database: Any = None


def _as_price(value: Price | dict[str, Any] | tuple[float, ...]) -> Price:
    if isinstance(value, Price):
        return value
    if isinstance(value, dict):
        return Price(**value)
    return Price(*value)


def register_price(
    model_id: str,
    input: float,
    output: float,
    cached_input: float | None = None,
    reasoning: float | None = None,
    cache_write: float | None = None,
) -> None:
    """Set the price of a model (USD per million tokens) for every Model; wins over genai-prices."""
    PRICES[model_name(model_id)] = Price(input, output, cached_input, reasoning, cache_write)


def price_for(model_id: str | None) -> Price | None:
    """The price a user registered for this model (or for the base of a dated snapshot), else None."""
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
    """Dollars for ``usage`` at a user's ``price``. ``input_tokens`` includes cached and cache-write
    tokens, ``output_tokens`` includes reasoning tokens (as providers report them)."""
    cached = min(usage.cached_input_tokens, usage.input_tokens)
    written = min(usage.cache_write_tokens, usage.input_tokens - cached)
    reasoning = min(usage.reasoning_tokens, usage.output_tokens)
    rate = lambda value, default: default if value is None else value  # noqa: E731
    return (
        (usage.input_tokens - cached - written) * price.input
        + cached * rate(price.cached_input, price.input)
        + written * rate(price.cache_write, price.input)
        + (usage.output_tokens - reasoning) * price.output
        + reasoning * rate(price.reasoning, price.output)
    ) / 1_000_000


def _database_cost(usage: TokenUsage, model_id: str) -> float | None:
    global _database
    if _database is None:
        try:
            import genai_prices  # lazy: pydantic and the price data load on the first priced call
        except ImportError as e:  # a broken install must not break every model call
            _database = False
            warnings.warn(
                f"genai-prices cannot be imported ({e}); costs are unknown unless you register prices. "
                "Install it with: pip install genai-prices",
                UnknownPriceWarning,
                stacklevel=4,
            )
        else:
            _database = genai_prices
    if _database is False:
        return None
    head, sep, _ = model_id.partition(":")
    provider = _PROVIDERS.get(head.lower()) if sep else None
    values = {"input_tokens": usage.input_tokens, "output_tokens": usage.output_tokens}
    if usage.cached_input_tokens:
        values["cache_read_tokens"] = usage.cached_input_tokens
    if usage.cache_write_tokens:
        values["cache_write_tokens"] = usage.cache_write_tokens
    if usage.reasoning_tokens:
        values["output_reasoning_tokens"] = usage.reasoning_tokens
    name = model_name(model_id)
    try:
        found = _database.calc_price(_database.Usage(**values), name, provider_id=provider)
    except LookupError:
        return None
    return float(found.total_price)


def cost_of(
    usage: TokenUsage,
    model_id: str | None,
    prices: Price | dict[str, Any] | tuple[float, ...] | None = None,
    note: bool = True,
) -> float | None:
    """Dollars for ``usage`` of ``model_id``: the model's own ``prices``, else a registered price, else
    genai-prices; None (and, with ``note``, one warning per model) when none knows the model."""
    if prices is not None:
        return compute_cost(usage, _as_price(prices))
    price = price_for(model_id)
    if price is not None:
        return compute_cost(usage, price)
    if not model_id:
        return None  # nothing to look up (a test double without a model id): no note either
    cost = _database_cost(usage, model_id)
    if cost is None and note and _database is not False:  # no database: its own warning said so
        key = model_id
        if key not in _warned:
            _warned.add(key)
            warnings.warn(
                f"No price known for model {key!r}: its cost is reported as None. Add one with "
                f"codeloop.register_price({model_name(model_id)!r}, input=..., output=...) (USD per "
                "million tokens) or Model(..., prices={'input': ..., 'output': ...}).",
                UnknownPriceWarning,
                stacklevel=3,
            )
    return cost


def with_cost(
    usage: TokenUsage | None,
    model_id: str | None,
    prices: Price | dict[str, Any] | tuple[float, ...] | None = None,
    note: bool = True,
) -> TokenUsage | None:
    """Fill ``usage.cost`` (in place, and return it)."""
    if usage is None:
        return None
    usage.cost = cost_of(usage, model_id, prices, note)
    return usage
