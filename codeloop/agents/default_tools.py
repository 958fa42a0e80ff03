"""The default toolkit by name: ``TOOL_MAPPING`` (what ``add_base_tools=True`` adds) and ``get_default_tools``.

Layer 5 (agents): the mapping spans the web tools (layer 2) and the Python interpreter tool, which runs
code and so lives with the executors (layer 3). ``TOOL_MAPPING`` is exactly smolagents' three
(``python_interpreter``, ``web_search``, ``visit_webpage``; code agents skip the interpreter, they run code
anyway). ``get_default_tools(names)`` builds tools by name from a wider set (also ``wikipedia_search``,
``user_input`` and ``final_answer``), as the CLI's ``--tools`` does.
"""

from __future__ import annotations

from collections.abc import Iterable

from ..executors.interpreter_tool import PythonInterpreterTool
from ..tools import Tool
from ..tools.builtin import FinalAnswerTool, UserInputTool
from ..tools.toolkit import DuckDuckGoSearchTool, VisitWebpageTool, WikipediaSearchTool

__all__ = ["BUILTIN_TOOLS", "TOOL_MAPPING", "get_default_tools"]

#: name -> class, as smolagents' ``default_tools.TOOL_MAPPING``: what ``add_base_tools=True`` adds.
TOOL_MAPPING: dict[str, type[Tool]] = {
    cls.name: cls for cls in (PythonInterpreterTool, DuckDuckGoSearchTool, VisitWebpageTool)
}

#: every tool ``get_default_tools`` can build without arguments, by name.
BUILTIN_TOOLS: dict[str, type[Tool]] = {
    **TOOL_MAPPING,
    "duckduckgo_search": DuckDuckGoSearchTool,  # the CLI's alias; the tool itself is named web_search
    WikipediaSearchTool.name: WikipediaSearchTool,
    UserInputTool.name: UserInputTool,
    FinalAnswerTool.name: FinalAnswerTool,
}


def get_default_tools(names: Iterable[str] | str | None = None) -> list[Tool]:
    """Fresh instances of the named tools (default: the ``TOOL_MAPPING`` ones), in the order given.

    ``names`` may be a list or one string of names separated by spaces or commas. An unknown name
    raises ValueError listing the valid ones. Two names for the same tool name give one tool.
    """
    if names is None:
        wanted = list(TOOL_MAPPING)
    elif isinstance(names, str):
        wanted = names.replace(",", " ").split()
    else:
        wanted = [str(n).strip() for n in names]
    unknown = [n for n in wanted if n not in BUILTIN_TOOLS]
    if unknown:
        raise ValueError(
            f"Unknown default tool name(s) {unknown}. Valid names: {', '.join(sorted(BUILTIN_TOOLS))}. "
            "For any other tool, pass an instance of your own Tool or @tool function."
        )
    tools: dict[str, Tool] = {}
    for name in wanted:
        cls = BUILTIN_TOOLS[name]
        if cls.name not in tools:
            tools[cls.name] = cls()
    return list(tools.values())
