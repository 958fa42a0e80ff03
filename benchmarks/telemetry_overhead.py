"""Per-step cost of OpenTelemetry tracing on the default path a user gets.

    .venv/bin/python benchmarks/telemetry_overhead.py [--steps 40] [--repeat 7] [--executor inprocess]

A CodeAgent with the default executor (isolated worker) and an OpenAIModel talking to the loopback
server on 127.0.0.1 runs ``--steps`` action steps, each calling a tool from its code. The same run is
timed with tracing off and with ``codeloop.telemetry.instrument()`` exporting to a no-op exporter through
the SDK's BatchSpanProcessor (run, step, chat, execute_code and execute_tool spans: 5 a step); modes
alternate so machine noise hits both. Prints the median wall time per step of each mode and the ratio
(target: on <= 1.05 x off). "Off" is the code path of an uninstrumented process: the loop reads an empty
subscriber list once per run; the script also times that read. ``--executor inprocess`` shows the
absolute cost of the spans on a much cheaper step.
"""

from __future__ import annotations

import argparse
import statistics
import time
import timeit
from typing import Any

STEP = "Thought: next.\n<code>\nx = lookup('k{i}')\nprint(x)\n</code>"
FINAL = "Thought: done.\n<code>\nfinal_answer(x)\n</code>"


def _agent(server: Any, steps: int, executor: str) -> Any:
    from codeloop import CodeAgent, OpenAIModel, tool

    @tool
    def lookup(key: str) -> str:
        """Look a key up.

        Args:
            key: the key
        """
        return key.upper()

    model = OpenAIModel("loopback-model", api_base=server.base_url, api_key="k")
    return CodeAgent(tools=[lookup], model=model, verbosity_level=0, max_steps=steps + 1, executor_type=executor)


def _one_run(steps: int, executor: str = "local") -> float:
    from codeloop.testing import OpenAICompatibleServer

    replies = [STEP.format(i=i) for i in range(steps - 1)] + [FINAL]
    with OpenAICompatibleServer(replies) as server:
        agent = _agent(server, steps, executor)
        start = time.perf_counter()
        result = agent.run("count", return_full_result=True)
        elapsed = time.perf_counter() - start
    assert result.state == "success", result
    return elapsed / steps


def _recorder_cost(provider: Any, steps: int) -> float:
    """Seconds the span recorder takes per step, replaying the events of a real run (no agent around)."""
    from dataclasses import replace

    from codeloop.telemetry.spans import SpanRecorder
    from codeloop.testing import OpenAICompatibleServer

    replies = [STEP.format(i=i) for i in range(steps - 1)] + [FINAL]
    with OpenAICompatibleServer(replies) as server:
        events = list(_agent(server, steps, "inprocess").stream("count"))
    recorder = SpanRecorder(provider.get_tracer("bench"))
    rounds = 50
    start = time.perf_counter()
    for r in range(rounds):
        run_id = f"bench-{r}"
        for event in events:
            recorder(replace(event, run_id=run_id))
    return (time.perf_counter() - start) / (rounds * steps)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--executor", default="local", help="local (the default isolated worker) or inprocess")
    args = parser.parse_args()

    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

    from codeloop import telemetry
    from codeloop.events import subscribers

    class NoOpExporter(SpanExporter):
        def __init__(self) -> None:
            self.spans = 0

        def export(self, spans: Any) -> SpanExportResult:
            self.spans += len(spans)
            return SpanExportResult.SUCCESS

    exporter = NoOpExporter()
    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(exporter))
    _one_run(5, args.executor)  # warm up imports, the worker and the HTTP client
    off: list[float] = []
    on: list[float] = []
    for _ in range(args.repeat):
        off.append(_one_run(args.steps, args.executor))
        telemetry.instrument(provider)
        try:
            on.append(_one_run(args.steps, args.executor))
        finally:
            telemetry.uninstrument()
    recorder = _recorder_cost(provider, args.steps)
    provider.force_flush()
    provider.shutdown()
    read = min(timeit.repeat(lambda: [].extend(subscribers()), number=100_000, repeat=5)) / 100_000
    off_ms, on_ms = statistics.median(off) * 1e3, statistics.median(on) * 1e3
    print(f"executor: {args.executor}, steps per run: {args.steps}, runs per mode: {args.repeat}, spans exported: {exporter.spans}")
    print(f"tracing off: {off_ms:.3f} ms/step (median; min {min(off) * 1e3:.3f})")
    print(
        f"tracing on (no-op exporter, batch processor): {on_ms:.3f} ms/step (median; min {min(on) * 1e3:.3f})"
    )
    print(f"difference: {(on_ms - off_ms) * 1e3:+.0f} us/step")
    print(f"on/off ratio: {on_ms / off_ms:.3f} (target <= 1.05); min/min {min(on) / min(off):.3f}")
    print(f"span recording alone (5 spans a step, replayed events): {recorder * 1e6:.0f} us/step")
    print(f"off path: reading the empty subscriber list costs {read * 1e9:.0f} ns per run")


if __name__ == "__main__":
    main()
