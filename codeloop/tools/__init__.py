"""Tools: the ``Tool`` base class, the ``@tool`` decorator, schemas, validation and builtin tools.

Layer 2. Importing this package loads no optional dependency (pydantic is recognised by duck typing).
"""

from typing import TYPE_CHECKING, Any

from .agent_types import AgentText, AgentType, handle_agent_input_types, handle_agent_output_types
from .base import Tool, load_tool, run_coroutine_sync
from .builtin import FinalAnswerTool, UserInputTool
from .collection import ToolCollection
from .decorator import FunctionTool, function_schema, tool
from .schema import AUTHORIZED_TYPES, json_schema_for_type, schema_for_type, to_json_schema, validate_value
from .validation import check_call_arguments, is_valid_name

if TYPE_CHECKING:
    from .agent_media import AgentAudio, AgentImage
    from .toolkit import (
        ApiWebSearchTool,
        DuckDuckGoSearchTool,
        GoogleSearchTool,
        SpeechToTextTool,
        VisitWebpageTool,
        WebSearchTool,
        WebToolError,
        WikipediaSearchTool,
    )

# The web tools (search, visit_webpage, Wikipedia) load on first access; TOOL_MAPPING is in codeloop.agents.
_TOOLKIT_NAMES = frozenset(
    {
        "ApiWebSearchTool",
        "DuckDuckGoSearchTool",
        "GoogleSearchTool",
        "SpeechToTextTool",
        "VisitWebpageTool",
        "WebSearchTool",
        "WebToolError",
        "WikipediaSearchTool",
    }
)

__all__ = [
    "AUTHORIZED_TYPES",
    "ApiWebSearchTool",
    "DuckDuckGoSearchTool",
    "GoogleSearchTool",
    "SpeechToTextTool",
    "VisitWebpageTool",
    "WebSearchTool",
    "WebToolError",
    "WikipediaSearchTool",
    "AgentAudio",
    "AgentImage",
    "AgentText",
    "AgentType",
    "FinalAnswerTool",
    "FunctionTool",
    "Tool",
    "ToolCollection",
    "UserInputTool",
    "check_call_arguments",
    "function_schema",
    "handle_agent_input_types",
    "handle_agent_output_types",
    "is_valid_name",
    "json_schema_for_type",
    "load_tool",
    "run_coroutine_sync",
    "schema_for_type",
    "to_json_schema",
    "tool",
    "validate_value",
]


_MEDIA_NAMES = frozenset({"AgentImage", "AgentAudio"})


def __getattr__(name: str) -> Any:
    if name in _MEDIA_NAMES:  # needs Pillow: loaded on first access
        from . import agent_media

        value = getattr(agent_media, name)
        globals()[name] = value
        return value
    if name in _TOOLKIT_NAMES:
        from . import toolkit

        value = getattr(toolkit, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
