"""Tools and agents in smolagents' folder format: a fixture saved by smolagents 1.26, round trips through
folders, and the Hub through the real huggingface_hub client against codeloop.testing.HubServer."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from codeloop import CodeAgent, Tool, ToolCallingAgent, load_tool
from codeloop.agents import LogLevel
from codeloop.models.scripted import ScriptedModel
from codeloop.testing.hub_server import HubServer

FIXTURES = Path(__file__).parent / "fixtures"
SMOL = FIXTURES / "smolagents_1_26"
sys.path.insert(0, str(FIXTURES))

from sharing_tools import CountVowels, make_agent, shout  # noqa: E402


def test_tools_saved_by_smolagents_load_with_trust_remote_code():
    with pytest.raises(ValueError, match="trust_remote_code=True"):
        Tool.from_folder(SMOL / "tool_word_count")
    words = Tool.from_folder(SMOL / "tool_word_count", trust_remote_code=True)
    assert words.name == "word_count" and words.output_type == "integer"
    assert words(text="a b a") == 3 and words(text="a b a", unique=True) == 2
    reverse = load_tool(str(SMOL / "tool_reverse"), trust_remote_code=True)
    assert reverse("abc") == "cba" and type(reverse).__name__ == "ReverseTool"
    with pytest.raises(FileNotFoundError, match="No nope.py"):
        Tool.from_folder(SMOL / "tool_reverse", tool_file_name="nope", trust_remote_code=True)


def test_agent_saved_by_smolagents_loads_and_runs(monkeypatch):
    agent = CodeAgent.from_folder(
        SMOL / "agent_counter",
        model=ScriptedModel(["<code>final_answer(reverse_text(text='abc') + str(word_count(text='x y')))</code>"]),
        verbosity_level=LogLevel.OFF,
        executor_type="inprocess",
    )
    assert sorted(agent.tools) == ["final_answer", "reverse_text", "word_count"]
    assert agent.max_steps == 7 and agent.name == "counter" and agent.description == "Counts and reverses words."
    assert "json" in agent.authorized_imports
    assert "def word_count(text: str, unique: bool = False) -> int" in agent.system_prompt
    assert agent.run("go") == "cba2"
    monkeypatch.setenv("HF_TOKEN", "hf_test")  # the saved model is built, not called
    with_model = CodeAgent.from_folder(SMOL / "agent_counter", verbosity_level=LogLevel.OFF)
    assert type(with_model.model).__name__ == "InferenceClientModel"
    assert with_model.model.model_id == "Qwen/Qwen2.5-Coder-32B-Instruct"


def test_tool_save_writes_smolagents_layout_and_loads_back(tmp_path):
    shout.save(tmp_path / "shout")
    files = sorted(p.name for p in (tmp_path / "shout").iterdir())
    assert files == ["app.py", "requirements.txt", "tool.py"]
    code = (tmp_path / "shout" / "tool.py").read_text()
    assert "class SimpleTool(Tool):" in code and "def forward(self, text: str, times: int = 1) -> str:" in code
    assert "from smolagents import Tool" in code and "from codeloop import Tool" in code
    assert "from tool import SimpleTool" in (tmp_path / "shout" / "app.py").read_text()
    assert (tmp_path / "shout" / "requirements.txt").read_text().split() == ["smolagents"]
    again = Tool.from_folder(tmp_path / "shout", trust_remote_code=True)
    assert again(text="hi", times=2) == "HI HI" and again.inputs == shout.inputs

    CountVowels().save(tmp_path / "vowels", tool_file_name="vowels", make_gradio_app=False)
    assert sorted(p.name for p in (tmp_path / "vowels").iterdir()) == ["vowels.py"]
    vowels = Tool.from_folder(tmp_path / "vowels", tool_file_name="vowels", trust_remote_code=True)
    assert vowels("education") == 5


def test_agent_save_and_from_folder_round_trip_with_managed_agent(tmp_path):
    agent = make_agent()
    agent.save(tmp_path / "a")
    root = tmp_path / "a"
    assert {"agent.json", "prompts.yaml", "tools", "managed_agents", "app.py", "requirements.txt"} <= {
        p.name for p in root.iterdir()
    }
    data = json.loads((root / "agent.json").read_text())
    assert data["class"] == "CodeAgent" and data["tools"] == ["shout", "count_vowels"]
    assert data["model"] == {"class": "ScriptedModel", "data": data["model"]["data"]}
    assert data["managed_agents"] == {"vowel_helper": "CodeAgent"} and data["max_steps"] == 6
    assert (root / "managed_agents" / "vowel_helper" / "tools" / "count_vowels.py").is_file()
    loaded = CodeAgent.from_folder(root, model=ScriptedModel(["<code>final_answer(shout('a', times=3))</code>"]),
                                   executor_type="inprocess")
    assert loaded.run("x") == "A A A"
    assert list(loaded.managed_agents) == ["vowel_helper"] and "json" in loaded.authorized_imports
    assert loaded.prompt_templates["system_prompt"] == agent.prompt_templates["system_prompt"]


def test_tool_calling_agent_round_trip(tmp_path):
    agent = ToolCallingAgent(tools=[shout], model=ScriptedModel(["x"]), name="caller", description="Calls.")
    agent.save(tmp_path)
    again = ToolCallingAgent.from_folder(tmp_path, model=ScriptedModel(["x"]))
    assert list(again.tools) == ["shout", "final_answer"] or sorted(again.tools) == ["final_answer", "shout"]
    assert again.name == "caller"


def test_hub_push_and_load_through_huggingface_hub(tmp_path):
    with HubServer(token="tok") as hub:
        hub.add_collection("me/tools-1", [("space", "me/shout"), ("model", "me/other"), ("space", "me/vowels")])
        env = {
            **os.environ,
            "HF_ENDPOINT": hub.endpoint,
            "HF_HUB_OFFLINE": "0",
            "HF_HOME": str(tmp_path / "hf"),
            "HF_HUB_DISABLE_TELEMETRY": "1",
            "PYTHONPATH": str(FIXTURES),
        }
        proc = subprocess.run(
            [sys.executable, str(FIXTURES / "hub_client_script.py")],
            env=env, capture_output=True, text=True, timeout=120,
        )
        assert proc.returncode == 0, proc.stderr[-3000:]
        out = json.loads(proc.stdout.strip().splitlines()[-1])
        assert hub.unknown == []
        space = hub.repos[("space", "me/shout")]
        assert sorted(space.files) == [".gitattributes", "README.md", "app.py", "requirements.txt", "tool.py"]
        # tags went through huggingface_hub.metadata_update: the Hub's card kept, tags added, checked by the server
        card = yaml.safe_load(space.files["README.md"].decode().split("---")[1])
        assert card["tags"] == ["smolagents", "codeloop", "tool"] and card["sdk"] == "gradio"
        assert "POST /api/validate-yaml" in hub.requests
        agent_card = yaml.safe_load(hub.repos[("space", "me/shouter")].files["README.md"].decode().split("---")[1])
        assert agent_card["tags"] == ["smolagents", "codeloop", "agent"]
        vowels_card = yaml.safe_load(hub.repos[("space", "me/vowels")].files["README.md"].decode().split("---")[1])
        assert vowels_card["tags"] == ["mine", "smolagents", "codeloop", "tool"]  # a user's own tags are kept
        assert space.sdk == "gradio" and b"class SimpleTool(Tool)" in space.files["tool.py"]
        assert "trust_remote_code=True" in out["untrusted"]
        assert out["shout"] == "HEY HEY HEY" and out["vowels"] == 5
        assert out["collection"] == ["shout", "count_vowels"]
        agent_files = sorted(hub.repos[("space", "me/shouter")].files)
        assert "agent.json" in agent_files and "tools/shout.py" in agent_files
        assert "managed_agents/vowel_helper/agent.json" in agent_files
        assert out["agent_tools"] == ["count_vowels", "final_answer", "shout"]
        assert out["agent_managed"] == ["vowel_helper"] and out["agent_answer"] == "YO3"
        assert out["push_tool"].startswith(hub.endpoint + "/spaces/me/shout/commit/")
