"""WorkerPool: pre-started isolated workers, forked from warm fork servers, shared by executors.

A ``LocalPythonExecutor`` checks a worker out of a pool when it needs one and closes it when it is
done: a worker runs one executor's code only and is never handed to another (a fresh one is forked
from the fork server, which never ran agent code). The pool keeps ``pool_size`` greeted workers idle
per configuration (sandbox, limits, timeout, policy), more after checkouts that found none, and reaps
idle workers above ``pool_size`` after ``idle_timeout`` seconds. ``max_workers`` caps the processes
(idle and busy); more checkouts than that wait in FIFO order, at most ``acquire_timeout`` seconds, then
fail with an error naming the limits. One pool per process is shared by default (``WorkerPool.shared``);
executors with ``pool_size``/``max_workers`` share the pool of those sizes; or pass ``pool=``.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import json
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from codeloop._sync import at_exit_before_thread_joins
from codeloop.errors import InterpreterError
from codeloop.executors.worker.process import WorkerDied, WorkerProcess
from codeloop.executors.worker.sandbox import Limits
from codeloop.executors.worker.zygote import ForkServer

__all__ = ["WorkerPool", "Flavor"]

HELLO_TIMEOUT = 30.0
_SLOT = "slot"
_MAX_WANT = 64  # most idle workers kept ready after misses (never more than are busy)  # what a waiter is given when it may fork a worker itself


@dataclass(eq=False)
class Flavor:
    """Workers that are interchangeable: same sandbox, limits, timeout and policy."""

    sandbox: str
    limits: Limits
    timeout: float | None
    policy: dict[str, Any]
    idle: collections.deque = field(default_factory=collections.deque)  # (worker, idle since)
    want: int = 0  # idle workers to keep (pool_size, more after misses)


class WorkerPool:
    """Isolated workers ready to be checked out (see the module docstring).

    Args:
        pool_size: idle workers kept ready per configuration (the minimum; 0: fork on demand only).
        max_workers: most worker processes at once, idle and busy.
        idle_timeout: seconds an idle worker above ``pool_size`` lives before it is reaped.
        acquire_timeout: seconds a checkout waits for a free place before it fails.
    """

    _shared: dict[tuple[int, int], WorkerPool] = {}
    _shared_lock = threading.Lock()

    def __init__(
        self,
        pool_size: int = 2,
        max_workers: int = 256,
        idle_timeout: float = 30.0,
        acquire_timeout: float = 60.0,
    ):
        if pool_size < 0 or max_workers < 1 or pool_size > max_workers:
            raise ValueError(
                f"need 0 <= pool_size <= max_workers and max_workers >= 1 ({pool_size=}, {max_workers=})"
            )
        self.pool_size, self.max_workers = pool_size, max_workers
        self.idle_timeout, self.acquire_timeout = idle_timeout, acquire_timeout
        self._lock = threading.Condition()
        self._flavors: dict[str, Flavor] = {}
        self._keyed: dict[Any, Flavor] = {}  # (see flavor)
        self._servers: dict[tuple[str, int], ForkServer] = {}
        self._server_lock = threading.Lock()
        self._waiters: collections.deque[tuple[Flavor, concurrent.futures.Future]] = collections.deque()
        self._busy = self._forking = 0
        self._counts = {"started": 0, "recycled": 0, "killed": 0, "fork_servers_started": 0}
        self._closed = False
        self._keeper: threading.Thread | None = None
        _POOLS.append(self)

    @classmethod
    def shared(cls, pool_size: int | None = None, max_workers: int | None = None) -> WorkerPool:
        """The process-wide pool of these sizes (the defaults: ``WorkerPool()``'s)."""
        size = 2 if pool_size is None else pool_size
        cap = max(256, size) if max_workers is None else max_workers
        with cls._shared_lock:
            pool = cls._shared.get((size, cap))
            if pool is None or pool._closed:
                pool = cls._shared[(size, cap)] = cls(size, cap)
            return pool

    # -- public --------------------------------------------------------------------------------
    def stats(self) -> dict[str, int]:
        """Workers idle, busy and being forked; started, recycled (closed after use) and killed
        (died or killed) so far; runs waiting for a worker; the limits."""
        with self._lock:
            return {
                "idle": sum(len(f.idle) for f in self._flavors.values()),
                "busy": self._busy,
                "forking": self._forking,
                "waiting": len(self._waiters),
                **self._counts,
                "pool_size": self.pool_size,
                "max_workers": self.max_workers,
            }

    def flavor(
        self, sandbox: str, limits: Limits, timeout: float | None, policy: dict[str, Any], key: Any = None
    ) -> Flavor:
        """The flavor of these settings. ``key``: a hashable that stands for all of them (the caller
        vouches for that), looked up first: an agent makes an executor per run."""
        found = None if key is None else self._keyed.get(key)
        if found is not None:
            return found
        whole = json.dumps([sandbox, vars(limits), timeout, policy], sort_keys=True, default=str)
        with self._lock:
            found = self._flavors.get(whole)
            if found is None:
                found = self._flavors[whole] = Flavor(sandbox, limits, timeout, policy, want=self.pool_size)
            if key is not None and len(self._keyed) < 256:
                self._keyed[key] = found
            self._wake_keeper()
            return found

    def try_checkout(self, flavor: Flavor) -> WorkerProcess | None:
        """An idle worker at once, or None."""
        with self._lock:
            worker = self._take_idle(flavor) if not self._waiters else None
            self._wake_keeper()
            return worker

    def checkout(self, flavor: Flavor, timeout: float | None = None) -> WorkerProcess:
        """A fresh, greeted worker; waits (FIFO) while ``max_workers`` are in use."""
        got = self._reserve(flavor)
        if isinstance(got, concurrent.futures.Future):
            limit = self.acquire_timeout if timeout is None else timeout
            try:
                got = got.result(limit)
            except concurrent.futures.TimeoutError:
                got = self._withdraw(got, limit)
        return got if isinstance(got, WorkerProcess) else self._fork_checked_out(flavor)

    async def acheckout(self, flavor: Flavor, timeout: float | None = None) -> WorkerProcess:
        """``checkout`` without blocking the event loop."""
        loop = asyncio.get_running_loop()
        got = self._reserve(flavor)
        if isinstance(got, concurrent.futures.Future):
            limit = self.acquire_timeout if timeout is None else timeout
            try:
                got = await asyncio.wait_for(asyncio.shield(asyncio.wrap_future(got)), limit)
            except TimeoutError:
                got = self._withdraw(got, limit)  # raises, unless a place came at that very moment
            except asyncio.CancelledError:
                self._give_back(self._withdraw(got, limit, raise_=False))
                raise
        if isinstance(got, WorkerProcess):
            return got
        return await loop.run_in_executor(_FORKERS, self._fork_checked_out, flavor)

    def close(self) -> None:
        """Close idle workers and the fork servers (which ends every worker forked from them)."""
        with self._lock:
            self._closed = True
            idle = [w for f in self._flavors.values() for w, _ in f.idle]
            for f in self._flavors.values():
                f.idle.clear()
            waiters, self._waiters = list(self._waiters), collections.deque()
            self._lock.notify_all()
        for _, fut in waiters:
            fut.set_exception(InterpreterError("the worker pool was closed"))
        for worker in idle:
            worker.close(graceful=False)
        with self._server_lock:
            servers, self._servers = list(self._servers.values()), {}
        for server in servers:
            server.close()

    # -- places and waiters (all under self._lock) -----------------------------------------
    def _total(self) -> int:
        return self._busy + self._forking + sum(len(f.idle) for f in self._flavors.values())

    def _take_idle(self, flavor: Flavor) -> WorkerProcess | None:
        while flavor.idle:
            worker, _ = flavor.idle.popleft()
            if worker.alive():
                worker.pool_state = "busy"
                self._busy += 1
                return worker
            worker.pool_state = "dead"
            self._counts["killed"] += 1
            _close_later(worker)
        return None

    def _make_room(self) -> bool:
        """A place for one more process: free, or made by closing an idle worker of another flavor."""
        if self._total() < self.max_workers:
            return True
        for f in self._flavors.values():
            if f.idle:
                worker, _ = f.idle.pop()
                worker.pool_state = "evicted"
                self._counts["recycled"] += 1
                _close_later(worker)
                return True
        return False

    def _reserve(self, flavor: Flavor) -> WorkerProcess | str | concurrent.futures.Future:
        with self._lock:
            if self._closed:
                raise InterpreterError("the worker pool was closed")
            if not self._waiters:
                worker = self._take_idle(flavor)
                if worker is not None:
                    self._wake_keeper()
                    return worker
                if self.pool_size:  # a miss: keep more ready (pool_size=0: fork on demand only)
                    flavor.want = min(flavor.want + 1, max(self.pool_size, min(_MAX_WANT, self._busy)))
                if self._make_room():
                    self._forking += 1
                    return _SLOT
            fut: concurrent.futures.Future = concurrent.futures.Future()
            self._waiters.append((flavor, fut))
            return fut

    def _withdraw(self, fut: concurrent.futures.Future, limit: float, raise_: bool = True) -> Any:
        with self._lock:
            for i, (_, waiting) in enumerate(self._waiters):
                if waiting is fut:
                    del self._waiters[i]
                    break
            else:
                return fut.result()  # handed a place at that very moment
            busy, waiting = self._busy, len(self._waiters)
        if not raise_:
            return None
        err = InterpreterError(
            f"No isolated worker became free within {limit:g} s: the worker pool is at its limit "
            f"(max_workers={self.max_workers}, pool_size={self.pool_size}; {busy} busy, {waiting} more "
            "waiting). Raise max_workers (executor_kwargs={'max_workers': ...} or WorkerPool(max_workers=...)) "
            "or run fewer executors at once."
        )
        err.exc_type, err.logs = "PoolExhausted", ""  # type: ignore[attr-defined]
        raise err

    def _give_back(self, got: Any) -> None:
        """A place or worker handed to a waiter that left meanwhile."""
        if isinstance(got, WorkerProcess):
            with self._lock:
                self._busy -= 1
            got.pool_state = "unused"
            got.close(graceful=False)  # (on_close hands its place on)
        elif got == _SLOT:
            with self._lock:
                self._forking -= 1
                self._hand_on()

    def _hand_on(self) -> None:
        """Give the first waiter an idle worker of its flavor, or a place to fork one."""
        while self._waiters:
            flavor, fut = self._waiters[0]
            if fut.done():
                self._waiters.popleft()
                continue
            worker = self._take_idle(flavor)
            if worker is None:
                if not self._make_room():
                    return
                self._forking += 1
            self._waiters.popleft()
            fut.set_result(worker if worker is not None else _SLOT)

    def _on_close(self, worker: WorkerProcess) -> None:
        state = getattr(worker, "pool_state", "")
        with self._lock:
            if state == "busy":
                self._busy -= 1
                died = worker.killed_by_host is not None or worker.dead_reason is not None
                self._counts["killed" if died else "recycled"] += 1
            self._hand_on()
            self._wake_keeper()

    # -- forking ---------------------------------------------------------------------------------
    def _server(self, flavor: Flavor) -> ForkServer:
        key = (flavor.sandbox, flavor.limits.scratch_mb)
        with self._server_lock:
            server = self._servers.get(key)
            if server is None or not server.alive():
                if server is not None:
                    server.close()
                server = self._servers[key] = ForkServer(
                    flavor.sandbox, flavor.limits.scratch_mb, flavor.policy
                )
                with self._lock:
                    self._counts["fork_servers_started"] += 1
            return server

    def _fork(self, flavor: Flavor) -> WorkerProcess:
        """A greeted worker, from a fork server (started or restarted here when needed)."""
        for attempt in (1, 2):
            server = self._server(flavor)
            try:
                worker = server.fork(flavor.limits, flavor.timeout, flavor.policy)
            except WorkerDied:
                if attempt == 2 or server.alive():
                    raise
                continue  # the fork server died: a new one is started
            try:
                worker.wait_hello(HELLO_TIMEOUT)
            except WorkerDied:
                worker.close(graceful=False)
                if attempt == 2 or server.alive():
                    raise
                continue
            worker.on_close = self._on_close
            return worker
        raise AssertionError("unreachable")

    def _fork_checked_out(self, flavor: Flavor) -> WorkerProcess:
        try:
            worker = self._fork(flavor)
        except BaseException:
            with self._lock:
                self._forking -= 1
                self._hand_on()
            raise
        with self._lock:
            self._forking -= 1
            self._busy += 1
            self._counts["started"] += 1
            worker.pool_state = "busy"
        return worker

    # -- the keeper: refills idle workers, reaps the surplus ---------------------------------
    def _wake_keeper(self) -> None:
        if self._keeper is None and not self._closed:
            self._keeper = threading.Thread(target=self._keep, name="codeloop-worker-pool", daemon=True)
            self._keeper.start()
        self._lock.notify_all()

    def _keep(self) -> None:
        while True:
            with self._lock:
                if self._closed:
                    return
                todo = None
                now = time.monotonic()
                for f in self._flavors.values():
                    # reap: idle workers above the minimum, idle too long
                    while len(f.idle) > self.pool_size and now - f.idle[0][1] > self.idle_timeout:
                        worker, _ = f.idle.popleft()
                        worker.pool_state = "reaped"
                        self._counts["recycled"] += 1
                        f.want = max(self.pool_size, f.want - 1)
                        _close_later(worker)
                    if (
                        todo is None
                        and not self._waiters
                        and len(f.idle) < f.want
                        and self._total() < self.max_workers
                    ):
                        todo = f
                if todo is None:
                    self._lock.wait(timeout=max(1.0, min(self.idle_timeout, 10.0)))
                    continue
                self._forking += 1
            try:
                worker: WorkerProcess | None = self._fork(todo)
            except Exception:  # noqa: BLE001 - a checkout reports the failure when it forks itself
                worker = None
                time.sleep(0.5)
            with self._lock:
                self._forking -= 1
                if worker is not None:
                    self._counts["started"] += 1
                    if self._closed:
                        worker.pool_state = "closed"
                    else:
                        worker.pool_state = "idle"
                        todo.idle.append((worker, time.monotonic()))
                        worker = None
                self._hand_on()
            if worker is not None:
                worker.close(graceful=False)


def _close_later(worker: WorkerProcess) -> None:
    # (called under the pool lock: closing may wait for the process, and its on_close takes the lock)
    _FORKERS.submit(worker.close, False, False)


_FORKERS = concurrent.futures.ThreadPoolExecutor(max_workers=32, thread_name_prefix="codeloop-worker-fork")
_POOLS: list[WorkerPool] = []


def _close_pools() -> None:
    for pool in list(_POOLS):
        try:
            pool.close()
        except Exception:  # noqa: BLE001
            pass


at_exit_before_thread_joins(_close_pools)
