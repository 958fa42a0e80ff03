"""Serving codeloop tools and agents to MCP clients (Claude Desktop, Cursor, any ``mcp`` client).

Layer 7 (faces). Needs the ``mcp`` extra. ``build_server`` makes an ``mcp`` low-level server from tools
and/or an agent; ``serve`` runs it over stdio or streamable HTTP; ``codeloop mcp serve`` is the CLI
(``cli.py``, which the main CLI loads without loading the server).
"""

from typing import Any

__all__ = ["agent_tool_name", "build_server", "serve"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from . import server

        return getattr(server, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
