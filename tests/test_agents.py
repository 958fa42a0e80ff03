"""End-to-end tests of CodeAgent's loop with ScriptedModel and the in-process executor."""

from __future__ import annotations

import asyncio
import re

import pytest

from codeloop.agents import ActionOutput, CodeAgent, LogLevel, RunResult
from codeloop.errors import AgentError, AgentGenerationError, AgentMaxStepsError
from codeloop.events import (
    ActionParsed,
    CodeOutputEvent,
    FinalAnswerEvent,
    ModelDelta,
    ModelOutput,
    RunFailed,
    RunFinished,
    RunStarted,
    StepFinished,
    ToolCallFinished,
    ToolCallStarted,
)
from codeloop.memory import ActionStep, FinalAnswerStep, PlanningStep, TaskStep
from codeloop.models.scripted import ScriptedModel
from codeloop.tools import tool


def code(src: str) -> str:
    return f"Thought: working.\n<code>\n{src}\n</code>"


def make_agent(replies, **kwargs) -> CodeAgent:
    kwargs.setdefault("verbosity_level", LogLevel.OFF)
    kwargs.setdefault("executor_type", "inprocess")
    model = replies if hasattr(replies, "agenerate") else ScriptedModel(replies)
    return CodeAgent(tools=kwargs.pop("tools", []), model=model, **kwargs)


@tool
def add(a: int, b: int) -> int:
    """Add two numbers.

    Args:
        a: first number
        b: second number
    """
    return a + b


@tool
async def slow_double(x: int) -> int:
    """Double a number, asynchronously.

    Args:
        x: the number
    """
    await asyncio.sleep(0.01)
    return 2 * x


def last_text(messages) -> str:
    return messages[-1].text if hasattr(messages[-1], "text") else str(messages[-1]["content"])


def all_text(messages) -> str:
    return "\n".join(m.text for m in messages)


def test_multi_step_code_uses_variables_across_steps_and_tools():
    agent = make_agent([code("x = add(2, 3)\nprint('x is', x)"), code("final_answer(x * 10)")], tools=[add])
    result = agent.run("Compute (2+3)*10", return_full_result=True)
    assert isinstance(result, RunResult)
    assert result.output == 50 and result.state == "success"
    steps = [s for s in agent.memory.steps if isinstance(s, ActionStep)]
    assert len(steps) == 2
    assert "x is 5" in steps[0].observations
    assert "Last output from code snippet" in steps[0].observations
    assert steps[1].is_final_answer and steps[1].action_output == 50
    assert result.token_usage.input_tokens > 0
    assert result.timing.duration is not None and result.timing.duration >= 0
    # the second model call saw the first observation
    assert "x is 5" in all_text(agent.model.calls[1])
    assert agent.memory.return_full_code().count("\n") >= 2


def test_plain_run_returns_answer_and_async_tool_from_code():
    agent = make_agent([code("y = slow_double(21)\nfinal_answer(y)")], tools=[slow_double])
    assert agent.run("double 21") == 42


def test_error_becomes_observation_and_model_recovers():
    agent = make_agent([code("print('before')\nundefined_name + 1"), code("final_answer('fixed')")])
    assert agent.run("t") == "fixed"
    failed = agent.memory.steps[1]
    assert isinstance(failed, ActionStep) and failed.error is not None
    assert "undefined_name" in str(failed.error)
    assert "before" in (failed.observations or "")
    second_call = all_text(agent.model.calls[1])
    assert "Error:" in second_call and "undefined_name" in second_call


def test_parsing_error_is_observation():
    agent = make_agent(["I will not write code.", code("final_answer(1)")])
    assert agent.run("t") == 1
    assert "code" in str(agent.memory.steps[1].error).lower()


def kind_of_call(model) -> str:
    """What the agent asked for in the model call being answered: 'plan', 'final' or 'action'."""
    stops = model.call_kwargs[-1].get("stop_sequences")
    if stops == ["<end_plan>"]:
        return "plan"
    return "final" if not stops else "action"


def test_max_steps_asks_for_final_answer():
    model = ScriptedModel(
        lambda m: "best guess" if kind_of_call(model) == "final" else code("print('working')")
    )
    agent = make_agent(model, max_steps=3)
    result = agent.run("never ends", return_full_result=True)
    assert result.state == "max_steps_error"
    last = agent.memory.steps[-1]
    assert isinstance(last.error, AgentMaxStepsError)
    assert len(model.calls) == 4  # 3 steps + the final-answer request
    assert result.output == "best guess" == last.action_output
    assert "never ends" in last_text(model.calls[-1])


def test_max_steps_run_kwarg_overrides():
    agent = make_agent(lambda m: code("print(1)"), max_steps=10)
    agent.model = ScriptedModel(lambda m: code("print(1)"))
    result = agent.run("t", max_steps=2, return_full_result=True)
    assert result.state == "max_steps_error"
    assert len([s for s in agent.memory.steps if isinstance(s, ActionStep)]) == 3


def test_model_failure_ends_run_with_generation_error():
    def boom(messages):
        raise RuntimeError("provider down")

    agent = make_agent(ScriptedModel(boom))
    with pytest.raises(AgentGenerationError, match="provider down"):
        agent.run("t")
    assert isinstance(agent.memory.steps[-1].error, AgentGenerationError)


def test_events_in_order_with_streaming_outputs():
    model = ScriptedModel([code("x = 1\nprint(x)"), code("final_answer(x + 1)")], stream_chunk_size=5)
    agent = make_agent(model, stream_outputs=True)

    async def collect():
        return [e async for e in agent.astream("t")]

    events = asyncio.run(collect())
    types = [type(e) for e in events]
    assert types[0] is RunStarted and types[-1] is RunFinished
    assert types[-2] is FinalAnswerEvent and events[-2].output == 2
    first_step = [e for e in events if e.step_number == 1]
    kinds = [type(e) for e in first_step]
    assert kinds[0] is ModelDelta
    assert kinds.index(ModelOutput) > kinds.index(ModelDelta)
    assert kinds.index(ActionParsed) > kinds.index(ModelOutput)
    assert kinds.index(CodeOutputEvent) > kinds.index(ActionParsed)
    assert kinds[-1] is StepFinished
    assert "".join(e.delta.content or "" for e in first_step if type(e) is ModelDelta).startswith("Thought")
    assert len({e.run_id for e in events}) == 1
    assert events[-1].state == "success" and events[-1].usage.input_tokens > 0


def test_tool_call_events_from_code():
    agent = make_agent([code("r = add(1, 2)\nfinal_answer(r)")], tools=[add])
    events = list(agent.stream("t"))
    started = [e for e in events if isinstance(e, ToolCallStarted)]
    finished = [e for e in events if isinstance(e, ToolCallFinished)]
    assert [e.tool_name for e in started] == ["add"] and finished[0].result == 3
    assert events.index(started[0]) < events.index(finished[0])
    assert finished[0].call_id == started[0].call_id


def test_sync_stream_yields_smolagents_items():
    agent = make_agent([code("final_answer(7)")])
    items = list(agent.run("t", stream=True))
    assert isinstance(items[-1], FinalAnswerStep) and items[-1].output == 7
    assert any(isinstance(i, ActionStep) for i in items)


def test_step_callbacks_list_and_dict_forms():
    seen_list, seen_dict, seen_final = [], [], []
    agent = make_agent(
        [code("a = 1"), code("final_answer(a)")],
        step_callbacks=[lambda step, agent: seen_list.append((step.step_number, agent.name))],
    )
    agent.run("t")
    assert seen_list == [(1, None), (2, None)]

    agent2 = make_agent(
        [code("a = 1"), code("final_answer(a)")],
        step_callbacks={
            ActionStep: [lambda s: seen_dict.append(s.step_number)],
            FinalAnswerStep: seen_final.append,
        },
    )
    agent2.run("t")
    assert seen_dict == [1, 2]
    assert [s.output for s in seen_final] == [1]


def test_final_answer_checks_reject_then_accept():
    def must_be_even(answer, memory):
        assert isinstance(memory.steps[0], TaskStep)
        return answer % 2 == 0

    agent = make_agent([code("final_answer(3)"), code("final_answer(4)")], final_answer_checks=[must_be_even])
    assert agent.run("t") == 4
    assert "must_be_even" in str(agent.memory.steps[1].error)
    assert "must_be_even" in all_text(agent.model.calls[1])


def test_planning_and_plan_edit_by_callback():
    def scripted(messages):
        kind = kind_of_call(model)
        if kind == "plan":
            return "MODEL PLAN"
        if sum(1 for m in messages if m.role == "assistant" and "<code>" in m.text) >= 2:
            return code("final_answer('done')")
        return code("print('step')")

    def edit(step, agent):
        step.plan = f"EDITED PLAN {len(model.calls)}"

    model = ScriptedModel(scripted)
    agent = make_agent(model, planning_interval=2, step_callbacks={PlanningStep: edit})
    events = list(agent.stream("t"))
    plans = [s for s in agent.memory.steps if isinstance(s, PlanningStep)]
    assert len(plans) == 2
    assert all(p.plan.startswith("EDITED PLAN") for p in plans)
    # the action call after the first plan sees the edited plan, not the model's
    assert "EDITED PLAN 1" in all_text(model.calls[1]) and "MODEL PLAN" not in all_text(model.calls[1])
    plan_events = [e for e in events if e.type == "plan"]
    assert plan_events[0].plan == "EDITED PLAN 1" and not plan_events[0].is_update
    assert plan_events[1].is_update
    assert agent.memory.steps[-1].is_final_answer


def test_reset_false_continues_conversation_and_variables():
    agent = make_agent([code("secret = 41\nfinal_answer('stored')"), code("final_answer(secret + 1)")])
    assert agent.run("first") == "stored"
    assert agent.run("second", reset=False) == 42
    tasks = [s.task for s in agent.memory.steps if isinstance(s, TaskStep)]
    assert tasks == ["first", "second"]
    assert "first" in all_text(agent.model.calls[1])
    # reset=True starts fresh
    agent.model = ScriptedModel([code("final_answer('secret' in dir())")])
    agent.run("third")
    assert [s.task for s in agent.memory.steps if isinstance(s, TaskStep)] == ["third"]


def test_additional_args_are_variables():
    agent = make_agent([code("final_answer(data['n'] * 2)")])
    assert agent.run("use data", additional_args={"data": {"n": 5}}) == 10
    assert "data" in agent.memory.steps[0].task


def test_interrupt_from_callback_ends_cleanly():
    def stop(step, agent):
        agent.interrupt()

    agent = make_agent(ScriptedModel(lambda m: code("print(1)")), step_callbacks=[stop])
    result = agent.run("t", return_full_result=True)
    assert result.state == "cancelled" and result.output is None
    assert len([s for s in agent.memory.steps if isinstance(s, ActionStep)]) == 1
    with pytest.raises(AgentError, match="Agent interrupted"):  # as in smolagents
        agent.run("t2")


def test_interrupt_cancels_model_call_in_flight():
    agent = make_agent(ScriptedModel(lambda m: code("print(1)"), latency=5))

    async def main():
        task = asyncio.create_task(agent.arun("t", return_full_result=True))
        await asyncio.sleep(0.05)
        agent.interrupt()
        return await asyncio.wait_for(task, 2)

    result = asyncio.run(main())
    assert result.state == "cancelled"


def test_cancelling_arun_propagates_and_closes_executor():
    agent = make_agent(ScriptedModel(lambda m: code("print(1)"), latency=5))
    events = []
    agent.event_handlers.append(events.append)

    async def main():
        task = asyncio.create_task(agent.arun("t"))
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    run = agent.last_run
    assert run.executor is None and run.status == "failed"
    assert not any(isinstance(e, RunFinished) for e in events)


def test_run_failed_event_on_generation_error():
    events = []
    agent = make_agent(ScriptedModel([]), event_handlers=[events.append])
    with pytest.raises(AgentGenerationError):
        agent.run("t")
    assert isinstance(events[-1], RunFailed) and events[-1].error_type == "AgentGenerationError"


async def test_sync_run_works_inside_running_loop():
    agent = make_agent([code("final_answer(5)"), code("final_answer(6)")])
    assert agent.run("t") == 5
    items = list(agent.run("t", stream=True))  # sync stream inside a running loop (Jupyter)
    assert isinstance(items[-1], FinalAnswerStep) and items[-1].output == 6


def test_manual_step():
    agent = make_agent([code("z = 3"), code("final_answer(z)")])
    agent.memory.steps.append(TaskStep(task="manual"))
    step = ActionStep(step_number=1)
    out = agent.step(step)  # smolagents returns the step's ActionOutput
    assert isinstance(out, ActionOutput) and not out.is_final_answer and out.output == 3
    agent.memory.steps.append(step)
    step2 = ActionStep(step_number=2)
    out2 = agent.step(step2)
    assert out2.is_final_answer and out2.output == 3
    agent.cleanup()


def test_concurrent_runs_on_one_agent_are_independent():
    def reply(messages):
        n = int(re.search(r"number (\d+)", messages[1].text).group(1))
        if any(m.role == "tool-response" for m in messages):
            return code(f"final_answer(x + {n})")
        return code(f"x = {n} * 2")

    agent = make_agent(ScriptedModel(reply))

    async def main():
        return await asyncio.gather(*(agent.arun(f"number {i}", return_full_result=True) for i in range(100)))

    results = asyncio.run(main())
    assert [r.output for r in results] == [3 * i for i in range(100)]
    assert all(r.state == "success" for r in results)
    assert len({r.run_id for r in results}) == 100
    assert all(len([s for s in r._memory.steps if isinstance(s, ActionStep)]) == 2 for r in results)


def test_visualize_and_replay_print(capsys):
    from rich.console import Console

    from codeloop.agents import AgentLogger

    logger = AgentLogger(LogLevel.INFO, console=Console(force_terminal=False, width=100))
    helper = make_agent([code("final_answer(1)")], name="helper", description="Helps.")
    agent = make_agent([code("final_answer(2)")], tools=[add], managed_agents=[helper], logger=logger)
    agent.visualize()
    agent.run("task text")
    agent.replay()
    out = capsys.readouterr().out
    assert "add" in out and "helper" in out and "task text" in out and "Final answer: 2" in out


def test_quiet_logger_prints_nothing(capsys):
    agent = make_agent([code("print('hi')\nfinal_answer(1)")], verbosity_level=LogLevel.OFF)
    agent.run("t")
    assert capsys.readouterr().out == ""


def test_error_level_prints_only_errors(capsys):
    agent = make_agent([code("1/0"), code("final_answer(1)")], verbosity_level=LogLevel.ERROR)
    agent.run("t")
    out = capsys.readouterr().out
    assert "ZeroDivisionError" in out and "New run" not in out


def test_bad_constructor_arguments_have_clear_errors():
    with pytest.raises(ValueError, match="name"):
        make_agent([], name="not valid")
    with pytest.raises(ValueError, match="description"):
        make_agent([], managed_agents=[make_agent([], name="x")])
    with pytest.raises(TypeError, match="not a tool"):
        make_agent([], tools=["nope"])
    with pytest.raises(ValueError, match="step_callbacks"):
        make_agent([], step_callbacks="x")
    with pytest.raises(ValueError, match="planning"):
        make_agent([], prompt_templates={"system_prompt": "x"})


def test_isolated_worker_executor_end_to_end():
    agent = make_agent(
        [code("x = add(20, 1)\nprint('got', x)"), code("y = x / 0"), code("final_answer(x * 2)")],
        tools=[add],
        executor_type="local",
    )
    events = list(agent.stream("t"))
    assert events[-1].output == 42 and events[-1].state == "success"
    steps = [s for s in agent.memory.steps if isinstance(s, ActionStep)]
    assert "got 21" in steps[0].observations
    assert "ZeroDivisionError" in str(steps[1].error)
    assert any(isinstance(e, ToolCallFinished) and e.result == 21 for e in events)
    run = agent.last_run
    assert run.executor is None and run.closed_executor is not None  # closed at the end of the run
    assert run.executor_snapshot.get("x") == 21


def test_structured_outputs_internally():
    import json

    agent = make_agent(
        [json.dumps({"thought": "go", "code": "final_answer(6 * 7)"})], use_structured_outputs_internally=True
    )
    assert agent.run("t") == 42
    assert agent.model.call_kwargs[0]["response_format"]["json_schema"]["name"]
    # the default system prompt asks for the JSON reply shape, not for code blocks
    assert '"thought"' in agent.memory.system_prompt.system_prompt
    assert '"thought"' not in make_agent([code("final_answer(1)")]).initialize_system_prompt()


def test_images_go_to_the_task_step():
    agent = make_agent([code("final_answer(1)")])
    agent.run("look", images=[b"\x89PNG fake"])
    task = agent.memory.steps[0]
    assert task.task_images == [b"\x89PNG fake"]
    first_call = agent.model.calls[0]
    assert any(part.get("type") == "image" for part in first_call[1].content)


def test_callbacks_see_their_own_run_memory_under_concurrency():
    seen = {}

    async def callback(step, agent):
        await asyncio.sleep(0)
        seen.setdefault(agent.memory.steps[0].task, set()).add(id(agent.memory))

    def reply(messages):
        return code(f"final_answer({len(messages)})")

    agent = make_agent(ScriptedModel(reply), step_callbacks=[callback])

    async def main():
        await asyncio.gather(*(agent.arun(f"task {i}") for i in range(10)))

    asyncio.run(main())
    assert len(seen) == 10 and all(len(v) == 1 for v in seen.values())
    assert len({next(iter(v)) for v in seen.values()}) == 10


def test_python_executor_before_run_is_adopted_by_the_run():
    agent = make_agent([code("final_answer(preset + 1)")])
    agent.python_executor.send_variables({"preset": 41})
    assert agent.run("t") == 42
    assert agent.last_run.executor is None  # closed with the run
    assert agent.python_executor.state.get("preset") == 41  # the closed executor, still readable


def test_interrupt_from_astream_consumer_and_from_other_thread():
    import threading

    from codeloop.events import StepFinished as Finished

    agent = make_agent(ScriptedModel(lambda m: code("print(1)")))

    async def consume():
        seen = []
        async for event in agent.astream("t"):
            seen.append(event)
            if isinstance(event, Finished):
                agent.interrupt()
        return seen

    seen = asyncio.run(consume())
    assert seen[-1].state == "cancelled"
    assert sum(isinstance(e, Finished) for e in seen) == 1

    slow = make_agent(ScriptedModel(lambda m: code("print(1)"), latency=0.05))
    threading.Timer(0.2, slow.interrupt).start()
    items = list(slow.run("t", stream=True))
    assert slow.last_run.status == "cancelled"
    assert 1 <= len([i for i in items if isinstance(i, ActionStep)]) < 10
    assert slow.monitor.total_input_token_count > 0 and len(slow.monitor.step_durations) >= 1


def test_sync_only_user_model_works():
    from codeloop.messages import ChatMessage

    class OldStyleModel:
        model_id = "old"

        def __init__(self):
            self.n = 0

        def generate(self, messages, stop_sequences=None, **kwargs):
            self.n += 1
            text = code("print('x')") if self.n < 3 else "fallback answer"
            return ChatMessage("assistant", text)

    agent = CodeAgent(
        tools=[], model=OldStyleModel(), max_steps=2, executor_type="inprocess", verbosity_level=LogLevel.OFF
    )
    result = agent.run("t", return_full_result=True)
    assert result.state == "max_steps_error" and result.output == "fallback answer"


def test_async_event_handler_and_result_dict_is_json():
    import json

    seen = []

    async def handler(event):
        await asyncio.sleep(0)
        seen.append(event.type)

    agent = make_agent([code("final_answer({'a': [1, 2]})")], event_handlers=[handler])
    result = agent.run("t", return_full_result=True)
    assert seen[0] == "run_started" and seen[-1] == "run_finished"
    data = json.loads(json.dumps(result.dict()))
    assert data["output"] == {"a": [1, 2]} and data["state"] == "success"
    assert data["steps"][1]["model_input_messages"][0]["role"] == "system"
    assert [e for e in agent.last_run.memory.steps if isinstance(e, ActionStep)][0].is_final_answer


def test_state_set_before_first_run_reaches_the_code():
    agent = make_agent([code("final_answer(limit * 2)")])
    agent.state["limit"] = 21
    assert agent.run("t") == 42


def test_markdown_code_block_tags():
    agent = make_agent(["Thought: ok\n```python\nfinal_answer(9)\n```"], code_block_tags="markdown")
    assert agent.run("t") == 9
    stops = agent.model.call_kwargs[0]["stop_sequences"]
    assert "```" not in stops and "Observation:" in stops
    assert "```python" in agent.system_prompt


def test_system_prompt_is_cached_per_configuration_and_follows_changes(monkeypatch):
    agent = make_agent([code("final_answer(1)")] * 3, tools=[add])
    renders = []
    original = CodeAgent.initialize_system_prompt

    def counting(self):
        renders.append(1)
        return original(self)

    monkeypatch.setattr(CodeAgent, "initialize_system_prompt", counting)
    monkeypatch.setattr(CodeAgent, "_CACHEABLE_PROMPT_METHODS", (counting,))
    first = agent.system_prompt
    assert agent.system_prompt is first and len(renders) == 1  # same configuration: no re-render
    agent.run("one")
    assert agent.memory.system_prompt.system_prompt == first and len(renders) == 1
    agent.instructions = "Always answer in French."
    assert "Always answer in French." in agent.system_prompt and len(renders) == 2
    add.description = "Add two integers, carefully."
    try:
        assert "carefully" in agent.system_prompt and len(renders) == 3
    finally:
        add.description = "Add two numbers."
    agent.prompt_templates["system_prompt"] = "Tools: {{ tools | length }}"
    assert agent.system_prompt == "Tools: 2"


def test_system_prompt_of_a_subclass_with_its_own_renderer_is_not_cached():
    class Custom(CodeAgent):
        calls = 0

        def initialize_system_prompt(self):
            Custom.calls += 1
            return f"custom {Custom.calls}"

    agent = Custom(tools=[], model=ScriptedModel(["x"]), executor_type="inprocess", verbosity_level=0)
    assert agent.system_prompt != agent.system_prompt


def test_sync_models_of_many_concurrent_runs_are_called_at_once():
    # A smolagents-style model with only a blocking generate(): each call gets its own thread, not a
    # place in the loop's small default pool (min(32, cpus + 4) threads: 70 calls would need rounds).
    import time

    from codeloop.messages import ChatMessage

    class SlowSyncModel:
        def generate(self, messages, **kwargs):
            time.sleep(0.5)
            return ChatMessage(role="assistant", content=code("final_answer(1)"))

    agent = CodeAgent(
        tools=[], model=SlowSyncModel(), executor_type="inprocess", verbosity_level=LogLevel.OFF
    )

    async def main():
        start = time.perf_counter()
        results = await asyncio.gather(*(agent.arun(f"task {i}") for i in range(70)))
        return results, time.perf_counter() - start

    results, elapsed = asyncio.run(main())
    assert results == [1] * 70
    assert elapsed < 1.2, elapsed  # 32 threads: 3 rounds of 0.5 s; 6 threads: 12 rounds


def test_plain_sync_callables_run_in_code_threads():
    import threading

    from codeloop.agents.toolbox import acall_tool

    def where(x):
        return threading.current_thread().name, x

    assert asyncio.run(acall_tool(where, 5)) == ("codeloop-code", 5)
