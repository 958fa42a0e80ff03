"""Host CPU the default executor costs per agent run, without a model (so the machine's noise from
the HTTP side is out of the figure).

    .venv/bin/python benchmarks/executor_overhead.py [--runs 200] [--rounds 4] [--executor local]

Each run does with its executor what a CodeAgent run does: create it, send the tools (final_answer)
and variables, run 3 steps (the last calls final_answer), fetch the variables at the end, close it;
``--runs`` runs at once on one event loop. Prints the median over ``--rounds`` of this process's CPU
per run (the worker processes are not counted: see concurrency.py for those), and the same for the
in-process executor for comparison.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time

from codeloop.executors import create_executor
from codeloop.tools.builtin import FinalAnswerTool

STEPS = ("x = 1\nprint(x)", "x = 2\nprint(x)", "final_answer(x)")


async def one(kind: str) -> None:
    ex = create_executor(kind)
    ex.send_variables({})
    ex.send_tools({"final_answer": FinalAnswerTool()})
    for code in STEPS:
        await ex.aexecute(code)
    state = await ex.astate() if hasattr(ex, "astate") else ex.state
    assert state == {"x": 2}, state
    if hasattr(ex, "aclose"):
        await ex.aclose()
    else:
        ex.cleanup()


async def measure(kind: str, runs: int, rounds: int) -> list[float]:
    await asyncio.gather(*(one(kind) for _ in range(20)))  # warm-up: imports, the worker pool
    per_run = []
    for _ in range(rounds):
        await asyncio.sleep(0.5)  # the last round's workers are reaped, the pool refilled
        cpu = time.process_time()
        await asyncio.gather(*(one(kind) for _ in range(runs)))
        per_run.append((time.process_time() - cpu) / runs * 1000)
    return per_run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--executor", choices=["local", "inprocess", "both"], default="both")
    args = parser.parse_args()
    kinds = ["local", "inprocess"] if args.executor == "both" else [args.executor]
    print(
        f"{args.runs} concurrent agent-like runs (3 steps, final_answer, state fetch), load {os.getloadavg()[0]:.1f}"
    )
    for kind in kinds:
        figures = asyncio.run(measure(kind, args.runs, args.rounds))
        name = "local (default)" if kind == "local" else kind
        rounds = ", ".join(f"{f:.2f}" for f in figures)
        print(f"{name:<16} host CPU per run: median {statistics.median(figures):.2f} ms (rounds: {rounds})")


if __name__ == "__main__":
    main()
