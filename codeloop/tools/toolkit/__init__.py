"""The default toolkit's web tools: web search, web pages and Wikipedia, with smolagents' names.

Layer 2 (tools). The Python interpreter tool runs code, so it lives with the executors
(``codeloop/executors/interpreter_tool.py``); ``TOOL_MAPPING`` and ``get_default_tools``, which list
tools of both layers, are in ``codeloop/agents/default_tools.py``.

Importing this package does not load httpx: each tool imports it when it runs. No tool needs an API key at construction, except ``GoogleSearchTool`` (as in smolagents).
``SpeechToTextTool`` loads transformers and its model on its first call.
"""

from __future__ import annotations

from ..builtin import FinalAnswerTool, UserInputTool
from ._http import WebToolError
from .search import DuckDuckGoSearchTool, WebSearchTool, format_search_results
from .search_api import ApiWebSearchTool, GoogleSearchTool
from .speech import SpeechToTextTool
from .webpage import VisitWebpageTool
from .wikipedia import WikipediaSearchTool

__all__ = [
    "ApiWebSearchTool",
    "DuckDuckGoSearchTool",
    "FinalAnswerTool",
    "GoogleSearchTool",
    "SpeechToTextTool",
    "UserInputTool",
    "VisitWebpageTool",
    "WebSearchTool",
    "WebToolError",
    "WikipediaSearchTool",
    "format_search_results",
]
