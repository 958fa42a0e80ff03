"""MCP client against real MCP servers written with the mcp SDK, over stdio, streamable HTTP and SSE."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("mcp")  # the test extra installs it; this only guards a bare install

from mcp import StdioServerParameters  # noqa: E402

from codeloop import AgentAudio, AgentImage, CodeAgent, MCPClient, ToolCollection  # noqa: E402
from codeloop.agents import LogLevel  # noqa: E402
from codeloop.errors import ToolDefinitionError  # noqa: E402
from codeloop.memory import ActionStep  # noqa: E402
from codeloop.models.scripted import ScriptedModel  # noqa: E402
from codeloop.tools.mcp_client import MCPServerError, MCPToolError  # noqa: E402
from codeloop.tools.mcp_convert import inputs_from_schema, output_from_schema  # noqa: E402

SERVER = str(Path(__file__).parent / "fixtures" / "mcp_demo_server.py")


def stdio_params(prefix: str = "") -> StdioServerParameters:
    return StdioServerParameters(command=sys.executable, args=[SERVER, "stdio"], env={"MCP_DEMO_PREFIX": prefix})


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_http(mode: str, port: int, prefix: str = "") -> subprocess.Popen:
    env = {**os.environ, "MCP_DEMO_PREFIX": prefix}
    proc = subprocess.Popen(
        [sys.executable, SERVER, mode, str(port)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return proc
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError(f"MCP {mode} server did not start on port {port}")


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def demo_children() -> list[int]:
    """Processes started from this test process that run the demo server."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmd = (entry / "cmdline").read_bytes()
            stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if SERVER.encode() in cmd and int(stat[1]) == os.getpid() and stat[0] != "Z":
            found.append(int(entry.name))
    return found


@pytest.fixture
def http_server():
    port = free_port()
    proc = start_http("http", port, prefix="h_")
    yield port, proc
    stop(proc)


def test_schema_conversion_refs_anyof_nullable_enums_and_outputs():
    schema = {
        "type": "object",
        "$defs": {
            "Color": {"enum": ["red", "blue"], "type": "string", "title": "Color"},
            "Point": {
                "type": "object",
                "properties": {"x": {"type": "number", "description": "X"}, "y": {"type": "number"}},
                "required": ["x", "y"],
            },
        },
        "properties": {
            "point": {"$ref": "#/$defs/Point", "description": "Where"},
            "color": {"$ref": "#/$defs/Color", "default": "red"},
            "title": {"anyOf": [{"type": "string"}, {"type": "null"}], "title": "Title"},
            "tags": {"type": ["array", "null"], "items": {"type": "string"}},
            "either": {"anyOf": [{"type": "integer"}, {"type": "string"}]},
        },
        "required": ["point", "title", "either"],
    }
    inputs, optional = inputs_from_schema(schema)
    assert inputs["point"]["type"] == "object" and inputs["point"]["properties"]["x"]["type"] == "number"
    assert inputs["point"]["description"] == "Where"
    assert inputs["color"] == {"enum": ["red", "blue"], "type": "string", "description": 'Color (default: "red")',
                               "nullable": True}
    assert inputs["title"] == {"type": "string", "nullable": True, "description": "Title"}
    assert inputs["tags"]["type"] == "array" and inputs["tags"]["nullable"] is True
    assert inputs["either"]["anyOf"] == [{"type": "integer"}, {"type": "string"}]
    assert optional == {"color", "tags"}
    wrapped = {"type": "object", "title": "addOutput", "properties": {"result": {"type": "integer"}},
               "required": ["result"]}
    assert output_from_schema(wrapped) == ("integer", None, True)
    obj = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
    assert output_from_schema(obj) == ("object", obj, False)
    assert output_from_schema(None) == ("any", None, False)
    with pytest.raises(ValueError, match="non-local"):
        inputs_from_schema({"properties": {"a": {"$ref": "http://x/schema"}}})


def test_from_mcp_needs_trust_remote_code():
    with pytest.raises(ValueError, match="trust_remote_code=True"):
        with ToolCollection.from_mcp(stdio_params()):
            pass


def test_stdio_tools_values_errors_and_cleanup():
    with ToolCollection.from_mcp(stdio_params(), trust_remote_code=True) as tc:
        assert {"add", "greet", "norm", "weather", "pixel", "beep", "broken"} <= set(tc.names)
        add, weather = tc["add"], tc["weather"]
        assert add(1, 2) == 3 and add(a=5, b=6) == 11
        assert add.output_type == "integer" and "def add(a: int, b: int) -> int" in add.to_code_prompt()
        report = weather(city="Rome")
        assert report == {"city": "Rome", "temperature": 21.5, "unit": "celsius"}
        assert weather.output_type == "object" and weather.output_schema["properties"]["city"]["type"] == "string"
        assert tc["greet"]("Ann") == "Hello, Ann!"
        assert tc["greet"](name="Bo", title="Dr", style="loud") == "HELLO, DR BO!"
        assert tc["norm"](point={"x": 3, "y": 4}, color="blue") == "blue:5.0"
        with pytest.raises(Exception, match="not one of the allowed values"):
            tc["greet"](name="x", style="whisper")
        image = tc["pixel"]()
        assert isinstance(image, AgentImage) and image.size == (1, 1) and image.getpixel((0, 0)) == (255, 0, 0)
        assert Path(image.to_string()).read_bytes()[:4] == b"\x89PNG"
        audio = tc["beep"]()
        assert isinstance(audio, AgentAudio) and audio.samplerate == 8000 and len(audio.to_raw()) == 80
        with pytest.raises(MCPToolError, match="cannot do it: because"):
            tc["broken"](reason="because")
        assert len(demo_children()) == 1
    assert demo_children() == []


def test_dead_stdio_server_is_reported_and_reconnected():
    with MCPClient(stdio_params()) as tools:
        by_name = {t.name: t for t in tools}
        first = by_name["whoami"]()
        with pytest.raises(MCPServerError, match="stopped answering.*next call reconnects"):
            by_name["crash"]()
        second = by_name["whoami"]()
        assert first != second and second.startswith("demo:")
        assert by_name["add"](2, 2) == 4
    assert demo_children() == []


def test_several_servers_http_sse_and_stdio_at_once(http_server):
    port, _ = http_server
    sse_port = free_port()
    sse = start_http("sse", sse_port, prefix="s_")
    try:
        servers = [
            stdio_params(),
            {"url": f"http://127.0.0.1:{port}/mcp", "transport": "streamable-http", "headers": {"X-Test": "1"}},
            {"url": f"http://127.0.0.1:{sse_port}/sse", "transport": "sse"},
        ]
        with ToolCollection.from_mcp(servers, trust_remote_code=True) as tc:
            assert tc["add"](1, 1) == 2 and tc["h_add"](2, 2) == 4 and tc["s_add"](3, 3) == 6
            assert tc["h_weather"](city="Oslo")["city"] == "Oslo"
            assert isinstance(tc["s_pixel"](), AgentImage)
        assert demo_children() == [_.pid, sse.pid] or set(demo_children()) == {_.pid, sse.pid}
    finally:
        stop(sse)


def test_duplicate_tool_names_across_servers_are_refused():
    with pytest.raises(ToolDefinitionError, match="Two MCP servers offer a tool named 'add'"):
        MCPClient([stdio_params(), stdio_params()])
    assert demo_children() == []


async def test_async_calls_run_concurrently_without_a_thread_each(http_server):
    import threading

    port, _ = http_server
    async with MCPClient({"url": f"http://127.0.0.1:{port}/mcp"}, connect=False) as tools:
        add = next(t for t in tools if t.name == "h_add")
        before = threading.active_count()
        results = await asyncio.gather(*(add.acall(a=i, b=1) for i in range(30)))
        assert results == list(range(1, 31))
        assert threading.active_count() <= before + 1


def test_dead_http_server_is_reported_then_reconnected():
    port = free_port()
    proc = start_http("http", port)
    try:
        with MCPClient({"url": f"http://127.0.0.1:{port}/mcp"}) as tools:
            add = next(t for t in tools if t.name == "add")
            assert add(1, 2) == 3
            stop(proc)
            with pytest.raises(MCPServerError, match="MCP server http://127.0.0.1"):
                add(1, 2)
            proc = start_http("http", port)
            assert add(4, 5) == 9
    finally:
        stop(proc)


def test_code_agent_calls_mcp_tools_from_code_in_the_isolated_worker():
    reply = (
        "Thought: ask the server.\n<code>\nr = weather(city='Oslo')\ns = add(a=2, b=3)\n"
        "print(r['unit'])\nfinal_answer(r['temperature'] + s)\n</code>"
    )
    with ToolCollection.from_mcp(stdio_params(), trust_remote_code=True) as tc:
        agent = CodeAgent(
            tools=[*tc.tools], model=ScriptedModel([reply]), executor_type="local", verbosity_level=LogLevel.OFF
        )
        result = agent.run("What is the temperature in Oslo plus five?", return_full_result=True)
        assert result.output == 26.5
        steps = [s for s in agent.memory.steps if isinstance(s, ActionStep)]
        assert "celsius" in steps[0].observations
        assert type(agent.last_run.closed_executor).__module__ == "codeloop.executors.worker.host"
        assert "def weather(city: str) -> dict" in agent.system_prompt
