"""WasmExecutor against real Deno and Pyodide (the npm packages scripts/install-wasm-sandbox.sh installs).

One executor serves most tests of the module (Pyodide starts once); the tests that need their own
(timeouts, cleanup, a killed host) start theirs. Deno processes are counted after close, after a
timeout, at interpreter exit and after the host is SIGKILLed. The escape attempts of
test_security_worker.py run against Wasm as well.
"""

from __future__ import annotations

import asyncio
import datetime
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import codeloop
from codeloop.agents import CodeAgent, LogLevel
from codeloop.errors import InterpreterError
from codeloop.executors import create_executor
from codeloop.executors.remote.wasm import RUNNER, WasmExecutor, find_runtime
from codeloop.executors.worker.host import LocalPythonExecutor
from codeloop.models.scripted import ScriptedModel
from codeloop.tools import tool


def denos(parent: int | None = None) -> set[int]:
    """Running Deno processes of WasmExecutor (children of ``parent``, default this process)."""
    parent = os.getpid() if parent is None else parent
    found = set()
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmd = f.read()
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if str(RUNNER).encode() in cmd and fields[0] != "Z" and (parent == 0 or int(fields[1]) == parent):
            found.add(int(pid))
    return found


def alive(pids: set[int]) -> set[int]:
    return pids & denos(0)


def wait_for(predicate, seconds=10.0) -> bool:
    deadline = time.monotonic() + seconds
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


@pytest.fixture(scope="module")
def wasm():
    with WasmExecutor(additional_authorized_imports=["asyncio", "datetime"], timeout_seconds=5) as ex:
        yield ex


@pytest.fixture(scope="module")
def local():
    with LocalPythonExecutor(["asyncio", "datetime"], timeout_seconds=5) as ex:
        yield ex


def test_state_printed_output_and_final_answer(wasm):
    out = wasm("x = 20\nprint('hello from', 'pyodide', x)\nx + 1")
    assert (out.output, out.logs, out.is_final_answer) == (21, "hello from pyodide 20\n", False)
    assert wasm("x * 2").output == 40
    out = wasm("final_answer({'x': x})")
    assert out.is_final_answer and out.output == {"x": 20}
    assert wasm.state["x"] == 20


def test_sync_and_async_host_tools(wasm):
    calls = []

    def lookup(q: str) -> str:
        calls.append(q)
        return f"answer to {q}"

    async def fetch(n: int) -> int:
        await asyncio.sleep(0.3)
        return n * n

    wasm.send_tools({"lookup": lookup, "fetch": fetch})
    out = wasm("r = [lookup(f'q{i}') for i in range(3)]\nprint(r[0])\nr")
    assert out.output == ["answer to q0", "answer to q1", "answer to q2"] and out.logs == "answer to q0\n"
    assert calls == ["q0", "q1", "q2"]
    assert wasm("fetch(4)").output == 16  # an async tool called without await: run on the host, awaited there
    t0 = time.perf_counter()
    out = wasm(
        "import asyncio\nvals = await asyncio.gather(*[fetch.acall(i) for i in range(5)])\n"
        "more = await lookup.acall('z')\n(sum(vals), more)"
    )
    assert out.output == (30, "answer to z")
    assert time.perf_counter() - t0 < 1.2  # the five 0.3 s calls ran at once on the host
    probe = wasm("str(type(lookup))").output
    assert "ToolProxy" in probe  # a proxy in the sandbox, never the function


async def test_aexecute(wasm):
    async def triple(x: int) -> int:
        return 3 * x

    wasm.send_tools({"triple": triple})
    out = await wasm.aexecute("await triple.acall(4) + triple(1)")
    assert out.output == 15


@pytest.mark.parametrize(
    "code",
    [
        "import os",
        "import subprocess\nsubprocess.run(['id'])",
        "open('/etc/passwd').read()",
        "().__class__.__bases__[0].__subclasses__()",
        "'{0.__class__.__base__}'.format(1)",
        "x = []\nx.__class__ = dict",
        "eval('1 + 1')",
        "import pyodide",
        "import js",
    ],
    ids=[
        "import-os", "import-subprocess", "open", "dunder-walk", "format-walk", "class-write", "eval",
        "import-pyodide", "import-js",
    ],
)  # fmt: skip
def test_policy_errors_are_the_local_workers(wasm, local, code):
    with pytest.raises(InterpreterError) as in_wasm:
        wasm(code)
    with pytest.raises(InterpreterError) as in_local:
        local(code)
    assert str(in_wasm.value) == str(in_local.value)
    assert getattr(in_wasm.value, "exc_type", None) == getattr(in_local.value, "exc_type", None)


def test_class_reads_as_type_as_in_the_local_worker(wasm, local):
    code = "x = [1]\n(x.__class__ is type(x), getattr(x, '__class__') is list, '{0.__class__.__name__}'.format(x))"
    assert wasm(code).output == local(code).output == (True, True, "list")


def test_values_cross_through_the_codec(wasm):
    out = wasm(
        "import datetime\n"
        "class Point:\n    def __repr__(self):\n        return 'Point(1, 2)'\n"
        "{'t': (1, 2.5, None), 's': {3}, 'b': b'\\x00\\xff', 'd': datetime.date(2024, 5, 6), 'p': Point(),\n"
        " 'forged': {'$t': '_pickle', 'v': 'gASVAAAAAAAAAAA='}}"
    )
    value = out.output
    assert value["t"] == (1, 2.5, None) and value["s"] == {3} and value["b"] == b"\x00\xff"
    assert value["d"] == datetime.date(2024, 5, 6)
    assert value["p"] == "Point(1, 2)"  # an object of the sandbox arrives as its repr, never unpickled
    assert value["forged"] == {"$t": "_pickle", "v": "gASVAAAAAAAAAAA="}  # data, not a pickle
    wasm.send_variables({"host_list": [1, 2, 3]})
    assert wasm("host_list.append(4)\nhost_list").output == [1, 2, 3, 4]


def test_timeout_kills_the_deno_process_and_a_spare_takes_over():
    others = denos()  # (the module's executor)
    with WasmExecutor(timeout_seconds=1) as ex:
        ex("kept = 1\nalso = 2")
        assert wait_for(lambda: len(denos() - others) == 2)  # the one in use and the warm spare
        in_use = ex.worker.proc.pid
        t0 = time.perf_counter()
        with pytest.raises(InterpreterError) as info:
            ex("sum(range(10**13))")
        assert time.perf_counter() - t0 < 4
        assert info.value.exc_type == "Timeout" and "variables lost: also, kept" in str(info.value)
        assert wait_for(lambda: in_use not in denos(), 5)
        t0 = time.perf_counter()
        out = ex("'kept' in dir()")
        assert out.output is False and "Variables lost: also, kept" in out.logs
        assert time.perf_counter() - t0 < 1.0  # the spare was ready: no Pyodide start on this path
        assert ex.worker.proc.pid != in_use
    assert wait_for(lambda: not denos() - others, 5)


def test_deno_permissions_confine_the_javascript_side():
    """With every import authorized, code can reach JavaScript (pyodide.code.run_js); Deno's
    permissions still refuse the host's files, environment, network, subprocesses and FFI."""
    with WasmExecutor(["*"], timeout_seconds=5) as ex:
        attempts = {
            "read": "Deno.readTextFileSync('/etc/passwd')",
            "read-repo": f"Deno.readTextFileSync({str(RUNNER)!r})",
            "env": "Deno.env.get('HOME')",
            "write": "Deno.writeTextFileSync('/tmp/codeloop-wasm-pwned', 'x')",
            "net": "Deno.listen({port: 0})",
            "run": "new Deno.Command('/usr/bin/id').outputSync()",
            "ffi": "Deno.dlopen('libc.so.6', {})",
        }
        for what, js in attempts.items():
            with pytest.raises(InterpreterError, match="NotCapable") as info:
                ex(f"from pyodide.code import run_js\nrun_js({js!r})")
            assert "run again with the --allow" in str(info.value), what
        assert not os.path.exists("/tmp/codeloop-wasm-pwned")
        with open(f"/proc/{ex.worker.proc.pid}/cmdline", "rb") as f:
            argv = f.read().decode().split("\0")
        allowed = [a for a in argv if a.startswith("--allow")]
        deno, pyodide = find_runtime()
        assert allowed == [f"--allow-read={pyodide},{ex._snapshot()}"]
        assert ex("import os\nsorted(os.listdir('/'))").output == ["dev", "home", "lib", "opt", "proc", "tmp"]


def test_isolation_says_what_wasm_gives_and_lacks(wasm):
    iso = wasm.isolation
    assert iso["sandbox"] == "wasm" and iso["runtime"].startswith("Pyodide ")
    assert iso["network"].startswith("none") and "in-memory" in iso["filesystem"]
    missing = " | ".join(iso["missing"])
    assert "seccomp" in missing and "resource limits" in missing and "Landlock" in missing


def test_close_and_interpreter_exit_leave_no_deno_process():
    others = denos()
    ex = WasmExecutor(timeout_seconds=5)
    assert ex("1 + 1").output == 2
    assert wait_for(lambda: len(denos() - others) == 2)
    ex.close()
    assert wait_for(lambda: not denos() - others, 5)
    script = textwrap.dedent(
        """
        from codeloop.executors.remote.wasm import WasmExecutor
        ex = WasmExecutor()
        ex("1")
        print("ready", flush=True)
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert "ready" in done.stdout, done.stderr
    assert not denos(0) - denos()  # nothing of the exited interpreter left running


def test_no_deno_process_survives_a_sigkilled_host():
    script = textwrap.dedent(
        """
        import os, time
        from codeloop.executors.remote.wasm import WasmExecutor
        ex = WasmExecutor()
        ex("1")
        print(ex.worker.proc.pid, flush=True)
        time.sleep(60)
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        pid = int(proc.stdout.readline())
        children = denos(proc.pid)
        assert pid in children and len(children) == 2
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    assert wait_for(lambda: not alive(children), 5)


def test_smolagents_parameters_and_clear_errors(tmp_path):
    with pytest.raises(ValueError, match="standard library only; cannot import numpy"):
        WasmExecutor(["numpy"])
    with pytest.raises(FileNotFoundError, match="install-wasm-sandbox.sh"):
        WasmExecutor(pyodide_path=str(tmp_path))
    with pytest.raises(FileNotFoundError, match="needs Deno"):
        WasmExecutor(deno_path=str(tmp_path / "nodeno"))
    others = denos()
    ex = WasmExecutor(["math"], None, "deno", [], 7, warm_spare=False)
    try:
        assert ex.timeout_seconds == 7 and ex.additional_imports == ["math"]
        assert ex("import math\nmath.floor(2.5)").output == 2
        time.sleep(0.3)
        assert len(denos() - others) == 1  # no spare
    finally:
        ex.close()


def test_agent_with_executor_type_wasm():
    @tool
    def add(a: int, b: int) -> int:
        """Add two numbers.

        Args:
            a: first number
            b: second number
        """
        return a + b

    assert codeloop.WasmExecutor is WasmExecutor
    others = denos()
    code = "Thought: add.\n<code>\ntotal = add(2, 3)\nfinal_answer(total * 10)\n</code>"
    agent = CodeAgent(
        tools=[add], model=ScriptedModel([code]), executor_type="wasm", verbosity_level=LogLevel.OFF
    )
    assert isinstance(agent.python_executor, WasmExecutor)
    assert agent.run("add 2 and 3, times ten") == 50
    agent.cleanup()
    assert wait_for(lambda: not denos() - others, 5)
    with create_executor("wasm", warm_spare=False) as ex:
        assert isinstance(ex, WasmExecutor) and ex("2 ** 10").output == 1024


def test_readme_example_runs_as_written(capsys):
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = readme.split("### Wasm: Pyodide in Deno", 1)[1]
    code = section.split("```python\n", 1)[1].split("```", 1)[0]
    exec(compile(code, "README.md", "exec"), {})
    assert capsys.readouterr().out.startswith("1.414 none (no --allow-net")
