"""Default prompt templates of the agents (YAML beside this file) and the Jinja helpers that render them."""

from .prompts import (
    EMPTY_PROMPT_TEMPLATES,
    FinalAnswerPromptTemplate,
    ManagedAgentPromptTemplate,
    PlanningPromptTemplate,
    PromptTemplateError,
    PromptTemplates,
    check_prompt_templates,
    format_authorized_imports,
    load_prompt_templates,
    populate_template,
    render_system_prompt,
)

__all__ = [
    "EMPTY_PROMPT_TEMPLATES",
    "FinalAnswerPromptTemplate",
    "ManagedAgentPromptTemplate",
    "PlanningPromptTemplate",
    "PromptTemplateError",
    "PromptTemplates",
    "check_prompt_templates",
    "format_authorized_imports",
    "load_prompt_templates",
    "populate_template",
    "render_system_prompt",
]
