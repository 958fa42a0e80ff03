"""LocalPythonExecutor: the isolated worker process, its protocol and its tool RPC."""

from __future__ import annotations

import asyncio
import fractions
import logging
import os
import threading
import time

import pytest

from codeloop.errors import InterpreterError
from codeloop.executors.worker.host import LocalPythonExecutor


@pytest.fixture(scope="module")
def ex():
    executor = LocalPythonExecutor(["asyncio"], timeout_seconds=10)
    yield executor
    executor.close()


def test_runs_code_keeps_state_and_captures_prints(ex):
    out = ex("x = 20\nprint('hello', x)\nx + 1")
    assert (out.output, out.logs, out.is_final_answer) == (21, "hello 20\n", False)
    assert ex("x * 2").output == 40


def test_final_answer_crosses_back(ex):
    out = ex(
        "final_answer({'answer': (1, 2), 'when': __import__('datetime').date(2024, 1, 2)})"
        if False
        else "import datetime\nfinal_answer({'answer': (1, 2), 'when': datetime.date(2024, 1, 2)})"
    )
    assert out.is_final_answer
    assert out.output == {"answer": (1, 2), "when": __import__("datetime").date(2024, 1, 2)}


def test_error_is_interpreter_error_with_logs_and_type(ex):
    with pytest.raises(InterpreterError) as info:
        ex("print('before')\nundefined_name + 1")
    err = info.value
    assert "undefined_name" in str(err)
    assert err.exc_type == "NameError"
    assert "before" in err.logs
    assert ex("1 + 1").output == 2  # the worker survived a normal error


def test_values_that_cannot_cross_come_back_as_repr(ex):
    out = ex("class Box:\n    def __repr__(self):\n        return 'Box!'\nBox()")
    assert out.output == "Box!"


def test_variables_are_sent_and_restored_after_a_crash():
    with LocalPythonExecutor(["os", "signal"], timeout_seconds=5) as executor:
        executor.send_variables({"frac": fractions.Fraction(1, 3), "data": {"k": [1, 2]}})
        assert executor("str(frac * 3), data['k'][1]").output == ("1", 2)
        executor("mine = 5\nother = 6")
        with pytest.raises(InterpreterError) as info:
            executor("import os, signal\nos.kill(os.getpid(), signal.SIGKILL)")
        assert "variables lost: mine, other" in str(info.value)
        out = executor("str(frac), data")
        assert out.output == ("1/3", {"k": [1, 2]})
        assert "Variables lost: mine, other" in out.logs
        assert "Variables lost" not in executor("1").logs  # said once


def test_sync_tools_run_on_the_host_and_errors_are_catchable(ex):
    host_thread_ids = []

    def add(a, b=0):
        host_thread_ids.append(threading.get_ident())
        return {"sum": a + b, "pid": os.getpid()}

    def broken(x):
        raise ValueError(f"bad {x}")

    ex.send_tools({"add": add, "broken": broken})
    out = ex("r = add(2, b=3)\nr")
    assert out.output == {"sum": 5, "pid": os.getpid()}  # ran in this (host) process
    assert host_thread_ids
    out = ex("try:\n    broken(4)\nexcept ValueError as e:\n    print('caught:', e)\n")
    assert out.logs == "caught: bad 4\n"


def test_async_tools_run_concurrently_when_awaited_together(ex):
    active, peak = [0], [0]

    class Slow:
        def __call__(self, x):
            raise AssertionError("acall must be preferred")

        async def acall(self, x):
            active[0] += 1
            peak[0] = max(peak[0], active[0])
            await asyncio.sleep(0.3)
            active[0] -= 1
            return x * 10

    ex.send_tools({"slow": Slow()})
    start = time.perf_counter()
    out = ex("import asyncio\nawait asyncio.gather(slow.acall(1), slow.acall(2), slow.acall(3))")
    assert out.output == [10, 20, 30]
    assert peak[0] == 3
    assert time.perf_counter() - start < 0.85  # three 0.3 s calls, not 0.9 s


async def test_aexecute_does_not_block_the_loop_and_executors_run_concurrently():
    spans: dict[int, tuple[float, float]] = {}

    def slow(x):
        start = time.monotonic()
        time.sleep(0.4)
        spans[x] = (start, time.monotonic())
        return x

    ticks = 0

    async def ticker():
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    async with LocalPythonExecutor() as a, LocalPythonExecutor() as b:
        a.send_tools({"slow": slow})
        b.send_tools({"slow": slow})
        task = asyncio.create_task(ticker())
        ra, rb = await asyncio.gather(a.aexecute("slow(1)"), b.aexecute("slow(2)"))
        task.cancel()
    assert (ra.output, rb.output) == (1, 2)
    # both 0.4 s calls overlapped (measured by the calls themselves: a loaded machine delays them)
    assert spans[1][0] < spans[2][1] and spans[2][0] < spans[1][1], spans
    assert ticks >= 15  # the loop kept running meanwhile


async def test_async_tool_is_awaited_on_the_callers_loop():
    seen = []

    class T:
        async def acall(self):
            seen.append(asyncio.get_running_loop())
            return "ok"

    async with LocalPythonExecutor(["asyncio"]) as executor:
        executor.send_tools({"t": T()})
        assert (await executor.aexecute("await t.acall()")).output == "ok"
        assert (await executor.aexecute("t()")).output == "ok"  # sync call from code, async tool on host
    assert seen == [asyncio.get_running_loop()] * 2


async def test_sync_call_works_inside_a_running_loop():
    class T:
        async def acall(self, x):
            await asyncio.sleep(0)
            return x + 1

    with LocalPythonExecutor() as executor:
        executor.send_tools({"inc": T()})
        assert executor("inc(1)").output == 2  # called from a coroutine, blocking, no deadlock


def test_timeout_kills_worker_and_next_run_is_fresh():
    with LocalPythonExecutor(timeout_seconds=1) as executor:
        executor("keep = 1")
        start = time.perf_counter()
        with pytest.raises(InterpreterError) as info:
            executor("sum(range(10**13))")
        assert time.perf_counter() - start < 3
        assert info.value.exc_type == "Timeout"
        assert "timed out" in str(info.value) and "variables lost: keep" in str(info.value)
        assert executor("'keep' in dir()").output is False
        assert executor("2 + 2").output == 4


def test_isolation_report_is_explicit_and_logged_once(caplog):
    caplog.set_level(logging.INFO, logger="codeloop.executors.worker")
    from codeloop.executors.worker import sandbox

    sandbox._LOGGED.clear()
    with LocalPythonExecutor() as a, LocalPythonExecutor() as b:
        report = a.isolation
        assert b.isolation == report
    for key in ("process", "sandbox", "network", "rlimits", "missing"):
        assert key in report
    assert report["process"] is True
    assert set(report["rlimits"]) >= {"as", "cpu", "fsize", "nofile"}
    assert report["network"]
    messages = [r.getMessage() for r in caplog.records if "isolated Python worker:" in r.getMessage()]
    assert len([m for m in messages if "layers NOT active" not in m]) == 1


def test_self_confined_mode_reports_what_it_lacks():
    with LocalPythonExecutor(sandbox="self") as executor:
        report = executor.isolation
        assert report["sandbox"] == "self-confined"
        assert report["pid_namespace"] is False
        assert any("bubblewrap" in m for m in report["missing"])
        assert "landlock" in report or any("landlock" in m for m in report["missing"])
        assert executor("6 * 7").output == 42


def test_bad_sandbox_value_is_refused():
    with pytest.raises(ValueError, match="sandbox"):
        LocalPythonExecutor(sandbox="docker")


def test_close_ends_the_process_and_removes_scratch():
    executor = LocalPythonExecutor()
    executor("1")
    worker = executor.worker
    scratch = worker.plan.scratch
    executor.close()
    assert worker.proc.poll() is not None
    assert not scratch or not os.path.exists(scratch)  # bubblewrap: a tmpfs gone with the sandbox
    with pytest.raises(InterpreterError, match="closed"):
        executor("1")


def test_state_returns_user_variables(ex):
    ex("state_probe = [1, 2]")
    assert ex.state["state_probe"] == [1, 2]


class LocalOnly:
    """Picklable by reference, but its module (this test file) is not importable inside the sandbox."""


def test_variables_the_worker_cannot_load_are_reported_at_the_next_run():
    with LocalPythonExecutor() as executor:
        executor.send_variables({"ok_value": 1, "thing": LocalOnly()})
        with pytest.raises(InterpreterError) as info:
            executor("ok_value")
        assert "'thing' could not be loaded in the worker" in str(info.value)
        assert info.value.exc_type == "SetupError"
        assert executor("ok_value").output == 1  # reported once; the rest still works


def test_bad_tool_names_are_refused_on_the_host():
    with LocalPythonExecutor() as executor:
        with pytest.raises(ValueError, match="identifiers"):
            executor.send_tools({"not a name": print})


def test_memory_error_names_the_limit_and_replaces_the_worker():
    with LocalPythonExecutor(memory_mb=512) as executor:
        executor("kept = 1")
        with pytest.raises(InterpreterError) as info:
            executor("x = 'a' * (2 * 1024**3)")
        assert info.value.exc_type == "MemoryError"
        assert "512 MB" in str(info.value) and "variables lost: kept" in str(info.value)
        assert executor("3").output == 3


def test_create_executor_local_gives_the_isolated_worker():
    from codeloop.executors import create_executor

    with create_executor("local", additional_authorized_imports=["math"]) as executor:
        assert isinstance(executor, LocalPythonExecutor)
        assert executor("import math\nmath.floor(2.5)").output == 2
        assert executor.isolation["process"] is True


def test_a_slow_host_tool_still_ends_the_run_at_the_timeout():
    release = threading.Event()

    def slow():
        release.wait(10)
        return "late"

    with LocalPythonExecutor(timeout_seconds=1) as executor:
        executor.send_tools({"slow": slow})
        start = time.perf_counter()
        with pytest.raises(InterpreterError) as info:
            executor("slow()")
        release.set()
        assert time.perf_counter() - start < 3
        assert info.value.exc_type == "Timeout"
        assert executor("1 + 1").output == 2


def test_worker_dying_between_runs_is_reported_at_the_next_run():
    with LocalPythonExecutor(["threading", "os", "signal", "time"]) as executor:
        executor.send_variables({"given": 1})
        # a background thread kills the worker after the run has ended
        executor(
            "import threading, os, signal, time\nmade = 2\n"
            "threading.Thread(target=lambda: (time.sleep(0.2), os.kill(os.getpid(), signal.SIGKILL))).start()"
        )
        time.sleep(0.6)
        out = executor("given")
        assert out.output == 1
        assert "stopped between runs" in out.logs and "Variables lost: made" in out.logs


def test_images_cross_both_ways_as_png():
    from PIL import Image

    def make_image(w, h):
        return Image.new("RGB", (w, h), (255, 0, 0))

    with LocalPythonExecutor(["PIL"]) as executor:
        executor.send_tools({"make_image": make_image})
        out = executor("img = make_image(4, 3)\nimg = img.rotate(90, expand=True)\nimg")
        assert isinstance(out.output, Image.Image)
        assert out.output.size == (3, 4) and out.output.getpixel((0, 0)) == (255, 0, 0)


def test_executor_outlives_the_thread_that_created_it():
    box = {}

    def create():
        box["ex"] = LocalPythonExecutor()
        box["ex"]("kept = 5")

    thread = threading.Thread(target=create)
    thread.start()
    thread.join()
    with box["ex"] as executor:
        time.sleep(0.2)
        out = executor("kept")
        assert out.output == 5 and "fresh" not in out.logs
