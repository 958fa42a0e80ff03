"""smolagents' ``default_tools`` module path: ``from codeloop.default_tools import TOOL_MAPPING`` works as before.

Only re-exports: the web tools live in ``codeloop/tools/toolkit/``, the interpreter tool in
``codeloop/executors/interpreter_tool.py`` and the mapping in ``codeloop/agents/default_tools.py``.
"""

from .agents.default_tools import BUILTIN_TOOLS, TOOL_MAPPING, get_default_tools
from .executors.interpreter_tool import PythonInterpreterTool
from .tools.builtin import FinalAnswerTool, UserInputTool
from .tools.toolkit import (
    ApiWebSearchTool,
    DuckDuckGoSearchTool,
    GoogleSearchTool,
    VisitWebpageTool,
    WebSearchTool,
    WebToolError,
    WikipediaSearchTool,
)

__all__ = [
    "ApiWebSearchTool",
    "BUILTIN_TOOLS",
    "DuckDuckGoSearchTool",
    "FinalAnswerTool",
    "GoogleSearchTool",
    "PythonInterpreterTool",
    "TOOL_MAPPING",
    "UserInputTool",
    "VisitWebpageTool",
    "WebSearchTool",
    "WebToolError",
    "WikipediaSearchTool",
    "get_default_tools",
]
