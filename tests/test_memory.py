"""Memory steps: messages, JSON round trip, lazy model inputs, callbacks registry."""

from __future__ import annotations

import asyncio
import json

from test_agents import code, make_agent

from codeloop.errors import AgentExecutionError, AgentMaxStepsError
from codeloop.memory import (
    ActionStep,
    AgentMemory,
    CallbackRegistry,
    FinalAnswerStep,
    MemoryStep,
    PlanningStep,
    SystemPromptStep,
    TaskStep,
    ToolCall,
    memory_step_from_dict,
)
from codeloop.messages import ChatMessage, MessageRole, Timing, TokenUsage


def sample_memory() -> AgentMemory:
    memory = AgentMemory("You are helpful.")
    memory.steps.append(TaskStep(task="Do it", task_images=[b"\x89PNG"]))
    memory.steps.append(
        PlanningStep(
            model_input_messages=[ChatMessage(MessageRole.USER, "plan please")],
            model_output_message=ChatMessage(MessageRole.ASSISTANT, "1. x"),
            plan="PLAN: 1. x",
            timing=Timing(start_time=1.0, end_time=2.0),
            token_usage=TokenUsage(3, 4),
        )
    )
    memory.steps.append(
        ActionStep(
            step_number=1,
            timing=Timing(start_time=2.0, end_time=3.0),
            tool_calls=[ToolCall(name="python_interpreter", arguments="x = 1", id="call_1")],
            error=AgentExecutionError("boom"),
            model_output_message=ChatMessage(MessageRole.ASSISTANT, "<code>x = 1</code>"),
            model_output="<code>x = 1</code>",
            code_action="x = 1",
            observations="Execution logs:\n",
            action_output={"a": {1, 2}},
            token_usage=TokenUsage(10, 5),
        )
    )
    memory.steps.append(
        ActionStep(step_number=2, error=AgentMaxStepsError("Reached max steps."), action_output="ans")
    )
    return memory


def test_to_messages_roles_and_texts():
    memory = sample_memory()
    messages = memory.messages_before()
    roles = [m.role for m in messages]
    assert roles[0] == MessageRole.SYSTEM and roles[1] == MessageRole.USER
    assert [r.value for r in roles[2:4]] == ["assistant", "user"]  # plan + "proceed"
    texts = "\n".join(m.text for m in messages)
    assert "New task:\nDo it" in texts and "Calling tools:" in texts and "Observation:" in texts
    assert "Call id: call_1\nError:\nboom" in texts
    summary = memory.messages_before(summary_mode=True)
    assert all(m.role != MessageRole.SYSTEM for m in summary)
    assert "PLAN" not in "\n".join(m.text for m in summary)
    assert FinalAnswerStep(output=1).to_messages() == []
    assert SystemPromptStep("s").to_messages(summary_mode=True) == []


def test_json_round_trip_of_every_step():
    memory = sample_memory()
    data = json.loads(json.dumps(memory.to_dict()))
    rebuilt = AgentMemory.from_dict(data)
    assert [type(s) for s in rebuilt.steps] == [type(s) for s in memory.steps]
    assert json.loads(json.dumps(rebuilt.to_dict())) == data
    action = rebuilt.steps[2]
    assert isinstance(action.error, AgentExecutionError) and action.error.message == "boom"
    assert action.token_usage.input_tokens == 10 and action.timing.duration == 1.0
    assert rebuilt.steps[1].plan == "PLAN: 1. x"
    assert rebuilt.steps[0].task_images[0].startswith("data:image/png;base64,")
    assert isinstance(rebuilt.steps[3].error, AgentMaxStepsError)
    assert memory_step_from_dict(FinalAnswerStep(output=[1, 2]).dict()).output == [1, 2]
    assert [m.to_dict() for m in rebuilt.messages_before()][2:] == [
        m.to_dict() for m in memory.messages_before()
    ][2:]


def test_succinct_full_steps_and_full_code():
    memory = sample_memory()
    assert all("model_input_messages" not in s for s in memory.get_succinct_steps())
    assert memory.get_full_steps()[1]["model_input_messages"][0]["content"] == "plan please"
    assert memory.return_full_code() == "x = 1"
    memory.reset()
    assert memory.steps == [] and memory.system_prompt.system_prompt == "You are helpful."


def test_model_input_messages_are_lazy_but_readable():
    agent = make_agent([code("a = 1"), code("final_answer(a)")])
    agent.run("t")
    step2 = agent.memory.steps[2]
    assert step2.__dict__["_inputs"] is None  # nothing copied per step
    seen = step2.model_input_messages
    assert [m.to_dict() for m in seen] == [
        m.to_dict() if hasattr(m, "to_dict") else m for m in agent.model.calls[1]
    ]
    full = agent.memory.get_full_steps()
    assert full[2]["model_input_messages"] is not None

    kept = make_agent([code("final_answer(1)")], keep_model_input_messages=True)
    kept.run("t")
    assert kept.memory.steps[1].__dict__["_inputs"] is not None


def test_callback_registry_mro_and_async():
    seen = []

    async def async_cb(step, agent=None):
        await asyncio.sleep(0)
        seen.append(("async", type(step).__name__, agent))

    registry = CallbackRegistry()
    registry.register(MemoryStep, lambda s: seen.append(("base", type(s).__name__)))
    registry.register(ActionStep, async_cb)
    asyncio.run(registry.acall(ActionStep(step_number=1), agent="A"))
    asyncio.run(registry.acall(TaskStep(task="t"), agent="A"))
    assert seen == [("async", "ActionStep", "A"), ("base", "ActionStep"), ("base", "TaskStep")]


def test_replay_runs(capsys):
    from rich.console import Console

    from codeloop.agents import AgentLogger, LogLevel

    sample_memory().replay(AgentLogger(LogLevel.INFO, console=Console(width=100)), detailed=True)
    out = capsys.readouterr().out
    assert "Do it" in out and "PLAN" in out and "boom" in out
