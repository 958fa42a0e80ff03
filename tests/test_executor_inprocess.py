"""InProcessExecutor and ExecutionSession: outputs, errors, state, tools, async, print capture."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from codeloop.errors import InterpreterError
from codeloop.executors import (
    CodeOutput,
    ExecutionSession,
    InProcessExecutor,
    Policy,
    create_executor,
    evaluate_python_code,
)


def test_last_expression_is_the_output():
    ex = InProcessExecutor()
    assert ex("x = 2\nx * 21") == CodeOutput(output=42, logs="", is_final_answer=False)
    # as in smolagents: the last statement's value, an assignment's value included
    assert ex("y = 3").output == 3
    assert ex("y += 4").output == 7
    assert ex("import math").output is None


def test_variables_persist_across_calls():
    ex = InProcessExecutor()
    ex("def inc(v):\n    return v + 1\ncount = 1")
    assert ex("count = inc(count)\ncount").output == 2
    assert ex.state["count"] == 2
    assert "__builtins__" not in ex.state and not any(k.startswith("__codeloop") for k in ex.state)


def test_final_answer_ends_the_code():
    ex = InProcessExecutor()
    out = ex("print('a')\nfinal_answer({'k': 1})\nprint('never')")
    assert out.is_final_answer and out.output == {"k": 1} and out.logs == "a\n"


def test_final_answer_cannot_be_swallowed():
    ex = InProcessExecutor()
    out = ex("try:\n    final_answer(5)\nexcept BaseException:\n    pass\nx = 1")
    assert out.is_final_answer and out.output == 5


def test_final_answer_tool_is_used_when_given():
    seen = []

    def final_answer(answer):
        seen.append(answer)
        return f"done: {answer}"

    ex = InProcessExecutor()
    ex.send_tools({"final_answer": final_answer})
    out = ex("final_answer('x')")
    assert seen == ["x"] and out.output == "done: x" and out.is_final_answer


def test_tools_are_called_and_listed():
    calls = []

    def search(q: str) -> str:
        calls.append(q)
        return q.upper()

    ex = InProcessExecutor(additional_functions={"helper": lambda: 7})
    ex.send_tools({"search": search})
    assert ex("search('hi') + str(helper())").output == "HI7"
    assert calls == ["hi"]
    assert set(ex.static_tools) == {"search", "helper"}


def test_error_names_line_type_and_keeps_logs():
    ex = InProcessExecutor()
    with pytest.raises(InterpreterError) as info:
        ex("print('before')\na = 1\nb = a + missing\n")
    err = info.value
    assert str(err) == (
        "Code execution failed at line 'b = a + missing' (line 3) due to: NameError: name 'missing' is not "
        "defined (The variable `missing` is not defined.)"
    )
    assert err.logs == "before\n" and err.exc_type == "NameError" and err.lineno == 3
    assert isinstance(err, ValueError)  # smolagents callers catch ValueError


def test_error_inside_function_points_at_the_agent_line():
    ex = InProcessExecutor()
    with pytest.raises(InterpreterError) as info:
        ex("def f(x):\n    y = x\n    return y / 0\nf(1)")
    # smolagents' phrase quotes the module-level statement; the lines say where it failed
    assert str(info.value) == (
        "Code execution failed at line 'f(1)' (line 3, called from line 4) due to: ZeroDivisionError: "
        "division by zero"
    )
    assert info.value.lineno == 3


def test_error_quotes_the_statements_of_its_line():
    ex = InProcessExecutor()
    cases = {
        "a = 1; b = a / 0": "'a = 1; b = a / 0' (line 1)",
        "x = 0\nfor i in range(3):\n    x += 1\n    y = i / 0": "'for i in range(3): ...' (line 4)",
        "def f():\n    return (lambda: 0).__globals__": "'def f(): ...' (line 2)",  # refused before it runs
        "t = '" + "x" * 300 + "' / 2": "'t = '" + "x" * 195 + "...' (line 1)",  # cut at 200
    }
    for code, where in cases.items():
        with pytest.raises(InterpreterError) as info:
            ex(code)
        assert str(info.value).startswith(f"Code execution failed at line {where} due to: "), str(info.value)


def test_syntax_error_is_reported_with_line():
    ex = InProcessExecutor()
    with pytest.raises(InterpreterError, match="Code parsing failed at line 2: SyntaxError") as info:
        ex("x = 1\nif x\n    pass")
    assert info.value.exc_type == "SyntaxError"


def test_exceptions_are_catchable_by_code():
    ex = InProcessExecutor()
    out = ex("try:\n    {}['k']\nexcept KeyError as e:\n    r = repr(e)\nr")
    assert out.output == "KeyError('k')"


def test_authorized_but_missing_module_names_the_package():
    # as in smolagents, the executor refuses at construction an authorized module that is not installed
    with pytest.raises(InterpreterError, match="Non-installed authorized modules: sklearn.*pip install scikit-learn"):
        InProcessExecutor(additional_authorized_imports=["sklearn"])


def test_additional_imports_are_usable():
    ex = InProcessExecutor(additional_authorized_imports=["numpy"])
    assert ex("import numpy as np\nfloat(np.arange(4).sum())").output == 6.0
    assert ex("from numpy import linalg\nround(float(linalg.norm([3, 4])), 3)").output == 5.0


def test_module_proxies_are_private_per_session():
    import math

    a, b = InProcessExecutor(), InProcessExecutor()
    a("import math\nmath.pi = 3")
    assert b("import math\nmath.pi").output == math.pi
    assert a("math.pi").output == 3


def test_module_proxies_have_no_getattr_hook_unless_they_need_one():
    # CPython does not specialize attribute reads on a module with a __getattr__ (math.sqrt would
    # cost three times as much): a proxy has one only while it waits to be filled, or for good where
    # its snapshot cannot be the whole story
    s = ExecutionSession(Policy.from_args(["asyncio"]))
    s.run("import math, json, asyncio")
    ns = s._namespace
    assert "__getattr__" not in vars(ns["math"]) and "__getattr__" not in vars(ns["json"])
    decoder = vars(ns["json"])["decoder"]  # met as an attribute: filled at its first read
    assert "__getattr__" in vars(decoder) and "JSONDecoder" not in vars(decoder)
    assert s.run("'JSONDecoder' in dir(json.decoder), json.decoder.JSONDecoder.__name__").output == (
        True,
        "JSONDecoder",
    )
    assert "__getattr__" not in vars(decoder) and "__dir__" not in vars(decoder)
    assert s.run("asyncio.run is not None").output is True
    assert "__getattr__" not in vars(ns["asyncio"])
    # builtins keeps its hook (only the guarded builtins exist for code)
    s2 = ExecutionSession(Policy.from_args(["builtins"]))
    s2.run("import builtins")
    assert "__getattr__" in vars(s2._namespace["builtins"])


def test_module_attribute_that_is_a_refused_module_is_missing_and_the_error_names_the_rule():
    ex = InProcessExecutor()
    # like a missing attribute for the code (hasattr, except AttributeError) ...
    assert ex("import typing\nhasattr(typing, 'sys'), hasattr(typing, 'List')").output == (False, True)
    assert ex("try:\n    typing.sys\nexcept AttributeError:\n    r = 'caught'\nr").output == "caught"
    # ... and when it ends the run, the message says which rule
    with pytest.raises(
        InterpreterError, match=r"Forbidden access to module: sys: 'typing.sys' is not an authorized import.*rule: authorized imports"
    ) as info:
        ex("typing.sys.modules")
    assert info.value.exc_type == "AttributeError"
    with pytest.raises(InterpreterError, match=r"from typing import sys.*rule: authorized imports"):
        ex("from typing import sys")
    # a plain missing attribute gets no such note
    with pytest.raises(InterpreterError) as info:
        ex("typing.nothing_here")
    assert "rule" not in str(info.value)


def test_submodule_imported_later_is_added_to_its_parents_proxy():
    ex = InProcessExecutor()
    ex("import json")
    assert ex("import json.tool\nhasattr(json, 'tool'), callable(json.tool.main)").output == (True, True)
    assert ex("from json import tool as t\nt is json.tool").output is True


def test_print_goes_to_capture_not_stdout(capsys):
    ex = InProcessExecutor()
    out = ex("print('x', 1, sep='-', end='!')\nprint()")
    assert out.logs == "x-1!\n"
    assert capsys.readouterr().out == ""


def test_print_cap_keeps_head_and_tail():
    ex = InProcessExecutor(max_print_outputs_length=100)
    out = ex("for i in range(1000):\n    print(i)")
    assert out.logs.startswith("0\n1\n2\n") and out.logs.endswith("998\n999\n") and "truncated" in out.logs


def test_print_cap_is_exact_on_the_one_string_fast_path():
    ex = InProcessExecutor(max_print_outputs_length=100)
    out = ex("for i in range(1000):\n    print(f'line {i}')")
    full = "".join(f"line {i}\n" for i in range(1000))
    assert out.logs.startswith(full[:50]) and out.logs.endswith(full[-50:]) and "truncated" in out.logs
    assert not out.logs.startswith(full[:51])


def test_print_has_cpythons_errors_and_signature():
    import builtins
    import inspect

    ex = InProcessExecutor()
    with pytest.raises(InterpreterError, match=r"'foo' is an invalid keyword argument for print\(\)"):
        ex("print('a', foo=1)")
    with pytest.raises(InterpreterError, match="sep must be None or a string, not int"):
        ex("print('a', sep=1)")
    session = ExecutionSession()
    code_print = session.builtins_for_module()["print"]
    assert inspect.signature(code_print) == inspect.signature(builtins.print)


def test_logs_are_per_run():
    ex = InProcessExecutor()
    ex("print('one')")
    assert ex("print('two')").logs == "two\n"


def test_concurrent_sessions_in_threads_keep_their_output():
    results = {}

    def work(n):
        ex = InProcessExecutor()
        out = ex(f"for i in range(2000):\n    print({n})\n'ok'")
        results[n] = out.logs

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for n in range(4):
        assert results[n] == f"{n}\n" * 2000


def test_top_level_await_sync_and_async():
    async def fetch(x):
        await asyncio.sleep(0)
        return x * 2

    ex = InProcessExecutor()
    ex.send_tools({"fetch": fetch})
    assert ex("r = await fetch(4)\nr").output == 8

    async def main():
        return await ex.aexecute("await fetch(5)")

    assert asyncio.run(main()).output == 10


def test_sync_call_works_inside_running_loop():
    ex = InProcessExecutor()

    async def main():
        return ex("1 + 1"), ex("import time\nx = 3\nx")

    a, b = asyncio.run(main())
    assert a.output == 2 and b.output == 3


def test_aexecute_does_not_block_the_loop():
    ex = InProcessExecutor()
    ticks = []

    async def ticker():
        for _ in range(5):
            ticks.append(1)
            await asyncio.sleep(0.01)

    async def main():
        t = asyncio.create_task(ticker())
        out = await ex.aexecute("import time\ntime.sleep(0.1)\n'done'")
        await t
        return out

    assert asyncio.run(main()).output == "done"
    assert len(ticks) == 5


def test_async_context_manager_and_create_executor():
    async def main():
        async with create_executor("inprocess") as ex:
            return await ex.aexecute("sum(range(5))")

    assert asyncio.run(main()).output == 10
    with create_executor("inprocess") as ex:
        assert ex.isolation["process"] is False
    with pytest.raises(ValueError, match="executor_type"):
        create_executor("nope")


def test_evaluate_python_code_like_smolagents():
    state = {"base": 10}
    result, is_final = evaluate_python_code(
        "print('hi')\nz = base + add(1)\nz", static_tools={"add": lambda v: v + 1}, state=state
    )
    assert (result, is_final) == (12, False)
    assert state["z"] == 12 and state["_print_outputs"] == "hi\n"
    result, is_final = evaluate_python_code("final_answer('ok')")
    assert (result, is_final) == ("ok", True)
    with pytest.raises(InterpreterError, match="Import of os"):
        evaluate_python_code("import os", authorized_imports=["math"])


def test_session_rejects_bad_names_and_overlap():
    s = ExecutionSession(Policy())
    with pytest.raises(ValueError, match="identifier"):
        s.add_tools({"not valid": print})
    s.add_tools({"t": len})
    with pytest.raises(ValueError, match="tool has that name"):
        s.add_variables({"t": 1})
    s.add_variables({"v": 1})
    s.add_tools({"v": len})  # a tool added later wins over a variable of that name
    assert s.run("v([1, 2])").output == 2


def test_own_process_recursion_limit():
    import sys

    before = sys.getrecursionlimit()
    s = ExecutionSession(Policy(max_recursion_depth=60), own_process=True)
    with pytest.raises(InterpreterError, match="RecursionError"):
        s.run("def f(n):\n    return f(n + 1)\nf(0)")
    assert s.run("def g(n):\n    return 0 if n == 0 else 1 + g(n - 1)\ng(40)").output == 40
    assert sys.getrecursionlimit() == before


def test_contextvar_changes_stay_inside():
    import decimal

    before = decimal.getcontext().prec
    ex = InProcessExecutor()
    assert ex("import decimal\ndecimal.getcontext().prec = 5\ndecimal.getcontext().prec").output == 5
    assert decimal.getcontext().prec == before


def test_private_attributes_on_own_objects_work():
    ex = InProcessExecutor()
    code = (
        "class Cache:\n"
        "    def __init__(self):\n"
        "        self._d = {}\n"
        "    def get(self, k):\n"
        "        return self._d.get(k)\n"
        "    def put(self, k, v):\n"
        "        self._d[k] = v\n"
        "c = Cache()\nc.put('a', 1)\n(c.get('a'), c._d, getattr(c, '_d'))"
    )
    assert ex(code).output == (1, {"a": 1}, {"a": 1})


def test_deadline_applies_to_awaits():
    async def slow():
        await asyncio.sleep(10)

    ex = InProcessExecutor(timeout_seconds=0.3)
    ex.send_tools({"slow": slow})
    with pytest.raises(InterpreterError, match="timeout_seconds"):
        ex("await slow()")


def test_cancelling_aexecute_stops_the_code():
    ex = InProcessExecutor(timeout_seconds=30, max_operations=None)

    async def main():
        task = asyncio.create_task(ex.aexecute("n = 0\nwhile True:\n    n += 1"))
        await asyncio.sleep(0.2)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        for _ in range(100):  # the code stops at its next tick and the session frees up
            if not ex.session._running:
                break
            await asyncio.sleep(0.02)
        return await ex.aexecute("n > 0")

    assert asyncio.run(main()).output is True


def test_generators_from_an_earlier_run_keep_working():
    ex = InProcessExecutor()
    ex("def count():\n    i = 0\n    while True:\n        yield i\n        i += 1\nc = count()")
    assert ex("[next(c) for _ in range(3)]").output == [0, 1, 2]
    assert ex("next(c)").output == 3


def test_aexecute_in_the_loop_thread_when_asked():
    ex = InProcessExecutor(offload_to_thread=False)

    async def main():
        loop_thread = threading.get_ident()
        ex.send_tools({"where": threading.get_ident})
        out = await ex.aexecute("where()")
        return out.output == loop_thread, (await ex.aexecute("await_free = 2\nawait_free")).output

    assert asyncio.run(main()) == (True, 2)


def test_aexecute_runs_code_in_a_code_thread_with_fast_and_slow_hand_off():
    ex = InProcessExecutor()

    async def main():
        loop_thread = threading.get_ident()
        ex.send_tools({"where": threading.get_ident})
        fast = await ex.aexecute("where()")  # finishes within the hand-off wait
        slow = await ex.aexecute("import time\ntime.sleep(0.05)\nwhere()")  # reported through a future
        return loop_thread, fast.output, slow.output

    loop_thread, fast, slow = asyncio.run(main())
    assert fast != loop_thread and slow != loop_thread


def test_aexecute_does_not_need_the_loops_default_pool():
    # Earlier the code ran in the loop's default pool: code waiting on work queued behind it there hung.
    import concurrent.futures

    ex = InProcessExecutor(timeout_seconds=5)
    release = threading.Event()

    async def main():
        loop = asyncio.get_running_loop()
        loop.set_default_executor(concurrent.futures.ThreadPoolExecutor(max_workers=1))
        blocker = loop.run_in_executor(None, release.wait, 10)  # the only default thread is busy
        try:
            out = await asyncio.wait_for(ex.aexecute("import time\ntime.sleep(0.01)\n41 + 1"), 5)
        finally:
            release.set()
            await blocker
        return out.output

    assert asyncio.run(main()) == 42


def test_many_blocking_actions_run_at_once():
    # More concurrent blocking actions than any default pool has threads (min(32, cpus + 4)): none
    # waits for another.
    executors = [InProcessExecutor() for _ in range(70)]

    async def main():
        start = asyncio.get_running_loop().time()
        outs = await asyncio.gather(
            *(ex.aexecute(f"import time\ntime.sleep(0.3)\n{i}") for i, ex in enumerate(executors))
        )
        return [o.output for o in outs], asyncio.get_running_loop().time() - start

    outputs, elapsed = asyncio.run(main())
    assert outputs == list(range(70))
    assert elapsed < 0.85, elapsed  # a pool of 32 threads needs 3 rounds of 0.3 s, one of 6 needs 12


@pytest.mark.parametrize("wait", [0.0, 1.0])  # 0: always through the future; 1 s: within the wait
def test_errors_and_final_answer_come_back_through_both_hand_off_paths(wait):
    ex = InProcessExecutor(handoff_wait=wait)

    async def main():
        with pytest.raises(InterpreterError, match="ZeroDivisionError") as info:
            await ex.aexecute("print('before')\n1 / 0")
        assert info.value.logs == "before\n"
        with pytest.raises(InterpreterError, match="StopIteration"):  # a Future refuses this exception
            await ex.aexecute("raise StopIteration")
        return await ex.aexecute("final_answer(7)")

    out = asyncio.run(main())
    assert out.is_final_answer and out.output == 7


def test_after_a_slow_action_the_next_is_handed_off_without_waiting(monkeypatch):
    from codeloop import _sync

    waits = []
    real = _sync.hand_off

    def recording(fn, *args, wait):
        waits.append(wait)
        return real(fn, *args, wait=wait)

    monkeypatch.setattr(_sync, "hand_off", recording)
    ex = InProcessExecutor(handoff_wait=0.02)

    async def main():
        await ex.aexecute("1")  # fast
        await ex.aexecute("import time\ntime.sleep(0.05)")  # slower than the wait
        await ex.aexecute("2")  # so this one does not block the loop at all
        await ex.aexecute("3")

    asyncio.run(main())
    assert waits == [0.02, 0.02, 0.0, 0.02]


def test_finished_runs_leave_no_deadline_behind_and_a_shorter_one_still_fires():
    """Runs take their deadline out of the shared watchdog when they end (else each would wake it
    once, a timeout later, in the middle of other code), and a run with an earlier deadline than
    the one the watchdog sleeps to still stops on time."""
    import threading

    from codeloop.executors import limits

    def own_entries() -> int:
        with limits._WATCHDOG._cond:
            return sum(1 for _, _, ref, _ in limits._WATCHDOG._heap if ref() is ex.session._budget)

    ex = InProcessExecutor(timeout_seconds=30)
    for i in range(200):
        ex(f"x = {i}")
    assert own_entries() == 0

    long_ex = InProcessExecutor(timeout_seconds=60, additional_authorized_imports=["time"])
    worker = threading.Thread(
        target=lambda: long_ex("import time\nfor _ in range(30):\n    time.sleep(0.05)")
    )
    worker.start()  # the watchdog now sleeps towards a deadline a minute away
    try:
        time.sleep(0.1)
        # slow iterations (each a C call) and no operation budget: only the watchdog stops this
        short = InProcessExecutor(timeout_seconds=0.5, max_operations=None)
        start = time.perf_counter()
        with pytest.raises(InterpreterError, match="timeout_seconds"):
            short("for i in range(1000):\n    sum(range(2_000_000))")
        assert time.perf_counter() - start < 3
    finally:
        worker.join()
