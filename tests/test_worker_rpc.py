"""Host-tool RPC paths of the isolated worker: which thread runs a tool, timeouts, large frames."""

from __future__ import annotations

import asyncio
import os
import threading
import time

import pytest

from codeloop.errors import InterpreterError
from codeloop.executors.worker.host import LocalPythonExecutor
from codeloop.executors.worker.protocol import READ_CHUNK, SPIN_SECONDS, FrameReader, Spinner, pack


def test_plain_function_calls_run_on_one_driver_thread_not_the_callers():
    seen: list[int] = []

    def tool(i):
        seen.append(threading.get_ident())
        return i * 2

    with LocalPythonExecutor() as ex:
        ex.send_tools({"tool": tool})
        out = ex("[tool(i) for i in range(50)]")
        assert out.output == [i * 2 for i in range(50)]
        assert ex("x = 1\nx").output == 1  # a run without calls stays on the calling thread
    assert len(seen) == 50
    assert len(set(seen)) == 1  # one hand-off per run, then every call inline on that thread
    assert seen[0] != threading.get_ident()


def test_a_tool_marked_non_blocking_runs_inline_on_the_calling_thread():
    seen: list[int] = []

    def instant(x):
        seen.append(threading.get_ident())
        return x + 1

    instant.blocking = False  # type: ignore[attr-defined]
    with LocalPythonExecutor() as ex:
        ex.send_tools({"instant": instant})
        assert ex("instant(1) + instant(2)").output == 5
    assert seen == [threading.get_ident()] * 2


def test_tool_errors_reach_the_code_on_every_route():
    def plain(x):
        raise ValueError(f"bad {x}")

    def instant(x):
        raise KeyError(x)

    instant.blocking = False  # type: ignore[attr-defined]

    class Async:
        async def acall(self, x):
            await asyncio.sleep(0)
            raise TypeError(f"async {x}")

    code = (
        "out = []\n"
        "for f, exc in ((plain, ValueError), (instant, KeyError), (aio, TypeError)):\n"
        "    try:\n"
        "        f(1)\n"
        "    except exc as e:\n"
        "        out.append(str(e))\n"
        "out"
    )
    with LocalPythonExecutor() as ex:
        ex.send_tools({"plain": plain, "instant": instant, "aio": Async()})
        assert ex(code).output == ["bad 1", "'1'", "async 1"]


def test_a_plain_tool_hanging_past_the_timeout_ends_the_run_and_spares_the_next_worker():
    release = threading.Event()
    finished = threading.Event()

    def hang():
        release.wait(20)
        finished.set()
        return "late"

    with LocalPythonExecutor(timeout_seconds=1) as ex:
        ex.send_tools({"hang": hang})
        start = time.perf_counter()
        with pytest.raises(InterpreterError) as info:
            ex("hang()")
        assert time.perf_counter() - start < 3
        assert info.value.exc_type == "Timeout"
        # the old driver thread is still inside the tool, holding the old worker's pipes
        assert ex("y = 41\ny + 1").output == 42
        release.set()
        assert finished.wait(5)
        time.sleep(0.2)  # the abandoned driver now closes the old pipes: the new worker must not care
        assert ex("y * 2").output == 82
        assert ex("[hang() for _ in range(3)]").output == ["late"] * 3


def test_large_values_cross_both_ways_in_pieces():
    def big(n):
        return "x" * n

    with LocalPythonExecutor() as ex:
        ex.send_tools({"big": big})
        out = ex("s = big(5_000_000)\nlen(s), s[:3]")
        assert out.output == (5_000_000, "xxx")
        assert len(ex("'y' * 3_000_000").output) == 3_000_000


def test_frame_reader_reads_large_frames_in_large_pieces_and_keeps_partial_tails():
    reader = FrameReader()
    assert reader.read_size() == READ_CHUNK
    small = pack({"op": "a"}) + pack({"op": "b"})
    large = pack({"op": "c", "data": "z" * (3 * READ_CHUNK)})
    out = reader.feed(small + large[:100])  # two whole frames and the head of a third
    assert [m["op"] for m in out] == ["a", "b"]
    assert reader.read_size() == len(large) - 100  # the rest of the pending frame, in one read
    assert [m["op"] for m in reader.feed(large[100:])] == ["c"]
    assert reader.read_size() == READ_CHUNK


def test_timeouts_and_crashes_after_a_tool_call_are_reported_and_recovered():
    def tool(x):
        return x

    with LocalPythonExecutor(["os", "signal"], timeout_seconds=1) as ex:
        ex.send_tools({"tool": tool})
        start = time.perf_counter()
        with pytest.raises(InterpreterError) as info:
            ex("tool(1)\nwhile True:\n    pass")  # the run is driven from a thread by then
        assert info.value.exc_type in ("Timeout", "OperationLimit")
        assert time.perf_counter() - start < 3
        assert ex("tool(2)").output == 2
        with pytest.raises(InterpreterError) as info:
            ex("tool(3)\nimport os, signal\nos.kill(os.getpid(), signal.SIGKILL)")
        assert info.value.exc_type == "WorkerDied"
        assert ex("tool(4) + 1").output == 5


async def test_aexecute_with_plain_and_async_tools_in_one_run():
    loop_ids: list[int] = []

    class Async:
        async def acall(self, x):
            loop_ids.append(id(asyncio.get_running_loop()))
            return x * 10

    def plain(x):
        return x + 1

    async with LocalPythonExecutor(["asyncio"]) as ex:
        ex.send_tools({"plain": plain, "aio": Async()})
        out = await ex.aexecute(
            "import asyncio\n"
            "a = [plain(i) for i in range(5)]\n"
            "b = await asyncio.gather(*[aio.acall(i) for i in range(5)])\n"
            "a, b, aio(7), await plain.acall(1)"
        )
    assert out.output == ([1, 2, 3, 4, 5], [0, 10, 20, 30, 40], 70, 2)
    assert set(loop_ids) == {id(asyncio.get_running_loop())}  # awaited on the caller's loop


def test_a_tool_raising_systemexit_fails_the_call_not_the_host():
    def quits():
        raise SystemExit("bye")

    with LocalPythonExecutor() as ex:
        ex.send_tools({"quits": quits})
        out = ex("try:\n    quits()\nexcept RuntimeError as e:\n    r = str(e)\nr")
        assert "SystemExit: bye" in out.output
        assert ex("1 + 1").output == 2


def test_spinner_polls_briefly_then_backs_off_after_long_waits_and_recovers():
    r, w = os.pipe()

    def long_wait(spinner: Spinner) -> None:  # what a caller does after ready() said False
        time.sleep(0.003)
        spinner.settle()

    try:
        spinner = Spinner(r)
        start = time.perf_counter()
        assert not spinner.ready()  # nothing to read: gives up after the window, does not block
        assert time.perf_counter() - start < SPIN_SECONDS + 0.05
        long_wait(spinner)  # a miss then a long wait: the next wait blocks at once (no poll)
        os.write(w, b"x")
        assert not spinner.ready()
        long_wait(spinner)
        os.read(r, 1)
        assert not spinner.ready()  # polls, misses again: the next three waits block at once
        long_wait(spinner)
        os.write(w, b"x")
        assert [spinner.ready() for _ in range(4)] == [False, False, False, True]
        os.read(r, 1)
        assert not spinner.ready()  # the hit reset the back-off: it polls (and misses) again
        spinner.settle()  # ...and this blocking wait was short: the peer was only slow to wake up
        os.write(w, b"x")
        assert spinner.ready()  # so it polls on the next wait at once
        os.close(w)
        os.read(r, 1)
        assert spinner.ready()  # end of file counts as readable, so a dead peer is noticed at once
    finally:
        os.close(r)
        try:
            os.close(w)
        except OSError:
            pass


def test_fast_and_slow_tool_calls_mixed_in_one_run_keep_their_answers():
    # Slow calls make both sides' polling miss and back off; fast ones make it hit again.
    def fast(i):
        return i + 1

    def slow(i):
        time.sleep(0.003)
        return -i

    with LocalPythonExecutor() as ex:
        ex.send_tools({"fast": fast, "slow": slow})
        code = "[slow(i) if i % 7 == 0 else fast(i) for i in range(120)]"
        assert ex(code).output == [-i if i % 7 == 0 else i + 1 for i in range(120)]
        time.sleep(0.05)  # an idle pause between runs, then back-to-back runs
        assert [ex(f"fast({i})").output for i in range(20)] == [i + 1 for i in range(20)]
