"""smolagents behaviours of agents, tools and models that migrated code relies on (issue #16, API half).

Each test pins one behaviour that smolagents' own suite checks in the compatibility tier
(scripts/compat-smolagents.sh), here with codeloop's own components and no alias.
"""

from __future__ import annotations

import warnings

import pytest

from codeloop import ChatMessage, CodeAgent, MessageRole, Model, TaskStep, ToolCallingAgent
from codeloop.agents.run import RunResult
from codeloop.memory import PlanningStep
from codeloop.messages import Timing, TokenUsage


class _NoAnswer(Model):
    """Never calls final_answer and reports no token usage."""

    def generate(self, messages, stop_sequences=None):
        return ChatMessage(role=MessageRole.ASSISTANT, content="Thought: I don't want to act.\n<code>\nx = 1\n</code>")


class _Answers(Model):
    def __init__(self, text="done", usage=None):
        super().__init__()
        self.text, self.usage = text, usage

    def generate(self, messages, stop_sequences=None):
        return ChatMessage(
            role=MessageRole.ASSISTANT,
            content=f"<code>\nfinal_answer({self.text!r})\n</code>",
            token_usage=self.usage,
        )


def test_step_number_counts_the_answer_asked_for_after_max_steps():
    agent = CodeAgent(tools=[], model=_NoAnswer(), max_steps=2, verbosity_level=-1)
    assert agent.step_number == 0
    agent.run("task")
    assert agent.step_number == 3
    agent.run("task", max_steps=1)
    assert agent.step_number == 2


def test_step_number_after_an_answer_is_the_answering_step():
    agent = CodeAgent(tools=[], model=_Answers(), max_steps=5, verbosity_level=-1)
    agent.run("task")
    assert agent.step_number == 1


def test_run_result_messages_is_the_deprecated_name_of_steps():
    result = RunResult(output="x", state="success", steps=[{"a": 1}], timing=Timing(start_time=0.0, end_time=1.0))
    with pytest.warns(FutureWarning, match="deprecated"):
        assert result.messages == [{"a": 1}]
    with pytest.warns(FutureWarning, match="deprecated"):
        old = RunResult(output="x", state="success", messages=[{"b": 2}])
    assert old.steps == [{"b": 2}]
    with pytest.raises(ValueError, match="Cannot specify both"):
        RunResult(output="x", state="success", steps=[], messages=[])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert RunResult(output="x", steps=[]).steps == []


@pytest.mark.parametrize("agent_class", [CodeAgent, ToolCallingAgent])
def test_token_usage_is_none_when_the_model_reports_none(agent_class):
    model = _Answers()
    if agent_class is ToolCallingAgent:
        model = _ToolCallAnswer(None)
    result = agent_class(tools=[], model=model, return_full_result=True, verbosity_level=-1).run("task")
    assert result.state == "success"
    assert result.token_usage is None


def test_token_usage_is_summed_when_the_model_reports_it():
    usage = TokenUsage(input_tokens=10, output_tokens=3)
    agent = CodeAgent(tools=[], model=_Answers(usage=usage), return_full_result=True, verbosity_level=-1)
    result = agent.run("task")
    assert result.token_usage == usage


class _ToolCallAnswer(Model):
    def __init__(self, usage):
        super().__init__()
        self.usage = usage

    def generate(self, messages, stop_sequences=None, tools_to_call_from=None):
        return ChatMessage(
            role=MessageRole.ASSISTANT,
            content='{"name": "final_answer", "arguments": {"answer": "done"}}',
            token_usage=self.usage,
        )


def test_planning_after_injected_memory_is_an_update_plan_that_shows_it():
    agent = CodeAgent(tools=[], model=_Answers(), planning_interval=1, max_steps=2, verbosity_level=-1)
    agent.memory.steps.append(TaskStep(task="Previous request"))
    agent.run("Current task", reset=False)
    plan = next(s for s in agent.memory.steps if isinstance(s, PlanningStep))
    messages = plan.model_input_messages
    assert [m.role for m in messages] == ["system", "user", "user", "user"]
    assert "Current task" in messages[0].content[0]["text"]
    assert "Previous request" in messages[1].content[0]["text"]


def test_fresh_run_gets_an_initial_plan():
    agent = CodeAgent(tools=[], model=_Answers(), planning_interval=1, verbosity_level=-1)
    agent.run("task")
    plan = next(s for s in agent.memory.steps if isinstance(s, PlanningStep))
    assert len(plan.model_input_messages) == 1


def test_system_prompt_mentions_team_members_only_when_there_are_some():
    member = CodeAgent(tools=[], model=_Answers(), name="helper", description="Helps.")
    manager = CodeAgent(tools=[], model=_Answers(), managed_agents=[member])
    caller = ToolCallingAgent(tools=[], model=_Answers(), managed_agents=[member])
    assert "You can also give tasks to team members." not in member.system_prompt
    assert "You can also give tasks to team members." in manager.system_prompt
    assert "You can also give tasks to team members." in caller.system_prompt


def test_calling_an_agent_goes_through_an_overridden_run():
    class Fixed(CodeAgent):
        def run(self, task, **kwargs):
            self.seen = task
            return "Fixed output"

    agent = Fixed(tools=[], model=_Answers(), name="fixed", description="d", provide_run_summary=False)
    report = agent("Do it")
    assert report == "Here is the final answer from your managed agent 'fixed':\nFixed output"
    assert "Do it" in agent.seen


def test_calling_an_agent_reports_with_smolagents_wording():
    agent = CodeAgent(tools=[], model=_Answers("42"), name="member", description="d", verbosity_level=-1)
    assert agent("task").startswith("Here is the final answer from your managed agent 'member':\n42")


def test_console_capture_around_sync_run_gets_the_logs_of_the_agent_and_its_members():
    member = CodeAgent(tools=[], model=_Answers("FLAG1"), name="member", description="d", verbosity_level=2)
    manager = CodeAgent(
        tools=[],
        model=_CallsMember(),
        managed_agents=[member],
        verbosity_level=1,
    )
    with manager.logger.console.capture() as outer, member.logger.console.capture() as inner:
        assert manager.run("task") == "ok"
    assert "New run" in outer.get()
    assert "FLAG1" in inner.get()
    # after the run, the loop thread prints to the console again, not into the closed capture
    assert manager.run("task") == "ok"


class _CallsMember(Model):
    def generate(self, messages, stop_sequences=None):
        if "member(" in str(messages[-1].content) or any("FLAG1" in str(m.content) for m in messages):
            return ChatMessage(role=MessageRole.ASSISTANT, content="<code>\nfinal_answer('ok')\n</code>")
        return ChatMessage(role=MessageRole.ASSISTANT, content="<code>\nprint(member(task='go'))\n</code>")


def test_markup_in_code_is_logged_literally_and_import_advice_names_the_parameter():
    class Imports(Model):
        def generate(self, messages, stop_sequences=None):
            return ChatMessage(
                role=MessageRole.ASSISTANT, content="<code>\nsecret=3;['1', '2'][secret]\nimport numpy\n</code>"
            )

    agent = CodeAgent(tools=[], model=Imports(), max_steps=1, verbosity_level=1)
    with agent.logger.console.capture() as capture:
        agent.run("task")
    text = capture.get()
    assert "[secret]" in text
    agent = CodeAgent(
        tools=[],
        model=type("M", (Model,), {"generate": lambda self, m, stop_sequences=None: ChatMessage(
            role="assistant", content="<code>\nimport numpy\n</code>")})(),
        max_steps=1,
        verbosity_level=1,
    )
    with agent.logger.console.capture() as capture:
        agent.run("task")
    assert "`additional_authorized_imports`" in capture.get().replace("\n", "")
