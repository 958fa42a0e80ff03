"""MCP client: tools served by Model Context Protocol servers, as codeloop tools (``mcp`` SDK 2.x).

Layer 2 (tools). Needs the ``mcp`` extra (``pip install 'codeloop[mcp]'``), imported on first use.

Every server connection lives in one task on a private event loop thread ("codeloop-mcp"), because the
SDK's sessions are anyio task groups that must be entered and left by the same task. A tool call from
any loop hops onto that loop with ``run_coroutine_threadsafe`` and is awaited there (no thread per
call); sync calls wait on it the same way. When a call finds the connection closed (the server process
died, the HTTP server went away), the tool raises a clear error and the next call reconnects.

``server_parameters`` (smolagents' meaning): a ``mcp.StdioServerParameters``; a dict ``{"url": ...,
"transport": "streamable-http" | "sse", "headers": {...}, "timeout": seconds}``; or a list of those for
several servers at once. A tool name two servers share is an error, not a silent overwrite.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

from .._sync import _start_loop_thread, run_sync_private
from ..errors import ToolDefinitionError
from .base import Tool, _CallPlan
from .mcp_convert import MCPToolError, convert_result, inputs_from_schema, output_from_schema
from .validation import check_definition, is_valid_name

__all__ = ["MCPClient", "MCPTool", "MCPToolError", "MCPServerError"]

T = TypeVar("T")
_loop_lock = threading.Lock()
_loop: asyncio.AbstractEventLoop | None = None
_loop_pid: int | None = None


class MCPServerError(ConnectionError):
    """An MCP server could not be reached or its connection closed; the next call reconnects."""


def _import_mcp() -> Any:
    try:
        import mcp
    except ImportError as exc:
        raise ImportError(
            "MCP support needs the mcp SDK 2.x: pip install 'codeloop[mcp]'."
        ) from exc
    return mcp


def _mcp_loop() -> asyncio.AbstractEventLoop:
    global _loop, _loop_pid
    with _loop_lock:
        if _loop is None or _loop_pid != os.getpid() or not _loop.is_running():
            _loop, _loop_pid = _start_loop_thread("codeloop-mcp"), os.getpid()
        return _loop


async def _on_mcp_loop(coro: Coroutine[Any, Any, T]) -> T:
    """Await ``coro`` on the MCP loop, from whatever loop the caller is on."""
    loop = _mcp_loop()
    if asyncio.get_running_loop() is loop:
        return await coro
    return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, loop))


def _describe_params(params: Any) -> str:
    if isinstance(params, dict):
        return str(params.get("url"))
    command = getattr(params, "command", None)
    if command:
        return " ".join([command, *getattr(params, "args", [])])
    return repr(params)


class _Connection:
    """One MCP server; ``client`` is usable only on the MCP loop."""

    def __init__(self, params: Any, read_timeout: float | None):
        self.params = params
        self.label = _describe_params(params)
        self.read_timeout = read_timeout
        self.client: Any = None
        self._holder: asyncio.Task[None] | None = None
        self._stop: asyncio.Event | None = None
        self._lock: asyncio.Lock | None = None
        self.closed = False

    def _target(self) -> Any:
        mcp = _import_mcp()
        params = self.params
        if isinstance(params, mcp.StdioServerParameters):
            return params
        if not isinstance(params, dict) or "url" not in params:
            raise TypeError(
                "MCP server_parameters must be a mcp.StdioServerParameters or a dict with a 'url' (and "
                f"optionally 'transport', 'headers', 'timeout'); got {params!r}."
            )
        transport = params.get("transport", "streamable-http")
        headers = params.get("headers")
        timeout = params.get("timeout")
        if transport == "streamable-http":
            if not headers and timeout is None:
                return params["url"]
            from mcp.client.streamable_http import streamable_http_client
            from mcp.shared._httpx_utils import create_mcp_http_client

            http = create_mcp_http_client(headers=headers, timeout=_http_timeout(timeout))
            return _OwnedTransport(streamable_http_client(params["url"], http_client=http), http)
        if transport == "sse":
            from mcp.client.sse import sse_client

            extra = {"timeout": float(timeout)} if timeout is not None else {}
            return sse_client(params["url"], headers=headers, **extra)
        raise ValueError(f"Unknown MCP transport {transport!r}; use 'streamable-http' or 'sse'.")

    async def _hold(self, ready: asyncio.Future[Any]) -> None:
        mcp = _import_mcp()
        try:
            async with mcp.Client(self._target(), read_timeout_seconds=self.read_timeout, mode="legacy") as client:
                ready.set_result(client)
                assert self._stop is not None
                await self._stop.wait()
        except BaseException as exc:  # the transport failed: reported to whoever waits, then to the next call
            if not ready.done():
                ready.set_exception(exc)
            if isinstance(exc, asyncio.CancelledError):
                raise
        finally:
            self.client = None

    async def ensure(self) -> Any:
        """The live client, connecting (again) when needed. Runs on the MCP loop."""
        if self.closed:
            raise MCPServerError(f"The MCP client for {self.label} is closed; create a new one.")
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            if self.client is not None and self._holder is not None and not self._holder.done():
                return self.client
            await self._drop()
            ready: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
            self._stop = asyncio.Event()
            self._holder = asyncio.create_task(self._hold(ready))
            try:
                self.client = await ready
            except Exception as exc:
                await self._drop()
                raise MCPServerError(f"Could not connect to the MCP server {self.label}: {_reason(exc)}") from exc
            return self.client

    async def _drop(self) -> None:
        holder, self._holder = self._holder, None
        self.client = None
        if holder is None:
            return
        if self._stop is not None:
            self._stop.set()
        try:
            await asyncio.wait_for(asyncio.shield(holder), 10)
        except BaseException:  # noqa: BLE001 - a transport that fails while closing is already gone
            holder.cancel()

    async def call(self, name: str, arguments: dict[str, Any]) -> Any:
        client = await self.ensure()
        try:
            return await client.call_tool(name, arguments)
        except Exception as exc:
            if _is_connection_error(exc):
                await self._drop()
                raise MCPServerError(
                    f"The MCP server {self.label} stopped answering ({_reason(exc)}) during a call to "
                    f"'{name}'; the next call reconnects to it."
                ) from exc
            raise

    async def list_tools(self) -> list[Any]:
        client = await self.ensure()
        tools: list[Any] = []
        cursor = None
        while True:
            page = await client.list_tools(cursor=cursor)
            tools.extend(page.tools)
            cursor = page.next_cursor
            if not cursor:
                return tools

    async def close(self) -> None:
        self.closed = True
        await self._drop()


class _OwnedTransport:
    """A transport context that also closes the httpx2 client made for it."""

    def __init__(self, transport: Any, http: Any):
        self._transport, self._http = transport, http

    async def __aenter__(self) -> Any:
        await self._http.__aenter__()
        return await self._transport.__aenter__()

    async def __aexit__(self, *exc: Any) -> Any:
        try:
            return await self._transport.__aexit__(*exc)
        finally:
            await self._http.__aexit__(None, None, None)


def _http_timeout(timeout: Any) -> Any:
    if timeout is None:
        return None
    import httpx2

    return httpx2.Timeout(float(timeout), read=max(float(timeout), 300.0))


def _is_connection_error(exc: BaseException) -> bool:
    from mcp.shared.exceptions import MCPError

    if isinstance(exc, MCPError):
        return exc.error.code == -32000 or "closed" in str(exc).lower()
    name = type(exc).__name__
    return isinstance(exc, OSError | EOFError) or name in (
        "ClosedResourceError", "BrokenResourceError", "EndOfStream", "ConnectError", "RemoteProtocolError",
        "ReadError",
    )


def _reason(exc: BaseException) -> str:
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


class MCPTool(Tool):
    """One tool of an MCP server. Calls are async and go to the server's connection."""

    blocking = False

    def __init__(self, connection: _Connection, spec: Any, structured_output: bool = True):
        super().__init__()
        self._connection = connection
        self.name = spec.name if is_valid_name(spec.name) else _safe_name(spec.name)
        self.remote_name = spec.name
        self.description = spec.description or f"The MCP tool '{spec.name}'."
        self.inputs, self._optional = inputs_from_schema(spec.input_schema)
        self._structured = structured_output
        if structured_output:
            self.output_type, self.output_schema, self._unwrap = output_from_schema(spec.output_schema)
        else:
            self.output_type, self.output_schema, self._unwrap = "string", None, False
        self.is_initialized = True

    def _check_definition(self) -> None:
        check_definition(self, None, owner=self.name)  # forward takes **kwargs: the inputs are the schema

    def _plan(self) -> _CallPlan:
        return _CallPlan(None, tuple(self.inputs), self._optional, (), True)

    async def forward(self, **kwargs: Any) -> Any:
        # A None for an optional input whose schema does not admit null means "not given".
        arguments = {
            k: v for k, v in kwargs.items() if v is not None or k not in self._optional or _admits_null(self.inputs[k])
        }
        result = await _on_mcp_loop(self._connection.call(self.remote_name, arguments))
        return convert_result(result, structured=self._structured, unwrap=self._unwrap)


def _admits_null(schema: dict[str, Any]) -> bool:
    return schema.get("type") == "null" or any(b.get("type") == "null" for b in schema.get("anyOf", []))


def _safe_name(name: str) -> str:
    text = "".join(c if c.isalnum() or c == "_" else "_" for c in name)
    return text if text.isidentifier() and is_valid_name(text) else f"tool_{text}"


class MCPClient:
    """Connects to one or several MCP servers and exposes their tools (smolagents' ``MCPClient``).

    ``with MCPClient(params) as tools:`` gives the list of tools and disconnects at the end; or call
    ``connect()``/``get_tools()``/``disconnect()`` yourself, or ``async with`` for the async form.
    ``structured_output`` (default True): tools with an output schema return its structured content as a
    dict (a scalar wrapped by the Python SDK as ``{"result": x}`` returns ``x``); False returns text.
    """

    def __init__(
        self,
        server_parameters: Any,
        adapter_kwargs: dict[str, Any] | None = None,
        structured_output: bool | None = None,
        *,
        read_timeout: float | None = None,
        connect: bool = True,
    ):
        params = server_parameters if isinstance(server_parameters, list) else [server_parameters]
        if not params:
            raise ValueError("MCPClient needs at least one server.")
        _import_mcp()
        self._adapter_kwargs = dict(adapter_kwargs or {})
        self.structured_output = True if structured_output is None else bool(structured_output)
        self._connections = [_Connection(p, read_timeout) for p in params]
        self._tools: list[Tool] | None = None
        if connect:
            self.connect()

    async def aconnect(self) -> list[Tool]:
        if self._tools is None:
            tools: list[Tool] = []
            seen: dict[str, str] = {}
            try:
                for conn in self._connections:
                    specs = await _on_mcp_loop(conn.list_tools())
                    for spec in specs:
                        item = MCPTool(conn, spec, self.structured_output)
                        if item.name in seen:
                            raise ToolDefinitionError(
                                f"Two MCP servers offer a tool named '{item.name}' ({seen[item.name]} and "
                                f"{conn.label}); connect them with separate MCPClients and rename one."
                            )
                        seen[item.name] = conn.label
                        tools.append(item)
            except BaseException:
                await self.adisconnect()
                raise
            self._tools = tools
        return self._tools

    def connect(self) -> None:
        run_sync_private(self.aconnect())

    def get_tools(self) -> list[Tool]:
        if self._tools is None:
            raise ValueError("This MCPClient is not connected; call connect() or use it in a with statement.")
        return self._tools

    async def adisconnect(self) -> None:
        for conn in self._connections:
            await _on_mcp_loop(conn.close())

    def disconnect(self, exc_type: Any = None, exc_value: Any = None, exc_traceback: Any = None) -> None:
        run_sync_private(self.adisconnect())

    def __enter__(self) -> list[Tool]:
        if self._tools is None:
            self.connect()
        return self.get_tools()

    def __exit__(self, *exc: Any) -> None:
        self.disconnect(*exc)

    async def __aenter__(self) -> list[Tool]:
        return await self.aconnect()

    async def __aexit__(self, *exc: Any) -> None:
        await self.adisconnect()
