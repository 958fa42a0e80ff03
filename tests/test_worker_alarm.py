"""In the isolated worker a run's deadline is a SIGALRM timer (limits._Alarm), not the watchdog thread:
a forked worker starts no thread, a loop of slow iterations still stops at the deadline with the usual
error (and the worker and its variables survive), and code that takes SIGALRM over is still stopped by
the host."""

from __future__ import annotations

import signal
import threading
import time

import pytest

from codeloop.errors import InterpreterError
from codeloop.executors import limits
from codeloop.executors.policy import Policy
from codeloop.executors.session import ExecutionSession
from codeloop.executors.worker.host import LocalPythonExecutor
from codeloop.executors.worker.pool import WorkerPool

SLOW_LOOP = "for i in range(1000):\n    sum(range(2_000_000))\n    done.append(i)"


@pytest.fixture
def pool():
    pool = WorkerPool(pool_size=0, max_workers=4, acquire_timeout=20)
    yield pool
    pool.close()


def test_worker_stops_slow_iterations_at_the_deadline_without_a_thread(pool):
    with LocalPythonExecutor(["threading"], pool=pool, timeout_seconds=1, max_operations=None) as ex:
        ex("keep = 1\ndone = []")
        start = time.perf_counter()
        with pytest.raises(InterpreterError, match="timeout_seconds") as info:
            ex(SLOW_LOOP)
        assert time.perf_counter() - start < 4
        assert info.value.exc_type == "Timeout"
        assert "variables lost" not in str(info.value)  # stopped in the worker, not killed by the host
        out = ex("import threading\nkeep, len(done) < 1000, threading.active_count()")
        assert out.output == (1, True, 1)  # the same worker, and no watchdog thread in it
        ex("done = []")
        with pytest.raises(InterpreterError, match="timeout_seconds"):  # armed again at the next run
            ex(SLOW_LOOP)
        assert ex("keep").output == 1


def test_code_that_takes_sigalrm_over_is_still_stopped_by_the_host(pool):
    with LocalPythonExecutor(["signal"], pool=pool, timeout_seconds=1, max_operations=None) as ex:
        ex("import signal\nsignal.signal(signal.SIGALRM, signal.SIG_IGN)\ndone = []")
        start = time.perf_counter()
        with pytest.raises(InterpreterError) as info:
            ex("signal.signal(signal.SIGALRM, signal.SIG_IGN)\n" + SLOW_LOOP)
        assert time.perf_counter() - start < 6
        assert info.value.exc_type == "Timeout"
        assert ex("2 + 2").output == 4


def test_a_session_of_its_own_process_uses_the_alarm_in_the_main_thread_only(monkeypatch):
    policy = Policy.from_args([], timeout_seconds=0.5, max_operations=None)
    session = ExecutionSession(policy, own_process=True)
    assert session._budget._watcher is limits._ALARM
    previous = signal.getsignal(signal.SIGALRM)
    try:
        session.run("done = []")
        installs = []
        monkeypatch.setattr(signal, "signal", lambda *args: installs.append(args))
        session.run("done = []")
        assert installs == []  # the handler is set once, not at every run
        monkeypatch.undo()
        with pytest.raises(InterpreterError, match="timeout_seconds"):
            session.run(SLOW_LOOP)
        assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)  # cleared when the run ended
        errors: list[BaseException] = []

        def in_a_thread() -> None:  # no SIGALRM there: the watchdog thread stops it
            try:
                session.run(SLOW_LOOP)
            except BaseException as exc:  # noqa: BLE001
                errors.append(exc)

        thread = threading.Thread(target=in_a_thread)
        thread.start()
        thread.join(10)
        assert len(errors) == 1 and "timeout_seconds" in str(errors[0])
        assert not limits._WATCHDOG._heap
    finally:
        signal.signal(signal.SIGALRM, previous)
    # a shared process (the in-process executor) keeps the watchdog thread
    assert ExecutionSession(policy)._budget._watcher is limits._WATCHDOG
