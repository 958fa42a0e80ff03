"""``requests_per_minute``: spaces requests evenly so a model never sends faster than allowed.

Each request reserves the next free slot (``60 / requests_per_minute`` seconds after the previous one)
and sleeps until it. Reservation is a few arithmetic operations under a thread lock, so the limiter is
safe for many coroutines on one loop and for several loops/threads sharing one model.
"""

from __future__ import annotations

import asyncio
import threading
import time

__all__ = ["RateLimiter"]


class RateLimiter:
    def __init__(self, requests_per_minute: float | None = None):
        if requests_per_minute is not None and requests_per_minute <= 0:
            raise ValueError("requests_per_minute must be a positive number (or None for no limit).")
        self.requests_per_minute = requests_per_minute
        self.interval = 60.0 / requests_per_minute if requests_per_minute else 0.0
        self._next = 0.0
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        return self.interval > 0

    def _reserve(self) -> float:
        with self._lock:
            now = time.monotonic()
            slot = max(now, self._next)
            self._next = slot + self.interval
            return slot - now

    async def acquire(self) -> None:
        """Wait (without blocking the loop) until this request may be sent."""
        if self.interval:
            wait = self._reserve()
            if wait > 0:
                await asyncio.sleep(wait)

    def throttle(self) -> None:
        """Blocking variant of ``acquire`` for sync code."""
        if self.interval:
            wait = self._reserve()
            if wait > 0:
                time.sleep(wait)
