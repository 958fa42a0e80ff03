"""Managed agents: a team member is a tool of its manager; each call is a fresh, independent run."""

from __future__ import annotations

import asyncio
import re
import time

from test_agents import code

from codeloop.agents import CodeAgent, LogLevel, ManagedAgentTool, ToolCallingAgent
from codeloop.memory import ActionStep
from codeloop.models.scripted import ScriptedModel


def member(replies, name="helper", **kw):
    kw.setdefault("verbosity_level", LogLevel.OFF)
    return CodeAgent(
        tools=[],
        model=replies if hasattr(replies, "agenerate") else ScriptedModel(replies),
        name=name,
        description="Answers questions about numbers.",
        executor_type="inprocess",
        **kw,
    )


def test_manager_calls_member_from_code_and_gets_report():
    helper = member([code("final_answer('the answer is 42')")], provide_run_summary=True)
    manager = CodeAgent(
        tools=[],
        model=ScriptedModel([code("r = helper(task='find the number')\nprint(r)"), code("final_answer(r)")]),
        managed_agents=[helper],
        executor_type="inprocess",
        verbosity_level=LogLevel.OFF,
    )
    out = manager.run("ask the helper")
    assert "the answer is 42" in out and "helper" in out
    assert "<summary_of_work>" in out
    # the member ran its task through the managed_agent template
    assert "find the number" in helper.model.calls[0][1].text
    assert "helper" in manager.system_prompt
    assert manager.managed_agents["helper"] is helper


def test_failing_member_gives_clear_error_observation():
    def broken(messages):
        raise RuntimeError("member model is down")

    helper = member(ScriptedModel(broken))
    manager = CodeAgent(
        tools=[],
        model=ScriptedModel([code("r = helper(task='x')"), code("final_answer('recovered')")]),
        managed_agents=[helper],
        executor_type="inprocess",
        verbosity_level=LogLevel.OFF,
    )
    assert manager.run("t") == "recovered"
    err = str(manager.memory.steps[1].error)
    assert "helper" in err and "member model is down" in err


def test_concurrent_member_calls_do_not_share_state():
    def helper_reply(messages):
        n = int(re.search(r"square (\d+)", messages[1].text).group(1))
        if any(m.role == "tool-response" for m in messages):
            return code("final_answer(v)")
        return code(f"v = {n} * {n}")

    helper = member(ScriptedModel(helper_reply, latency=0.2))
    manager = ToolCallingAgent(
        tools=[],
        model=ScriptedModel(
            [
                {
                    "tool_calls": [
                        {"name": "helper", "arguments": {"task": "square 3"}, "id": "a"},
                        {"name": "helper", "arguments": {"task": "square 5"}, "id": "b"},
                    ]
                },
                {"tool_calls": [{"name": "final_answer", "arguments": {"answer": "done"}}]},
            ]
        ),
        managed_agents=[helper],
        verbosity_level=LogLevel.OFF,
    )
    start = time.perf_counter()
    assert manager.run("t") == "done"
    assert time.perf_counter() - start < 0.75  # 2 calls x 2 steps x 0.2 s would be 0.8 s sequentially
    obs = manager.memory.steps[1].observations
    assert "9" in obs and "25" in obs
    offered = manager.model.call_kwargs[0]["tools_to_call_from"]
    schema = next(t for t in offered if t.name == "helper").to_tool_schema()
    assert schema["function"]["parameters"]["required"] == ["task"]


def test_member_tool_directly_concurrent():
    def helper_reply(messages):
        n = int(re.search(r"square (\d+)", messages[1].text).group(1))
        return code(f"final_answer({n} * {n})")

    helper = member(ScriptedModel(helper_reply))
    wrapper = ManagedAgentTool(helper)

    async def main():
        return await asyncio.gather(*(wrapper.acall(f"square {i}") for i in range(20)))

    reports = asyncio.run(main())
    for i, report in enumerate(reports):
        assert str(i * i) in report
    assert all(isinstance(s, ActionStep) for s in helper.memory.steps[1:])


def test_member_called_directly_like_smolagents():
    helper = member([code("final_answer('hi')")])
    assert "hi" in helper("say hi")
    assert helper.inputs["task"]["type"] == "string"


def test_tool_calling_prompt_describes_member_as_tool():
    helper = member([code("final_answer(1)")])
    manager = ToolCallingAgent(
        tools=[], model=ScriptedModel([]), managed_agents=[helper], verbosity_level=LogLevel.OFF
    )
    prompt = manager.system_prompt
    assert "helper" in prompt and "Answers questions about numbers." in prompt
    assert "None" not in prompt.split("helper", 1)[1][:400]


def test_tool_calling_manager_with_failing_and_step_limited_members():
    def broken(messages):
        raise RuntimeError("no capacity")

    failing = member(ScriptedModel(broken), name="failing")
    stuck_model = ScriptedModel(
        lambda m: (
            "partial result"
            if stuck_model.call_kwargs[-1].get("stop_sequences") is None
            else code("print(1)")
        )
    )
    stuck = member(stuck_model, name="stuck", max_steps=1)
    manager = ToolCallingAgent(
        tools=[],
        model=ScriptedModel(
            [
                {"tool_calls": [{"name": "failing", "arguments": {"task": "a"}}]},
                {"tool_calls": [{"name": "stuck", "arguments": {"task": "b"}}]},
                {"tool_calls": [{"name": "final_answer", "arguments": {"answer": "ok"}}]},
            ]
        ),
        managed_agents=[failing, stuck],
        verbosity_level=LogLevel.OFF,
    )
    assert manager.run("t") == "ok"
    err = str(manager.memory.steps[1].error)
    assert "team member 'failing'" in err and "no capacity" in err
    obs = manager.memory.steps[2].observations
    assert "partial result" in obs and "step limit" in obs


def test_many_sync_manager_runs_calling_members_from_code_do_not_deadlock():
    from concurrent.futures import ThreadPoolExecutor

    def helper_reply(messages):
        n = int(re.search(r"square (\d+)", messages[1].text).group(1))
        return code(f"final_answer({n} * {n})")

    def manager_reply(messages):
        n = int(re.search(r"number (\d+)", messages[1].text).group(1))
        if any(m.role == "tool-response" for m in messages):
            return code("final_answer(r)")
        return code(f"r = helper(task='square {n}')")

    helper = member(ScriptedModel(helper_reply))
    manager = CodeAgent(
        tools=[],
        model=ScriptedModel(manager_reply),
        managed_agents=[helper],
        executor_type="inprocess",
        verbosity_level=LogLevel.OFF,
    )
    # More concurrent sync runs (all on the shared portal loop) than its default thread pool has threads.
    with ThreadPoolExecutor(12) as pool:
        futures = [pool.submit(manager.run, f"number {i}") for i in range(12)]
        reports = [f.result(timeout=30) for f in futures]
    assert all(f"{i * i}" in report for i, report in enumerate(reports))
