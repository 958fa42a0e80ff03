"""Tools from elsewhere: Gradio Spaces and apps (``gradio_client``), gradio-tools objects, LangChain tools.

Layer 2 (tools). Each wrapper is a Tool whose schema comes from the other side's own description: a
Space's ``view_api`` (parameters, defaults, the output component), a LangChain tool's JSON schema
(``$ref``s, optional fields and enums converted like MCP schemas), a gradio-tools object's ``run``
signature. The optional packages are imported when a wrapper is built, with an error naming the package.
These wrappers call out to a service, so ``tool.save`` refuses them: save the code that builds them.
"""

from __future__ import annotations

import inspect
import os
import tempfile
import typing
from pathlib import Path
from typing import Any

from .base import Tool, _CallPlan
from .mcp_convert import inputs_from_schema
from .validation import check_definition

__all__ = ["SpaceToolWrapper", "GradioToolWrapper", "LangChainToolWrapper"]

_IMAGE_EXT = (".png", ".jpg", ".jpeg", ".gif", ".webp")
_AUDIO_EXT = (".mp3", ".wav", ".ogg", ".m4a", ".flac")
_PY_TYPES = {str: "string", int: "integer", float: "number", bool: "boolean", list: "array", dict: "object"}


class _SchemaTool(Tool):
    """A wrapper whose inputs come from a schema, not from ``forward``'s signature."""

    def _check_definition(self) -> None:
        check_definition(self, None, owner=self.name)

    def _plan(self) -> _CallPlan:
        optional = frozenset(k for k, v in self.inputs.items() if v.get("nullable"))
        return _CallPlan(None, tuple(self.inputs), optional, (), inspect.iscoroutinefunction(self.forward))


class SpaceToolWrapper(_SchemaTool):
    """A Gradio app's endpoint (a Hub Space id or any Gradio URL) as a tool, through ``gradio_client``."""

    def __init__(self, space_id: str, name: str, description: str = "", api_name: str | None = None,
                 token: str | None = None):
        super().__init__()
        try:
            from gradio_client import Client
        except ImportError as exc:
            raise ImportError("Tool.from_space needs gradio_client: pip install gradio_client.") from exc
        self.name = name
        self.description = description or f"The Gradio app {space_id}."
        accepted = inspect.signature(Client.__init__).parameters
        options: dict[str, Any] = {"verbose": False}
        options["token" if "token" in accepted else "hf_token"] = token
        if "analytics_enabled" in accepted:
            options["analytics_enabled"] = False  # no usage report to a third party from a tool call
        self.client = Client(space_id, **options)
        api = self.client.view_api(return_format="dict", print_info=False)
        endpoints = api["named_endpoints"]
        if not endpoints:
            raise ValueError(f"The Gradio app {space_id} exposes no named API endpoint.")
        if api_name is None:
            api_name = next(iter(endpoints))
        if api_name not in endpoints:
            raise KeyError(f"No API endpoint {api_name!r} in {space_id}; it has: {', '.join(endpoints)}.")
        self.api_name = api_name
        spec = endpoints[api_name]
        self.inputs = {}
        for param in spec["parameters"]:
            kind = param.get("type", {}).get("type", "any")
            if kind not in ("string", "integer", "number", "boolean", "array"):
                kind = "any"
            entry: dict[str, Any] = {
                "type": kind,
                "description": param.get("python_type", {}).get("description") or param.get("label") or "",
            }
            if param.get("parameter_has_default"):
                entry["nullable"] = True
            self.inputs[param["parameter_name"]] = entry
        component = spec["returns"][0]["component"] if spec.get("returns") else None
        self.output_type = {"Image": "image", "Audio": "audio"}.get(component or "", "any")
        self.is_initialized = True

    def _prepare_argument(self, value: Any) -> Any:
        from gradio_client import handle_file
        from gradio_client.utils import is_http_url_like

        if type(value).__module__.startswith("PIL.") or type(value).__name__ == "AgentImage":
            raw = value.to_raw() if hasattr(value, "to_raw") else value
            with tempfile.NamedTemporaryFile(suffix=".png", delete=False) as f:
                raw.save(f.name)
                value = f.name
        if (isinstance(value, str | Path) and os.path.isfile(value)) or (
            isinstance(value, str) and is_http_url_like(value)
        ):
            return handle_file(str(value))
        return value

    def forward(self, **kwargs: Any) -> Any:
        arguments = {k: self._prepare_argument(v) for k, v in kwargs.items() if v is not None}
        output = self.client.predict(api_name=self.api_name, **arguments)
        if isinstance(output, tuple | list) and output:
            if len(output) > 1 and isinstance(output[1], str) and self.output_type in ("image", "audio"):
                raise ValueError(f"The Space returned this message: {output[1]}")
            output = output[0] if self.output_type in ("image", "audio") else output
        if isinstance(output, str) and output.lower().endswith(_IMAGE_EXT) and os.path.isfile(output):
            from .agent_media import AgentImage

            return AgentImage(output)
        if isinstance(output, str) and output.lower().endswith(_AUDIO_EXT) and os.path.isfile(output):
            from .agent_media import AgentAudio

            return AgentAudio(output)
        return output


class GradioToolWrapper(_SchemaTool):
    """A gradio-tools object (``name``, ``description``, ``run(...)``) as a tool; it returns text."""

    def __init__(self, gradio_tool: Any):
        super().__init__()
        self.name = gradio_tool.name
        self.description = gradio_tool.description
        self.output_type = "string"
        self._gradio_tool = gradio_tool
        self.inputs = {}
        try:
            hints = typing.get_type_hints(gradio_tool.run)
        except Exception:  # noqa: BLE001 - unresolvable hints: every input is text, as gradio-tools' are
            hints = {}
        for pname, param in inspect.signature(gradio_tool.run).parameters.items():
            if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
                continue
            entry: dict[str, Any] = {"type": _PY_TYPES.get(hints.get(pname), "string"), "description": pname}
            if param.default is not inspect.Parameter.empty:
                entry["nullable"] = True
            self.inputs[pname] = entry
        self.is_initialized = True

    def forward(self, **kwargs: Any) -> Any:
        return self._gradio_tool.run(**{k: v for k, v in kwargs.items() if v is not None})


class LangChainToolWrapper(_SchemaTool):
    """A LangChain ``BaseTool`` as a tool: its JSON schema becomes the inputs; calls use ``ainvoke``."""

    def __init__(self, langchain_tool: Any):
        super().__init__()
        self.name = langchain_tool.name.lower().replace("-", "_").replace(" ", "_")
        self.description = langchain_tool.description or f"The LangChain tool {langchain_tool.name}."
        schema = getattr(langchain_tool, "tool_call_schema", None)
        if hasattr(schema, "model_json_schema"):
            json_schema = schema.model_json_schema()
        elif isinstance(schema, dict):
            json_schema = schema
        else:
            json_schema = {"type": "object", "properties": dict(langchain_tool.args)}
        self.inputs, _ = inputs_from_schema(json_schema)
        self.output_type = "string"
        self.langchain_tool = langchain_tool
        self.is_initialized = True

    async def forward(self, **kwargs: Any) -> Any:
        tool_input = {k: v for k, v in kwargs.items() if v is not None}
        result = await self.langchain_tool.ainvoke(tool_input)
        content = getattr(result, "content", result)  # a ToolMessage when the tool returns artifacts
        return content if isinstance(content, str) else str(content)
