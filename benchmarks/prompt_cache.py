"""Share of input tokens served from the provider's prompt cache over a run, against the loopback server.

    .venv/bin/python benchmarks/prompt_cache.py [--steps 20] [--executor local]

A CodeAgent (default executor) with an ``OpenAIModel`` talks real HTTP to the loopback server, which
simulates OpenAI's prompt cache (``OpenAICompatibleServer(prompt_cache=True)``: the leading messages a
request shares with an earlier one under the same ``prompt_cache_key`` count as cached, in 128-token
blocks from 1,024 tokens). Each of the ``--steps`` steps prints a short page. Printed: per-step input and
cached tokens, the cached share of input tokens after step 2 (aim >= 80%), whether every request's
messages were a byte prefix of the next one's, and the cost with and without the cache discount.
"""

from __future__ import annotations

import argparse
import json
import warnings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--executor", default="local", help="local (isolated worker, default) or inprocess")
    args = parser.parse_args()
    warnings.simplefilter("ignore")

    from codeloop import CodeAgent, OpenAIModel
    from codeloop.agents import LogLevel
    from codeloop.events import ModelOutput
    from codeloop.models.cost import cost_of
    from codeloop.testing import OpenAICompatibleServer

    replies = [
        f"Looking at part {i}.\n<code>\nrow{i} = {i} ** 2\nprint('part {i}: ' + 'data ' * 60)\n</code>"
        for i in range(args.steps - 1)
    ]
    replies.append(
        "Done.\n<code>\nfinal_answer(" + "+".join(f"row{i}" for i in range(args.steps - 1)) + ")\n</code>"
    )
    with OpenAICompatibleServer(replies, prompt_cache=True) as server:
        model = OpenAIModel(
            "gpt-4o-mini",
            api_base=server.base_url,
            api_key="loopback",
            profile={"supports_prompt_cache_key": True},  # the loopback server understands it
        )
        agent = CodeAgent(tools=[], model=model, executor_type=args.executor, verbosity_level=LogLevel.OFF)
        usages = []
        final = None
        for event in agent.stream("Go through the parts and add up the squares.", max_steps=args.steps + 1):
            if isinstance(event, ModelOutput):
                usages.append(event.usage)
            final = event
        requests = server.chat_requests
    assert final is not None and final.type == "run_finished"
    assert final.output == sum(i * i for i in range(args.steps - 1)), final.output
    print("| step | input tokens | cached | share |")
    print("|---|---|---|---|")
    for i, usage in enumerate(usages, 1):
        share = usage.cached_input_tokens / usage.input_tokens
        print(f"| {i} | {usage.input_tokens:,} | {usage.cached_input_tokens:,} | {share:.0%} |")
    later = usages[2:]
    cached = sum(u.cached_input_tokens for u in later)
    total = sum(u.input_tokens for u in later)
    prefixes = all(
        json.dumps(b["json"]["messages"][: len(a["json"]["messages"])]) == json.dumps(a["json"]["messages"])
        for a, b in zip(requests, requests[1:], strict=False)
    )
    keys = {r["json"].get("prompt_cache_key") for r in requests}
    print()
    print(f"requests: {len(requests)}; one prompt_cache_key for all: {len(keys) == 1} ({next(iter(keys))})")
    print(f"each request's messages a byte prefix of the next one's: {prefixes}")
    share = cached / total
    print(
        f"cached share of input tokens after step 2: {share:.1%} (aim >= 80%): {'met' if share >= 0.8 else 'NOT met'}"
    )
    run_usage = final.usage
    from dataclasses import replace

    uncached = cost_of(replace(run_usage, cached_input_tokens=0), "gpt-4o-mini")
    print(
        f"run cost (gpt-4o-mini, genai-prices): ${run_usage.cost:.5f} with the cache, ${uncached:.5f} without"
    )


if __name__ == "__main__":
    main()
