"""Clock and random values that code read replay as recorded when a stored run is rebuilt after a
crash (executors/tape.py); when the replay diverges anyway, the model is told which variables are lost."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from codeloop.executors.inprocess import InProcessExecutor
from codeloop.executors.worker import LocalPythonExecutor
from codeloop.runs import SQLiteStore

ENV = {**os.environ, "PYTHONPATH": os.path.dirname(os.path.dirname(os.path.abspath(__file__)))}

READS = """
import time, random, datetime, uuid, secrets
t = time.time(); p = time.perf_counter(); r = random.random(); c = random.choice('abcdefgh')
n = datetime.datetime.now(); d = datetime.date.today(); u = str(uuid.uuid4()); s = secrets.token_hex(8)
rr = random.Random().random(); lt = time.strftime('%H:%M:%S'); sr = random.SystemRandom().random()
"""
NAMES = ("t", "p", "r", "c", "n", "d", "u", "s", "rr", "lt", "sr")


def _executor(kind: str):
    imports = ["uuid", "secrets"]
    return InProcessExecutor(imports) if kind == "inprocess" else LocalPythonExecutor(imports)


def _values(executor) -> dict:
    return {k: v for k, v in executor.state.items() if k in NAMES}


@pytest.mark.parametrize("kind", ["inprocess", "worker"])
def test_executor_records_and_replays_clock_and_random(kind):
    first = _executor(kind)
    try:
        first.set_tape({"seed": 7})
        first(READS)
        tape = first.take_tape()
        original = _values(first)
    finally:
        first.close()
    assert tape is not None and not tape["diverged"]
    kinds = {k for k, _ in tape["values"]}
    assert {"time", "perf_counter", "uuid4", "sysbytes", "seed", "sysrandom"} <= kinds
    json.dumps(tape)  # it travels through the store as JSON
    time.sleep(0.01)
    again = _executor(kind)
    try:
        again.set_tape({"seed": 7, "replay": tape["values"]})
        again(READS)
        replayed = again.take_tape()
        assert _values(again) == original and set(original) == set(NAMES)
        assert not replayed["diverged"]
        # without a tape: live values, nothing recorded
        again("import time\nt2 = time.time()")
        assert again.take_tape() is None and again.state["t2"] != original["t"]
    finally:
        again.close()
    short = _executor(kind)
    try:
        short.set_tape({"seed": 7, "replay": tape["values"][:2]})
        short(READS)
        assert short.take_tape()["diverged"]
        assert _values(short)["t"] == original["t"]  # the first values still came from the tape
    finally:
        short.close()


def test_random_seed_set_by_code_still_holds_across_steps():
    ex = InProcessExecutor()
    ex.set_tape({"seed": 1})
    ex("import random\nrandom.seed(42)")
    ex.set_tape({"seed": 1})
    ex("a = random.random()")
    import random

    assert ex.state["a"] == random.Random(42).random()


AGENT = r"""
import json, os, signal, sys
from codeloop import CodeAgent
from codeloop.models.scripted import ScriptedModel
from codeloop.runs import SQLiteStore

db, mode, executor = sys.argv[1:4]
STEP1 = '''<code>
import time, random, datetime, uuid
t = time.time(); r = random.random(); n = datetime.datetime.now(); u = str(uuid.uuid4())
k = random.randint(0, 10**9)
print(repr((t, r, n, u, k)))
</code>'''
STEP2 = '<code>\nfinal_answer(repr((t, r, n, u, k)))\n</code>'

def reply(messages):
    done = sum(1 for m in messages if getattr(m.role, "value", m.role) == "assistant")
    if mode == "run" and done == 1:  # step 1 is stored: die in the model call of step 2
        os.kill(os.getpid(), signal.SIGKILL)
    return [STEP1, STEP2][done]

agent = CodeAgent(tools=[], model=ScriptedModel(reply), store=SQLiteStore(db), executor_type=executor,
                  additional_authorized_imports=["uuid"],
                  verbosity_level=0)
if mode == "run":
    agent.run("Read the clock.", run_id="c")
else:
    result = agent.resume("c")
    print(json.dumps({"state": result.state, "output": result.output}))
"""


def _agent(script, db: str, mode: str, executor: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(script), db, mode, executor], capture_output=True, text=True, env=ENV, timeout=90
    )


@pytest.mark.timeout(120)
@pytest.mark.parametrize("executor", ["local", "inprocess"])
def test_killed_run_resumes_with_the_recorded_clock_and_random_values(tmp_path, executor):
    script = tmp_path / "clock_agent.py"
    script.write_text(AGENT)
    db = str(tmp_path / "c.db")
    killed = _agent(script, db, "run", executor)
    assert killed.returncode == -9, killed.stderr[-2000:]
    with SQLiteStore(db) as store:
        stored = store.get_run("c")
    printed = stored.steps[-1]["observations"].split("Execution logs:\n")[1].split("\n")[0]
    assert stored.steps[-1]["tape"] and isinstance(stored.data["seed"], int)
    time.sleep(0.05)  # the clock has moved on: only the record can give the same values
    resumed = _agent(script, db, "resume", executor)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    result = json.loads(resumed.stdout.strip().splitlines()[-1])
    assert result == {"state": "success", "output": printed}


@pytest.mark.timeout(120)
def test_diverged_replay_names_the_lost_variables(tmp_path):
    script = tmp_path / "clock_agent.py"
    script.write_text(AGENT)
    db = str(tmp_path / "c.db")
    assert _agent(script, db, "run", "local").returncode == -9
    with SQLiteStore(db) as store:  # a record that no longer matches what the code reads
        stored = store.get_run("c")
        index = len(stored.steps) - 1
        step = dict(stored.steps[index], tape=stored.steps[index]["tape"][:1])
        store.append_step("c", index, step, stored.events[index])
    resumed = _agent(script, db, "resume", "local")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    with SQLiteStore(db) as store:
        final = store.get_run("c")
    note = final.steps[-1]["observations"]
    assert "could not be rebuilt" in note
    lost = note.split("so they are lost: ")[1].split(". Compute")[0].split(", ")
    assert {"k", "n", "r", "t", "u"} <= set(lost)
