"""Fixtures for smolagents' own tests, written for codeloop's compatibility tier.

smolagents' source distribution ships its test files without their conftest and fixture modules; these
are our equivalents, written against the public API only (``smolagents`` resolves to codeloop through the
alias in ``alias.py``, or to smolagents itself when the tier measures smolagents' own pass count).
"""

from __future__ import annotations

import pytest
from PIL import Image
from smolagents.agents import MultiStepAgent
from smolagents.monitoring import LogLevel
from smolagents.tools import Tool, tool

_original_init = MultiStepAgent.__init__


@pytest.fixture(autouse=True)
def _quiet_agents(monkeypatch):
    """Agents log nothing by default in the suite (tests that want logs pass verbosity_level)."""

    def init(self, *args, verbosity_level=LogLevel.OFF, **kwargs):
        _original_init(self, *args, verbosity_level=verbosity_level, **kwargs)

    monkeypatch.setattr(MultiStepAgent, "__init__", init)


@pytest.fixture
def shared_datadir(tmp_path):
    """A folder holding the one image the tests open, drawn here instead of shipped."""
    Image.new("RGB", (64, 48), (200, 30, 30)).save(tmp_path / "000000039769.png")
    return tmp_path


@pytest.fixture
def test_tool():
    class EchoTool(Tool):
        name = "test_tool"
        description = "Returns what it is given."
        inputs = {"input": {"type": "string", "description": "Any text"}}
        output_type = "string"

        def forward(self, input):
            return "Processed: " + input

    return EchoTool()


@pytest.fixture
def example_tool():
    @tool
    def valid_tool_function(input: str) -> str:
        """A tool that upper-cases its input.

        Args:
            input: The text to upper-case.
        """
        return input.upper()

    return valid_tool_function


@pytest.fixture
def boolean_default_tool_class():
    class BooleanDefaultTool(Tool):
        name = "boolean_default_tool"
        description = "Formats a text and a flag"
        inputs = {
            "text": {"type": "string", "description": "The text"},
            "flag": {"type": "boolean", "description": "A flag, false unless given", "nullable": True},
        }
        output_type = "string"

        def forward(self, text: str, flag: bool = False) -> str:
            return f"{text} {flag}"

    return BooleanDefaultTool()


@pytest.fixture
def boolean_default_tool_function():
    @tool
    def boolean_default_tool(text: str, flag: bool = False) -> str:
        """Formats a text and a flag.

        Args:
            text: The text.
            flag: A flag, false unless given.
        """
        return f"{text} {flag}"

    return boolean_default_tool


@pytest.fixture
def optional_input_tool_class():
    class OptionalInputTool(Tool):
        name = "optional_input_tool"
        description = "Joins a text and an optional text"
        inputs = {
            "required_text": {"type": "string", "description": "The text"},
            "optional_text": {"type": "string", "description": "More text, if any", "nullable": True},
        }
        output_type = "string"

        def forward(self, required_text: str, optional_text: str | None = None) -> str:
            return required_text + (optional_text or "")

    return OptionalInputTool()


@pytest.fixture
def optional_input_tool_function():
    @tool
    def optional_input_tool(required_text: str, optional_text: str | None = None) -> str:
        """Joins a text and an optional text.

        Args:
            required_text: The text.
            optional_text: More text, if any.
        """
        return required_text + (optional_text or "")

    return optional_input_tool


def _tool(name: str, description: str, inputs: dict, output_type: str) -> Tool:
    cls = type(
        name.title().replace("_", ""),
        (Tool,),
        {
            "name": name,
            "description": description,
            "inputs": inputs,
            "output_type": output_type,
            "forward": lambda self, *args, **kwargs: None,
            "skip_forward_signature_validation": True,
        },
    )
    return cls()


@pytest.fixture
def no_input_tool():
    return _tool("no_input_tool", "Tool with no inputs", {}, "string")


@pytest.fixture
def single_input_tool():
    return _tool("single_input_tool", "Tool with one input", {"text": {"type": "string", "description": "Input text"}}, "string")


@pytest.fixture
def multi_input_tool():
    inputs = {
        "text": {"type": "string", "description": "Text input"},
        "count": {"type": "integer", "description": "Number count"},
    }
    return _tool("multi_input_tool", "Tool with multiple inputs", inputs, "object")


@pytest.fixture
def multiline_description_tool():
    inputs = {"input": {"type": "string", "description": "Some input"}}
    return _tool("multiline_description_tool", "This is a tool with\nmultiple lines\nin the description", inputs, "string")
