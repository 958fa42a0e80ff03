"""``requests_per_minute``: spaces requests evenly so a model never sends faster than allowed.

The spacing itself is ``codeloop._ratelimit.SlotLimiter``, shared with the web tools; this adds the
per-minute unit and its error message.
"""

from __future__ import annotations

from .._ratelimit import SlotLimiter

__all__ = ["RateLimiter"]


class RateLimiter(SlotLimiter):
    def __init__(self, requests_per_minute: float | None = None):
        if requests_per_minute is not None and requests_per_minute <= 0:
            raise ValueError("requests_per_minute must be a positive number (or None for no limit).")
        self.requests_per_minute = requests_per_minute
        super().__init__(60.0 / requests_per_minute if requests_per_minute else 0.0)
