"""ToolCallingAgent: native and text tool calls, parallel calls, argument validation, final answer."""

from __future__ import annotations

import asyncio
import time

from codeloop.agents import LogLevel, ToolCallingAgent
from codeloop.errors import AgentExecutionError, AgentToolCallError, AgentToolExecutionError
from codeloop.events import ActionParsed, ToolCallFinished, ToolCallStarted
from codeloop.memory import ActionStep
from codeloop.models.scripted import ScriptedModel
from codeloop.tools import tool


def calls(*pairs, content=None):
    return {
        "content": content,
        "tool_calls": [{"name": n, "arguments": a, "id": f"c{i}"} for i, (n, a) in enumerate(pairs)],
    }


@tool
async def slow_square(x: int) -> int:
    """Square a number slowly.

    Args:
        x: the number
    """
    await asyncio.sleep(0.2)
    return x * x


@tool
def blocking_add(a: int, b: int) -> int:
    """Add two numbers (a sync tool, run in a thread).

    Args:
        a: first
        b: second
    """
    time.sleep(0.2)
    return a + b


@tool
def fails(x: str) -> str:
    """Always fails.

    Args:
        x: anything
    """
    raise RuntimeError("tool broke")


def make(replies, tools, **kw):
    kw.setdefault("verbosity_level", LogLevel.OFF)
    return ToolCallingAgent(tools=tools, model=ScriptedModel(replies), **kw)


def test_parallel_calls_run_concurrently_and_results_are_observations():
    agent = make(
        [
            calls(("slow_square", {"x": 3}), ("slow_square", {"x": 4}), ("blocking_add", {"a": 1, "b": 2})),
            calls(("final_answer", {"answer": "25 and 3"})),
        ],
        [slow_square, blocking_add],
    )
    start = time.perf_counter()
    result = agent.run("t", return_full_result=True)
    elapsed = time.perf_counter() - start
    assert result.output == "25 and 3" and result.state == "success"
    assert elapsed < 0.5, f"three 0.2 s calls took {elapsed:.2f}s: not concurrent"
    step = agent.memory.steps[1]
    assert "9" in step.observations and "16" in step.observations and "3" in step.observations
    assert [tc.name for tc in step.tool_calls] == ["slow_square", "slow_square", "blocking_add"]
    # tools were offered natively to the model
    offered = agent.model.call_kwargs[0]["tools_to_call_from"]
    assert {t.name for t in offered} >= {"slow_square", "blocking_add", "final_answer"}


def test_max_tool_threads_bounds_concurrency():
    agent = make(
        [calls(*[("slow_square", {"x": i}) for i in range(4)]), calls(("final_answer", {"answer": 1}))],
        [slow_square],
        max_tool_threads=1,
    )
    start = time.perf_counter()
    agent.run("t")
    assert time.perf_counter() - start >= 0.75


def test_argument_validation_error_is_observation_and_tool_not_called():
    called = []

    @tool
    def record(n: int) -> int:
        """Record a number.

        Args:
            n: the number
        """
        called.append(n)
        return n

    agent = make(
        [calls(("record", {"m": 1})), calls(("record", {"n": 2})), calls(("final_answer", {"answer": "ok"}))],
        [record],
    )
    assert agent.run("t") == "ok"
    err = agent.memory.steps[1].error
    assert isinstance(err, AgentToolCallError) and "record" in str(err)
    assert called == [2]
    assert "record" in agent.model.calls[1][-1].text


def test_failing_tool_keeps_other_results():
    agent = make(
        [calls(("fails", {"x": "a"}), ("slow_square", {"x": 2})), calls(("final_answer", {"answer": 1}))],
        [fails, slow_square],
    )
    agent.run("t")
    step = agent.memory.steps[1]
    assert isinstance(step.error, AgentToolExecutionError) and "tool broke" in str(step.error)
    assert "4" in step.observations


def test_unknown_tool_and_final_answer_with_other_calls():
    agent = make(
        [
            calls(("nope", {})),
            calls(("slow_square", {"x": 1}), ("final_answer", {"answer": "early"})),
            calls(("final_answer", {"answer": "late"})),
        ],
        [slow_square],
    )
    assert agent.run("t") == "late"
    assert "nope" in str(agent.memory.steps[1].error)
    assert isinstance(agent.memory.steps[2].error, AgentExecutionError)
    assert "alone" in str(agent.memory.steps[2].error)


def test_json_tool_calls_in_text_are_parsed():
    agent = make(['Action: {"name": "final_answer", "arguments": {"answer": "from text"}}'], [])
    assert agent.run("t") == "from text"


def test_events_for_tool_calls():
    agent = make([calls(("slow_square", {"x": 5})), calls(("final_answer", {"answer": 25}))], [slow_square])
    events = list(agent.stream("t"))
    parsed = [e for e in events if isinstance(e, ActionParsed)]
    assert parsed[0].tool_calls[0].function.name == "slow_square"
    started = [e for e in events if isinstance(e, ToolCallStarted)]
    finished = [e for e in events if isinstance(e, ToolCallFinished)]
    assert started[0].call_id == "c0" and finished[0].result == 25 and finished[0].duration >= 0.2
    assert events.index(started[0]) < events.index(finished[0])


def test_state_variable_substitution_and_streaming_tool_calls():
    agent = make([calls(("slow_square", {"x": "n"})), calls(("final_answer", {"answer": 1}))], [slow_square])
    agent.model.stream_chunk_size = 3
    agent.stream_outputs = True
    agent.run("t", additional_args={"n": 6})
    assert "36" in agent.memory.steps[1].observations


def test_concurrent_runs_tool_calling():
    def reply(messages):
        n = int(messages[1].text.split("number ")[1].split()[0])
        if any(m.role == "tool-response" for m in messages):
            return calls(("final_answer", {"answer": n * 10}))
        return calls(("slow_square", {"x": n}))

    agent = ToolCallingAgent(tools=[slow_square], model=ScriptedModel(reply), verbosity_level=LogLevel.OFF)

    async def main():
        return await asyncio.gather(*(agent.arun(f"number {i} please") for i in range(30)))

    assert asyncio.run(main()) == [i * 10 for i in range(30)]
    assert isinstance(agent.memory.steps[1], ActionStep)
