"""The shared remote-sandbox base (executors/remote): host.py's behaviour over a sandbox's byte stream.

Runs against the stand-in backend of remote_standin.py (the worker in a plain local process, its
modules shipped into a fresh directory), over real pipe fds and over the relay threads.
"""

from __future__ import annotations

import os
import sys
import time

import pytest

from codeloop.errors import InterpreterError
from codeloop.executors import create_executor
from codeloop.executors.remote import BACKENDS, load
from codeloop.executors.remote.ship import boot_argv, worker_config, worker_files
from codeloop.executors.worker.sandbox import Limits

sys.path.insert(0, os.path.dirname(__file__))
from remote_standin import ProcessExecutor  # noqa: E402


@pytest.fixture(params=[False, True], ids=["fds", "relay"])
def executor(request):
    ex = ProcessExecutor(relayed=request.param, timeout_seconds=3)
    yield ex
    ex.close()


def test_state_printed_output_and_final_answer(executor):
    out = executor("x = 20\nprint('hello', x)\nx + 1")
    assert (out.output, out.logs, out.is_final_answer) == (21, "hello 20\n", False)
    assert executor("x * 2").output == 40
    assert executor("final_answer(x)").is_final_answer
    assert executor.state["x"] == 20


def test_tools_stay_on_the_host(executor):
    secret = "sk-host-only-credential"
    seen = []

    def lookup(q: str) -> str:
        seen.append(q)
        return f"answer to {q} ({len(secret)} chars of secret)"

    executor.send_tools({"lookup": lookup})
    out = executor("r = lookup('q1')\nr")
    assert out.output == f"answer to q1 ({len(secret)} chars of secret)" and seen == ["q1"]
    # the sandbox got a proxy, not the function: its code, closure and globals are not there
    probe = executor("str(type(lookup)) + repr(lookup)").output
    assert "ToolProxy" in probe and secret not in probe
    shipped = b"".join(data for _, data in worker_files())
    assert secret.encode() not in shipped


def test_values_from_the_sandbox_never_unpickled(executor):
    out = executor("class Point:\n    pass\nPoint()")
    assert isinstance(out.output, str) and "Point" in out.output  # its repr, not an object


def test_policy_applies_in_the_sandbox(executor):
    with pytest.raises(InterpreterError, match="os"):
        executor("import os\nos.listdir('/')")


def test_timeout_kills_and_replaces_the_sandbox_and_names_lost_variables(executor):
    executor("kept = 1\nalso = 2")
    first = executor.sandboxes[-1]
    t0 = time.monotonic()
    with pytest.raises(InterpreterError) as info:
        executor("sum(range(10**13))")
    assert time.monotonic() - t0 < 8
    assert "timed out" in str(info.value) and "kept" in str(info.value) and "also" in str(info.value)
    assert first.poll() is not None  # killed
    out = executor("'kept' in dir()")
    assert "Variables lost: also, kept" in out.logs and out.output is False
    assert executor.sandboxes[-1] is not first and executor.sandboxes[-1].poll() is None


def test_sandbox_dying_between_runs_is_replaced(executor):
    executor("y = 5")
    executor.sandboxes[-1].kill()
    time.sleep(0.2)
    out = executor("1 + 1")
    assert out.output == 2 and "y" in out.logs


def test_close_kills_every_sandbox_and_isolation_merges_reports(executor):
    iso = executor.isolation
    assert iso["sandbox"] == "process-standin" and "seccomp" in iso and "rlimits" in iso
    assert "stand-in: no sandbox at all" in iso["missing"]
    executor("1")
    executor.close()
    time.sleep(0.1)
    assert executor.sandboxes and all(s.poll() is not None for s in executor.sandboxes)
    with pytest.raises(InterpreterError, match="closed"):
        executor("1")


async def test_async_execute(executor):
    async def atool(x: int) -> int:
        return x * 3

    executor.send_tools({"atool": atool})
    out = await executor.aexecute("atool(4) + 1")
    assert out.output == 13


def test_start_failure_is_a_clear_error():
    class Broken(ProcessExecutor):
        def _open_sandbox(self, cfg):
            raise RuntimeError("engine unreachable at /nowhere")

    ex = Broken(timeout_seconds=3)
    try:
        with pytest.raises(InterpreterError, match="engine unreachable at /nowhere"):
            ex("1")
    finally:
        ex.close()


def test_local_pool_options_are_refused():
    with pytest.raises(TypeError, match="pool_size"):
        ProcessExecutor(pool_size=3)


def test_smolagents_positional_arguments():
    ex = ProcessExecutor(["math"], None, timeout_seconds=3)
    try:
        assert ex.additional_imports == ["math"]
        assert ex("import math\nmath.floor(2.5)").output == 2
    finally:
        ex.close()


def test_boot_config_and_shipped_files():
    names = {path for path, _ in worker_files()}
    assert {
        "codeloop/executors/worker/child.py",
        "codeloop/executors/session.py",
        "codeloop/errors.py",
    } <= names
    assert not any(p.startswith(("codeloop/tools", "codeloop/agents", "codeloop/models")) for p in names)
    cfg = worker_config(Limits(), 5, {"x": 1})
    assert cfg["shm"] is None and cfg["uid"] is None
    argv = boot_argv(cfg)
    assert argv[:5] == ["python3", "-I", "-S", "-B", "-c"]


def test_registry_names_every_backend_and_unknown_types_fail_clearly(monkeypatch):
    assert set(BACKENDS) == {"docker", "wasm", "e2b", "modal", "blaxel"}
    with pytest.raises(ValueError, match="'docker'.*'blaxel'"):
        create_executor("podman")
    monkeypatch.setitem(BACKENDS, "nothere", ("nothere_module", "NoExecutor", "pip install nothing"))
    with pytest.raises(ImportError, match="'nothere' is not available"):
        load("nothere")
