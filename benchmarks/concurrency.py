"""Many concurrent agent runs in one process, against a model that answers after 100 ms.

    .venv/bin/python benchmarks/concurrency.py [--runs 200] [--steps 3] [--latency 0.1] [--executor local]

The loopback OpenAI-compatible server (codeloop.testing) answers every request after ``--latency``
seconds. codeloop runs ``--runs`` CodeAgent runs of ``--steps`` model calls each, all at once, from one
agent (an agent is configuration; runs hold the state) with the default executor (``local``: the
isolated worker, from the shared worker pool) and with the in-process one (``--executor both``, the
default; or just one). The baseline is a
bare ``AsyncOpenAI`` client sending the same requests (the very bodies codeloop sent, as the server
recorded them) with the same concurrency (each of ``--runs`` tasks sends its ``--steps`` requests in
sequence) to the same server in the same process. The ratio codeloop / bare client is the price of the
agent loop under load (target <= 1.3x wall, <= 1.5x CPU per run for the default executor). Best of
``--rounds`` alternating rounds.

What "CPU" counts: this process (the client, codeloop's host side, and the loopback server's thread,
which is on both sides of the ratio), printed first as the issue's figure; then the same plus the CPU
of the child processes (bubblewrap, the fork server and every worker, ended ones included through the
fork server's reaped-children time), which is what a user's machine really pays for the default
executor. The load average is printed with the figures: on a shared machine wall times move with it. ``--also`` N then runs N more concurrent runs on the default executor and
counts the correct ones (correctness, not time).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from typing import Any

STEP = "Thought: keep going.\n<code>\nx = {n}\nprint(x)\n</code>"
FINAL = "Thought: done.\n<code>\nfinal_answer(x)\n</code>"


def make_handler(steps: int) -> Any:
    def handler(request: dict[str, Any]) -> str:
        # The reply depends only on how far this conversation is, so concurrent runs don't interfere.
        done = sum(1 for m in request.get("messages", []) if m.get("role") == "assistant")
        return FINAL if done >= steps - 1 else STEP.format(n=done + 1)

    return handler


async def bare_client(base_url: str, conversations: list[list[dict[str, Any]]]) -> float:
    """Send each conversation's requests in sequence, all conversations at once, with a bare client."""
    from openai import AsyncOpenAI

    client = AsyncOpenAI(base_url=base_url, api_key="loopback", max_retries=0, http_client=http_client())

    async def one_run(requests: list[dict[str, Any]]) -> None:
        for body in requests:
            extra = {k: v for k, v in body.items() if k not in ("model", "messages", "stop")}
            reply = await client.chat.completions.create(
                model=body["model"],
                messages=body["messages"],
                stop=body.get("stop"),
                extra_body=extra or None,
            )
            assert reply.choices[0].message.content, "the bare client got an empty reply"

    start = time.perf_counter()
    await asyncio.gather(*(one_run(requests) for requests in conversations))
    elapsed = time.perf_counter() - start
    await client.close()
    return elapsed


KEEPALIVE: list[int | None] = [None]


def http_client() -> Any:
    """None (the SDK's default client, as users get it) or one keeping ``--keepalive`` idle connections.

    Both sides always get the same settings (the SDK keeps 100 idle connections, so with 200 runs each
    wave reopens ~100 connections).
    """
    if KEEPALIVE[0] is None:
        return None
    import httpx2
    from openai import DefaultAsyncHttpxClient

    limits = httpx2.Limits(max_connections=1000, max_keepalive_connections=KEEPALIVE[0])
    return DefaultAsyncHttpxClient(limits=limits)


def conversations_of(requests: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """The recorded request bodies grouped by run (its task message), each run's in the order sent."""
    runs: dict[str, list[dict[str, Any]]] = {}
    for request in requests:
        body = request["json"]
        runs.setdefault(str(body["messages"][1]), []).append(body)
    return list(runs.values())


async def codeloop_runs(base_url: str, runs: int, steps: int, executor: str = "local") -> float:
    from codeloop.agents import CodeAgent
    from codeloop.agents.logger import LogLevel
    from codeloop.models import OpenAIModel

    client = http_client()
    async with OpenAIModel(
        "loopback-model",
        api_base=base_url,
        api_key="loopback",
        client_kwargs={"http_client": client} if client else None,
    ) as model:
        agent = CodeAgent(
            tools=[],
            model=model,
            executor_type=executor,
            verbosity_level=LogLevel.OFF,
            max_steps=steps + 2,
        )
        start = time.perf_counter()
        runs_ = (agent.arun(f"Task {i}", return_full_result=True) for i in range(runs))
        results = await asyncio.gather(*runs_)
        elapsed = time.perf_counter() - start
    bad = [r for r in results if r.state != "success" or r.output != steps - 1 or len(r.steps) < steps]
    if bad:
        raise SystemExit(f"{len(bad)} codeloop runs did not go as scripted, e.g. {bad[0]!r}")
    return elapsed


class LostRequests(Exception):
    pass


def children_cpu() -> float:
    """CPU seconds of every process below this one (bubblewrap, the fork servers and their workers,
    the ended workers included through their fork server's reaped-children time); 0 off Linux."""
    tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    kids: dict[int, list[int]] = {}
    times: dict[int, float] = {}
    try:
        entries = os.listdir("/proc")
    except OSError:
        return 0.0
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        kids.setdefault(int(fields[1]), []).append(int(entry))
        times[int(entry)] = sum(int(x) for x in fields[11:15]) / tick  # utime stime cutime cstime
    total, todo = 0.0, list(kids.get(os.getpid(), []))
    while todo:
        pid = todo.pop()
        total += times[pid]
        todo += kids.get(pid, [])
    return total


async def _watch(coro: Any, limit: float) -> tuple[float, float, float]:
    """(wall seconds, CPU seconds of this process, CPU seconds of its child processes) of a round; a
    watchdog: a round that stalls (it should not happen any more: lost requests came from unclosed SDK
    clients, see codeloop/models/_clients.py) is given up instead of waiting for request timeouts."""
    cpu, kids = time.process_time(), children_cpu()
    task = asyncio.ensure_future(coro)
    done, _ = await asyncio.wait({task}, timeout=limit)
    if not done:
        task.cancel()
        raise LostRequests
    wall, cpu = task.result(), time.process_time() - cpu
    await asyncio.sleep(0.2)  # the round's last workers are reaped and reported
    return wall, cpu, children_cpu() - kids


async def amain(runs: int, steps: int, latency: float, rounds: int, executors: list[str], also: int) -> int:
    from codeloop.testing import OpenAICompatibleServer

    limit = max(30.0, runs * steps * 0.03)
    async with OpenAICompatibleServer(handler=make_handler(steps), delay=latency) as server:
        # Warm-up (imports, first connections, the worker pool), then alternate so no side gets the
        # quieter moment.
        for executor in executors:
            await codeloop_runs(server.base_url, 10, steps, executor)
        await bare_client(server.base_url, conversations_of(server.chat_requests[-10 * steps :]))
        ours: dict[str, list[tuple[float, float, float]]] = {e: [] for e in executors}
        bare: list[tuple[float, float, float]] = []
        lost = 0
        while len(bare) < rounds and lost <= 2:
            try:
                mine = {}
                for executor in executors:
                    before = len(server.chat_requests)
                    mine[executor] = await _watch(
                        codeloop_runs(server.base_url, runs, steps, executor), limit
                    )
                recorded = conversations_of(server.chat_requests[before:])
                theirs = await _watch(bare_client(server.base_url, recorded), limit)
            except LostRequests:
                lost += 1
                continue
            for executor, figures in mine.items():
                ours[executor].append(figures)
            bare.append(theirs)
        extra = None
        if also:
            try:
                await _watch(codeloop_runs(server.base_url, also, steps, "local"), max(60.0, also * 0.5))
                extra = f"{also}/{also} correct"
            except SystemExit as exc:
                extra = str(exc)
            except LostRequests:
                extra = "stalled"
    if not bare:
        print("every round stalled")
        return 1
    sent = sum(len(c) for c in recorded)
    floor = steps * latency
    print(
        f"{runs} concurrent runs x {steps} steps, model latency {latency * 1000:.0f} ms, {sent} requests per round"
    )
    print("the bare client replays exactly the request bodies codeloop sent, with the same concurrency")
    if lost:
        print(f"({lost} round(s) discarded: they stalled past {limit:.0f} s)")
    bare_wall, bare_cpu, _ = min(bare)
    print(
        f"bare AsyncOpenAI : best {bare_wall:.3f} s of {len(bare)} (floor {floor:.3f} s), CPU {bare_cpu:.2f} s"
    )
    print(f"load average {os.getloadavg()[0]:.1f} (2 cores shared: wall times are noisy, CPU times less so)")
    status = 0
    for executor, figures in ours.items():
        our_wall, our_cpu, our_kids = min(figures)
        name = "local (default)" if executor == "local" else executor
        print(
            f"codeloop {name:<16}: best {our_wall:.3f} s of {len(figures)}, CPU {our_cpu:.2f} s, {runs}/{runs} correct"
        )
        ratio = our_wall / bare_wall
        print(
            f"  CPU per run: bare {bare_cpu / runs * 1000:.2f} ms, codeloop {our_cpu / runs * 1000:.2f} ms "
            "(this process: the loopback server's thread on both sides, the worker processes not)"
        )
        print(f"  ratio codeloop/bare: {ratio:.2f}x wall (target <= 1.3), {our_cpu / bare_cpu:.2f}x CPU")
        if our_kids > 0:
            print(
                f"  with the worker processes too (fork server + workers: {our_kids / runs * 1000:.2f} ms a run): "
                f"{(our_cpu + our_kids) / bare_cpu:.2f}x CPU"
            )
        status |= ratio > 1.3
    if executors == ["local"] or "local" in executors:
        from codeloop.executors.worker.pool import WorkerPool

        print(f"worker pool: {WorkerPool.shared().stats()}")
    if extra:
        print(f"{also} more concurrent runs on the default executor: {extra}")
        status |= "correct" not in extra
    return int(status)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--latency", type=float, default=0.1)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument(
        "--keepalive", type=int, default=None, help="idle connections kept (default: the SDK's)"
    )
    parser.add_argument("--executor", choices=["local", "inprocess", "both"], default="both")
    parser.add_argument(
        "--also", type=int, default=0, help="then N more runs on the default executor (correctness)"
    )
    args = parser.parse_args()
    KEEPALIVE[0] = args.keepalive
    executors = ["local", "inprocess"] if args.executor == "both" else [args.executor]
    return asyncio.run(amain(args.runs, args.steps, args.latency, args.rounds, executors, args.also))


if __name__ == "__main__":
    sys.exit(main())
