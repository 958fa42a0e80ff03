"""Interpreter speed: codeloop's executors against CPython's own ``exec`` on agent-typical code.

Run:  .venv/bin/python benchmarks/interpreter.py [--budget SECONDS] [--only name1,name2] [--no-worker]

For every snippet in benchmarks/snippets/*.py (same ``# %% name`` format as tests/fidelity_cases) it
measures CPython exec (compiled once, then executed in one namespace kept across runs, stdout captured),
``InProcessExecutor`` and the isolated worker ``LocalPythonExecutor`` (each a warm executor using its own
compile cache), and, when ``smolagents`` is importable, smolagents' LocalPythonExecutor. Timings are the
minimum over N interleaved repetitions (the executors take turns inside each repetition, in rotating
order, so machine noise hits all of them alike). Ratios are executor time / CPython time; the
geometric mean is printed over all snippets and, on an extra line, without the one whose time is
host-tool calls (for the worker that snippet measures the RPC cost of 1000 calls, not the interpreter).

The worker's time is what a caller waits for: it includes the pipe round trip of the run (and of every
tool call). Each snippet is sized so that CPython takes a few ms, like a loop-heavy agent step, so that
fixed per-call cost weighs in the ratio as much as it would in such a step; the trivial step (where
the fixed cost is all there is) is measured on its own, in the fixed-cost table below, with its own
targets.

Method notes (what changed, why, and what it does to the figures):
- The garbage collector stays enabled in every column (collected before each snippet). Pausing it,
  as ``timeit`` does, only pauses it in this process: CPython and the in-process executor ran without
  collections while the worker's child process, which this process cannot pause, ran with them.
  (The effect on the ratios measured here was small, a few percent either way.)
- Snippets were enlarged from 0.1-1 ms of CPython time to a few ms (same code, larger inputs), and the
  7 us "typical short step" left the geometric mean for the fixed-cost table: in a 7 us snippet the
  ratio measures the fixed per-call cost alone, which has its own target. This lowers the worker's
  ratios (its fixed cost per run, 0.1-0.3 ms, weighs less in a 3 ms step); that is the intent, and
  the fixed cost stays visible in its own table. Two snippets stay short on purpose: print_1000_lines
  (the issue names 1000 lines; more would pass the 50,000-character print cap) and
  tool_called_in_loop (its ratio is per call, whatever the count: now 1000 calls).
- Every column gets at least MIN_REPS (15) repetitions, and the repetition count is estimated from a
  second run (the first also compiles): with 5, the slowest column's minimum was mostly noise.
- On a shared or virtual machine the run-to-run spread is large (CPU speed itself varies): run it two
  or three times and look at the spread, not at one figure.

Then fixed costs: a trivial call in-process (target <= 100 us), a warm worker round trip (target <= 2 ms),
a typical short agent step in each executor, the worker's cost per host-tool call, and a worker cold start
(constructor + first call; target <= 150 ms).

Each executor's result is also checked against CPython's (printed text and final value); a mismatch
is marked with "!" next to its time. The whole run takes about half a minute.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import importlib.util
import io
import math
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SNIPPETS_DIR = Path(__file__).resolve().parent / "snippets"


# The fidelity suite's harness (snippet format, CPython reference runner, test tools).
sys.path.insert(0, str(ROOT / "tests"))
import fidelity_cases as harness  # noqa: E402

# The trivial agent step of the fixed-cost table: a few microseconds of code, so its time is the fixed cost.
TYPICAL_SHORT_STEP = """\
data = [{"city": "Paris", "temp": 21.5}, {"city": "Oslo", "temp": 9.0}, {"city": "Rome", "temp": 27.25}]
warmest = max(data, key=lambda d: d["temp"])
avg = sum(d["temp"] for d in data) / len(data)
print(f"Warmest: {warmest['city']} ({warmest['temp']}C), average {avg:.1f}C")
summary = {d["city"]: d["temp"] > avg for d in data}
summary
"""
# Every column gets at least this many timed repetitions: a minimum over 5 was not enough on a loaded
# machine for the slowest column (the worker's 1000 tool calls), whose figure then varied by 2x.
MIN_REPS = 15
# The snippet whose time is host-tool calls (for the worker: RPC round trips); also shown without it.
RPC_SNIPPET = "tool_called_in_loop"


# ---------------------------------------------------------------- runners: each returns (printed, value)


class CPythonRunner:
    label = "CPython"

    def __init__(self, code: str):
        self.compiled = harness.CompiledCase(code)
        # One namespace kept across runs, as an executor keeps its state across calls.
        self.ns = self.compiled.fresh_namespace()

    def __call__(self) -> tuple[str, Any]:
        ns = self.ns
        buf = io.StringIO()
        with contextlib.redirect_stdout(buf):
            value = self.compiled.run_sync(ns)
        return buf.getvalue(), value

    def close(self) -> None:
        pass


class ExecutorRunner:
    """A warm executor (tools sent, code run once before timing) behind the same call shape."""

    def __init__(self, label: str, executor: Any, code: str):
        self.label = label
        self.executor = executor
        self.code = code

    def __call__(self) -> tuple[str, Any]:
        out = self.executor(self.code)
        return out.logs, out.output

    def close(self) -> None:
        close = getattr(self.executor, "close", None)
        if close is not None:
            close()


def make_inprocess() -> Any:
    from codeloop.executors.inprocess import InProcessExecutor

    ex = InProcessExecutor()
    ex.send_tools(harness.tools_for_executor())
    return ex


def make_worker() -> Any:
    from codeloop.executors import LocalPythonExecutor

    ex = LocalPythonExecutor()
    ex.send_tools(harness.tools_for_executor())
    return ex


def make_smolagents() -> Any:
    from smolagents.local_python_executor import LocalPythonExecutor as SmolExecutor

    from codeloop.executors.policy import DEFAULT_AUTHORIZED_IMPORTS

    # Same authorized modules as ours, so the comparison is about speed, not policy.
    ex = SmolExecutor(additional_authorized_imports=sorted(DEFAULT_AUTHORIZED_IMPORTS))
    ex.send_tools(harness.tools_for_executor())
    return ex


def _available(factory: Callable[[], Any]) -> tuple[bool, str]:
    try:
        ex = factory()
    except Exception as exc:  # noqa: BLE001 - report why a column is missing, do not crash the benchmark
        return False, f"{type(exc).__name__}: {exc}"
    with contextlib.suppress(Exception):
        ex.close()
    return True, ""


# ---------------------------------------------------------------- timing


def _timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    # The GC stays on: the worker's child collects as it runs, and this process cannot pause it there.
    t0 = time.perf_counter()
    result = fn()
    return time.perf_counter() - t0, result


def _same(expected: tuple[str, Any], got: Any) -> bool:
    if isinstance(got, BaseException):
        return False
    return got[0] == expected[0] and repr(got[1]) == repr(expected[1])


def bench_snippet(case: Any, factories: dict[str, Callable[[], Any]], budget_s: float) -> dict[str, Any]:
    """Min-of-N interleaved timings for one snippet: {label: (seconds | None, matches_cpython)}."""
    runners: list[Any] = [CPythonRunner(case.code)]
    for label, factory in factories.items():
        try:
            runners.append(ExecutorRunner(label, factory(), case.code))
        except Exception as exc:  # noqa: BLE001
            print(f"  ({label} unavailable for {case.name}: {exc})", file=sys.stderr)
    gc.collect()
    reference = runners[0]()
    ok: dict[str, bool] = {}
    first: dict[str, float] = {}
    for r in runners:  # warm-up run (fills compile caches), checks the result, estimates the cost
        try:
            dt, got = _timed(r)
        except Exception as exc:  # noqa: BLE001
            dt, got = float("nan"), exc
            print(f"  ({r.label} failed on {case.name}: {type(exc).__name__}: {exc})", file=sys.stderr)
        ok[r.label] = _same(reference, got)
        first[r.label] = dt
    live = [r for r in runners if not math.isnan(first[r.label])]
    for r in live:  # the warm-up also compiled: a second run gives a fairer cost estimate
        first[r.label] = min(first[r.label], _timed(r)[0])
    # Each runner gets its own repetition count from an equal share of the budget, so a slow
    # executor does not starve the fast ones of repetitions. Rounds interleave all runners that
    # still have repetitions left, rotating who goes first.
    share = budget_s / max(1, len(live))
    reps = {r.label: max(MIN_REPS, min(300, int(share / max(first[r.label], 1e-7)))) for r in live}
    best = {r.label: float("inf") for r in live}
    for i in range(max(reps.values(), default=0)):
        active = [r for r in live if reps[r.label] > i]
        k = i % len(active)
        for r in active[k:] + active[:k]:
            dt, _ = _timed(r)
            best[r.label] = min(best[r.label], dt)
    for r in runners:
        r.close()
    return {r.label: (best.get(r.label), ok[r.label]) for r in runners} | {"_reps": reps.get("CPython", 0)}


def _best(fn: Callable[[], Any], n: int) -> float:
    return min(_timed(fn)[0] for _ in range(n))


def trivial_overheads(labels: set[str]) -> list[tuple[str, float | None, float | None, str]]:
    """(name, seconds, target seconds or None, note) for the fixed per-call costs."""
    rows: list[tuple[str, float | None, float | None, str]] = []
    have_worker = "worker" in labels
    compiled = harness.CompiledCase("x = 1\n")
    ns = compiled.fresh_namespace()
    cpy = _best(lambda: exec(compiled.body_code, ns), 2000)
    step = CPythonRunner(TYPICAL_SHORT_STEP)
    cpy_step = _best(step, 500)
    try:
        ex = make_inprocess()
    except Exception as exc:  # noqa: BLE001
        rows.append(("in-process trivial call (`x = 1`)", None, 100e-6, f"unavailable: {exc}"))
    else:
        ex("x = 1")
        inproc = _best(lambda: ex("x = 1"), 2000)
        ex(TYPICAL_SHORT_STEP)
        inproc_step = _best(lambda: ex(TYPICAL_SHORT_STEP), 500)
        ex.close()
        rows.append(
            ("in-process trivial call (`x = 1`)", inproc, 100e-6, f"CPython exec: {cpy * 1e6:.2f} us")
        )
        rows.append(
            (
                "in-process typical short agent step",
                inproc_step,
                None,
                f"CPython exec: {cpy_step * 1e6:.1f} us ({inproc_step / cpy_step:.1f}x)",
            )
        )
    if "smolagents" in labels:
        sex = make_smolagents()
        sex("x = 1")
        smol = _best(lambda: sex("x = 1"), 200)
        rows.append(("smolagents trivial call (`x = 1`), for reference", smol, None, "min of 200"))
    if not have_worker:
        rows.append(("worker warm round trip", None, 2e-3, "worker not available"))
        rows.append(("worker cold start", None, 150e-3, "worker not available"))
        return rows
    wex = make_worker()
    wex("x = 1")
    warm = _best(lambda: wex("x = 1"), 500)
    wex(TYPICAL_SHORT_STEP)
    worker_step = _best(lambda: wex(TYPICAL_SHORT_STEP), 500)
    calls = "for _ in range(300):\n    search_tool('q')\n"
    wex(calls)
    per_tool = (_best(lambda: wex(calls), 10) - warm) / 300
    wex.close()
    rows.append(("worker warm round trip (`x = 1`)", warm, 2e-3, "min of 500"))
    rows.append(
        (
            "worker typical short agent step",
            worker_step,
            2e-3,
            f"CPython exec: {cpy_step * 1e6:.1f} us ({worker_step / cpy_step:.0f}x)",
        )
    )
    rows.append(
        ("worker host-tool call over RPC, per call", per_tool, None, "(300-call loop - round trip) / 300")
    )
    colds = []
    for _ in range(5):
        t0 = time.perf_counter()
        cex = make_worker()
        cex("x = 1")
        colds.append(time.perf_counter() - t0)
        cex.close()
    rows.append(
        (
            "worker cold start (construct + first call)",
            min(colds),
            150e-3,
            f"median {sorted(colds)[2] * 1e3:.1f} ms",
        )
    )
    return rows


# ---------------------------------------------------------------- report


def _fmt_time(seconds: float | None) -> str:
    if seconds is None or math.isinf(seconds) or math.isnan(seconds):
        return "n/a"
    if seconds < 1e-3:
        return f"{seconds * 1e6:.1f} us"
    return f"{seconds * 1e3:.2f} ms"


def geomean(values: list[float]) -> float | None:
    vals = [v for v in values if v and v > 0 and not math.isinf(v)]
    if not vals:
        return None
    return math.exp(sum(math.log(v) for v in vals) / len(vals))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--budget", type=float, default=2.0, help="seconds of timing per snippet (default 2)")
    parser.add_argument("--only", default="", help="comma-separated snippet names")
    parser.add_argument("--no-worker", action="store_true", help="skip the isolated worker column")
    args = parser.parse_args(argv)

    started = time.perf_counter()
    cases = harness.load_cases(SNIPPETS_DIR)
    if args.only:
        wanted = set(args.only.split(","))
        cases = [c for c in cases if c.name in wanted]

    candidates: dict[str, Callable[[], Any]] = {"in-process": make_inprocess}
    if not args.no_worker:
        candidates["worker"] = make_worker
    if importlib.util.find_spec("smolagents") is not None:
        candidates["smolagents"] = make_smolagents
    factories: dict[str, Callable[[], Any]] = {}
    for label, factory in candidates.items():
        usable, why = _available(factory)
        if usable:
            factories[label] = factory
        else:
            print(f"note: {label} column skipped ({why})", file=sys.stderr)

    labels = list(factories)
    header = "| snippet | CPython reps | CPython | " + " | ".join(f"{lb} | ×" for lb in labels) + " |"
    print(header)
    print("|" + "---|" * (3 + 2 * len(labels)))
    ratios: dict[str, dict[str, float]] = {lb: {} for lb in labels}
    mismatches: list[str] = []
    for case in cases:
        res = bench_snippet(case, factories, args.budget)
        base = res["CPython"][0]
        cells = [case.name, str(res["_reps"]), _fmt_time(base)]
        for lb in labels:
            t, same = res.get(lb, (None, False))
            mark = "" if same else " !"
            if not same:
                mismatches.append(f"{case.name} ({lb})")
            ratio = (t / base) if (t and base and not math.isinf(t)) else None
            if ratio is not None:
                ratios[lb][case.name] = ratio
            cells += [_fmt_time(t) + mark, f"{ratio:.2f}" if ratio is not None else "n/a"]
        print("| " + " | ".join(cells) + " |", flush=True)
    names = [case.name for case in cases]
    geo = [f"**geometric mean ({len(names)} snippets)**", "", ""]
    geo_no_rpc = [f"geometric mean without {RPC_SNIPPET}", "", ""]
    for lb in labels:
        g = geomean(list(ratios[lb].values())) if len(ratios[lb]) == len(names) else None
        geo += ["", f"**{g:.2f}**" if g is not None else "n/a"]
        rest = [r for name, r in ratios[lb].items() if name != RPC_SNIPPET]
        g2 = geomean(rest) if len(rest) == len(names) - 1 else None
        geo_no_rpc += ["", f"{g2:.2f}" if g2 is not None else "n/a"]
    print("| " + " | ".join(geo) + " |")
    if RPC_SNIPPET in names:
        print("| " + " | ".join(geo_no_rpc) + " |")
    if mismatches:
        print(f"\n! result differs from CPython: {', '.join(mismatches)}")

    print("\n| fixed cost | measured | target | |")
    print("|---|---|---|---|")
    for name, seconds, target, note in trivial_overheads(set(factories)):
        if target is None:
            print(f"| {name} | {_fmt_time(seconds)} | - | {note} |")
            continue
        verdict = "n/a" if seconds is None else ("ok" if seconds <= target else "OVER")
        print(f"| {name} | {_fmt_time(seconds)} | <= {_fmt_time(target)} | {verdict}; {note} |")
    print(f"\n(total benchmark time {time.perf_counter() - started:.1f} s; python {sys.version.split()[0]})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
