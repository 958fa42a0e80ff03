"""Saving tools to folders and sharing them on the Hugging Face Hub, in smolagents' format.

Layer 2 (tools). A saved tool is a folder with ``tool.py`` (a self-contained Tool subclass), ``app.py``
(a Gradio Space that serves it) and ``requirements.txt``; on the Hub it is a Gradio Space repo holding the
same files. Folders written by smolagents load here and the other way round: the class imports ``Tool``
from codeloop when it is installed, else from smolagents. Loading runs the tool's code in this process,
so it needs ``trust_remote_code=True``. The Hub client (``huggingface_hub``) is the ``hub`` extra.
"""

from __future__ import annotations

import inspect
import json
import re
import textwrap
from pathlib import Path
from typing import Any

from ..errors import ToolDefinitionError
from .base import Tool, _requirements
from .self_contained import get_source

__all__ = [
    "tool_file_code",
    "save_tool",
    "tool_from_folder",
    "tool_from_hub",
    "push_tool_to_hub",
    "collection_from_hub",
    "hub_api",
    "require_trust",
    "tag_space",
]

_HEADER = """from typing import Any, Optional

try:  # this file loads in codeloop and in smolagents
    from codeloop import Tool
except ImportError:
    from smolagents import Tool
"""
_HUB_KWARGS = ("cache_dir", "force_download", "proxies", "revision", "subfolder", "local_files_only")


def hub_api(token: Any = None) -> Any:
    try:
        from huggingface_hub import HfApi
    except ImportError as exc:
        raise ImportError("Sharing on the Hub needs huggingface_hub: pip install 'codeloop[hub]'.") from exc
    return HfApi(token=token)


def require_trust(what: str, trust_remote_code: bool) -> None:
    if not trust_remote_code:
        raise ValueError(
            f"Loading {what} runs its Python code in this process, with your files and credentials: read it "
            "first, then pass trust_remote_code=True to acknowledge that you trust it."
        )


def tool_file_code(tool: Tool) -> str:
    """The tool as a self-contained ``tool.py``: a Tool subclass with its attributes and ``forward``."""
    from .decorator import FunctionTool

    kind = type(tool).__name__
    if kind in ("SpaceToolWrapper", "LangChainToolWrapper", "GradioToolWrapper", "MCPTool"):
        raise ToolDefinitionError(
            f"Tool '{tool.name}' wraps an outside service ({kind}); save the code that creates it instead."
        )
    tool._check_self_contained()
    if isinstance(tool, FunctionTool):
        try:
            source = textwrap.dedent(inspect.getsource(tool.forward))
        except (OSError, TypeError) as exc:
            raise ToolDefinitionError(f"Tool '{tool.name}': its function's source code cannot be found.") from exc
        source = "\n".join(line for line in source.splitlines() if not line.lstrip().startswith("@"))
        func_name = tool.forward.__name__
        source = re.sub(
            rf"^(async\s+)?def\s+{re.escape(func_name)}\s*\(\s*",
            lambda m: f"{m.group(1) or ''}def forward(self, ",
            source,
            count=1,
        ).replace("def forward(self, )", "def forward(self)")
        attrs = [
            f"name = {json.dumps(tool.name)}",
            f"description = {json.dumps(textwrap.dedent(tool.description).strip())}",
            f"inputs = {tool.inputs!r}",
            f"output_type = {json.dumps(tool.output_type)}",
        ]
        if tool.output_schema is not None:
            attrs.append(f"output_schema = {tool.output_schema!r}")
        body = "\n".join(attrs) + "\n\n" + source
        return f"{_HEADER}\n\nclass SimpleTool(Tool):\n{textwrap.indent(body, '    ')}\n"
    try:
        source = get_source(type(tool))
    except (OSError, TypeError, ValueError) as exc:
        raise ToolDefinitionError(f"Tool '{tool.name}': its class's source code cannot be found ({exc}).") from exc
    _check_instance_matches_class(tool)
    return f"{_HEADER}\n\n{source.rstrip()}\n"


def _check_instance_matches_class(tool: Tool) -> None:
    cls = type(tool)
    for attr in ("name", "description", "inputs", "output_type"):
        if getattr(cls, attr, None) != getattr(tool, attr):
            raise ToolDefinitionError(
                f"Tool '{tool.name}' sets '{attr}' in __init__; a saved tool must set it in the class statement "
                "so the saved class rebuilds the same tool."
            )


def _requirements_text(code: str) -> str:
    return "\n".join(sorted(set(_requirements(code)) | {"smolagents"}))


def _app_code(tool: Tool, module: str) -> str:
    class_name = "SimpleTool" if type(tool).__name__ == "FunctionTool" else type(tool).__name__
    return f"from smolagents import launch_gradio_demo\nfrom {module} import {class_name}\n\ntool = {class_name}()\nlaunch_gradio_demo(tool)\n"


def save_tool(tool: Tool, output_dir: Any, tool_file_name: str = "tool", make_gradio_app: bool = True) -> None:
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    code = tool_file_code(tool)
    (out / f"{tool_file_name}.py").write_text(code, encoding="utf-8")
    if make_gradio_app:
        (out / "app.py").write_text(_app_code(tool, tool_file_name), encoding="utf-8")
        (out / "requirements.txt").write_text(_requirements_text(code), encoding="utf-8")


def tool_from_folder(folder: Any, tool_file_name: str = "tool", trust_remote_code: bool = False, **kwargs: Any) -> Tool:
    path = Path(folder) / f"{tool_file_name}.py"
    if not path.is_file():
        found = sorted(p.name for p in Path(folder).glob("*.py") if p.name != "app.py")
        raise FileNotFoundError(f"No {path.name} in {folder}; it has: {', '.join(found) or 'no Python files'}.")
    require_trust(f"the tool in {folder}", trust_remote_code)
    return Tool.from_code(path.read_text(encoding="utf-8"), **kwargs)


def tool_from_hub(repo_id: str, token: str | None = None, trust_remote_code: bool = False, **kwargs: Any) -> Tool:
    require_trust(f"the tool from the Hub repo '{repo_id}'", trust_remote_code)
    hub_api()  # the clear error when huggingface_hub is missing
    from huggingface_hub import hf_hub_download

    download = {k: kwargs.pop(k) for k in _HUB_KWARGS if k in kwargs}
    path = hf_hub_download(repo_id, "tool.py", token=token, repo_type="space", **download)
    return Tool.from_code(Path(path).read_text(encoding="utf-8"), **kwargs)


def push_tool_to_hub(
    tool: Tool,
    repo_id: str,
    commit_message: str = "Upload tool",
    private: bool | None = None,
    token: Any = None,
    create_pr: bool = False,
) -> str:
    from huggingface_hub import CommitOperationAdd

    api = hub_api(token)
    code = tool_file_code(tool)
    repo = api.create_repo(repo_id, private=private, exist_ok=True, repo_type="space", space_sdk="gradio")
    tag_space(repo.repo_id, ["smolagents", "codeloop", "tool"], token=token, create_pr=create_pr)
    files = {"tool.py": code, "app.py": _app_code(tool, "tool"), "requirements.txt": _requirements_text(code)}
    info = api.create_commit(
        repo_id=repo.repo_id,
        repo_type="space",
        operations=[CommitOperationAdd(path_in_repo=k, path_or_fileobj=v.encode()) for k, v in files.items()],
        commit_message=commit_message,
        create_pr=create_pr,
    )
    return str(info)


def tag_space(repo_id: str, tags: list[str], token: Any = None, create_pr: bool = False) -> None:
    """Adds ``tags`` to a Space's card through the Hub's ``metadata_update``, keeping the tags it has.

    smolagents tags the same way; merging (rather than replacing) keeps a user's own tags, and a Space that
    already has them all gets no commit.
    """
    from huggingface_hub import RepoCard, metadata_update

    card = RepoCard.load(repo_id, repo_type="space", token=token)
    existing = card.data.get("tags") or []
    existing = [existing] if isinstance(existing, str) else list(existing)
    merged = existing + [t for t in tags if t not in existing]
    if merged != existing:
        metadata_update(repo_id, {"tags": merged}, repo_type="space", overwrite=True, token=token,
                        create_pr=create_pr)


def collection_from_hub(collection_slug: str, token: str | None = None, trust_remote_code: bool = False) -> list[Tool]:
    """The tools of every Space in a Hub collection."""
    require_trust(f"the tools of the Hub collection '{collection_slug}'", trust_remote_code)
    api = hub_api(token)
    collection = api.get_collection(collection_slug)
    spaces = [item.item_id for item in collection.items if item.item_type == "space"]
    if not spaces:
        raise ValueError(f"The Hub collection '{collection_slug}' holds no Spaces, so no tools.")
    return [tool_from_hub(space, token=token, trust_remote_code=trust_remote_code) for space in spaces]


