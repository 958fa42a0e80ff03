"""Per-step overhead of the agent loop itself: zero-latency scripted model, trivial code, no logging.

    .venv/bin/python benchmarks/agent_overhead.py [--steps 100] [--repeat 5]

Measures codeloop's CodeAgent (in-process executor, verbosity OFF) over ``--steps`` action steps: wall
time per step (target <= 0.5 ms) and memory the run retains per step, measured with tracemalloc after
the run while the agent still holds its memory (target <= 10 KB). When smolagents is importable here, or
a Python that has it is found (``SMOLAGENTS_PYTHON``, default /tmp/smolvenv/bin/python), the same run is
measured with smolagents' CodeAgent (its local in-process executor) and the ratios are printed.
Timing takes the best of ``--repeat`` runs; memory is measured on a separate run (tracemalloc slows
everything down).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any

STEP_REPLY = "Thought: keep counting.\n<code>\nx = {i}\n</code>"
FINAL_REPLY = "Thought: done.\n<code>\nfinal_answer(x)\n</code>"


def _reply_for(step_index: int, steps: int) -> str:
    return FINAL_REPLY if step_index >= steps - 1 else STEP_REPLY.format(i=step_index)


# ---- codeloop ------------------------------------------------------------------------------------------


def _codeloop_agent(steps: int) -> tuple[Any, Any]:
    from codeloop.agents import CodeAgent
    from codeloop.agents.logger import LogLevel
    from codeloop.messages import TokenUsage
    from codeloop.testing import ScriptedModel

    counter = {"i": 0}

    def script(messages: list[Any]) -> str:
        i = counter["i"]
        counter["i"] += 1
        return _reply_for(i, steps)

    # Fixed usage: the scripted model's token estimate reads the whole conversation, a test-double cost.
    model = ScriptedModel(script, token_usage=TokenUsage(input_tokens=10, output_tokens=5))
    agent = CodeAgent(
        tools=[], model=model, executor_type="inprocess", verbosity_level=LogLevel.OFF, max_steps=steps + 1
    )
    return agent, (model, counter)


def _run_codeloop(steps: int) -> tuple[float, Any, Any]:
    agent, (model, counter) = _codeloop_agent(steps)
    start = time.perf_counter()
    result = agent.run("Count.")
    elapsed = time.perf_counter() - start
    # The scripted model keeps every request it was sent; that is the test double's memory, not the agent's.
    model.calls.clear()
    model.call_kwargs.clear()
    return elapsed, result, agent


# ---- smolagents ----------------------------------------------------------------------------------------


def _run_smolagents(steps: int) -> tuple[float, Any, Any]:
    from smolagents import CodeAgent, Model
    from smolagents.models import ChatMessage, MessageRole
    from smolagents.monitoring import LogLevel, TokenUsage

    class ZeroLatencyModel(Model):
        def __init__(self) -> None:
            super().__init__(model_id="zero")
            self.i = 0

        def generate(self, messages, stop_sequences=None, **kwargs):  # type: ignore[override]
            text = _reply_for(self.i, steps)
            self.i += 1
            return ChatMessage(
                role=MessageRole.ASSISTANT,
                content=text,
                token_usage=TokenUsage(input_tokens=10, output_tokens=5),
            )

    agent = CodeAgent(tools=[], model=ZeroLatencyModel(), verbosity_level=LogLevel.OFF, max_steps=steps + 1)
    start = time.perf_counter()
    result = agent.run("Count.")
    return time.perf_counter() - start, result, agent


# ---- measurement ---------------------------------------------------------------------------------------


def measure(runner: Any, steps: int, repeat: int) -> dict[str, float]:
    runner(min(steps, 5))  # warm-up: imports, caches, first compile
    best = min(runner(steps)[0] for _ in range(repeat))
    _, result, _ = runner(steps)
    if str(result) != str(steps - 2):
        raise SystemExit(
            f"unexpected final answer {result!r} (expected {steps - 2}): the run did not go as scripted"
        )
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    _, _, agent = runner(steps)
    gc.collect()
    retained = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    del agent
    return {"ms_per_step": best / steps * 1000, "kb_per_step": retained / steps / 1024, "total_s": best}


def _smolagents_in_subprocess(steps: int, repeat: int) -> dict[str, float] | None:
    python = os.environ.get("SMOLAGENTS_PYTHON", "/tmp/smolvenv/bin/python")
    if not Path(python).exists():
        return None
    proc = subprocess.run(
        [python, __file__, "--steps", str(steps), "--repeat", str(repeat), "--only-smolagents-json"],
        capture_output=True,
        text=True,
        timeout=110,
    )
    if proc.returncode != 0:
        print(f"(smolagents run failed: {proc.stderr.strip().splitlines()[-1:]})")
        return None
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--only-smolagents-json", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.only_smolagents_json:
        print(json.dumps(measure(_run_smolagents, args.steps, args.repeat)))
        return 0

    ours = measure(_run_codeloop, args.steps, args.repeat)
    print(
        f"{args.steps} steps, zero-latency scripted model, trivial code, verbosity OFF, in-process executor"
    )
    print(
        f"codeloop   : {ours['ms_per_step']:.3f} ms/step (target <= 0.5), "
        f"{ours['kb_per_step']:.2f} KB retained/step (target <= 10)"
    )
    try:
        import smolagents  # noqa: F401

        theirs: dict[str, float] | None = measure(_run_smolagents, args.steps, args.repeat)
    except ImportError:
        theirs = _smolagents_in_subprocess(args.steps, args.repeat)
    if theirs is None:
        print("smolagents : not importable (set SMOLAGENTS_PYTHON to a Python that has it)")
    else:
        print(
            f"smolagents : {theirs['ms_per_step']:.3f} ms/step, {theirs['kb_per_step']:.2f} KB retained/step"
        )
        print(
            f"ratio codeloop/smolagents: time {ours['ms_per_step'] / theirs['ms_per_step']:.2f}x, "
            f"memory {ours['kb_per_step'] / max(theirs['kb_per_step'], 1e-9):.2f}x"
        )
    ok = ours["ms_per_step"] <= 0.5 and ours["kb_per_step"] <= 10
    print("targets met" if ok else "targets NOT met")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
