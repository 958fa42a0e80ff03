"""smolagents 1.26.0 itself (in .venv-smolagents, without codeloop) loads and runs tools and agents that
codeloop saved to folders and pushed to the loopback Hub; codeloop loads a tool smolagents pushed there.

Run by scripts/test-smolagents-interop.sh (part of ./test.sh), which creates that environment and names its
interpreter in CODELOOP_SMOLAGENTS_PYTHON.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from codeloop import CodeAgent
from codeloop.agents import LogLevel
from codeloop.models import OpenAIModel
from codeloop.testing.hub_server import HubServer
from codeloop.testing.server import OpenAICompatibleServer

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE.parent / "tests" / "fixtures"))

from sharing_tools import CountVowels, shout  # noqa: E402


@pytest.fixture(scope="module")
def smolagents_python() -> str:
    python = os.environ.get("CODELOOP_SMOLAGENTS_PYTHON")
    if not python or not Path(python).is_file():
        pytest.fail("Run these tests with scripts/test-smolagents-interop.sh: it installs smolagents 1.26.0 "
                    "into .venv-smolagents and sets CODELOOP_SMOLAGENTS_PYTHON.")
    return python


def _agent(api_base: str) -> CodeAgent:
    model = OpenAIModel("scripted-model", api_base=api_base, api_key="not-used")
    helper = CodeAgent(tools=[CountVowels()], model=model, name="vowel_helper", description="Counts vowels.",
                       verbosity_level=LogLevel.OFF)
    return CodeAgent(tools=[shout, CountVowels()], model=model, managed_agents=[helper], max_steps=5,
                     name="shouter", description="Shouts texts.", verbosity_level=LogLevel.OFF)


def test_smolagents_loads_and_runs_what_codeloop_saved(tmp_path, smolagents_python):
    replies = [
        # the manager, step 1: its tool and its managed agent, both loaded by smolagents from codeloop's folder
        "Thought: shout, then ask the helper.\n<code>\nloud = shout(text='yo', times=2)\n"
        "report = vowel_helper(task='Count the vowels of banana.')\nprint(loud, '|', report)\n</code>",
        "<code>\nfinal_answer(count_vowels(text='banana'))\n</code>",  # the helper's only step
        "<code>\nfinal_answer(loud + ' / ' + report.split()[-1])\n</code>",  # the manager, step 2
        "<code>\nfinal_answer(count_vowels(text='education') * 10)\n</code>",  # the agent from the Hub
    ]
    with OpenAICompatibleServer(replies=replies) as llm, HubServer(token="tok") as hub:
        shout.save(tmp_path / "shout")
        CountVowels().save(tmp_path / "vowels")
        agent = _agent(llm.base_url)
        agent.save(tmp_path / "agent")
        hub_env = {"HF_ENDPOINT": hub.endpoint, "HF_HUB_OFFLINE": "0", "HF_HOME": str(tmp_path / "hf"),
                   "HF_HUB_DISABLE_TELEMETRY": "1"}
        # codeloop pushes with the real huggingface_hub client, as a user would (HF_ENDPOINT is read at import)
        _codeloop(hub_env, "from sharing_tools import shout; from test_smolagents_loads_codeloop import _agent; "
                  "shout.push_to_hub('me/shout', token='tok'); _agent(sys.argv[1]).push_to_hub('me/shouter', token='tok')",
                  llm.base_url)
        args = {"shout_dir": str(tmp_path / "shout"), "vowels_dir": str(tmp_path / "vowels"),
                "agent_dir": str(tmp_path / "agent")}
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
        env.update(hub_env, OPENAI_API_KEY="not-used")
        proc = subprocess.run([smolagents_python, str(HERE / "smolagents_side.py"), json.dumps(args)],
                              env=env, capture_output=True, text=True, timeout=180, cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr[-4000:]
        out = json.loads(proc.stdout.strip().splitlines()[-1])

        assert out["version"] == "1.26.0" and out["tool_classes"] == [True, True]
        assert out["shout"] == "HEY HEY HEY" and out["vowels"] == 5
        assert out["shout_inputs"]["times"] == {"type": "integer", "description": "how many times to repeat it",
                                                "nullable": True}
        assert out["agent_tools"] == ["count_vowels", "final_answer", "shout"]
        assert out["agent_managed"] == ["vowel_helper"]
        assert out["agent_model"] == ["OpenAIModel", "scripted-model"]  # codeloop's model entry, read by smolagents
        assert out["agent_answer"] == "YO YO / 3"
        assert out["app_agent"] == ["CodeAgent", ["count_vowels", "final_answer", "shout"], ["vowel_helper"], 5, True,
                                    "OpenAIModel"]
        assert out["hub_shout"] == "HUB HUB" and out["hub_agent_answer"] == 50
        # every model call went to the loopback server, with the saved model id
        assert [r["json"]["model"] for r in llm.chat_requests] == ["scripted-model"] * 4
        assert hub.unknown == []

        # smolagents' push (create_repo, metadata_update, upload_folder) against the same Hub; codeloop loads it
        space = hub.repos[("space", "me/smol-reverse")]
        card = yaml.safe_load(space.files["README.md"].decode().split("---")[1])
        assert card["tags"] == ["smolagents", "tool"]
        loaded = _codeloop(hub_env, "from codeloop import Tool; t = Tool.from_hub('me/smol-reverse', token='tok', "
                           "trust_remote_code=True); print(type(t).__mro__[1].__module__, t(text='abc'))")
        assert loaded.split() == ["codeloop.tools.base", "cba"]  # a codeloop Tool, built from smolagents' push


def _codeloop(env: dict[str, str], code: str, *args: str) -> str:
    """Runs ``code`` with codeloop's interpreter and ``env`` added; returns its stdout."""
    paths = os.pathsep.join([str(HERE), str(HERE.parent / "tests" / "fixtures")])
    proc = subprocess.run([sys.executable, "-c", f"import sys\n{code}", *args], capture_output=True, text=True,
                          env={**os.environ, **env, "PYTHONPATH": paths}, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout.strip()

