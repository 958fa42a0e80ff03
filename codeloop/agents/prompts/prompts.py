"""Load the agents' prompt templates and render them with Jinja (undefined variables are errors).

Layer 5 (agents). The YAML files beside this module have the key layout of smolagents' templates
(``system_prompt``, ``planning``, ``managed_agent``, ``final_answer``), so a user's own template file carries
over unchanged. Compiled templates are cached: an agent renders the same few templates at every step.
"""

from __future__ import annotations

import copy
import re
from functools import cache, lru_cache
from importlib import resources
from typing import Any, TypedDict

import jinja2
import yaml

from ...errors import CodeloopError

__all__ = [
    "PromptTemplates",
    "PlanningPromptTemplate",
    "ManagedAgentPromptTemplate",
    "FinalAnswerPromptTemplate",
    "EMPTY_PROMPT_TEMPLATES",
    "PromptTemplateError",
    "load_prompt_templates",
    "populate_template",
    "check_prompt_templates",
    "format_authorized_imports",
    "render_system_prompt",
]


class PlanningPromptTemplate(TypedDict):
    initial_plan: str
    update_plan_pre_messages: str
    update_plan_post_messages: str


class ManagedAgentPromptTemplate(TypedDict):
    task: str
    report: str


class FinalAnswerPromptTemplate(TypedDict):
    pre_messages: str
    post_messages: str


class PromptTemplates(TypedDict):
    system_prompt: str
    planning: PlanningPromptTemplate
    managed_agent: ManagedAgentPromptTemplate
    final_answer: FinalAnswerPromptTemplate


EMPTY_PROMPT_TEMPLATES: PromptTemplates = {
    "system_prompt": "",
    "planning": {"initial_plan": "", "update_plan_pre_messages": "", "update_plan_post_messages": ""},
    "managed_agent": {"task": "", "report": ""},
    "final_answer": {"pre_messages": "", "post_messages": ""},
}


class PromptTemplateError(CodeloopError, ValueError):
    """A prompt template cannot be rendered: an undefined variable, bad Jinja syntax, a missing key."""


# Accepted spellings of the two agent kinds -> YAML file name.
_KINDS = {
    "code": "code_agent.yaml",
    "code_agent": "code_agent.yaml",
    "codeagent": "code_agent.yaml",
    "structured_code": "structured_code_agent.yaml",
    "structured_code_agent": "structured_code_agent.yaml",
    "toolcalling": "toolcalling_agent.yaml",
    "tool_calling": "toolcalling_agent.yaml",
    "toolcalling_agent": "toolcalling_agent.yaml",
    "tool_calling_agent": "toolcalling_agent.yaml",
    "toolcallingagent": "toolcalling_agent.yaml",
}


@cache
def _read_templates(file_name: str) -> PromptTemplates:
    text = resources.files(__package__).joinpath(file_name).read_text(encoding="utf-8")
    return yaml.safe_load(text)


def load_prompt_templates(agent_kind: str) -> dict[str, Any]:
    """The default templates for ``agent_kind``: "code", "toolcalling", or "structured_code" (a CodeAgent
    with ``use_structured_outputs_internally``, whose replies are JSON ``{"thought", "code"}``); "CodeAgent"
    and "ToolCallingAgent" also work.

    Returns a fresh copy: changing it does not change the defaults.
    """
    key = agent_kind.lower().replace("-", "_").replace(" ", "_")
    try:
        file_name = _KINDS[key]
    except KeyError:
        raise PromptTemplateError(
            f"Unknown agent kind {agent_kind!r} for prompt templates; use 'code', 'toolcalling' or 'structured_code'."
        ) from None
    return copy.deepcopy(_read_templates(file_name))  # type: ignore[return-value]


_ENV = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=False, autoescape=False)


@lru_cache(maxsize=256)
def _compile(template: str) -> jinja2.Template:
    return _ENV.from_string(template)


def _undefined_name(error: jinja2.UndefinedError) -> str:
    m = re.search(r"'([^']+)' is undefined", str(error))
    return m.group(1) if m else str(error)


def populate_template(template: str, variables: dict[str, Any]) -> str:
    """Render a Jinja ``template`` with ``variables``; a variable the template uses but that is not given
    raises PromptTemplateError naming it and listing the variables that were given."""
    try:
        compiled = _compile(template)
    except jinja2.TemplateSyntaxError as e:
        raise PromptTemplateError(
            f"Prompt template has a Jinja syntax error at line {e.lineno}: {e.message}. "
            f"Line {e.lineno} is: {template.splitlines()[e.lineno - 1] if e.lineno else ''!r}"
        ) from e
    try:
        return compiled.render(**variables)
    except jinja2.UndefinedError as e:
        name = _undefined_name(e)
        raise PromptTemplateError(
            f"Prompt template uses {name!r}, which is not defined (Jinja: {e}). Variables given: "
            f"{sorted(variables)}. Pass it, or remove it from the template."
        ) from e
    except PromptTemplateError:
        raise
    except Exception as e:  # an error inside a variable's method (e.g. tool.to_code_prompt())
        raise PromptTemplateError(f"Error while rendering a prompt template: {type(e).__name__}: {e}") from e


def check_prompt_templates(templates: dict[str, Any]) -> None:
    """Raise PromptTemplateError naming every key missing from user-given ``templates``."""
    missing: list[str] = []
    for key, value in EMPTY_PROMPT_TEMPLATES.items():
        if key not in templates:
            missing.append(key)
        elif isinstance(value, dict):
            sub = templates[key]
            missing.extend(f"{key}.{k}" for k in value if not isinstance(sub, dict) or k not in sub)
    if missing:
        raise PromptTemplateError(
            f"prompt_templates lacks {', '.join(missing)}. Start from load_prompt_templates('code') or "
            "load_prompt_templates('toolcalling') and change the keys you want."
        )


def format_authorized_imports(authorized_imports: list[str] | tuple[str, ...] | set[str]) -> str:
    """How the authorized imports read in the system prompt; ``*`` means any package."""
    if "*" in authorized_imports:
        return "any package."
    return ", ".join(sorted(authorized_imports)) if authorized_imports else "none."


def render_system_prompt(
    templates: dict[str, Any],
    *,
    tools: dict[str, Any],
    managed_agents: dict[str, Any] | None = None,
    custom_instructions: str | None = None,
    authorized_imports: list[str] | tuple[str, ...] | set[str] | None = None,
    code_block_tags: tuple[str, str] | None = None,
) -> str:
    """Render ``templates["system_prompt"]`` with the variables smolagents passes (so overrides work).

    Pass ``authorized_imports`` and ``code_block_tags`` for a CodeAgent; leave them None for a
    ToolCallingAgent.
    """
    variables: dict[str, Any] = {
        "tools": tools,
        "managed_agents": managed_agents or {},
        "custom_instructions": custom_instructions,
    }
    if authorized_imports is not None:
        variables["authorized_imports"] = format_authorized_imports(authorized_imports)
    if code_block_tags is not None:
        variables["code_block_opening_tag"], variables["code_block_closing_tag"] = code_block_tags
    return populate_template(templates["system_prompt"], variables)
