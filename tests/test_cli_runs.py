"""``codeloop run --store/--approve-tools`` and ``codeloop runs list|show|resume|fork``."""

from __future__ import annotations

import io

import pytest
from test_runs_agents import EFFECTS

from codeloop.cli import main
from codeloop.testing import OpenAICompatibleServer


@pytest.fixture(autouse=True)
def no_model_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("OPENAI_API_KEY", "CODELOOP_MODEL", "CODELOOP_API_BASE", "HF_TOKEN", "ANTHROPIC_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CODELOOP_LOCAL_SERVERS", "none")
    EFFECTS.clear()


SEND = "Thought: send.\n<code>\nr = send('bob')\nprint(r)\n</code>"
FINAL = "Thought: done.\n<code>\nfinal_answer('done: ' + r)\n</code>"
TOOLS = ["--tools", "test_runs_agents:send", "--executor", "inprocess", "--quiet"]


def _model(server: OpenAICompatibleServer) -> list[str]:
    return ["--api-base", server.base_url, "--model-id", "loopback-model"]


def test_pause_list_show_resume_fork(tmp_path, capsys):
    db = str(tmp_path / "runs.db")
    with OpenAICompatibleServer([SEND]) as server:
        code = main(
            [
                "run",
                "Send it",
                *_model(server),
                *TOOLS,
                "--approve-tools",
                "send",
                "--store",
                db,
                "--run-id",
                "c1",
            ]
        )
    assert code == 3
    err = capsys.readouterr().err
    assert "waits for approval: 1:send#1 send" in err and "codeloop runs resume c1 --approve" in err
    assert EFFECTS == []
    assert main(["runs", "--store", db, "list"]) == 0
    out = capsys.readouterr().out
    assert "c1\tawaiting_approval" in out and "Send it" in out
    assert main(["runs", "--store", db, "show", "c1"]) == 0
    assert "waits for approval: 1:send#1" in capsys.readouterr().out
    with OpenAICompatibleServer([FINAL]) as server:
        code = main(["runs", "--store", db, "resume", "c1", "--approve", "1:send#1", *_model(server), *TOOLS])
    assert code == 0
    assert capsys.readouterr().out.strip() == "done: sent to bob"
    assert EFFECTS == ["send:bob"]
    with OpenAICompatibleServer(["<code>\nfinal_answer('fork ' + r)\n</code>"]) as server:
        code = main(["runs", "--store", db, "fork", "c1", "--at", "1", *_model(server), *TOOLS])
    captured = capsys.readouterr()
    assert code == 0 and captured.out.strip() == "fork sent to bob" and "forked run: c1-fork-" in captured.err
    assert EFFECTS == ["send:bob"]
    assert main(["runs", "--store", db, "show", "nope"]) == 2


def test_deny_with_reason(tmp_path, capsys):
    db = str(tmp_path / "runs.db")
    with OpenAICompatibleServer([SEND]) as server:
        main(
            [
                "run",
                "Send it",
                *_model(server),
                *TOOLS,
                "--approve-tools",
                "send",
                "--store",
                db,
                "--run-id",
                "d",
            ]
        )
    with OpenAICompatibleServer(["<code>\nfinal_answer('skipped')\n</code>"]) as server:
        code = main(
            ["runs", "--store", db, "resume", "d", "--deny", "1:send#1=not today", *_model(server), *TOOLS]
        )
        sent = " ".join(str(m) for m in server.chat_requests[-1]["json"]["messages"])
    assert code == 0 and capsys.readouterr().out.strip() == "skipped"
    assert "denied by a person: not today" in sent and EFFECTS == []


def test_interactive_prompt_without_store(monkeypatch, capsys):
    monkeypatch.setattr("sys.stdin", io.StringIO("y\n"))
    with OpenAICompatibleServer([SEND, FINAL]) as server:
        code = main(["run", "Send it", *_model(server), *TOOLS, "--approve-tools", "send"])
    captured = capsys.readouterr()
    assert code == 0 and captured.out.strip() == "done: sent to bob"
    assert "Allow send(" in captured.err and EFFECTS == ["send:bob"]
