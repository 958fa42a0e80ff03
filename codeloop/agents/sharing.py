"""Saving agents to folders and sharing them on the Hugging Face Hub, in smolagents' folder format.

Layer 5 (agents). A saved agent is a folder with ``agent.json`` (class, tool names, model class and
settings, prompt templates, limits, CodeAgent options), ``prompts.yaml``, ``tools/<name>.py`` (each tool
as ``tool.save`` writes it), ``managed_agents/<name>/`` (the same, recursively), ``requirements.txt`` and
``app.py`` (a Gradio Space). Folders saved by smolagents 1.26 load here and the other way round.
Loading runs the folder's tool code in this process: read it first; from the Hub it needs
``trust_remote_code=True``.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import yaml

from ..tools.base import Tool
from ..tools.sharing import hub_api, require_trust, save_tool, tag_space
from .agent_dict import import_requirements, settings_entries

__all__ = [
    "save_agent",
    "agent_from_folder",
    "push_agent_to_hub",
    "agent_from_hub",
    "agent_folder_dict",
    "create_agent_gradio_app_template",
]

_DOWNLOAD_KWARGS = ("cache_dir", "force_download", "proxies", "revision", "local_files_only")
_AGENT_CLASSES = ("CodeAgent", "ToolCallingAgent")


def _model_entry(model: Any) -> dict[str, Any]:
    data = dict(model.to_dict()) if hasattr(model, "to_dict") else {}
    data.pop("class", None)
    return {"class": type(model).__name__, "data": {k: v for k, v in data.items() if _is_json(v)}}


def _is_json(value: Any) -> bool:
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return False
    return True


def agent_folder_dict(agent: Any) -> dict[str, Any]:
    """``agent.json``'s content."""
    tools = [t for name, t in agent.tools.items() if name != "final_answer"]
    requirements: set[str] = set()
    from ..tools.sharing import tool_file_code

    for item in tools:
        from ..tools.base import _requirements

        requirements.update(_requirements(tool_file_code(item)))
    requirements.update(import_requirements(agent))
    requirements.add("smolagents")
    data: dict[str, Any] = {
        "class": type(agent).__name__,
        "tools": [t.name for t in tools],
        "model": _model_entry(agent.model),
        "managed_agents": {name: type(a).__name__ for name, a in agent.managed_agents.items()},
        **settings_entries(agent),
        "requirements": sorted(requirements),
    }
    if hasattr(agent, "authorized_imports"):
        data.update(
            authorized_imports=list(agent.authorized_imports),
            executor_type=agent.executor_type,
            executor_kwargs=dict(agent.executor_kwargs or {}),
            max_print_outputs_length=agent.max_print_outputs_length,
        )
    if getattr(agent, "instructions", None):
        data["instructions"] = agent.instructions
    return data


def save_agent(agent: Any, output_dir: Any, relative_path: str | None = None) -> None:
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "__init__.py").touch()
    for name, managed in agent.managed_agents.items():
        (out / "managed_agents").mkdir(exist_ok=True)
        (out / "managed_agents" / "__init__.py").touch()
        suffix = f"{relative_path}.managed_agents.{name}" if relative_path else f"managed_agents.{name}"
        save_agent(managed, out / "managed_agents" / name, relative_path=suffix)
    data = agent_folder_dict(agent)
    for name in data["tools"]:
        (out / "tools").mkdir(exist_ok=True)
        (out / "tools" / "__init__.py").touch()
        save_tool(agent.tools[name], out / "tools", tool_file_name=name, make_gradio_app=False)
    prompts = yaml.safe_dump(
        agent.prompt_templates, default_style="|", default_flow_style=False, width=float("inf"),
        sort_keys=False, allow_unicode=True, indent=2,
    )
    (out / "prompts.yaml").write_text(prompts, encoding="utf-8")
    (out / "agent.json").write_text(json.dumps(data, indent=4), encoding="utf-8")
    (out / "requirements.txt").write_text("".join(f"{r}\n" for r in data["requirements"]), encoding="utf-8")
    (out / "app.py").write_text(_app_code(agent, data, relative_path), encoding="utf-8")


# app.py of a saved agent: a Gradio Space that rebuilds the agent from the folder. Rendered with the same
# variables as smolagents' template, so code that renders smolagents' template works with this one.
_APP_TEMPLATE = """\
import os

import yaml
from smolagents import GradioUI, {{ class_name }}, {{ agent_dict["model"]["class"] }}

CURRENT_DIR = os.path.dirname(os.path.abspath(__file__))
{% for name, tool in tools.items() %}
from {{ managed_agent_relative_path }}tools.{{ name }} import {{ tool | tool_class }} as Tool_{{ name }}
{%- endfor %}
{%- for name in managed_agents %}
from {{ managed_agent_relative_path }}managed_agents.{{ name }}.app import agent_{{ name }}
{%- endfor %}

model = {{ agent_dict["model"]["class"] }}(
{%- for key, value in agent_dict["model"]["data"].items() if key != "class" %}
    {{ key }}={{ value | repr }},
{%- endfor %}
)
{%- for name in tools %}
{{ name }} = Tool_{{ name }}()
{%- endfor %}

with open(os.path.join(CURRENT_DIR, "prompts.yaml")) as stream:
    prompt_templates = yaml.safe_load(stream)

{{ agent_name }} = {{ class_name }}(
    model=model,
    tools=[{{ tools | join(", ") }}],
    managed_agents=[{% for name in managed_agents %}agent_{{ name }}{{ ", " if not loop.last }}{% endfor %}],
{%- for key, value in agent_dict.items() if key not in not_arguments %}
    {{ key }}={{ value | repr }},
{%- endfor %}
{%- if "authorized_imports" in agent_dict %}
    additional_authorized_imports={{ agent_dict["authorized_imports"] | repr }},
{%- endif %}
    prompt_templates=prompt_templates,
)
if __name__ == "__main__":
    GradioUI({{ agent_name }}).launch()
"""

# agent.json entries that are not constructor arguments of the agent, or are passed another way
_NOT_ARGUMENTS = ("class", "model", "tools", "managed_agents", "prompt_templates", "requirements", "authorized_imports")


def _tool_class(tool: Any) -> str:
    # a @tool is saved as a class named SimpleTool (smolagents' name), any other tool under its own class name
    return "SimpleTool" if type(tool).__name__ == "FunctionTool" else type(tool).__name__


def create_agent_gradio_app_template() -> Any:
    """The jinja2 template of a saved agent's ``app.py`` (smolagents' helper). Render it with ``agent_name``,
    ``class_name``, ``agent_dict`` (agent.json's content), ``tools`` and ``managed_agents`` (name -> object)
    and ``managed_agent_relative_path`` (the module prefix of a managed agent's folder, "" at the top)."""
    import jinja2

    env = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True, autoescape=False)
    env.filters["repr"] = repr
    env.filters["tool_class"] = _tool_class
    env.globals["not_arguments"] = _NOT_ARGUMENTS
    return env.from_string(_APP_TEMPLATE)


def _app_code(agent: Any, data: dict[str, Any], relative_path: str | None) -> str:
    return create_agent_gradio_app_template().render(
        agent_name=f"agent_{agent.name or 'main'}",
        class_name=data["class"],
        agent_dict=data,
        tools={name: agent.tools[name] for name in data["tools"]},
        managed_agents=dict(agent.managed_agents),
        managed_agent_relative_path=f"{relative_path}." if relative_path else "",
    )


def _model_from_entry(entry: dict[str, Any]) -> Any:
    from .. import models

    name = entry.get("class")
    if name == "HfApiModel":  # smolagents' old name
        name = "InferenceClientModel"
    cls = getattr(models, name, None) if isinstance(name, str) else None
    if cls is None:
        raise ValueError(
            f"The saved agent uses the model class {name!r}, which codeloop does not have; pass model=... to "
            "from_folder to use another model."
        )
    data = entry.get("data")
    if data is None:
        data = {k: v for k, v in entry.items() if k != "class"}
    return cls.from_dict(data) if hasattr(cls, "from_dict") else cls(**data)


def agent_from_folder(cls: Any, folder: Any, **kwargs: Any) -> Any:
    from . import CodeAgent, ToolCallingAgent

    folder = Path(folder)
    data = json.loads((folder / "agent.json").read_text(encoding="utf-8"))
    classes = {"CodeAgent": CodeAgent, "ToolCallingAgent": ToolCallingAgent}
    managed = []
    for name, class_name in (data.get("managed_agents") or {}).items():
        if class_name not in classes:
            raise ValueError(f"Unknown agent class {class_name!r} for managed agent '{name}'; use one of {_AGENT_CLASSES}.")
        # A model passed by the caller replaces the saved one in managed agents too (one model for the team).
        sub_kwargs = {"model": kwargs["model"]} if "model" in kwargs else {}
        managed.append(agent_from_folder(classes[class_name], folder / "managed_agents" / name, **sub_kwargs))
    tools = []
    for name in data.get("tools") or []:
        if name == "final_answer":
            continue  # every codeloop agent has its own final_answer tool
        path = folder / "tools" / f"{name}.py"
        tools.append(Tool.from_code(path.read_text(encoding="utf-8")))
    prompts = data.get("prompt_templates")
    if prompts is None and (folder / "prompts.yaml").is_file():
        prompts = yaml.safe_load((folder / "prompts.yaml").read_text(encoding="utf-8"))
    args: dict[str, Any] = {
        "tools": tools,
        "managed_agents": managed or None,
        "prompt_templates": prompts,
        "max_steps": data.get("max_steps"),
        "verbosity_level": data.get("verbosity_level"),
        "planning_interval": data.get("planning_interval"),
        "name": data.get("name"),
        "description": data.get("description"),
        "instructions": data.get("instructions"),
    }
    if cls is CodeAgent or issubclass(cls, CodeAgent):
        args.update(
            additional_authorized_imports=data.get("authorized_imports"),
            executor_type=data.get("executor_type"),
            executor_kwargs=data.get("executor_kwargs"),
            max_print_outputs_length=data.get("max_print_outputs_length"),
            code_block_tags=data.get("code_block_tags"),
        )
    args = {k: v for k, v in args.items() if v is not None}
    args.update(kwargs)
    if "model" not in args:
        args["model"] = _model_from_entry(data["model"])
    return cls(**args)


def push_agent_to_hub(
    agent: Any,
    repo_id: str,
    commit_message: str = "Upload agent",
    private: bool | None = None,
    token: Any = None,
    create_pr: bool = False,
) -> str:
    api = hub_api(token)
    repo = api.create_repo(repo_id, private=private, exist_ok=True, repo_type="space", space_sdk="gradio")
    tag_space(repo.repo_id, ["smolagents", "codeloop", "agent"], token=token, create_pr=create_pr)
    with tempfile.TemporaryDirectory() as work_dir:
        save_agent(agent, work_dir)
        info = api.upload_folder(
            repo_id=repo.repo_id, folder_path=work_dir, repo_type="space",
            commit_message=commit_message, create_pr=create_pr,
        )
    return str(info)


def agent_from_hub(cls: Any, repo_id: str, token: str | None = None, trust_remote_code: bool = False, **kwargs: Any) -> Any:
    require_trust(f"the agent from the Hub repo '{repo_id}'", trust_remote_code)
    hub_api(token)
    from huggingface_hub import snapshot_download

    download = {k: kwargs.pop(k) for k in _DOWNLOAD_KWARGS if k in kwargs}
    folder = snapshot_download(repo_id=repo_id, repo_type="space", token=token, **download)
    return agent_from_folder(cls, folder, **kwargs)


