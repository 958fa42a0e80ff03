"""An agent as a dict and back (``MultiStepAgent.to_dict`` / ``from_dict``), in smolagents' layout.

Layer 5 (agents). The dict holds each tool's own ``to_dict()`` (with its source), the model as
``{"class": name, "data": model.to_dict()}``, the managed agents as a list of their dicts, and the settings.
Rebuilding only instantiates classes named in ``MODEL_REGISTRY`` and ``AGENT_REGISTRY`` (never a class
found by import path) and runs each tool's source, so only load dicts you trust.
"""

from __future__ import annotations

from typing import Any

__all__ = ["AGENT_REGISTRY", "agent_to_dict", "agent_from_dict"]


class _AgentRegistry(dict):  # type: ignore[type-arg]
    """Agent classes ``from_dict`` may build, filled on first use (the agent modules import this one)."""

    def _fill(self) -> None:
        if not self:
            from . import CodeAgent, ToolCallingAgent

            self.update(CodeAgent=CodeAgent, ToolCallingAgent=ToolCallingAgent)

    def get(self, key: Any, default: Any = None) -> Any:
        self._fill()
        return super().get(key, default)

    def keys(self) -> Any:
        self._fill()
        return super().keys()


AGENT_REGISTRY: dict[str, type] = _AgentRegistry()


def import_requirements(agent: Any) -> set[str]:
    """The top-level packages of the agent's ``additional_authorized_imports`` (what it needs installed)."""
    return {m.split(".")[0] for m in getattr(agent, "additional_authorized_imports", None) or [] if m != "*"}


def settings_entries(agent: Any) -> dict[str, Any]:
    """The settings both layouts (``to_dict`` and a saved folder's ``agent.json``) keep as they are."""
    return {
        "prompt_templates": agent.prompt_templates,
        "max_steps": agent.max_steps,
        "verbosity_level": int(agent.logger.level),
        "planning_interval": agent.planning_interval,
        "name": agent.name,
        "description": agent.description,
    }


def agent_to_dict(agent: Any) -> dict[str, Any]:
    for attr in ("final_answer_checks", "step_callbacks"):
        if getattr(agent, attr, None):
            agent.logger.log(f"This agent has {attr}: to_dict leaves them out (they are code, not data).")
    tools = [tool.to_dict() for tool in agent.tools.values()]
    managed = [member.to_dict() for member in agent.managed_agents.values()]
    requirements = {r for t in tools for r in t.get("requirements", [])}
    requirements |= {r for m in managed for r in m.get("requirements", [])}
    requirements |= import_requirements(agent)
    model = agent.model
    model_data = model.to_dict() if hasattr(model, "to_dict") else {}
    if isinstance(model_data, dict):
        model_data = {k: v for k, v in model_data.items() if k != "class"}
    return {
        "class": type(agent).__name__,
        "tools": tools,
        "model": {"class": type(model).__name__, "data": model_data},
        "managed_agents": managed,
        **settings_entries(agent),
        "instructions": agent.instructions,
        "requirements": sorted(requirements),
    }


def agent_from_dict(cls: Any, agent_dict: dict[str, Any], **kwargs: Any) -> Any:
    from ..models.registry import MODEL_REGISTRY
    from ..tools.base import Tool
    from .code_agent import CodeAgent

    if issubclass(cls, CodeAgent):
        extra = {
            "additional_authorized_imports": agent_dict.get("authorized_imports"),
            "executor_type": agent_dict.get("executor_type"),
            "executor_kwargs": agent_dict.get("executor_kwargs"),
            "max_print_outputs_length": agent_dict.get("max_print_outputs_length"),
            "code_block_tags": agent_dict.get("code_block_tags"),
        }
        kwargs = {**{k: v for k, v in extra.items() if v is not None}, **kwargs}
    given = "model" in kwargs
    if given:
        model = kwargs.pop("model")
    else:
        info = agent_dict["model"]
        model_class = MODEL_REGISTRY.get(info["class"])
        if model_class is None:
            raise ValueError(
                f"Unknown model class '{info['class']}' in the agent dict; pass model=... to from_dict, or use one of "
                f"the supported models. Supported models: {', '.join(sorted(MODEL_REGISTRY.keys()))}"
            )
        model = model_class.from_dict(info.get("data") or {})
    # every agent makes its own final_answer tool
    tools = [Tool.from_code(t["code"]) for t in agent_dict.get("tools", []) if t.get("name") != "final_answer"]
    managed = []
    for member in agent_dict.get("managed_agents") or []:
        member_class = AGENT_REGISTRY.get(member.get("class"))
        if member_class is None:
            raise ValueError(
                f"Unknown agent class '{member.get('class')}' for a managed agent. "
                f"Supported agents: {', '.join(sorted(AGENT_REGISTRY.keys()))}"
            )
        # a model passed by the caller serves the whole team, as in from_folder
        managed.append(member_class.from_dict(member, **({"model": model} if given else {})))
    args = {
        "model": model,
        "tools": tools,
        "managed_agents": managed,
        "prompt_templates": agent_dict.get("prompt_templates"),
        "max_steps": agent_dict.get("max_steps"),
        "verbosity_level": agent_dict.get("verbosity_level"),
        "planning_interval": agent_dict.get("planning_interval"),
        "name": agent_dict.get("name"),
        "description": agent_dict.get("description"),
        "instructions": agent_dict.get("instructions"),
    }
    args = {k: v for k, v in args.items() if v is not None}
    args.update(kwargs)
    return cls(**args)
