"""Isolated worker figures: cold start, warm round trip, tool calls from code.

Run: .venv/bin/python benchmarks/worker.py [--quick]

Prints medians (and the in-process executor's figures for a ratio where that makes sense):
- new isolated interpreter: ``LocalPythonExecutor()`` + its first ``x = 1`` + close, p50 and p99, as a
  user gets it (the shared worker pool: a pre-forked worker) and with nothing kept ready (``pool_size=0``:
  a fork from the fork server on demand); targets p50 <= 10 ms, p99 <= 30 ms
- cold start: a new pool (a fork server started in the sandbox) -> first trivial call answered
- spawn -> hello: the worker's own start as the host measures it (fork request -> hello)
- memory per idle worker: what a pre-forked idle worker adds (USS: its private pages; PSS)
- warm round trip: one trivial call on a started worker
- tool calls in a loop: per-call cost of a sync host tool called from a loop in code (best of several
  loops, minus one trivial round trip), for a plain function, a function marked ``blocking = False``
  and a codeloop ``@tool`` with a sync forward (validated by Tool.__call__ on the host)
- concurrent async tool calls: 50 awaited together, each sleeping 50 ms on the host
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time

from codeloop.executors import InProcessExecutor
from codeloop.executors.worker.host import LocalPythonExecutor
from codeloop.executors.worker.pool import WorkerPool
from codeloop.tools import tool as codeloop_tool


def _timed(fn) -> float:  # noqa: ANN001
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


def idle_worker_memory() -> tuple[int, int] | None:
    """(USS, PSS) in KiB of one idle pre-forked worker, found by its own uid; None where unreadable."""
    pool = WorkerPool(pool_size=4)
    ex = LocalPythonExecutor(pool=pool)
    ex("1")
    time.sleep(1.0)  # the idle workers are forked and greeted
    uid = ex.worker.plan.uid
    ex.close()
    found = []
    for f, _ in next(iter(pool._flavors.values())).idle:
        pid = _pid_of_uid(f.plan.uid) if f.plan.uid is not None else None
        if pid is None:
            continue
        fields = {}
        with open(f"/proc/{pid}/smaps_rollup") as fh:
            for line in fh:
                parts = line.split()
                if len(parts) >= 2 and parts[1].isdigit():
                    fields[parts[0].rstrip(":")] = int(parts[1])
        found.append((fields.get("Private_Clean", 0) + fields.get("Private_Dirty", 0), fields.get("Pss", 0)))
    pool.close()
    del uid
    return (statistics.median(u for u, _ in found), statistics.median(p for _, p in found)) if found else None


def _pid_of_uid(uid: int) -> int | None:
    import os

    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.stat(f"/proc/{entry}").st_uid == uid:
                    return int(entry)
            except OSError:
                continue
    return None


def main() -> None:
    quick = "--quick" in sys.argv
    n_cold, n_warm, n_loop = (5, 200, 300) if quick else (15, 1000, 1000)

    cold, hello = [], []
    for _ in range(n_cold):
        pool = WorkerPool(pool_size=0)
        start = time.perf_counter()
        ex = LocalPythonExecutor(pool=pool)
        ex("1")
        cold.append(time.perf_counter() - start)
        hello.append(ex.worker_startup_seconds or 0.0)
        ex.close()
        pool.close()

    with LocalPythonExecutor() as ex, InProcessExecutor() as inproc:
        print("isolation:", {k: v for k, v in ex.isolation.items() if k in ("sandbox", "network", "missing")})
        ex("x = 1")
        inproc("x = 1")
        warm, warm_in = [], []
        for _ in range(n_warm):
            t = time.perf_counter()
            ex("x")
            warm.append(time.perf_counter() - t)
            t = time.perf_counter()
            inproc("x")
            warm_in.append(time.perf_counter() - t)

        def tool(i: int) -> int:
            return i + 1

        def instant(i: int) -> int:
            return i + 1

        instant.blocking = False  # type: ignore[attr-defined]

        @codeloop_tool
        def decorated(i: int) -> int:
            """Adds one.

            Args:
                i: a number
            """
            return i + 1

        tools = {"tool": tool, "instant": instant, "decorated": decorated}
        ex.send_tools(tools)
        inproc.send_tools(tools)
        per_call: dict[str, tuple[float, float]] = {}
        for name in tools:
            code = f"s = 0\nfor i in range({n_loop}):\n    s += {name}(i)\ns"
            best_w = min(_timed(lambda c=code: ex(c)) for _ in range(3))
            best_in = min(_timed(lambda c=code: inproc(c)) for _ in range(3))
            per_call[name] = (
                (best_w - min(warm)) / n_loop,
                (best_in - min(warm_in)) / n_loop,
            )

    class Sleeper:
        async def acall(self, i: int) -> int:
            await asyncio.sleep(0.05)
            return i

    with LocalPythonExecutor(["asyncio"]) as ex:
        ex.send_tools({"nap": Sleeper()})
        t = time.perf_counter()
        out = ex("import asyncio\nlen(await asyncio.gather(*[nap.acall(i) for i in range(50)]))")
        gather = time.perf_counter() - t
        assert out.output == 50

    n_new = 60 if quick else 300
    fresh = {}
    for label, pool in (
        ("shared pool (default)", None),
        ("pool_size=0 (fork on demand)", WorkerPool(pool_size=0)),
    ):
        LocalPythonExecutor(pool=pool)("1")  # the fork server is up
        samples = []
        for _ in range(n_new):
            time.sleep(0.01)  # an agent run's model call: the pool refills meanwhile
            start = time.perf_counter()
            ex = LocalPythonExecutor(pool=pool)
            ex("x = 1")
            samples.append(time.perf_counter() - start)
            ex.close()
        samples.sort()
        fresh[label] = (median_ms(samples), samples[int(len(samples) * 0.99) - 1] * 1000)
    idle_kb = idle_worker_memory()
    for label, (p50, p99) in fresh.items():
        print(
            f"new isolated interpreter + first x = 1, {label}: p50 {p50:.1f} ms, p99 {p99:.1f} ms "
            "(target p50 <= 10, p99 <= 30)"
        )
    print(f"cold start, new pool (fork server start + fork -> first call): median {median_ms(cold):.1f} ms")
    print(f"fork request -> hello:                     median {median_ms(hello):.1f} ms")
    if idle_kb:
        print(f"memory per idle worker: USS {idle_kb[0] / 1024:.1f} MiB, PSS {idle_kb[1] / 1024:.1f} MiB")
    print(
        f"warm trivial round trip:                   median {median_ms(warm):.3f} ms  (target <= 2 ms); "
        f"in-process {median_ms(warm_in):.3f} ms, ratio {median_ms(warm) / median_ms(warm_in):.1f}x"
    )
    labels = {"tool": "plain function", "instant": "blocking = False", "decorated": "@tool"}
    for name, (worker_s, inproc_s) in per_call.items():
        print(
            f"sync tool call from a loop, {labels[name]:17s} {worker_s * 1e6:.0f} us/call; in-process "
            f"{inproc_s * 1e6:.1f} us/call"
        )
    print(
        f"50 concurrent async tool calls (50 ms each): {gather * 1000:.0f} ms total (serial would be 2500 ms)"
    )


if __name__ == "__main__":
    main()
