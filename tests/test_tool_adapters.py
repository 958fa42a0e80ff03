"""Tool.from_space (gradio_client against a local Gradio app), Tool.from_gradio, Tool.from_langchain."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Literal

import pytest
from PIL import Image
from pydantic import BaseModel, Field

from codeloop import AgentImage, CodeAgent, Tool
from codeloop.agents import LogLevel
from codeloop.errors import ToolDefinitionError
from codeloop.models.scripted import ScriptedModel

FIXTURES = Path(__file__).parent / "fixtures"


class Box(BaseModel):
    width: int = Field(description="Width in cm")
    height: int = Field(description="Height in cm")


def test_from_langchain_converts_schema_and_calls_async():
    langchain_tools = pytest.importorskip("langchain_core.tools")
    @langchain_tools.tool
    def box_area(box: Box, unit: Literal["cm", "mm"] = "cm", label: str | None = None) -> str:
        """Area of a box."""
        area = box.width * box.height * (100 if unit == "mm" else 1)
        return f"{label or 'box'}: {area} {unit}2"

    wrapped = Tool.from_langchain(box_area)
    assert wrapped.name == "box_area" and wrapped.description.startswith("Area of a box")
    assert wrapped.inputs["box"]["type"] == "object"
    assert wrapped.inputs["box"]["properties"]["width"]["description"] == "Width in cm"
    assert wrapped.inputs["unit"]["enum"] == ["cm", "mm"] and wrapped.inputs["unit"]["nullable"]
    assert wrapped.inputs["label"]["nullable"]
    assert wrapped(box={"width": 2, "height": 3}) == "box: 6 cm2"
    assert wrapped(box={"width": 2, "height": 3}, unit="mm", label="lid") == "lid: 600 mm2"
    with pytest.raises(Exception, match="not one of the allowed values"):
        wrapped(box={"width": 1, "height": 1}, unit="km")
    agent = CodeAgent(
        tools=[wrapped], model=ScriptedModel(["<code>final_answer(box_area(box={'width': 4, 'height': 5}))</code>"]),
        executor_type="inprocess", verbosity_level=LogLevel.OFF,
    )
    assert agent.run("area?") == "box: 20 cm2"
    with pytest.raises(ToolDefinitionError, match="outside service"):
        wrapped.save("/nonexistent")


def test_from_gradio_wraps_gradio_tools_objects():
    class UpperTool:  # the gradio-tools interface: name, description, run(...)
        name = "upper"
        description = "Upper-cases a text."

        def run(self, query: str, repeat: int = 1) -> str:
            return query.upper() * repeat

    wrapped = Tool.from_gradio(UpperTool())
    assert wrapped.inputs == {
        "query": {"type": "string", "description": "query"},
        "repeat": {"type": "integer", "description": "repeat", "nullable": True},
    }
    assert wrapped("ab") == "AB" and wrapped(query="x", repeat=3) == "XXX"


@pytest.fixture(scope="module")
def gradio_url():
    pytest.importorskip("gradio")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_OFFLINE": "1", "NO_PROXY": "127.0.0.1"}
    proc = subprocess.Popen([sys.executable, str(FIXTURES / "gradio_app.py"), str(port)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 90
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise RuntimeError(f"the Gradio app did not start: {proc.stderr.read().decode()[-2000:]}") from None
            time.sleep(0.1)
    yield f"http://127.0.0.1:{port}/"
    proc.terminate()
    proc.wait(15)


def test_from_space_against_a_local_gradio_app(gradio_url, monkeypatch, tmp_path):
    monkeypatch.setenv("GRADIO_ANALYTICS_ENABLED", "False")
    greet = Tool.from_space(gradio_url, "greet", "Greets someone.", api_name="/greet")
    assert set(greet.inputs) == {"name", "excited"} and greet.inputs["excited"]["nullable"]
    assert greet.inputs["name"]["type"] == "string" and greet.inputs["excited"]["type"] == "boolean"
    assert greet(name="Ann") == "Hello Ann." and greet(name="Bo", excited=True) == "Hello Bo!"
    redden = Tool.from_space(gradio_url, "redden", "Makes an image red.", api_name="/redden")
    assert redden.output_type == "image"
    result = redden(image=Image.new("RGB", (3, 2), (0, 0, 255)))
    assert isinstance(result, AgentImage) and result.size == (3, 2)
    red, green, blue = result.getpixel((0, 0))[:3]  # the app sends WebP, which may shift a channel by one
    assert red > 250 and green < 5 and blue < 5
    with pytest.raises(KeyError, match="No API endpoint '/nope'"):
        Tool.from_space(gradio_url, "x", api_name="/nope")
