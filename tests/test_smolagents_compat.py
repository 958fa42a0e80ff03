"""Behaviour a smolagents user's own code relies on after changing the import line (issue #16).

smolagents' own suite runs against codeloop in the compatibility tier (scripts/compat-smolagents.sh); these
tests pin the same behaviours offline, with codeloop's own components.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest

import codeloop
from codeloop import (
    ActionOutput,
    AgentText,
    ChatMessage,
    ChatMessageToolCall,
    ChatMessageToolCallFunction,
    CodeAgent,
    LiteLLMModel,
    MessageRole,
    Model,
    ToolCallingAgent,
    tool,
)
from codeloop.agents import LogLevel, Monitor
from codeloop.errors import (
    AgentError,
    AgentToolCallError,
    AgentToolExecutionError,
    ExecutionTimeoutError,
    InterpreterError,
    ModelConfigurationError,
)
from codeloop.executors import InProcessExecutor, evaluate_python_code
from codeloop.executors.compat import PrintContainer, evaluate_subscript
from codeloop.executors.serialization import SafeSerializer, SerializationError
from codeloop.memory import ActionStep, ToolCall
from codeloop.models import (
    REMOVE_PARAMETER,
    ApiModel,
    OpenAIModel,
    get_clean_message_list,
    get_tool_call_from_text,
    parse_json_if_needed,
    remove_content_after_stop_sequences,
    supports_stop_parameter,
)
from codeloop.models.toolcall_parsing import parse_json_blob
from codeloop.tools.validation import validate_tool_arguments

ROOT = Path(__file__).resolve().parent.parent


def code(src: str) -> str:
    return f"Thought: go.\n<code>\n{src}\n</code>"


@tool
def double(x: int) -> int:
    """Doubles a number.

    Args:
        x: The number.
    """
    return 2 * x


# ---- executor -------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "src, value",
    [
        ("x = 3", 3),
        ("x = y = 5", 5),
        ("x = 1\nx += 4", 5),
        ("a, b = 1, 2", (1, 2)),
        ("n: int = 7", 7),
        ("if True:\n    z = 9\nelse:\n    z = 0", 9),
        ("import math", None),
    ],
)
def test_the_result_is_the_last_statement_value(src, value):
    assert evaluate_python_code(src, state={})[0] == value
    assert InProcessExecutor()(src).output == value


def test_a_def_is_its_own_result_and_print_outputs_has_value():
    state: dict = {}
    result, final = evaluate_python_code("print('hi')\ndef f():\n    return 1", state=state)
    assert callable(result) and not final
    assert isinstance(state["_print_outputs"], PrintContainer)
    assert state["_print_outputs"].value == "hi\n" and state["_print_outputs"] == "hi\n"


def test_policy_errors_carry_smolagents_phrases_and_codeloop_rules():
    with pytest.raises(InterpreterError, match=r"Import of os is not allowed.*rule: authorized imports"):
        evaluate_python_code("import os", state={})
    with pytest.raises(InterpreterError, match=r"Forbidden access to module: sys.*rule: authorized imports"):
        InProcessExecutor()("import typing\ntyping.sys")
    with pytest.raises(InterpreterError, match=r"Forbidden access to function: eval.*forbidden builtins"):
        InProcessExecutor(additional_authorized_imports=["builtins"])("import builtins\nbuiltins.eval('1')")
    with pytest.raises(InterpreterError, match=r"Forbidden access to dunder attribute: __base__"):
        InProcessExecutor()("().__class__.__base__")
    with pytest.raises(InterpreterError, match=r"The variable `nope` is not defined"):
        InProcessExecutor()("nope + 1")


def test_tools_cannot_be_overwritten_not_even_guarded_builtins():
    for src in ("print = '3'", "double = 1", "def double(x):\n    return x"):
        with pytest.raises(InterpreterError, match="Cannot assign to name .*would erase the existing tool"):
            evaluate_python_code(src, {"print": print, "double": double}, state={})


def test_evaluate_python_code_applies_timeout_seconds():
    with pytest.raises(ExecutionTimeoutError, match="maximum execution time of 0.3 seconds"):
        evaluate_python_code("while True:\n    pass", state={}, timeout_seconds=0.3, max_operations=None)
    assert issubclass(ExecutionTimeoutError, InterpreterError)


def test_per_node_helpers_and_import_check():
    import ast

    from codeloop.executors.compat import check_import_authorized

    state = {"d": {"a": 1}}
    assert evaluate_subscript(ast.parse("d['a']").body[0].value, state, {}, {}, []) == 1
    assert "_print_outputs" not in state
    assert check_import_authorized("os.path", ["os"]) and not check_import_authorized("os", ["json"])


def test_granting_a_dotted_module_allows_importing_it():
    ex = InProcessExecutor(additional_authorized_imports=["os.path"])
    assert ex("import os.path\nos.path.join('a', 'b')").output == "a/b"
    with pytest.raises(InterpreterError, match="Import of os.system is not allowed|Forbidden access"):
        ex("import os.path\nos.system('true')")


def test_an_authorized_module_that_is_not_installed_fails_at_construction():
    with pytest.raises(InterpreterError, match="Non-installed authorized modules: no_such_pkg_xyz"):
        CodeAgent(tools=[], model=codeloop.ScriptedModel(["x"]), additional_authorized_imports=["no_such_pkg_xyz"])


# ---- models ---------------------------------------------------------------------------------------------
class SyncStyleModel(Model):
    """smolagents' documented subclass style: only messages and stop_sequences."""

    def __init__(self):
        super().__init__(model_id="mine")
        self.seen: list = []

    def generate(self, messages, stop_sequences=None):
        self.seen.append(stop_sequences)
        return ChatMessage(role=MessageRole.ASSISTANT, content=code("final_answer('sync ok')"))


class AsyncStyleModel(Model):
    async def generate(self, messages, stop_sequences=None, **kwargs):
        await asyncio.sleep(0)
        return ChatMessage(role=MessageRole.ASSISTANT, content=code("final_answer('async ok')"))


class DuckModel:
    """Not a Model at all: an object with generate(messages), as smolagents accepts."""

    def generate(self, messages):
        return ChatMessage(role=MessageRole.ASSISTANT, content=code("final_answer('duck ok')"))


@pytest.mark.parametrize(
    "model, answer", [(SyncStyleModel(), "sync ok"), (AsyncStyleModel(), "async ok"), (DuckModel(), "duck ok")]
)
def test_user_models_in_smolagents_style_work_and_run_returns_agent_text(model, answer):
    agent = CodeAgent(tools=[], model=model, executor_type="inprocess", verbosity_level=LogLevel.OFF)
    out = agent.run("go")
    assert out == answer and isinstance(out, AgentText)
    if isinstance(model, SyncStyleModel):
        assert model.seen and model.seen[0]  # stop sequences reached it, nothing it did not declare


def test_model_constructor_kwargs_win_and_remove_parameter_drops_a_key():
    model = OpenAIModel("gpt-4o", api_key="k", temperature=0.1, stop=REMOVE_PARAMETER)
    request, _ = model.prepare_request([ChatMessage(role="user", content="hi")], ["END"], temperature=0.9)
    assert request["temperature"] == 0.1 and "stop" not in request
    base = Model(model_id="gpt-4o", max_tokens=5, tool_choice=REMOVE_PARAMETER)
    kwargs = base._prepare_completion_kwargs(
        [{"role": "user", "content": "hi"}], stop_sequences=["x"], tools_to_call_from=[double], max_tokens=99
    )
    assert kwargs["max_tokens"] == 5 and kwargs["stop"] == ["x"] and "tool_choice" not in kwargs
    assert kwargs["tools"][0]["function"]["name"] == "double"


def test_litellm_without_its_extra_is_a_clear_error():
    # litellm is tested in its own venv (tests_litellm/); here it is absent, as smolagents without the extra
    for model_id in ("bedrock/anthropic.claude-3", "vertex_ai/gemini-pro"):
        with pytest.raises(ModelConfigurationError, match=r"codeloop\[litellm\]"):
            LiteLLMModel(model_id)


def test_model_helpers():
    msgs = [
        {"role": "user", "content": "a"},
        ChatMessage(role="user", content=[{"type": "text", "text": "b"}]),
        {"role": "tool-response", "content": "c"},
    ]
    clean = get_clean_message_list(msgs, role_conversions={"tool-response": "user"})
    assert clean == [{"role": "user", "content": [{"type": "text", "text": "a\nb\nc"}]}]
    assert get_clean_message_list(msgs, flatten_messages_as_text=True)[0]["content"] == "a\nb"
    call = get_tool_call_from_text('Action: {"name": "double", "arguments": {"x": 2}}', "name", "arguments")
    assert call.function.name == "double" and call.function.arguments == {"x": 2}
    with pytest.raises(ValueError, match="key 'tool'"):
        get_tool_call_from_text('{"name": "x"}', "tool", "arguments")
    assert remove_content_after_stop_sequences("abcSTOPdef", ["STOP"]) == "abc"
    assert not supports_stop_parameter("openai/gpt-5.1") and supports_stop_parameter("gpt-4o")
    assert parse_json_if_needed("3") == 3 and parse_json_if_needed("{x") == "{x"
    assert parse_json_blob('say {"a": 1} now') == ({"a": 1}, "say ")


def test_api_model_builds_its_client_once():
    class Mine(ApiModel):
        def create_client(self):
            return "client"

    assert Mine("m").client == "client" and Mine("m", client="given").client == "given"
    with pytest.raises(NotImplementedError, match="create_client"):
        ApiModel("m")


# ---- agents ---------------------------------------------------------------------------------------------
def test_step_stream_override_point_and_step_returns_action_output():
    class Custom(CodeAgent):
        def _step_stream(self, memory_step):
            memory_step.observations = "custom"
            yield ActionOutput(output="from my step", is_final_answer=True)

    agent = Custom(tools=[], model=DuckModel(), executor_type="inprocess", verbosity_level=LogLevel.OFF)
    assert agent.run("t") == "from my step"
    out = agent.step(ActionStep(step_number=1))
    assert isinstance(out, ActionOutput) and out.output == "from my step"


def test_interrupt_makes_run_raise_agent_error():
    def stop(step, agent):
        agent.interrupt()

    agent = CodeAgent(
        tools=[],
        model=codeloop.ScriptedModel(lambda m: code("print(1)")),
        executor_type="inprocess",
        step_callbacks=[stop],
        verbosity_level=LogLevel.OFF,
    )
    with pytest.raises(AgentError, match="Agent interrupted"):
        agent.run("t")
    assert agent.run("t", return_full_result=True).state == "cancelled"


def test_tool_calling_agent_process_and_execute_tool_calls():
    agent = ToolCallingAgent(tools=[double], model=DuckModel(), verbosity_level=LogLevel.OFF)
    message = ChatMessage(
        role=MessageRole.ASSISTANT,
        content="",
        tool_calls=[ChatMessageToolCall(id="c1", type="function", function=ChatMessageToolCallFunction("double", {"x": 4}))],
    )
    step = ActionStep(step_number=1)
    items = list(agent.process_tool_calls(message, step))
    assert isinstance(items[0], ToolCall) and items[-1].output == 8
    assert step.observations == "8" and step.tool_calls[0].name == "double"
    assert agent.execute_tool_call("double", {"x": 5}) == 10
    with pytest.raises(AgentToolCallError):
        agent.execute_tool_call("double", {"y": 5})
    with pytest.raises(AgentToolExecutionError, match="Unknown tool"):
        agent.execute_tool_call("nope", {})


def test_monitor_is_settable_and_monitor_counts_steps():
    agent = CodeAgent(tools=[], model=DuckModel(), executor_type="inprocess", verbosity_level=LogLevel.OFF)
    mine = Monitor(agent.model)
    agent.monitor = mine
    assert agent.monitor is mine
    step = ActionStep(step_number=1)
    step.timing.end_time = step.timing.start_time + 2
    mine.update_metrics(step)
    assert mine.step_durations == [2] and mine.get_total_token_counts().input_tokens == 0
    assert AgentLogger_accepts_any_int()


def AgentLogger_accepts_any_int() -> bool:
    from codeloop.agents import AgentLogger

    return AgentLogger(level=10).level == 10 and AgentLogger(level=1).level is LogLevel.INFO


# ---- tools, serialization, names ------------------------------------------------------------------------
def test_validate_tool_arguments():
    validate_tool_arguments(double, {"x": 3})
    with pytest.raises(ValueError, match="unknown argument"):
        validate_tool_arguments(double, {"z": 3})
    with pytest.raises(ValueError, match="Argument x is required"):
        validate_tool_arguments(double, {})
    with pytest.raises(ValueError, match="Argument x has type 'null' but should be 'integer'"):
        validate_tool_arguments(double, {"x": None})


def test_safe_serializer_round_trips_and_never_unpickles():
    import base64
    import datetime
    import pickle

    value = {"t": (1, 2), "s": {3}, "b": b"x", "d": datetime.date(2024, 1, 2)}
    text = SafeSerializer.dumps(value)
    assert text.startswith("safe:") and SafeSerializer.loads(text) == value
    pickled = base64.b64encode(pickle.dumps({"a": 1})).decode()
    with pytest.raises(SerializationError, match="Pickle data rejected"):
        SafeSerializer.loads(pickled, allow_pickle=True)
    with pytest.raises(SerializationError):
        SafeSerializer.dumps(object())


def test_smolagents_names_are_importable_from_codeloop():
    for name in (
        "AgentText", "AgentType", "AUTHORIZED_TYPES", "ApiModel", "CODEAGENT_RESPONSE_FORMAT",
        "DocstringParsingException", "EMPTY_PROMPT_TEMPLATES", "ExecutionTimeoutError", "Monitor",
        "PromptTemplates", "REMOVE_PARAMETER", "get_clean_message_list", "get_tool_call_from_text",
        "populate_template", "remove_content_after_stop_sequences", "supports_stop_parameter",
        "tool_role_conversions", "validate_tool_arguments",
    ):  # fmt: skip
        assert getattr(codeloop, name) is not None, name
    assert [LogLevel.OFF, LogLevel.ERROR, LogLevel.INFO, LogLevel.DEBUG] == [-1, 0, 1, 2]


def test_the_compat_tier_alias_maps_smolagents_modules_onto_codeloop(monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT / "compat"))
    for name in [m for m in sys.modules if m == "smolagents" or m.startswith("smolagents.")]:
        monkeypatch.delitem(sys.modules, name)
    import alias

    finder = alias.SmolagentsAlias()
    monkeypatch.setattr(sys, "meta_path", [finder, *sys.meta_path])
    from smolagents.local_python_executor import evaluate_python_code as via_alias
    from smolagents.models import get_clean_message_list as clean

    assert via_alias is evaluate_python_code and clean is get_clean_message_list
    import smolagents.models

    import codeloop.models

    monkeypatch.setattr(smolagents.models, "RetryPolicy", "patched")
    assert codeloop.models.RetryPolicy == "patched"  # a patch reaches the module the view reads from
    assert smolagents.models.RetryPolicy == "patched"
    for name in [m for m in sys.modules if m == "smolagents" or m.startswith("smolagents.")]:
        monkeypatch.delitem(sys.modules, name)
