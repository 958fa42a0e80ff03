"""A stored run on a remote executor (Wasm, and the E2B/Modal/Blaxel stand-ins) records the clock and
random values its code reads, and a resumed run rebuilds its variables from them: the sandbox runs
codeloop's own worker, so the tape (executors/tape.py) travels in the same frames as with the local one."""

from __future__ import annotations

import os
import sys

import pytest

from codeloop.agents import CodeAgent, LogLevel
from codeloop.models.scripted import ScriptedModel

sys.path.insert(0, os.path.dirname(__file__))
from test_remote_cloud import cloud  # noqa: E402,F401 - the E2B/Modal/Blaxel stand-in fixture
from test_runs_replay import NAMES, READS  # noqa: E402

READ = "Thought: read the clock.\n<code>\n" + READS + "print(repr([" + ", ".join(NAMES) + "]))\n</code>"
ANSWER = "Thought: done.\n<code>\nfinal_answer(repr([" + ", ".join(NAMES) + "]))\n</code>"


def _stored_run_resumes_with_recorded_values(tmp_path, backend: str, **executor_kwargs) -> None:
    db = str(tmp_path / "runs.db")
    imports = ["uuid", "secrets", "datetime"]

    def agent(replies):
        return CodeAgent(
            tools=[],
            model=ScriptedModel(replies),
            store=db,
            executor_type=backend,
            executor_kwargs={"timeout_seconds": 20, **executor_kwargs},
            additional_authorized_imports=imports,
            verbosity_level=LogLevel.OFF,
        )

    def read_then_stop(messages):
        if any(getattr(m.role, "value", m.role) == "assistant" for m in messages):
            raise RuntimeError("the process stops here")
        return READ

    first = agent(read_then_stop)
    try:
        with pytest.raises(Exception, match="the process stops here"):
            first.run("Read the clock.", run_id="r")
    finally:
        first.cleanup()
    stored = first.store.get_run("r")
    assert stored.state == "failed"
    kinds = {kind for kind, _ in stored.steps[1]["tape"]}
    assert {"time", "perf_counter", "uuid4", "sysbytes", "seed", "sysrandom"} <= kinds

    second = agent([ANSWER])  # a fresh executor: the variables come from replaying step 1 with its tape
    try:
        result = second.resume("r")
    finally:
        second.cleanup()
    assert result.state == "success"
    assert result.output.startswith("[") and result.output in stored.steps[1]["observations"]
    assert "lost" not in str(second.memory.steps[-1].observations or "")


def test_wasm_run_replays_recorded_clock_and_random(tmp_path):
    _stored_run_resumes_with_recorded_values(tmp_path, "wasm")


def test_cloud_run_replays_recorded_clock_and_random(tmp_path, cloud):  # noqa: F811 - the fixture
    _stored_run_resumes_with_recorded_values(tmp_path, cloud.backend)
