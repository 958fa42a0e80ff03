"""The package surface: the names smolagents users import exist, and importing codeloop stays light."""

from __future__ import annotations

import subprocess
import sys

import codeloop

FOUNDATION_NAMES = [
    "tool", "Tool", "ToolCollection", "FinalAnswerTool", "UserInputTool", "OpenAIModel",
    "OpenAIServerModel", "AzureOpenAIModel", "ChatMessage", "MessageRole", "TokenUsage",
]


def test_every_exported_name_resolves():
    for name in codeloop.__all__:
        assert getattr(codeloop, name) is not None, name


def test_foundation_names_import():
    ns: dict = {}
    exec(f"from codeloop import {', '.join(FOUNDATION_NAMES)}", ns)
    assert all(name in ns for name in FOUNDATION_NAMES)
    assert codeloop.OpenAIServerModel is codeloop.OpenAIModel


def test_unknown_name_is_attribute_error():
    try:
        codeloop.NotAThing  # noqa: B018
    except AttributeError as e:
        assert "NotAThing" in str(e)
    else:
        raise AssertionError("expected AttributeError")


def test_import_does_not_pull_heavy_dependencies():
    code = (
        "import sys, codeloop; "
        "heavy = [m for m in ('openai', 'httpx', 'pydantic', 'jinja2', 'rich', 'yaml', 'numpy') if m in sys.modules]; "
        "print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == ""
