"""Input tokens of a long run with and without a context budget, and what the bookkeeping costs a step.

    .venv/bin/python benchmarks/bounded_context.py [--steps 40] [--budget 8000] [--executor local]

A scripted CodeAgent (default executor: the isolated worker) runs ``--steps`` action steps; each step
stores a value and prints a page (~3,000 characters), and the last one answers from all stored values, so
the answer is right only if the variables survive compaction. The run is made twice: without a budget
(what smolagents does: the whole memory at every step) and with ``max_context_tokens=--budget`` plus
usage limits (so every check runs). Printed: input tokens of each (summary calls included) and their
ratio (target <= 40%), compactions, and the per-step time of the bookkeeping (counting the prompt,
checking limits, cache hints, calibration; the summary model calls excluded), target <= 0.05 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from typing import Any

SUMMARY_MARK = "You compress the history"


def script(steps: int, page: int) -> Any:
    state = {"n": 0}

    def reply(messages: list[Any]) -> str:
        if messages and SUMMARY_MARK in messages[0].text:
            return "I stored v_i = 3*i + 1 in variables v0, v1, ... and printed a page each step. Next: sum them."
        n = state["n"]
        state["n"] += 1
        if n < steps - 1:
            return f"Storing value {n}.\n<code>\nv{n} = 3 * {n} + 1\nprint('page {n} ' + 'lorem ipsum ' * {page // 12})\n</code>"
        total = "+".join(f"v{i}" for i in range(steps - 1))
        return f"Summing.\n<code>\nfinal_answer({total})\n</code>"

    return reply


def timed_hooks() -> dict[str, list[float]]:
    """Wrap the loop's hooks to time them; the summary model calls inside compaction are subtracted."""
    from codeloop.agents import context, loop

    times: dict[str, list[float]] = {
        "before": [],
        "after": [],
        "context": [],
        "compacting": [],
        "summary_model": [],
        "build": [],  # building the prompt from memory: the loop's own work, with or without a budget
    }
    before, after = loop.before_model_call, loop.after_model_call
    original_context = loop.AgentLoop._acontext
    original_amodel = loop.AgentLoop._amodel

    def timed_before(*args: Any) -> Any:
        start = time.perf_counter()
        try:
            return before(*args)
        finally:
            times["before"].append(time.perf_counter() - start)

    def timed_after(*args: Any) -> Any:
        start = time.perf_counter()
        try:
            return after(*args)
        finally:
            times["after"].append(time.perf_counter() - start)

    async def timed_context(self: Any, run: Any) -> Any:
        start = time.perf_counter()
        summary_before = sum(times["summary_model"])
        built_before = len(times["build"])
        compacted = False
        async for item in original_context(self, run):
            compacted = compacted or type(item).__name__ == "ContextCompacted"
            yield item
        spent = time.perf_counter() - start - (sum(times["summary_model"]) - summary_before)
        if not compacted:  # the prompt is built once whether or not a budget is set: not bookkeeping
            spent -= sum(times["build"][built_before:])
        times["compacting" if compacted else "context"].append(spent)

    async def timed_amodel(self: Any, run: Any, messages: Any, *args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        async for item in original_amodel(self, run, messages, *args, **kwargs):
            yield item
        if messages and SUMMARY_MARK in messages[0].text:
            times["summary_model"].append(time.perf_counter() - start)

    from codeloop.memory import AgentMemory

    build = AgentMemory.messages_before

    def timed_build(self: Any, *args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return build(self, *args, **kwargs)
        finally:
            times["build"].append(time.perf_counter() - start)

    AgentMemory.messages_before = timed_build  # type: ignore[method-assign]
    loop.before_model_call, loop.after_model_call = timed_before, timed_after
    loop.AgentLoop._acontext = timed_context  # type: ignore[method-assign]
    loop.AgentLoop._amodel = timed_amodel  # type: ignore[method-assign]
    assert context  # the module the hooks live in
    return times


async def one_run(steps: int, budget: int | None, executor: str, page: int) -> dict[str, Any]:
    from codeloop import CodeAgent, ScriptedModel, UsageLimits
    from codeloop.agents import LogLevel
    from codeloop.events import ContextCompacted

    model = ScriptedModel(script(steps, page), model_id="gpt-4o-mini")
    limits = (
        UsageLimits(max_input_tokens=10**9, max_cost_usd=1000.0, max_model_calls=10**6) if budget else None
    )
    agent = CodeAgent(
        tools=[],
        model=model,
        executor_type=executor,
        max_steps=steps + 2,
        verbosity_level=LogLevel.OFF,
        max_context_tokens=budget,
        usage_limits=limits,
    )
    start = time.perf_counter()
    compactions = 0
    last = None
    async for event in agent.astream("Store the values and add them up."):
        compactions += isinstance(event, ContextCompacted)
        last = event
    assert last is not None and last.type == "run_finished", last
    expected = sum(3 * i + 1 for i in range(steps - 1))
    assert last.output == expected, (last.output, expected)
    return {
        "input": last.usage.input_tokens,
        "cost": last.usage.cost,
        "compactions": compactions,
        "steps": last.steps,
        "seconds": time.perf_counter() - start,
        "largest_request": max(model._estimate_input(c) for c in model.calls),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--budget", type=int, default=8000)
    parser.add_argument("--page", type=int, default=3000, help="characters printed per step")
    parser.add_argument("--executor", default="local", help="local (isolated worker, default) or inprocess")
    args = parser.parse_args()
    import warnings

    warnings.simplefilter("ignore")
    free = asyncio.run(one_run(args.steps, None, args.executor, args.page))
    times = timed_hooks()
    bounded = asyncio.run(one_run(args.steps, args.budget, args.executor, args.page))
    ratio = bounded["input"] / free["input"]
    calls = bounded["steps"]
    print(
        f"| {args.steps}-step scripted CodeAgent run ({args.executor} executor) | without budget | with max_context_tokens={args.budget:,} |"
    )
    print("|---|---|---|")
    print(f"| input tokens (all calls, summaries included) | {free['input']:,} | {bounded['input']:,} |")
    print(f"| largest request (tokens) | {free['largest_request']:,} | {bounded['largest_request']:,} |")
    print(f"| cost (gpt-4o-mini prices, genai-prices) | ${free['cost']:.4f} | ${bounded['cost']:.4f} |")
    print(f"| compactions (model-written summaries) | 0 | {bounded['compactions']} |")
    print()
    print(
        f"input tokens with budget / without: {ratio:.1%} (target <= 40%): {'met' if ratio <= 0.40 else 'NOT met'}"
    )
    mean = lambda xs: sum(xs) / len(xs) if xs else 0.0  # noqa: E731
    # before/after run on every model call, summary calls included; a step makes one action call
    med = statistics.median
    steady = (med(times["context"]) + med(times["before"]) + med(times["after"])) * 1000
    compacting = mean(times["compacting"]) * 1000
    overall = sum(times["context"]) + sum(times["compacting"]) + sum(times["before"]) + sum(times["after"])
    print(
        f"bookkeeping per step without compaction (count the prompt, check limits, cache hints, calibrate; "
        f"medians): "
        f"{steady:.4f} ms (target <= 0.05 ms): {'met' if steady <= 0.05 else 'NOT met'}"
    )
    builds = times["build"]
    print(
        f"building the prompt from memory (each step's messages converted once, then reused): median "
        f"{med(builds) * 1000:.4f} ms, last {builds[-1] * 1000:.4f} ms ({len(builds)} builds)"
    )
    print(
        f"per compaction (truncate, build the summary request, fold, list variables; the summary model call "
        f"excluded): {compacting:.3f} ms x {len(times['compacting'])}; all bookkeeping over the run "
        f"/ steps: {overall * 1000 / calls:.4f} ms"
    )


if __name__ == "__main__":
    main()
