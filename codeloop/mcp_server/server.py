"""An MCP server (``mcp`` SDK 2.x, low-level ``Server``) exposing codeloop tools and an agent.

Layer 7 (faces). Each codeloop tool becomes an MCP tool with the same name, description and JSON schema
(``to_tool_schema``); a tool with an ``output_schema`` also declares it and returns structured content.
An agent becomes one tool taking ``task`` that runs the agent and sends an MCP progress notification
after every step (when the client asked for progress). A tool or agent failure is returned as an error
result with the exception's message, so the client's model can read it.
"""

from __future__ import annotations

import base64
import io
import json
from typing import Any

from ..tools.base import Tool

__all__ = ["build_server", "serve", "agent_tool_name"]


def _mcp() -> Any:
    try:
        import mcp_types
        from mcp.server import Server
    except ImportError as exc:
        raise ImportError("Serving over MCP needs the mcp SDK 2.x: pip install 'codeloop[mcp]'.") from exc
    return Server, mcp_types


def agent_tool_name(agent: Any) -> str:
    return getattr(agent, "name", None) or "run_agent"


def _spec(tool: Tool, types: Any) -> Any:
    params = tool.to_tool_schema()["function"]["parameters"]
    output = tool.output_schema if tool.output_schema and tool.output_schema.get("type") == "object" else None
    return types.Tool(name=tool.name, description=tool.description, input_schema=params, output_schema=output)


def _agent_spec(agent: Any, types: Any) -> Any:
    description = getattr(agent, "description", None) or (
        "Runs an AI agent that writes and runs Python code with its own tools to complete a task, and returns "
        "its final answer."
    )
    schema = {
        "type": "object",
        "properties": {"task": {"type": "string", "description": "The task for the agent, in full sentences."}},
        "required": ["task"],
    }
    return types.Tool(name=agent_tool_name(agent), description=description, input_schema=schema)


def _content(value: Any, types: Any) -> list[Any]:
    """A tool's return value as MCP content blocks."""
    if value is None:
        return []
    if isinstance(value, list) and any(_is_media(v) for v in value):
        return [block for item in value for block in _content(item, types)]
    if type(value).__module__.startswith("PIL.") or type(value).__name__ == "AgentImage":
        raw = value.to_raw() if hasattr(value, "to_raw") else value
        buf = io.BytesIO()
        raw.save(buf, format="PNG")
        return [types.ImageContent(data=base64.b64encode(buf.getvalue()).decode(), mime_type="image/png")]
    if type(value).__name__ == "AgentAudio":
        return [types.AudioContent(data=base64.b64encode(value.to_bytes()).decode(), mime_type="audio/wav")]
    if isinstance(value, str):
        return [types.TextContent(text=value)]
    try:
        text = json.dumps(value, default=str)
    except (TypeError, ValueError):
        text = str(value)
    return [types.TextContent(text=text)]


def _is_media(value: Any) -> bool:
    return type(value).__name__ in ("AgentImage", "AgentAudio") or type(value).__module__.startswith("PIL.")


def _error(exc: BaseException, types: Any) -> Any:
    return types.CallToolResult(content=[types.TextContent(text=f"{type(exc).__name__}: {exc}")], is_error=True)


async def _run_agent(agent: Any, task: str, ctx: Any, types: Any) -> Any:
    from ..events import RunFailed, RunFinished, StepFinished

    total = float(getattr(agent, "max_steps", 0) or 0) or None
    done = 0
    output: Any = None
    async for event in agent.astream(task):
        if isinstance(event, StepFinished):
            done += 1
            note = event.error or event.observation or ""
            message = f"step {done} ({event.step_type}) finished" + (f": {note[:200]}" if note else "")
            await ctx.session.report_progress(done, total, message)
        elif isinstance(event, RunFinished):
            output = event.output
            if event.state != "success":
                return types.CallToolResult(
                    content=[types.TextContent(text=f"The agent stopped ({event.state}) without a final answer.")],
                    is_error=True,
                )
        elif isinstance(event, RunFailed):
            return types.CallToolResult(
                content=[types.TextContent(text=f"{event.error_type}: {event.error}")], is_error=True
            )
    return types.CallToolResult(content=_content(output, types))


def build_server(tools: list[Tool] | None = None, agent: Any = None, name: str = "codeloop") -> Any:
    """An ``mcp.server.Server`` serving ``tools`` and, when given, ``agent`` as one more tool."""
    Server, types = _mcp()
    by_name: dict[str, Tool] = {}
    for item in tools or []:
        if not isinstance(item, Tool):
            raise TypeError(f"build_server takes codeloop Tools; got {type(item).__name__} (wrap it with @tool).")
        if item.name in by_name:
            raise ValueError(f"Two tools are named '{item.name}'; MCP tool names must be unique.")
        by_name[item.name] = item
    agent_name = agent_tool_name(agent) if agent is not None else None
    if agent_name is not None and agent_name in by_name:
        raise ValueError(f"The agent's tool name '{agent_name}' is also a tool's name; give the agent another name.")

    async def list_tools(ctx: Any, params: Any) -> Any:
        specs = [_spec(t, types) for t in by_name.values()]
        if agent is not None:
            specs.append(_agent_spec(agent, types))
        return types.ListToolsResult(tools=specs)

    async def call_tool(ctx: Any, params: Any) -> Any:
        arguments = dict(params.arguments or {})
        if params.name == agent_name:
            task = arguments.get("task")
            if not isinstance(task, str) or not task.strip():
                return _error(ValueError("Pass the task as a non-empty string argument 'task'."), types)
            try:
                return await _run_agent(agent, task, ctx, types)
            except Exception as exc:  # noqa: BLE001 - reported to the client as a tool error
                return _error(exc, types)
        item = by_name.get(params.name)
        if item is None:
            known = ", ".join([*by_name, *([agent_name] if agent_name else [])]) or "none"
            return _error(LookupError(f"No tool named '{params.name}'; this server has: {known}."), types)
        try:
            value = await item.acall(**arguments)
        except Exception as exc:  # noqa: BLE001 - reported to the client as a tool error
            return _error(exc, types)
        structured = value if item.output_schema and isinstance(value, dict) else None
        return types.CallToolResult(content=_content(value, types), structured_content=structured)

    return Server(name, on_list_tools=list_tools, on_call_tool=call_tool)


def serve(
    tools: list[Tool] | None = None,
    agent: Any = None,
    *,
    transport: str = "stdio",
    host: str = "127.0.0.1",
    port: int = 8000,
    path: str = "/mcp",
    name: str = "codeloop",
) -> None:
    """Run the server until it is stopped: ``transport`` is "stdio" or "streamable-http"."""
    import anyio

    server = build_server(tools, agent, name)
    if transport == "stdio":
        from mcp.server.stdio import stdio_server

        async def run_stdio() -> None:
            async with stdio_server() as (read, write):
                await server.run(read, write, server.create_initialization_options())

        anyio.run(run_stdio)
    elif transport in ("streamable-http", "http"):
        import uvicorn

        app = server.streamable_http_app(streamable_http_path=path, host=host)
        uvicorn.run(app, host=host, port=port, log_level="warning")
    else:
        raise ValueError(f"Unknown MCP transport {transport!r}; use 'stdio' or 'streamable-http'.")
