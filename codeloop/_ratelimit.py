"""Spacing calls evenly in time: each call reserves the next free slot and sleeps until it.

Layer 1 utility, shared by models (``requests_per_minute``) and the web tools (``rate_limit`` per
second). Reservation is a few arithmetic operations under a thread lock, so one limiter is safe for many
coroutines on one loop and for several loops and threads; nobody holds the lock while sleeping.
"""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

__all__ = ["SlotLimiter"]


class SlotLimiter:
    """Calls start at least ``interval`` seconds apart, in the order they asked (0: no limit)."""

    def __init__(self, interval: float = 0.0):
        self.interval = interval
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
        """Wait (without blocking the loop) until this call may start."""
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

    # Picklable and copyable (tools get saved and copied): the lock and the schedule are not state.
    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        del state["_lock"]
        state["_next"] = 0.0
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()
