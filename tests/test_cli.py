"""The ``codeloop`` command, run against the loopback OpenAI-compatible server (no network, no keys)."""

from __future__ import annotations

import io
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from rich.console import Console

from codeloop.cli import EXIT_CONFIG, EXIT_FAILED, EXIT_OK, LiveView, main
from codeloop.events import (
    ActionParsed,
    CodeOutputEvent,
    ModelDelta,
    ModelOutput,
    PlanEvent,
    RunFailed,
    RunFinished,
    RunStarted,
    StepFinished,
    ToolCallFinished,
    ToolCallStarted,
)
from codeloop.messages import ChatMessage, ChatMessageStreamDelta, TokenUsage
from codeloop.testing import OpenAICompatibleServer, Reply

MODEL_ENV = (
    "OPENAI_API_KEY",
    "ANTHROPIC_API_KEY",
    "HF_TOKEN",
    "CODELOOP_MODEL",
    "CODELOOP_API_BASE",
    "CODELOOP_API_KEY",
    "AZURE_OPENAI_API_KEY",
    "AZURE_OPENAI_ENDPOINT",
    "OLLAMA_HOST",
)


@pytest.fixture(autouse=True)
def no_model_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No real provider, and no probing of local servers other than the test's own ports."""
    for name in MODEL_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CODELOOP_LOCAL_SERVERS", "none")


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


FINAL = "Thought: 2 + 2 is easy.\n<code>\nresult = 2 + 2\nprint('computed', result)\nfinal_answer(result)\n</code>"


def _run(server: OpenAICompatibleServer, *extra: str) -> list[str]:
    return ["run", "What is 2 + 2?", "--api-base", server.base_url, "--model-id", "loopback-model", *extra]


def test_no_model_configured_is_exit_2_with_instructions(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "hello"]) == EXIT_CONFIG
    err = capsys.readouterr().err
    assert "configuration error: No model is configured" in err
    assert "CODELOOP_MODEL=" in err and "OPENAI_API_KEY" in err


def test_local_probe_of_closed_port_is_exit_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CODELOOP_LOCAL_SERVERS", f"ollama:{_closed_port()}")
    assert main(["run", "hello"]) == EXIT_CONFIG
    assert "No model is configured" in capsys.readouterr().err


def test_model_found_by_local_probe(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with OpenAICompatibleServer([FINAL]) as server:
        monkeypatch.setenv("CODELOOP_LOCAL_SERVERS", f"vllm:{server.port}")
        code = main(["run", "What is 2 + 2?", "--executor", "inprocess", "--quiet"])
        out = capsys.readouterr().out
    assert code == EXIT_OK, out
    assert out.strip() == "4"


def test_run_code_agent_against_loopback(capsys: pytest.CaptureFixture[str]) -> None:
    with OpenAICompatibleServer([FINAL]) as server:
        code = main(_run(server, "--executor", "inprocess"))
        requests = server.chat_requests
    captured = capsys.readouterr()
    assert code == EXIT_OK, captured.err
    assert captured.out.strip() == "4"  # only the answer on stdout
    assert "result = 2 + 2" in captured.err  # the code panel
    assert "computed 4" in captured.err  # the logs
    assert "done" in captured.err and "tokens:" in captured.err
    sent = str(requests[0]["json"]["messages"])
    assert "What is 2 + 2?" in sent
    assert "final_answer" in sent  # the system prompt lists the tool


def test_task_shorthand_and_stream(capsys: pytest.CaptureFixture[str]) -> None:
    with OpenAICompatibleServer([Reply(content=FINAL, chunk_size=5)]) as server:
        argv = ["What is 2 + 2?", "--api-base", server.base_url, "--model-id", "m", "--executor", "inprocess"]
        code = main([*argv, "--stream"])
        assert server.chat_requests[0]["json"].get("stream") is True
    captured = capsys.readouterr()
    assert code == EXIT_OK, captured.err
    assert captured.out.strip() == "4"
    assert "Thought: 2 + 2 is easy." in captured.err


def test_imports_and_planning_options_reach_the_agent(capsys: pytest.CaptureFixture[str]) -> None:
    plan = "## Facts\nNothing.\n## Plan\n1. Import csv and answer.\n<end_plan>"
    code = "Thought: use csv.\n<code>\nimport csv\nfinal_answer(csv.QUOTE_ALL)\n</code>"
    with OpenAICompatibleServer([plan, code]) as server:
        exit_code = main(
            _run(server, "--executor", "inprocess", "--imports", "csv", "--planning-interval", "1")
        )
        first_request = str(server.chat_requests[0]["json"]["messages"])
    captured = capsys.readouterr()
    assert exit_code == EXIT_OK, captured.err
    assert captured.out.strip() == "1"
    assert "Before acting, make a plan" in first_request  # codeloop's planning template
    assert "1. Import csv and answer." in captured.err  # the plan panel


def test_tool_calling_action_type(capsys: pytest.CaptureFixture[str]) -> None:
    call = Reply(tool_calls=[{"name": "final_answer", "arguments": {"answer": "four"}, "id": "c1"}])
    with OpenAICompatibleServer([call]) as server:
        code = main(_run(server, "--action-type", "tool_calling", "--verbosity-level", "0"))
        sent = server.chat_requests[0]["json"]
    captured = capsys.readouterr()
    assert code == EXIT_OK, captured.err
    assert captured.out.strip() == "four"
    assert captured.err == ""  # verbosity 0 is quiet
    assert any(t["function"]["name"] == "final_answer" for t in sent["tools"])


def test_single_model_call_fallback_without_code_agent(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import codeloop.cli

    monkeypatch.setattr(codeloop.cli, "_code_agent_class", lambda action_type="code": None)
    with OpenAICompatibleServer(["Four."]) as server:
        assert main(_run(server)) == EXIT_OK
    captured = capsys.readouterr()
    assert captured.out.strip() == "Four."
    assert "single model call" in captured.err


def test_max_steps_reached_is_exit_1(capsys: pytest.CaptureFixture[str]) -> None:
    looping = "Thought: again.\n<code>\nprint('still working')\n</code>"
    with OpenAICompatibleServer([looping, looping, "I could not finish."]) as server:
        code = main(_run(server, "--executor", "inprocess", "--max-steps", "2"))
    captured = capsys.readouterr()
    assert code == EXIT_FAILED
    assert "still working" in captured.err
    assert "max_steps" in captured.err


def test_model_request_failure_is_exit_1(capsys: pytest.CaptureFixture[str]) -> None:
    with OpenAICompatibleServer([FINAL], api_key="right-key") as server:
        code = main(_run(server, "--executor", "inprocess", "--api-key", "wrong-key"))
    assert code == EXIT_FAILED
    assert "✗" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["run", "t", "--api-base", "http://127.0.0.1:9/v1", "--model-id", "m", "--tools", "no_such_tool"],
            "Unknown tool",
        ),
        (
            ["run", "t", "--model-type", "NoSuchModel", "--model-id", "m"],
            "Unknown --model-type 'NoSuchModel'",
        ),
        (["run", "t", "--model-type", "AzureOpenAIModel"], "deployment name"),
        (
            ["run", "t", "--api-base", "http://127.0.0.1:9/v1", "--model-id", "m", "--max-steps", "0"],
            "at least 1",
        ),
    ],
)
def test_configuration_errors_are_exit_2(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == EXIT_CONFIG
    assert message in capsys.readouterr().err


def test_smolagents_model_types_map_to_codeloop_models(monkeypatch: pytest.MonkeyPatch) -> None:
    from codeloop.cli import build_model, build_parser

    port = _closed_port()
    monkeypatch.setenv("CODELOOP_LOCAL_SERVERS", f"ollama:{port}")
    args = build_parser().parse_args(
        ["run", "t", "--model-type", "LiteLLMModel", "--model-id", "ollama_chat/llama3"]
    )
    model = build_model(args)
    assert type(model).__name__ == "OpenAIModel"
    assert model.model_id == "llama3"
    assert f"127.0.0.1:{port}" in str(model.api_base)
    args = build_parser().parse_args(
        [
            "run",
            "t",
            "--model-type",
            "OpenAIServerModel",
            "--model-id",
            "m",
            "--api-base",
            "http://127.0.0.1:9/v1",
        ]
    )
    assert build_model(args).model_id == "m"


def test_inference_client_model_without_token_is_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        main(
            [
                "run",
                "t",
                "--model-type",
                "InferenceClientModel",
                "--model-id",
                "Qwen/Qwen2.5-Coder-32B-Instruct",
            ]
        )
        == EXIT_CONFIG
    )
    assert "HF_TOKEN" in capsys.readouterr().err


def test_bad_local_servers_spec(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("CODELOOP_LOCAL_SERVERS", "ollama")
    assert main(["run", "t"]) == EXIT_CONFIG
    assert "name:port" in capsys.readouterr().err


def test_help_version_and_no_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version"]) == 0
    assert "codeloop" in capsys.readouterr().out
    assert main(["run", "--help"]) == 0
    assert "--planning-interval" in capsys.readouterr().out
    assert main([]) == EXIT_CONFIG
    assert main(["run", "t", "--executor", "podman"]) == 2  # argparse's own usage error


def test_tools_option_resolves_builtin_and_module_specs(tmp_path: Path) -> None:
    from codeloop.cli import resolve_tools

    (tmp_path / "my_cli_tools.py").write_text(
        "from codeloop.tools import tool\n\n"
        "@tool\ndef shout(text: str) -> str:\n"
        '    """Upper-cases text.\n\n    Args:\n        text: The text.\n    """\n'
        "    return text.upper()\n"
    )
    sys.path.insert(0, str(tmp_path))
    try:
        tools = resolve_tools(["user_input,my_cli_tools:shout"])
    finally:
        sys.path.remove(str(tmp_path))
    assert [t.name for t in tools] == ["user_input", "shout"]


def test_console_script_in_a_subprocess_with_the_default_executor() -> None:
    with OpenAICompatibleServer([FINAL]) as server:
        env = {k: v for k, v in os.environ.items() if k not in MODEL_ENV}
        env.update(
            CODELOOP_API_BASE=server.base_url, CODELOOP_MODEL="loopback-model", CODELOOP_LOCAL_SERVERS="none"
        )
        proc = subprocess.run(
            [sys.executable, "-m", "codeloop.cli", "run", "What is 2 + 2?"],  # isolated worker executor
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
        )
    assert proc.returncode == EXIT_OK, proc.stderr
    assert proc.stdout.strip() == "4"


def test_live_view_renders_every_event_kind() -> None:
    buffer = io.StringIO()
    view = LiveView(Console(file=buffer, width=100, color_system=None), verbose=False)
    usage = TokenUsage(input_tokens=1200, output_tokens=34)
    view(RunStarted(task="Count [bold]things[/bold]"))
    view(ModelOutput(message=ChatMessage(role="assistant", content="I will count.\n<code>\nx = 1\n</code>")))
    view(ActionParsed(code="x = 1\nprint(x)"))
    view(ToolCallStarted(tool_name="lookup", arguments={"q": "a"}))
    view(ToolCallFinished(tool_name="lookup", error="boom", duration=0.5))
    view(CodeOutputEvent(logs="\n".join(f"line {i}" for i in range(30)), output=3))
    view(PlanEvent(plan="1. count\n2. answer"))
    view(StepFinished(step_number=1, duration=0.25, usage=usage))
    view(RunFinished(output=1, steps=1, duration=0.3, usage=usage))
    view(RunFailed(error_type="AgentGenerationError", error="model down", steps=2, duration=1.0))
    text = buffer.getvalue()
    for expected in (
        "Count [bold]things[/bold]",  # markup in the task is shown, not interpreted
        "I will count.",
        "print(x)",
        "lookup({'q': 'a'})",
        "✗ lookup: boom",
        "line 19",
        "10 more lines",
        "out: 3",
        "1. count",
        "step 1 · 0.25s · tokens: 1,200 in / 34 out",
        "✓ done in 1 step(s)",
        "✗ AgentGenerationError: model down",
    ):
        assert expected in text, expected
    assert "line 25" not in text  # long logs are cut without --verbose
    assert "x = 1\n</code>" not in text  # the thought is shown without its code


def test_live_view_tool_calling_steps() -> None:
    from codeloop.messages import ChatMessageToolCall, ChatMessageToolCallFunction

    buffer = io.StringIO()
    view = LiveView(Console(file=buffer, width=100, color_system=None))
    call = ChatMessageToolCall(
        id="c1", function=ChatMessageToolCallFunction(name="get_weather", arguments={"city": "Oslo"})
    )
    view(ActionParsed(tool_calls=[call]))
    view(ToolCallStarted(call_id="c1", tool_name="get_weather", arguments={"city": "Oslo"}))
    view(ToolCallFinished(call_id="c1", tool_name="get_weather", result="4C, rain", duration=0.01))
    view(ToolCallStarted(call_id="c9", tool_name="search", arguments={"q": "x"}))  # from inside code
    view(ToolCallFinished(call_id="c9", tool_name="search", result="hidden unless verbose", duration=0.01))
    text = buffer.getvalue()
    assert text.count("get_weather") == 1  # announced once, not again when it starts
    assert "← 4C, rain" in text
    assert "↳ search({'q': 'x'})" in text
    assert "hidden unless verbose" not in text


def test_live_view_streams_deltas() -> None:
    buffer = io.StringIO()
    view = LiveView(Console(file=buffer, width=80, color_system=None), stream=True)
    for piece in ("Thou", "ght: hi"):
        view(ModelDelta(delta=ChatMessageStreamDelta(content=piece)))
    view(ModelOutput(message=ChatMessage(role="assistant", content="Thought: hi")))
    assert buffer.getvalue() == "Thought: hi\n"
