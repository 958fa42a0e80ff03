"""The isolated worker driven from the event loop (evloop.py), and the fork server's bookkeeping:
replies wake only their requester, and workers are named by fork request id, never by a pid alone."""

from __future__ import annotations

import asyncio
import signal
import threading
import time

import pytest

from codeloop.errors import InterpreterError
from codeloop.executors.worker import host as host_module
from codeloop.executors.worker.host import LocalPythonExecutor
from codeloop.executors.worker.pool import WorkerPool


@pytest.fixture
def pool():
    pool = WorkerPool(pool_size=1, max_workers=8, acquire_timeout=20)
    yield pool
    pool.close()


@pytest.fixture
def driver_calls(monkeypatch):
    """Count the runs handed to a driver thread."""
    calls: list[str] = []
    submit = host_module._DRIVERS.submit

    def counting(fn, *args, **kwargs):
        calls.append(fn.__name__)
        return submit(fn, *args, **kwargs)

    monkeypatch.setattr(host_module._DRIVERS, "submit", counting)
    return calls


async def test_a_step_without_tool_calls_takes_no_thread(pool, driver_calls):
    async with LocalPythonExecutor(pool=pool) as ex:
        ex.send_variables({"base": 40})
        outs = [await ex.aexecute(code) for code in ("x = base + 1", "print(x)\nx + 1", "final_answer(x)")]
    assert [o.output for o in outs] == [41, 42, 41]
    assert outs[1].logs == "41\n" and outs[2].is_final_answer
    assert driver_calls == []


async def test_a_tool_call_moves_the_rest_of_the_step_to_a_thread(pool, driver_calls):
    seen = []

    def lookup(key: str) -> str:
        seen.append(threading.current_thread() is threading.main_thread())
        return key.upper()

    async with LocalPythonExecutor(pool=pool) as ex:
        ex.send_tools({"lookup": lookup})
        out = await ex.aexecute("a = lookup('x')\nb = [lookup(c) for c in 'yz']\na + ''.join(b)")
        assert out.output == "XYZ"
        assert seen == [False, False, False]  # a plain function never runs on the loop's thread
        assert driver_calls == ["_complete"]  # one hand-off for the whole step, none per call
        assert (await ex.aexecute("a")).output == "X"  # back on the loop for the next step
        assert driver_calls == ["_complete"]


async def test_errors_timeouts_and_cancelling_on_the_loop_path(pool):
    async with LocalPythonExecutor(["time"], pool=pool, timeout_seconds=1) as ex:
        await ex.aexecute("kept = 1")
        with pytest.raises(InterpreterError, match="ZeroDivisionError"):
            await ex.aexecute("1 / 0")
        assert (await ex.aexecute("kept")).output == 1  # a code error keeps the worker
        start = time.monotonic()
        with pytest.raises(InterpreterError, match="timed out after 1 seconds"):
            await ex.aexecute("sum(range(10**11))")  # one C call: only the host can stop it
        assert time.monotonic() - start < 8
        out = await ex.aexecute("y = 2\ny")
        assert out.output == 2 and "Variables lost: kept" in out.logs
        task = asyncio.ensure_future(ex.aexecute("import time\ntime.sleep(30)"))
        await asyncio.sleep(0.3)
        victim = ex._worker
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        deadline = time.monotonic() + 10
        while victim.alive() and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert not victim.alive()  # the cancelled run's worker is killed, not left running
        out = await ex.aexecute("z = 3\nz")
        assert out.output == 3 and "Variables lost" in out.logs


async def test_a_worker_killed_mid_step_on_the_loop_path(pool):
    async with LocalPythonExecutor(["time"], pool=pool) as ex:
        await ex.aexecute("x = 1")
        task = asyncio.ensure_future(ex.aexecute("import time\ntime.sleep(20)"))
        await asyncio.sleep(0.3)
        proc = ex._worker.proc
        proc.server.kill_child(proc.rid)  # as the OOM killer would: not the host's own doing
        with pytest.raises(InterpreterError, match=r"killed \(SIGKILL"):
            await task
        assert (await ex.aexecute("1 + 1")).output == 2


def _two_workers(pool):
    a, b = LocalPythonExecutor(pool=pool), LocalPythonExecutor(pool=pool)
    a("1")
    b("1")
    return a, b


def test_a_late_exit_report_about_a_reused_pid_does_not_end_the_new_worker(pool):
    """After ~32k forks the kernel hands an ended worker's pid to a new one: inject that collision
    (B gets A's pid) and report A's end late; B must live on, and A be seen as gone."""
    a, b = _two_workers(pool)
    wa, wb = a.worker, b.worker
    server = wa.proc.server
    assert wb.proc.server is server and wa.proc.rid != wb.proc.rid
    wb.proc.pid = wa.proc.pid  # the collision
    server._handle({"op": "exit", "id": wa.proc.rid, "pid": wa.proc.pid, "code": -signal.SIGKILL})
    assert wa.proc.poll() == -signal.SIGKILL
    assert wb.alive() and b("2 + 2").output == 4
    # the fork server kills by request id, and only children it has not reaped: a kill for the
    # ended worker's id reaches nothing, one for B's id ends B
    wa.kill("test")
    server.kill_child(wa.proc.rid)
    time.sleep(0.3)
    assert wb.alive() and b("3 + 3").output == 6
    server.kill_child(wb.proc.rid)
    assert wb.proc.wait(timeout=10) == -signal.SIGKILL
    a.close()
    b.close()


def test_a_fork_reply_wakes_only_its_requester_and_exit_waiters_are_woken(pool, monkeypatch):
    ex = LocalPythonExecutor(pool=pool)
    ex("1")
    server = ex.worker.proc.server
    mine, other = threading.Lock(), threading.Lock()
    mine.acquire()
    other.acquire()
    with server._cond:
        server._forks[10**9], server._forks[10**9 + 1] = mine, other
    notified = []
    original = server._cond.notify_all
    monkeypatch.setattr(server._cond, "notify_all", lambda: (notified.append(1), original()))
    server._handle({"op": "forked", "id": 10**9, "pid": 0})
    assert not mine.locked() and other.locked()  # only the requester of that reply is released
    assert server._replies.pop(10**9)["pid"] == 0
    server._handle({"op": "exit", "id": 10**9 + 5, "pid": 1, "code": 0})
    assert notified == []  # nobody waits for an exit: nobody is woken
    with server._cond:
        server._forks.pop(10**9 + 1)
    # a thread waiting for an exit is woken by that exit (not by its timeout)
    got = []
    waiter = threading.Thread(target=lambda: got.append(server.wait_exit(10**9 + 7, 20)))
    start = time.monotonic()
    waiter.start()
    while not server._exit_waiters and time.monotonic() - start < 5:
        time.sleep(0.01)
    server._handle({"op": "exit", "id": 10**9 + 7, "pid": 1, "code": 5})
    waiter.join(10)
    assert got == [5] and time.monotonic() - start < 10
    ex.close()


def test_many_threads_forking_at_once_each_get_their_own_worker():
    big = WorkerPool(pool_size=0, max_workers=16)
    try:
        results: list = []

        def fork() -> None:
            ex = LocalPythonExecutor(pool=big)
            results.append((ex.worker.proc.rid, ex("2 * 21").output))
            ex.close()

        threads = [threading.Thread(target=fork) for _ in range(12)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert sorted(r[1] for r in results) == [42] * 12
        assert len({r[0] for r in results}) == 12
    finally:
        big.close()


def test_executors_with_the_same_arguments_share_policy_and_flavor(pool):
    a = LocalPythonExecutor(["math"], pool=pool, max_operations=1000)
    b = LocalPythonExecutor(["math"], pool=pool, max_operations=1000)
    c = LocalPythonExecutor(["math"], pool=pool, max_operations=2000)
    d = LocalPythonExecutor(["math"], pool=pool, max_operations=1000, memory_mb=1024)
    try:
        assert a.policy is b.policy and a._flavor is b._flavor
        assert c.policy.max_operations == 2000 and c._flavor is not a._flavor
        assert d.policy is a.policy and d._flavor is not a._flavor  # the limits differ
        assert a("sum(range(10))").output == 45
        with pytest.raises(InterpreterError, match="operation budget"):
            a("for i in range(5000): pass")
        assert c("for i in range(1500): pass\n7").output == 7
    finally:
        for ex in (a, b, c, d):
            ex.close()


async def test_instant_tools_and_the_state_fetch_are_served_on_the_loop(pool, driver_calls):
    from codeloop.tools.builtin import FinalAnswerTool

    class Instant:
        blocking = False  # (as Tool.acall would, the host runs it on the loop's thread)

        def __call__(self, x):
            seen.append(threading.current_thread() is threading.main_thread())
            return x * 2

    seen: list[bool] = []
    async with LocalPythonExecutor(pool=pool) as ex:
        ex.send_tools({"double": Instant(), "final_answer": FinalAnswerTool()})
        out = await ex.aexecute("y = double(21)\nz = double('ab')\nfinal_answer([y, z])")
        assert out.is_final_answer and out.output == [42, "abab"]
        assert seen == [True, True]
        assert await ex.astate() == {"y": 42, "z": "abab"}
        assert driver_calls == []


async def test_closing_the_executor_during_a_step_ends_the_step(pool):
    ex = LocalPythonExecutor(["time"], pool=pool, timeout_seconds=30)
    await ex.aexecute("x = 1")
    task = asyncio.ensure_future(ex.aexecute("import time\ntime.sleep(20)"))
    await asyncio.sleep(0.3)
    start = time.monotonic()
    await asyncio.get_running_loop().run_in_executor(None, ex.close)
    with pytest.raises(InterpreterError):
        await asyncio.wait_for(task, 15)
    assert time.monotonic() - start < 10  # not the run's 30 s deadline
    # the pool's other workers (their descriptors may reuse the closed one's numbers) are unharmed
    async with LocalPythonExecutor(pool=pool) as other:
        assert (await other.aexecute("6 * 7")).output == 42
