"""``codeloop mcp serve``: the command-line face of the MCP server.

Layer 7 (faces). ``--tools`` takes built-in tool names or ``module:attribute`` (a Tool, a Tool class, a
list of tools or a ToolCollection); ``--agent`` takes ``module:attribute`` of an agent (or a function
returning one) or a folder written by ``agent.save(folder)``.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path
from typing import Any

__all__ = ["add_parser", "run_command"]


def add_parser(sub: Any) -> None:
    mcp = sub.add_parser("mcp", help="serve tools or an agent over MCP", description="Model Context Protocol.")
    mcp_sub = mcp.add_subparsers(dest="mcp_command", metavar="SUBCOMMAND", required=True)
    serve = mcp_sub.add_parser(
        "serve",
        help="serve tools and/or an agent to MCP clients",
        description="Serve codeloop tools and/or an agent to MCP clients (Claude Desktop, Cursor...).",
    )
    serve.add_argument("--tools", nargs="*", default=[], help="built-in names or module:attribute of Tools")
    serve.add_argument("--agent", default=None, help="module:attribute of an agent, or a saved agent folder")
    serve.add_argument(
        "--transport", choices=["stdio", "streamable-http"], default="stdio", help="default: stdio"
    )
    serve.add_argument("--host", default="127.0.0.1", help="HTTP host (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8000, help="HTTP port (default 8000)")
    serve.add_argument("--path", default="/mcp", help="HTTP path (default /mcp)")
    serve.add_argument("--name", default="codeloop", help="server name shown to clients")


def _tools(specs: list[str]) -> list[Any]:
    from ..cli import resolve_tools
    from ..tools.collection import ToolCollection

    tools: list[Any] = []
    for item in resolve_tools(specs):
        if isinstance(item, ToolCollection):
            tools.extend(item.tools)
        elif isinstance(item, list | tuple):
            tools.extend(item)
        else:
            tools.append(item)
    return tools


def _agent(spec: str) -> Any:
    if Path(spec).is_dir():
        from ..agents import CodeAgent

        return CodeAgent.from_folder(spec)
    module_name, sep, attr = spec.partition(":")
    if not sep:
        raise ValueError(f"--agent {spec}: give module:attribute or an existing folder saved with agent.save().")
    value = getattr(importlib.import_module(module_name), attr)
    return value() if callable(value) and not hasattr(value, "astream") else value


def run_command(args: argparse.Namespace) -> int:
    from .server import serve

    try:
        tools = _tools(args.tools)
        agent = _agent(args.agent) if args.agent else None
    except Exception as exc:  # noqa: BLE001 - any loading problem is the user's to fix
        print(f"codeloop mcp serve: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    if not tools and agent is None:
        print("codeloop mcp serve: nothing to serve; pass --tools and/or --agent.", file=sys.stderr)
        return 2
    serve(tools, agent, transport=args.transport, host=args.host, port=args.port, path=args.path, name=args.name)
    return 0
