"""Evals against the loopback model server: scorers, summary and failures by kind, the PNG chart, resume
from results.jsonl, the ``codeloop eval`` command, and the Ray backend on a real local cluster (started
here with num_cpus=2, its temp dir inside the test's) giving the same results as the local backend."""

from __future__ import annotations

import json
import os
import re

import pytest

from codeloop.agents import CodeAgent, LogLevel
from codeloop.cli import main
from codeloop.evals import EvalTask, get_scorer, load_tasks, run_eval
from codeloop.evals.command import AgentOptions
from codeloop.models import OpenAIModel
from codeloop.testing import OpenAICompatibleServer, Reply

os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
# Single-machine mode: Ray then binds and talks on 127.0.0.1 only (read when ray is imported).
os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"

TASKS = [
    {"id": "mul", "task": "compute: 6 * 7", "answer": 42},
    {"id": "add", "task": "compute: 2 + 2", "answer": "4"},
    {"id": "text", "task": "compute: 'forty' + '-two'", "answer": "forty-two"},
    {"id": "wrong", "task": "compute: 1 + 1", "answer": 3},
    {"id": "loop", "task": "loop: forever", "answer": 1, "max_steps": 2},
    {"id": "broken", "task": "broken: model refuses", "answer": 1},
]


def _task_text(request: dict) -> str:
    parts = []
    for message in request["messages"]:
        if message["role"] == "user":
            content = message["content"]
            parts += [content] if isinstance(content, str) else [p.get("text", "") for p in content]
    return "\n".join(parts)


def handler(request: dict):
    """A deterministic 'model': answers ``compute: EXPR`` with code, loops on ``loop:``, 400 on ``broken:``."""
    text = _task_text(request)
    if "broken:" in text:
        return Reply.error(400, "this model refuses")
    if "loop:" in text:
        return "Thought: again.\n<code>\nprint('still going')\n</code>"
    match = re.search(r"compute: (.+)$", text, re.M)
    expr = match.group(1) if match else "None"
    return f"Thought: compute it.\n<code>\nfinal_answer({expr})\n</code>"


@pytest.fixture(scope="module")
def server():
    with OpenAICompatibleServer(handler=handler) as server:
        yield server


def options(server, **extra) -> AgentOptions:
    values = {
        "model_type": None,
        "model_id": "loopback-model",
        "api_base": server.base_url,
        "api_key": "k",
        "tools": [],
        "imports": [],
        "executor": "inprocess",
        "action_type": "code",
        "max_steps": 4,
        "planning_interval": None,
    }
    values.update(extra)
    return AgentOptions(tuple(values.items()))


def test_scorers():
    assert get_scorer("exact")(" 42 ", 42, {}) == 1.0 and get_scorer("exact")("42.0", 42, {}) == 0.0
    assert get_scorer("contains")("The answer is PARIS.", "paris", {}) == 1.0
    assert get_scorer("numeric")("about 1,234.5 units", "1234.50", {}) == 1.0
    assert get_scorer("numeric")("no number", 1, {}) == 0.0
    assert get_scorer("python:codeloop.evals.scorers.contains") is get_scorer("contains")
    with pytest.raises(ValueError, match="python:module.function"):
        get_scorer("nonsense")
    with pytest.raises(ValueError, match="cannot be loaded"):
        get_scorer("python:no_such_module.fn")


def test_load_tasks_from_jsonl_and_errors(tmp_path):
    path = tmp_path / "tasks.jsonl"
    path.write_text('{"question": "q1", "expected": 1}\n\n{"id": "b", "task": "q2", "extra": 5}\n')
    tasks = load_tasks(path)
    assert [(t.id, t.task, t.expected) for t in tasks] == [("1", "q1", 1), ("b", "q2", None)]
    assert tasks[1].metadata == {"extra": 5}
    path.write_text('{"answer": 1}\n')
    with pytest.raises(ValueError, match="has no text"):
        load_tasks(path)
    path.write_text("not json\n")
    with pytest.raises(ValueError, match="tasks.jsonl:1"):
        load_tasks(path)
    with pytest.raises(ValueError, match="unique"):
        load_tasks([EvalTask("a", "x"), EvalTask("a", "y")])


def test_local_eval_summary_failures_chart_and_resume(server, tmp_path):
    prices = {"input": 1.0, "output": 2.0}  # USD per million tokens
    model = OpenAIModel("loopback-model", api_base=server.base_url, api_key="k", max_retries=0, prices=prices)
    agent = CodeAgent(
        tools=[], model=model, executor_type="inprocess", verbosity_level=LogLevel.OFF, max_steps=4
    )
    out = tmp_path / "out"
    report = run_eval(TASKS, agent, scorer="exact", concurrency=50, output_dir=out)
    by_id = {r.id: r for r in report.records}
    assert [r.id for r in report.records] == [t["id"] for t in TASKS]
    assert by_id["mul"].score == 1.0 and by_id["mul"].output == 42 and by_id["mul"].steps == 1
    assert by_id["add"].score == 1.0 and by_id["text"].output == "forty-two"
    assert by_id["wrong"].failure == "wrong_answer" and by_id["wrong"].score == 0.0
    assert by_id["loop"].failure == "max_steps" and by_id["loop"].state == "max_steps_error"
    assert by_id["broken"].failure == "AgentGenerationError" and "refuses" in by_id["broken"].error
    summary = report.summary()
    assert summary["correct"] == 3 and summary["score"] == pytest.approx(0.5)
    assert summary["failures"] == {"wrong_answer": 1, "max_steps": 1, "AgentGenerationError": 1}
    assert summary["input_tokens"] > 0 and summary["output_tokens"] > 0
    expected_cost = (summary["input_tokens"] * 1.0 + summary["output_tokens"] * 2.0) / 1e6
    assert summary["cost"] == pytest.approx(expected_cost)
    assert by_id["mul"].input_tokens > 0
    # Every run is stored as it lands; the chart is a real PNG.
    lines = (out / "results.jsonl").read_text().splitlines()
    assert sorted(json.loads(line)["id"] for line in lines) == sorted(t["id"] for t in TASKS)
    assert (out / "chart.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert json.loads((out / "summary.json").read_text())["correct"] == 3
    # Resume: a crash left only some results; only the missing tasks run again.
    (out / "results.jsonl").write_text("\n".join(lines[:4]) + '\n{"id": "cut sh')
    before = len(server.chat_requests)
    again = run_eval(TASKS, agent, scorer="exact", concurrency=5, output_dir=out)
    assert {r.key() for r in again.records} == {r.key() for r in report.records}
    missing = {json.loads(line)["id"] for line in lines[4:]}
    expected_calls = sum({"loop": 3, "broken": 1}.get(i, 1) for i in missing)
    assert len(server.chat_requests) - before == expected_calls
    table = again.table()
    assert table.row_count == 7


def test_python_scorer_and_progress_bar(server, tmp_path, monkeypatch, capsys):
    (tmp_path / "my_scorers.py").write_text(
        "def half(output, expected, task):\n    return 0.5 if task['id'] == 'mul' else 1.0\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    report = run_eval(TASKS[:2], options(server), scorer="python:my_scorers.half", progress=True)
    assert [r.score for r in report.records] == [0.5, 1.0]
    assert "2/2" in capsys.readouterr().err


def test_eval_command_writes_results_and_exit_codes(server, tmp_path, capsys):
    tasks = tmp_path / "tasks.jsonl"
    tasks.write_text("\n".join(json.dumps(t) for t in TASKS[:3]) + "\n")
    out = tmp_path / "res"
    argv = [
        "eval",
        str(tasks),
        "--api-base",
        server.base_url,
        "--model-id",
        "loopback-model",
        "--executor",
        "inprocess",
        "--concurrency",
        "50",
        "--scorer",
        "exact",
        "--output",
        str(out),
        "--no-progress",
    ]
    assert main(argv) == 0
    err = capsys.readouterr().err
    assert "score" in err and "1.000 (3/3 right)" in err and "chart.png" in err
    assert len((out / "results.jsonl").read_text().splitlines()) == 3
    tasks.write_text("\n".join(json.dumps(t) for t in TASKS[:4]) + "\n")
    assert main(argv) == 1  # one wrong answer; the three earlier results are reused
    assert (
        main(
            [
                "eval",
                str(tasks),
                "--scorer",
                "python:nope.fn",
                "--api-base",
                server.base_url,
                "--model-id",
                "m",
            ]
        )
        == 2
    )
    assert "cannot be loaded" in capsys.readouterr().err


@pytest.fixture(scope="module")
def ray_cluster(tmp_path_factory):
    import ray

    temp = tmp_path_factory.mktemp("ray")
    ray.init(
        num_cpus=2,
        _temp_dir=str(temp),
        include_dashboard=False,
        log_to_driver=False,
        _node_ip_address="127.0.0.1",
        configure_logging=False,
    )
    try:
        yield ray
    finally:
        ray.shutdown()


def test_ray_backend_matches_local_backend(server, ray_cluster, tmp_path):
    local = run_eval(TASKS, options(server), scorer="exact", concurrency=50)
    remote = run_eval(TASKS, options(server), scorer="exact", concurrency=50, backend="ray")
    assert remote.backend == "ray"
    assert [r.key() for r in remote.records] == [r.key() for r in local.records]
    assert remote.summary()["failures"] == local.summary()["failures"]
    nodes = ray_cluster.nodes()
    assert len(nodes) == 1 and nodes[0]["NodeManagerAddress"] == "127.0.0.1"
    # The command on the same cluster (already initialised in this process).
    tasks = tmp_path / "tasks.jsonl"
    tasks.write_text("\n".join(json.dumps(t) for t in TASKS[:2]) + "\n")
    argv = [
        "eval",
        str(tasks),
        "--api-base",
        server.base_url,
        "--model",
        "loopback-model",
        "--executor",
        "inprocess",
        "--backend",
        "ray",
        "--output",
        str(tmp_path / "r"),
        "--no-progress",
    ]
    assert main(argv) == 0
    assert json.loads((tmp_path / "r" / "summary.json").read_text())["backend"] == "ray"
    with pytest.raises(TypeError, match="picklable function"):
        agent = CodeAgent(
            tools=[],
            model=OpenAIModel("m", api_base=server.base_url, api_key="k"),
            verbosity_level=LogLevel.OFF,
        )
        run_eval(TASKS[:1], agent, backend="ray")


def test_store_keeps_every_eval_run_under_its_run_id(server, tmp_path):
    from codeloop.runs import SQLiteStore

    prices = {"input": 1.0, "output": 2.0}
    model = OpenAIModel("loopback-model", api_base=server.base_url, api_key="k", max_retries=0, prices=prices)
    agent = CodeAgent(tools=[], model=model, executor_type="inprocess", verbosity_level=LogLevel.OFF)
    path = tmp_path / "runs.sqlite"
    tasks = [
        {"id": "a", "task": "compute: 6*7", "answer": 42},
        {"id": "b", "task": "compute: 2+2", "answer": 5},
    ]
    report = run_eval(tasks, agent, store=str(path), concurrency=2)
    assert agent.store is None and agent.last_run is None  # the configured agent itself is untouched
    ids = [r.run_id for r in report.records]
    assert all(ids) and len(set(ids)) == 2
    with SQLiteStore(str(path)) as store:
        for record in report.records:
            stored = store.get_run(record.run_id)
            assert stored is not None and stored.state == "success" and stored.output == record.output
            assert stored.task == record.task
    # An agent that cannot store runs gets one clear error, before anything runs.
    with pytest.raises(TypeError, match="store= needs an agent"):
        run_eval(
            tasks,
            lambda: object.__new__(type("Plain", (), {"astream": lambda self, t: None})),
            store=str(path),
        )
