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


# --------------------------------------------------------------------------- tools saved as source

import numpy as np  # noqa: E402  (module-level on purpose: a tool that reads it is not self-contained)

from codeloop import Tool, tool  # noqa: E402
from codeloop.errors import ToolDefinitionError  # noqa: E402
from codeloop.tools.self_contained import MethodChecker  # noqa: E402
from codeloop.tools.validation import validate_tool_attributes  # noqa: E402

LIMIT = 3


class _SelfContained(Tool):
    name = "self_contained"
    description = "Uses only its own names."
    inputs = {"text": {"type": "string", "description": "Text."}}
    output_type = "string"
    table = {"a": [1, 2]}

    def __init__(self, prefix: str = ">", count=2):
        super().__init__()
        self.prefix = prefix

    def forward(self, text: str) -> str:
        import math

        a, b = "1", "2"
        words = [w.upper() for w in text.split() if w]
        pairs = {k: v for k, v in self.table.items()}
        return self.prefix + " ".join(words) + a + b + str(math.pi)[:1] + str(len(pairs))


class _BorrowsGlobals(Tool):
    name = "borrows"
    description = "Reads module names."
    inputs = {"text": {"type": "string", "description": "Text."}}
    output_type = "string"
    computed = [x for x in range(3)]

    def __init__(self, required, limit=LIMIT):
        super().__init__()

    def forward(self, text: str) -> str:
        return str(np.pi) + text


def test_self_contained_class_validates_and_saves(tmp_path):
    validate_tool_attributes(_SelfContained)
    tool_ = _SelfContained()
    assert "class _SelfContained(Tool)" in tool_.to_dict()["code"]
    tool_.save(tmp_path)
    assert (tmp_path / "tool.py").exists()


def test_tool_borrowing_from_its_module_is_refused_with_every_reason(tmp_path):
    with pytest.raises(ToolDefinitionError) as info:
        validate_tool_attributes(_BorrowsGlobals)
    message = str(info.value)
    assert "Complex attributes should be defined in __init__, not as class attributes: computed" in message
    assert "Parameters in __init__ must have default values, found required parameters: required" in message
    assert "Parameters in __init__ must have literal default values, found non-literal defaults: limit" in message
    assert "forward: Name 'np' is undefined." in message
    made = _BorrowsGlobals("x")  # usable in this process; only saving needs the source to stand alone
    assert made("a") == str(np.pi) + "a"
    with pytest.raises(ToolDefinitionError, match="'np' is undefined"):
        made.to_dict()
    with pytest.raises(ToolDefinitionError, match="'np' is undefined"):
        made.save(tmp_path)


def test_function_tool_reading_a_module_global_cannot_be_saved(tmp_path):
    @tool
    def noisy() -> str:
        """Returns noise."""
        return str(np.random.random())

    @tool
    def clean(n: int) -> str:
        """Counts.

        Args:
            n: How many.
        """
        import random

        return str([random.random() for _ in range(n)])

    with pytest.raises(ToolDefinitionError, match="'np' is undefined"):
        noisy.save(tmp_path)
    clean.save(tmp_path)
    assert "def forward(self, n: int)" in (tmp_path / "tool.py").read_text()


def test_builtin_tools_validate():
    from codeloop import DuckDuckGoSearchTool, VisitWebpageTool

    validate_tool_attributes(DuckDuckGoSearchTool)
    validate_tool_attributes(VisitWebpageTool)


def test_method_checker_scopes():
    import ast

    code = (
        "def forward(self, x):\n"
        "    a, b = 1, 2\n"
        "    f = lambda y: y + a\n"
        "    def inner(z):\n        return z + b + w\n"
        "    try:\n        pass\n    except ValueError as e:\n        print(e)\n"
        "    return [i for i in range(x) if i > q]\n"
    )
    checker = MethodChecker(set())
    checker.visit(ast.parse(code))
    assert checker.errors == ["Name 'w' is undefined.", "Name 'q' is undefined."]


def test_get_source_of_plain_objects_and_errors():
    from codeloop.tools.self_contained import get_source

    class Plain: ...

    def plain(): ...

    assert get_source(Plain) == "class Plain: ..."
    assert get_source(plain) == "def plain(): ..."
    with pytest.raises(TypeError, match="Expected class or callable"):
        get_source(None)


def test_tool_class_defined_in_an_ipython_cell_saves(tmp_path):
    pytest.importorskip("IPython")
    from IPython.core.interactiveshell import InteractiveShell

    from codeloop.tools.self_contained import get_source

    shell = InteractiveShell.instance()
    try:
        cell = (
            "from codeloop import Tool\n"
            "class CellTool(Tool):\n"
            "    name = 'cell_tool'\n"
            "    description = 'Made in a cell.'\n"
            "    inputs = {'task': {'type': 'string', 'description': 'x'}}\n"
            "    output_type = 'string'\n"
            "    def forward(self, task: str):\n"
            "        return task\n"
        )
        assert shell.run_cell(cell, store_history=True).success
        made = shell.user_ns["CellTool"]
        assert get_source(made).startswith("class CellTool(Tool):")
        result = shell.run_cell(f"CellTool().save({str(tmp_path)!r})", store_history=True)
        assert result.success, result.error_in_exec
        assert "class CellTool(Tool):" in (tmp_path / "tool.py").read_text()
        shell.user_ns["In"] = ["", "print('nothing here')"]
        with pytest.raises(ValueError, match="Could not find source code for CellTool in IPython history"):
            get_source(made)
        shell.user_ns["In"] = [""]
        with pytest.raises(ValueError, match="No code cells found in IPython session"):
            get_source(made)
    finally:
        InteractiveShell.clear_instance()


# --------------------------------------------------------------------------- agents as dicts


def test_agent_dict_round_trip_with_team_and_tools(monkeypatch):
    from codeloop import OpenAIModel
    from codeloop.models import MODEL_REGISTRY

    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    model = OpenAIModel(model_id="gpt-4o-mini", api_base="http://127.0.0.1:9/v1")
    member = CodeAgent(tools=[], model=model, name="member", description="Helps.", max_steps=5)
    main = ToolCallingAgent(
        tools=[_SelfContained()], model=model, managed_agents=[member], name="main", description="d", max_steps=7
    )
    data = main.to_dict()
    assert isinstance(data["managed_agents"], list) and data["managed_agents"][0]["class"] == "CodeAgent"
    assert data["model"] == {"class": "OpenAIModel", "data": {k: v for k, v in model.to_dict().items() if k != "class"}}
    assert [t["name"] for t in data["tools"]] == ["self_contained", "final_answer"]
    assert "OpenAIModel" in MODEL_REGISTRY
    again = ToolCallingAgent.from_dict(data)
    assert (again.name, again.max_steps, list(again.managed_agents)) == ("main", 7, ["member"])
    assert again.managed_agents["member"].max_steps == 5
    assert again.tools["self_contained"]("a b") .startswith(">A B")
    assert again.model.model_id == "gpt-4o-mini"
    assert ToolCallingAgent.from_dict(data, max_steps=30).max_steps == 30
    code = CodeAgent(tools=[], model=model, additional_authorized_imports=["json"], executor_type="local")
    rebuilt = CodeAgent.from_dict(code.to_dict())
    assert "json" in rebuilt.additional_authorized_imports and rebuilt.executor_type == "local"


def test_agent_from_dict_refuses_unknown_classes():
    data = {"class": "CodeAgent", "model": {"class": "os.system", "data": {}}, "tools": [], "managed_agents": []}
    with pytest.raises(ValueError, match="Unknown model class 'os.system'.*Supported models: .*OpenAIModel"):
        CodeAgent.from_dict(data)
    data["managed_agents"] = [{"class": "Evil", "model": data["model"], "tools": [], "managed_agents": []}]
    with pytest.raises(ValueError, match="Unknown agent class 'Evil'.*Supported agents: CodeAgent, ToolCallingAgent"):
        CodeAgent.from_dict(data, model=_Answers())


def test_image_from_image_open_is_wrapped(tmp_path):
    import PIL.Image

    from codeloop import AgentImage

    PIL.Image.new("RGB", (4, 3), (1, 2, 3)).save(tmp_path / "x.png")
    wrapped = AgentImage(PIL.Image.open(tmp_path / "x.png"))  # lazily decoded by PIL
    assert wrapped.size == (4, 3) and wrapped.getpixel((0, 0)) == (1, 2, 3)


def test_sync_step_stream_yields_smolagents_items_only():
    import json

    from codeloop import ActionStep
    from codeloop.events import Event
    from codeloop.memory import ToolCall

    class Structured(Model):
        def generate(self, messages, stop_sequences=None, response_format=None):
            return ChatMessage(role="assistant", content=json.dumps({"thought": "t", "code": "x = 1"}))

    agent = CodeAgent(tools=[], model=Structured(), use_structured_outputs_internally=True, verbosity_level=-1)
    try:
        items = list(agent._step_stream(ActionStep(step_number=1, timing=Timing())))
    finally:
        agent.cleanup()  # the manual step's executor
    assert not any(isinstance(i, Event) for i in items)
    assert isinstance(items[0], ToolCall) and items[0].arguments == "x = 1"


def test_process_tool_calls_without_calls_observes_nothing():
    from codeloop import ActionStep

    agent = ToolCallingAgent(tools=[], model=_ToolCallAnswer(None), verbosity_level=-1)
    step = ActionStep(step_number=1, timing=Timing())
    assert list(agent.process_tool_calls(ChatMessage(role="assistant", content="", tool_calls=[]), step)) == []
    assert step.observations == ""


def test_get_json_schema_allows_a_function_without_return_hint_but_tool_does_not():
    from codeloop.tools.decorator import get_json_schema

    def do_nothing(x: str | None = None):
        """Does nothing.

        Args:
            x: Some optional string.
        """

    schema = get_json_schema(do_nothing)
    assert schema["function"]["parameters"]["properties"]["x"]["type"] == "string"
    assert schema["function"]["return"] == {"type": "null"}
    with pytest.raises(ToolDefinitionError, match="Tool return type not found"):
        tool(do_nothing)


def test_missing_exa_key_is_a_value_error(monkeypatch):
    from codeloop import WebSearchTool

    monkeypatch.delenv("EXA_API_KEY", raising=False)
    with pytest.raises(ValueError, match="EXA_API_KEY"):
        WebSearchTool(engine="exa")("query")


def test_base_memory_step_dict_is_empty_and_subclasses_must_say():
    from codeloop.memory import MemoryStep

    assert MemoryStep().dict() == {}

    class Custom(MemoryStep):
        pass

    with pytest.raises(NotImplementedError, match="Custom must implement dict"):
        Custom().dict()
