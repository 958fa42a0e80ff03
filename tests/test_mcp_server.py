"""``codeloop mcp serve`` tested with the real mcp client over stdio and streamable HTTP."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("mcp")

from mcp import Client, StdioServerParameters  # noqa: E402

from codeloop import MCPClient  # noqa: E402
from codeloop.cli import main  # noqa: E402
from codeloop.tools.mcp_convert import MCPToolError  # noqa: E402

FIXTURES = str(Path(__file__).parent / "fixtures")
SERVE = ["-m", "codeloop.cli", "mcp", "serve", "--tools", "mcp_served:TOOLS", "--agent", "mcp_served:make_agent"]
ENV = {"PYTHONPATH": FIXTURES}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_stdio_server_tools_errors_structured_output_and_agent_progress():
    params = StdioServerParameters(command=sys.executable, args=SERVE, env=ENV)
    async with Client(params) as client:
        listed = {t.name: t for t in (await client.list_tools()).tools}
        assert set(listed) == {"multiply", "forecast", "fail", "calculator"}
        assert listed["multiply"].input_schema["required"] == ["a", "b"]
        assert listed["forecast"].output_schema["properties"]["high"]["type"] == "integer"
        assert listed["calculator"].description == "An agent that multiplies numbers."

        result = await client.call_tool("multiply", {"a": 3, "b": 4})
        assert not result.is_error and result.content[0].text == "12"
        result = await client.call_tool("forecast", {"city": "Oslo", "days": 2})
        assert result.structured_content == {"city": "Oslo", "high": 22}
        result = await client.call_tool("fail", {"reason": "no"})
        assert result.is_error and "refused: no" in result.content[0].text
        result = await client.call_tool("multiply", {"a": "x", "b": 1})
        assert result.is_error and "a: expected integer" in result.content[0].text

        progress: list[tuple[float, float | None, str | None]] = []

        async def on_progress(done: float, total: float | None, message: str | None) -> None:
            progress.append((done, total, message))

        result = await client.call_tool("calculator", {"task": "What is 6*7?"}, progress_callback=on_progress)
        assert not result.is_error and result.content[0].text == "answer=42"
        assert [p[0] for p in progress] == [1, 2]
        assert "42" in progress[0][2]


def test_http_server_round_trip_with_codeloop_mcp_client():
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, *SERVE, "--transport", "streamable-http", "--port", str(port)],
        env={**os.environ, **ENV},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                assert time.monotonic() < deadline and proc.poll() is None, "server did not start"
                time.sleep(0.05)
        with MCPClient({"url": f"http://127.0.0.1:{port}/mcp"}) as tools:
            by_name = {t.name: t for t in tools}
            assert by_name["multiply"](a=5, b=5) == "25" or by_name["multiply"](a=5, b=5) == 25
            assert by_name["forecast"](city="Rome") == {"city": "Rome", "high": 21}
            with pytest.raises(MCPToolError, match="refused: why"):
                by_name["fail"](reason="why")
            assert by_name["calculator"](task="6*7?") == "answer=42"
    finally:
        proc.terminate()
        proc.wait(10)


def test_serve_with_nothing_to_serve_exits_2(capsys):
    assert main(["mcp", "serve"]) == 2
    assert "nothing to serve" in capsys.readouterr().err
    assert main(["mcp", "serve", "--agent", "no_such_module_xyz:agent"]) == 2
