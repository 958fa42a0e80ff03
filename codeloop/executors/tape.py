"""The values agent code reads from the clock and from random sources, recorded so they can be replayed.

Layer 3 (executors). A stored run (codeloop.runs) rebuilds the executor's variables after a crash by
running the code of its finished steps again. That only gives the same variables if the code sees the
same clock and the same random numbers as the first time, so each session has a ``Tape``:

* the run's ``random`` module (module functions, ``random.Random()`` without a seed) draws from one
  generator per session, seeded by the caller with the run's seed: replaying the same steps in order
  gives the same numbers with nothing recorded;
* everything else is recorded as it is read, as ``[kind, value]`` pairs (JSON), and handed back with
  the run's result: ``time.time()`` and the other clocks, ``datetime.now()/today()/utcnow()``, calls
  that read the current time implicitly (``time.localtime()``, ``time.strftime(fmt)``...),
  ``random.seed()`` with no argument, ``random.SystemRandom``, ``secrets``, ``uuid.uuid1/uuid4``;
* a run given a tape to replay gets those values back in the same order. When the code reads
  something else than what was recorded (other kind, more or fewer values), the replay has diverged:
  from there on it reads live values and the result says ``diverged``, so the caller can tell that
  the rebuilt variables may differ.

A session without a tape request reads the real clock (one flag test per call) and the process-wide
``random`` functions, as before.
"""

from __future__ import annotations

import base64
import os
import random as _random
import time as _time
from collections.abc import Callable
from typing import Any, TypeVar

__all__ = ["Tape", "SeededRandom", "RecordedSystemRandom", "CLOCK_ATTRS", "clock_attr"]

T = TypeVar("T")

# attributes whose reads the compiler routes through the attribute guard (datetime's "now" methods)
CLOCK_ATTRS = frozenset({"now", "utcnow", "today"})


class Tape:
    """Per session: what the current run records, what it replays, and the session's random generator."""

    __slots__ = ("active", "values", "replay", "pos", "diverged", "rng", "seeded", "_on_seed")

    def __init__(self, on_seed: Callable[[], None] | None = None):
        self.active = False  # a run asked for recording: clock reads go through take()
        self.values: list[list[Any]] = []
        self.replay: list[Any] | None = None
        self.pos = 0
        self.diverged = False
        self.rng = _random.Random()
        self.seeded = False  # the session's random module draws from ``rng`` (set by the first seed)
        self._on_seed = on_seed

    def begin(self, spec: dict[str, Any] | None) -> None:
        """Start a run: ``spec`` is None (read live values) or {"seed": int, "replay": [[kind, value]...]}.
        The seed is applied once per session (later runs go on drawing from the same generator)."""
        if spec is None:
            self.active = False
            return
        seed = spec.get("seed")
        if seed is not None and not self.seeded:
            self.rng.seed(seed)
            self.seeded = True
            if self._on_seed is not None:
                self._on_seed()  # an already imported random module now draws from rng
        replay = spec.get("replay")
        self.replay = list(replay) if isinstance(replay, list) else None
        self.values = []
        self.pos = 0
        self.diverged = False
        self.active = True

    def end(self) -> dict[str, Any] | None:
        """Finish the run: {"values": [...], "diverged": bool}, or None when it recorded nothing."""
        if not self.active:
            return None
        self.active = False
        if self.replay is not None and self.pos != len(self.replay):
            self.diverged = True  # the replayed code read fewer values than the original did
        values, self.values, self.replay = self.values, [], None
        return {"values": values, "diverged": self.diverged}

    def take(self, kind: str, live: Callable[[], T]) -> T:
        """The value for this read: the recorded one when replaying, else ``live()`` (recorded)."""
        if not self.active:
            return live()
        replay = self.replay
        if replay is not None and not self.diverged:
            pos = self.pos
            if pos < len(replay):
                entry = replay[pos]
                if type(entry) is list and len(entry) == 2 and entry[0] == kind:
                    self.pos = pos + 1
                    self.values.append(entry)
                    return entry[1]  # type: ignore[no-any-return]
            self.diverged = True
        value = live()
        self.values.append([kind, value])
        return value

    # ---- the stand-ins the module proxies get ----
    def time_patches(self) -> dict[str, Any]:
        take = self.take
        patches: dict[str, Any] = {}
        for name in (
            "time", "time_ns", "monotonic", "monotonic_ns", "perf_counter", "perf_counter_ns",
            "process_time", "process_time_ns", "thread_time", "thread_time_ns",
        ):  # fmt: skip
            real = getattr(_time, name, None)
            if real is not None:
                patches[name] = _clock(take, name, real)
        now = patches["time"]

        def localtime(secs: Any = None) -> Any:
            return _time.localtime(now() if secs is None else secs)

        def gmtime(secs: Any = None) -> Any:
            return _time.gmtime(now() if secs is None else secs)

        def ctime(secs: Any = None) -> str:
            return _time.ctime(now() if secs is None else secs)

        def asctime(t: Any = None) -> str:
            return _time.asctime(_time.localtime(now()) if t is None else t)

        def strftime(format: str, t: Any = None) -> str:  # noqa: A002 - the stdlib's parameter name
            return _time.strftime(format, _time.localtime(now()) if t is None else t)

        for fn in (localtime, gmtime, ctime, asctime, strftime):
            fn.__doc__ = getattr(_time, fn.__name__).__doc__
            patches[fn.__name__] = fn
        return patches

    def random_patches(self) -> dict[str, Any]:
        """Module functions bound to the session's generator (C speed: no wrapper), once seeded."""
        if not self.seeded:
            return {"Random": SeededRandom, "SystemRandom": RecordedSystemRandom}
        rng, shared = self.rng, getattr(_random, "_inst", None)
        out: dict[str, Any] = {"Random": SeededRandom, "SystemRandom": RecordedSystemRandom}
        for name, value in vars(_random).items():
            if getattr(value, "__self__", None) is shared and shared is not None:
                out[name] = getattr(rng, name)
        take = self.take

        def seed(a: Any = None, version: int = 2) -> None:
            rng.seed(_fresh_seed(take) if a is None else a, version)

        seed.__doc__ = _random.seed.__doc__
        out["seed"] = seed
        return out

    def secrets_patches(self) -> dict[str, Any]:
        sysrand = RecordedSystemRandom()

        def token_bytes(nbytes: int | None = None) -> bytes:
            return sysrand.randbytes(32 if nbytes is None else nbytes)

        def token_hex(nbytes: int | None = None) -> str:
            return token_bytes(nbytes).hex()

        def token_urlsafe(nbytes: int | None = None) -> str:
            return base64.urlsafe_b64encode(token_bytes(nbytes)).rstrip(b"=").decode("ascii")

        def randbelow(exclusive_upper_bound: int) -> int:
            if exclusive_upper_bound <= 0:
                raise ValueError("Upper bound must be positive.")
            return sysrand.randrange(exclusive_upper_bound)

        return {
            "SystemRandom": RecordedSystemRandom,
            "token_bytes": token_bytes,
            "token_hex": token_hex,
            "token_urlsafe": token_urlsafe,
            "randbelow": randbelow,
            "randbits": sysrand.getrandbits,
            "choice": sysrand.choice,
        }

    def uuid_patches(self) -> dict[str, Any]:
        import uuid

        take = self.take

        def uuid4() -> uuid.UUID:
            return uuid.UUID(hex=take("uuid4", lambda: os.urandom(16).hex()), version=4)

        def uuid1(node: int | None = None, clock_seq: int | None = None) -> uuid.UUID:
            return uuid.UUID(take("uuid1", lambda: str(uuid.uuid1(node, clock_seq))))

        uuid4.__doc__, uuid1.__doc__ = uuid.uuid4.__doc__, uuid.uuid1.__doc__
        return {"uuid4": uuid4, "uuid1": uuid1}

    def clock_attr(self, obj: Any, name: str) -> Any:
        """``datetime.now`` / ``date.today`` / ``datetime.utcnow`` read by code, on the class or an
        instance: a version that takes the time from the tape (the real attribute when not recording)."""
        real = getattr(obj, name)
        dt = _datetime_module()
        if not self.active or dt is None:
            return real
        cls = obj if isinstance(obj, type) else type(obj)
        if not (isinstance(cls, type) and issubclass(cls, dt.date)):
            return real
        clock = self.take

        def now() -> float:
            return clock("time", _time.time)

        if name == "today":
            return lambda: cls.fromtimestamp(now())
        if name == "utcnow" and issubclass(cls, dt.datetime):
            return lambda: cls.fromtimestamp(now(), dt.timezone.utc).replace(tzinfo=None)
        if name == "now" and issubclass(cls, dt.datetime):
            return lambda tz=None: cls.fromtimestamp(now(), tz)
        return real


def _clock(take: Callable[[str, Callable[[], Any]], Any], kind: str, real: Callable[[], Any]) -> Any:
    def read() -> Any:
        return take(kind, real)

    read.__name__ = read.__qualname__ = kind
    read.__doc__ = real.__doc__
    return read


def _datetime_module() -> Any:
    import sys

    return sys.modules.get("datetime")


def _fresh_seed(take: Callable[[str, Callable[[], Any]], Any]) -> int:
    return int(take("seed", lambda: int.from_bytes(os.urandom(16), "big")))


def _active_tape() -> Tape | None:
    from .guards import ACTIVE_SESSION  # guards imports this module: read the session lazily

    session = ACTIVE_SESSION.get()
    return getattr(session, "tape", None)


class SeededRandom(_random.Random):
    """``random.Random`` for code: without a seed it takes one from the tape (recorded, replayed)."""

    def seed(self, a: Any = None, version: int = 2) -> None:
        if a is None:
            tape = _active_tape()
            if tape is not None:
                a = _fresh_seed(tape.take)
        super().seed(a, version)


SeededRandom.__name__ = SeededRandom.__qualname__ = "SeededRandom"


class RecordedSystemRandom(_random.SystemRandom):
    """``random.SystemRandom`` for code: each value from the OS is recorded (and replayed)."""

    def random(self) -> float:
        return self._take("sysrandom", super().random)

    def getrandbits(self, k: int) -> int:
        return self._take("sysbits", lambda: super(RecordedSystemRandom, self).getrandbits(k))

    def randbytes(self, n: int) -> bytes:
        return bytes.fromhex(self._take("sysbytes", lambda: os.urandom(n).hex()))

    @staticmethod
    def _take(kind: str, live: Callable[[], T]) -> T:
        tape = _active_tape()
        return live() if tape is None else tape.take(kind, live)


def clock_attr(obj: Any, name: str) -> Any:
    """The attribute guard's entry point (see ``CLOCK_ATTRS``)."""
    tape = _active_tape()
    if tape is None:
        return getattr(obj, name)
    return tape.clock_attr(obj, name)
