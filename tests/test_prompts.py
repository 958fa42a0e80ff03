"""Prompt templates: structure compatible with smolagents overrides, strict rendering, readable output."""

from __future__ import annotations

import re
from typing import Any

import pytest

from codeloop.agents.parsing import extract_code_from_text, parse_json_tool_calls
from codeloop.agents.prompts import (
    EMPTY_PROMPT_TEMPLATES,
    PromptTemplateError,
    check_prompt_templates,
    format_authorized_imports,
    load_prompt_templates,
    populate_template,
    render_system_prompt,
)


class FakeTool:
    """Just what the templates use of a Tool (the tools layer provides the real methods)."""

    def __init__(self, name: str, description: str):
        self.name = name
        self.description = description
        self.inputs = {"query": {"type": "string", "description": "What to look for."}}
        self.output_type = "string"

    def to_code_prompt(self) -> str:
        return f'def {self.name}(query: str) -> str:\n    """{self.description}"""'

    def to_tool_calling_prompt(self) -> str:
        return f"{self.name}: {self.description}\n    Takes inputs: {self.inputs}"


class FakeManagedAgent:
    name = "researcher"
    description = "Finds and summarises sources."
    inputs = {"task": {"type": "string", "description": "The task."}}
    output_type = "string"


TOOLS = {"lookup_zebra": FakeTool("lookup_zebra", "Looks up zebra facts.")}
MANAGED = {"researcher": FakeManagedAgent()}

# The variables each template receives: the same as smolagents passes, so user overrides keep working.
CONTRACT: dict[str, dict[str, Any]] = {
    "planning.initial_plan": {"task": "T", "tools": TOOLS, "managed_agents": MANAGED},
    "planning.update_plan_pre_messages": {"task": "T"},
    "planning.update_plan_post_messages": {
        "task": "T",
        "tools": TOOLS,
        "managed_agents": MANAGED,
        "remaining_steps": 7,
    },
    "managed_agent.task": {"name": "researcher", "task": "T"},
    "managed_agent.report": {"name": "researcher", "final_answer": "FA"},
    "final_answer.pre_messages": {},
    "final_answer.post_messages": {"task": "T"},
}


def _get(templates: dict, path: str) -> str:
    node: Any = templates
    for part in path.split("."):
        node = node[part]
    return node


@pytest.mark.parametrize("kind", ["code", "toolcalling", "structured_code"])
def test_templates_have_smolagents_layout(kind: str) -> None:
    templates = load_prompt_templates(kind)
    check_prompt_templates(templates)
    for key, value in EMPTY_PROMPT_TEMPLATES.items():
        assert key in templates
        if isinstance(value, dict):
            assert set(templates[key]) == set(value)
            assert all(isinstance(t, str) and t.strip() for t in templates[key].values())


@pytest.mark.parametrize("kind", ["code", "toolcalling", "structured_code"])
@pytest.mark.parametrize("path", sorted(CONTRACT))
def test_every_template_renders_with_the_contract_variables(kind: str, path: str) -> None:
    text = populate_template(_get(load_prompt_templates(kind), path), CONTRACT[path])
    assert "{{" not in text and "{%" not in text
    for name, value in CONTRACT[path].items():
        if isinstance(value, str | int) and name != "name":
            assert str(value) in text, (path, name)
    if "tools" in CONTRACT[path]:
        assert "lookup_zebra" in text and "researcher" in text
    if path == "planning.update_plan_post_messages":
        assert "7 steps" in text


def test_load_aliases_and_copy() -> None:
    a = load_prompt_templates("CodeAgent")
    b = load_prompt_templates("code")
    assert a == b
    a["system_prompt"] = "changed"
    assert load_prompt_templates("code")["system_prompt"] != "changed"
    assert load_prompt_templates("ToolCallingAgent") == load_prompt_templates("toolcalling")
    with pytest.raises(PromptTemplateError, match="'code', 'toolcalling' or 'structured_code'"):
        load_prompt_templates("planner")


def _code_prompt(**overrides: Any) -> str:
    kwargs: dict[str, Any] = dict(
        tools=TOOLS,
        managed_agents={},
        custom_instructions=None,
        authorized_imports=["math", "re"],
        code_block_tags=("<code>", "</code>"),
    )
    kwargs.update(overrides)
    return render_system_prompt(load_prompt_templates("code"), **kwargs)


def test_code_system_prompt_content() -> None:
    text = _code_prompt()
    assert 'def lookup_zebra(query: str) -> str:\n    """Looks up zebra facts."""' in text
    assert "Imports allowed: math, re" in text
    assert "final_answer(" in text
    assert "researcher" not in text  # no managed agents section when there are none
    assert "Be terse." not in text
    with_more = _code_prompt(managed_agents=MANAGED, custom_instructions="Be terse.")
    assert "def researcher(task: str" in with_more and "Finds and summarises sources." in with_more
    assert with_more.rstrip().endswith("Be terse.")


def test_code_system_prompt_uses_the_agent_tags() -> None:
    text = _code_prompt(code_block_tags=("```python", "```"))
    assert "<code>" not in text
    assert text.count("```python") >= 4


@pytest.mark.parametrize("tags", [("<code>", "</code>"), ("```python", "```")])
def test_worked_example_is_parseable_code(tags: tuple[str, str]) -> None:
    # The example teaches the format; what it shows must be what the parser accepts.
    text = _code_prompt(code_block_tags=tags)
    example = text[text.index("Example") : text.index("These functions")]
    steps = example.split("Observation:")
    first, second = extract_code_from_text(steps[0], tags), extract_code_from_text(steps[1], tags)
    assert "web_search(query=" in first
    assert first.startswith("for country in")
    assert second.endswith('final_answer(f"Yes: France has {ratio:.1f} times Belgium\'s population.")')


def test_structured_code_prompt_example_is_valid_json() -> None:
    import ast
    import json

    text = render_system_prompt(
        load_prompt_templates("structured_code"),
        tools=TOOLS,
        authorized_imports=["math"],
        code_block_tags=("<code>", "</code>"),
    )
    replies = [json.loads(line) for line in text.splitlines() if line.startswith('{"thought"')]
    assert replies[0] == {"thought": "<what you will do and why>", "code": "<Python code>"}  # the format
    replies = replies[1:]
    assert len(replies) == 2
    for reply in replies:
        assert set(reply) == {"thought", "code"}
        ast.parse(reply["code"])
    assert replies[-1]["code"].startswith("ratio = 68.4 / 11.8\nfinal_answer(")
    assert "def lookup_zebra" in text and "Imports allowed: math" in text


def test_toolcalling_system_prompt_content_and_example() -> None:
    text = render_system_prompt(
        load_prompt_templates("toolcalling"),
        tools=TOOLS,
        managed_agents=MANAGED,
        custom_instructions="X-RULE",
    )
    assert "- lookup_zebra: Looks up zebra facts." in text
    assert "- researcher: Finds and summarises sources." in text
    assert text.rstrip().endswith("X-RULE")
    actions = [line.removeprefix("Action: ") for line in text.splitlines() if line.startswith("Action: ")]
    assert len(actions) == 3
    assert parse_json_tool_calls(actions[-1]) == [
        {"name": "final_answer", "arguments": {"answer": "In Oslo it is 4°C with light rain."}}
    ]


def test_undefined_variable_is_a_clear_error() -> None:
    with pytest.raises(PromptTemplateError) as info:
        populate_template(
            load_prompt_templates("code")["system_prompt"], {"tools": TOOLS, "managed_agents": {}}
        )
    message = str(info.value)
    assert re.search(r"uses '(code_block_opening_tag|authorized_imports)', which is not defined", message)
    assert "Variables given: ['managed_agents', 'tools']" in message


def test_attribute_of_undefined_and_syntax_errors() -> None:
    with pytest.raises(PromptTemplateError, match="Jinja syntax error at line 2"):
        populate_template("ok\n{% for x in %}", {})
    with pytest.raises(PromptTemplateError, match="which is not defined"):
        populate_template("{{ tool.name }}", {"tool": {}})


def test_error_inside_a_variable_method_is_wrapped() -> None:
    class Broken:
        def to_code_prompt(self) -> str:
            raise RuntimeError("no signature")

    with pytest.raises(PromptTemplateError, match="RuntimeError: no signature"):
        _code_prompt(tools={"b": Broken()})


def test_smolagents_style_user_template_carries_over() -> None:
    # A user's template written for smolagents, with its variable names and loop idioms.
    user = (
        "You are an agent. Tools:\n{%- for tool in tools.values() %}\n{{ tool.to_code_prompt() }}\n{% endfor %}"
        "{%- if managed_agents and managed_agents.values() | list %}Team!{%- endif %}\n"
        "Open with {{code_block_opening_tag}} and close with {{code_block_closing_tag}}. "
        "Imports: {{authorized_imports}}{%- if custom_instructions %}\n{{custom_instructions}}{%- endif %}"
    )
    templates = load_prompt_templates("code")
    templates["system_prompt"] = user
    text = render_system_prompt(
        templates, tools=TOOLS, authorized_imports=["*"], code_block_tags=("<code>", "</code>")
    )
    assert text.startswith("You are an agent. Tools:\ndef lookup_zebra")
    assert "Open with <code> and close with </code>. Imports: any package." in text
    assert "Team!" not in text


def test_check_prompt_templates_names_missing_keys() -> None:
    with pytest.raises(PromptTemplateError, match=r"lacks planning\.update_plan_post_messages, final_answer"):
        check_prompt_templates(
            {
                "system_prompt": "x",
                "planning": {"initial_plan": "", "update_plan_pre_messages": ""},
                "managed_agent": {"task": "", "report": ""},
            }
        )


def test_format_authorized_imports() -> None:
    assert format_authorized_imports(["re", "math"]) == "math, re"
    assert format_authorized_imports(["math", "*"]) == "any package."
    assert format_authorized_imports([]) == "none."


def test_system_prompts_stay_short() -> None:
    # Keep the fixed part of the prompts small (smolagents 1.26's CodeAgent prompt is ~8,500 characters
    # with only final_answer; see benchmarks/prompt_size.py for the comparison).
    assert len(_code_prompt(tools={})) < 2200
    assert len(render_system_prompt(load_prompt_templates("toolcalling"), tools={})) < 1500
