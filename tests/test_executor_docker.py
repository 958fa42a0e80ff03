"""DockerExecutor against a real Docker engine that the tests start (tests/docker_engine.py).

Containers are counted after close, after a timeout (kill and replace) and after the host process is
SIGKILLed; a locally built wheel is installed into a derived image; a CodeAgent runs a task with
executor_type="docker". The escape attempts of test_security_worker.py also run against Docker.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import zipfile

import pytest

import codeloop
from codeloop.agents import CodeAgent, LogLevel
from codeloop.errors import InterpreterError
from codeloop.executors import create_executor
from codeloop.models.scripted import ScriptedModel
from codeloop.tools import tool

sys.path.insert(0, os.path.dirname(__file__))
import docker_engine  # noqa: E402

from codeloop.executors.remote.docker import LABEL, DockerExecutor, _host_labels, sweep_containers  # noqa: E402


@pytest.fixture(scope="module")
def engine():
    return docker_engine.shared()


def make(engine, **kwargs):
    kwargs.setdefault("image_name", docker_engine.BASE_IMAGE)
    kwargs.setdefault("timeout_seconds", 5)
    return DockerExecutor(docker_host=engine.host, **kwargs)


def mine(engine):
    return engine.client.containers.list(all=True, filters={"label": f"codeloop.host_pid={os.getpid()}"})


def wait_for(predicate, seconds=10.0):
    deadline = time.monotonic() + seconds
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def test_runs_code_keeps_state_and_closes_its_container(engine):
    ex = make(engine, additional_authorized_imports=["os"])
    try:
        out = ex("x = 6\nprint('in docker')\nx * 7")
        assert (out.output, out.logs) == (42, "in docker\n")
        assert ex("x + 1").output == 7
        assert ex.state["x"] == 6
        assert len(mine(engine)) == 1
        iso = ex.isolation
        assert iso["sandbox"] == "docker" and iso["network"].startswith("none") and iso["missing"] == []
        assert "read-only root" in iso["filesystem"] and iso["user"].startswith("65534")
        assert "seccomp" in iso and "landlock" in iso and iso["pids"] == 64
        # what the container really is
        attrs = engine.client.containers.get(ex.worker.sandbox.container.id).attrs
        host = attrs["HostConfig"]
        assert host["NetworkMode"] == "none" and host["ReadonlyRootfs"] and host["CapDrop"] == ["ALL"]
        assert "no-new-privileges" in host["SecurityOpt"] and host["PidsLimit"] == 64
        assert host["Memory"] == 2048 * 1024 * 1024 and attrs["Config"]["User"] == "65534:65534"
        assert ex("import os\n(os.getuid(), os.getcwd())").output == (65534, "/tmp")
    finally:
        ex.close()
    assert wait_for(lambda: mine(engine) == [])


def test_tools_run_on_the_host_and_credentials_stay_there(engine, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-docker-test-secret")
    calls = []

    def weather(city: str) -> str:
        calls.append((city, os.getpid()))
        return f"sunny in {city}"

    with make(engine, additional_authorized_imports=["os"]) as ex:
        ex.send_tools({"weather": weather})
        ex.send_variables({"cities": ["Paris", "Oslo"]})
        out = ex("[weather(c) for c in cities]")
        assert out.output == ["sunny in Paris", "sunny in Oslo"]
        assert calls == [("Paris", os.getpid()), ("Oslo", os.getpid())]  # ran in this process
        env = ex("import os\ndict(os.environ)").output
        assert "OPENAI_API_KEY" not in env and "sk-docker-test-secret" not in str(env)


def test_timeout_kills_and_replaces_the_container(engine):
    with make(engine, timeout_seconds=1) as ex:
        ex("a = 1\nb = 2")
        first = ex.worker.sandbox.container.id
        t0 = time.perf_counter()
        with pytest.raises(InterpreterError) as info:
            ex("sum(range(10**13))")
        assert time.perf_counter() - t0 < 4
        assert info.value.exc_type == "Timeout" and "variables lost: a, b" in str(info.value)
        out = ex("'a' in dir()")
        assert out.output is False and "Variables lost: a, b" in out.logs
        assert wait_for(lambda: [c.id for c in mine(engine)] == [ex.worker.sandbox.container.id])
        assert ex.worker.sandbox.container.id != first
    assert wait_for(lambda: mine(engine) == [])


def test_crash_in_the_container_is_replaced(engine):
    with make(engine, additional_authorized_imports=["os", "signal"]) as ex:
        ex("v = 1")
        with pytest.raises(InterpreterError) as info:
            ex("import os, signal\nos.kill(os.getpid(), signal.SIGKILL)")
        assert info.value.exc_type == "WorkerDied" and "variables lost: v" in str(info.value)
        assert ex("1 + 1").output == 2
    assert wait_for(lambda: mine(engine) == [])


HOST = """
import os, sys, time
from codeloop.executors.remote.docker import DockerExecutor
ex = DockerExecutor(image_name={image!r}, docker_host={host!r}, timeout_seconds=5)
ex("x = 1")
print(os.getpid(), ex.worker.sandbox.container.id, flush=True)
time.sleep(60)
"""


def test_no_container_survives_a_sigkilled_host(engine):
    script = HOST.format(image=docker_engine.BASE_IMAGE, host=engine.host)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        pid, cid = proc.stdout.readline().split()
        assert engine.client.containers.get(cid).status == "running"
    finally:
        proc.kill()
        proc.wait()
    # the attach stream closed: the worker read end of file, exited, and the engine removed it
    assert wait_for(lambda: engine.client.containers.list(all=True, filters={"id": cid}) == [], 15)


def test_sweep_removes_containers_of_dead_hosts(engine):
    dead = subprocess.Popen(["true"])
    dead.wait()
    labels = _host_labels() | {"codeloop.host_pid": str(dead.pid), "codeloop.host_start": "1"}
    alive = engine.client.containers.run(
        docker_engine.BASE_IMAGE, ["sleep", "60"], detach=True, network_mode="none", labels=_host_labels()
    )
    orphan = engine.client.containers.run(
        docker_engine.BASE_IMAGE, ["sleep", "60"], detach=True, network_mode="none", labels=labels
    )
    try:
        assert sweep_containers(engine.client) == 1
        ids = {c.id for c in engine.client.containers.list(all=True, filters={"label": LABEL})}
        assert orphan.id not in ids and alive.id in ids
    finally:
        alive.remove(force=True)


def _wheel(tmp_path):
    path = tmp_path / "cl_demo_pkg-0.1-py3-none-any.whl"
    files = {
        "cl_demo_pkg/__init__.py": "VALUE = 'from a wheel'\ndef double(x):\n    return 2 * x\n",
        "cl_demo_pkg-0.1.dist-info/METADATA": "Metadata-Version: 2.1\nName: cl-demo-pkg\nVersion: 0.1\n",
        "cl_demo_pkg-0.1.dist-info/WHEEL": "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\n"
        "Tag: py3-none-any\n",
    }
    with zipfile.ZipFile(path, "w") as zf:
        for name, text in files.items():
            zf.writestr(name, text)
        zf.writestr(
            "cl_demo_pkg-0.1.dist-info/RECORD",
            "".join(f"{n},,\n" for n in files) + "cl_demo_pkg-0.1.dist-info/RECORD,,\n",
        )
    return str(path)


def test_authorized_import_installed_into_a_derived_image(engine, tmp_path):
    wheel = _wheel(tmp_path)
    with make(engine, additional_authorized_imports=["cl_demo_pkg"], packages=[wheel]) as ex:
        assert ex.image.startswith("codeloop-worker:")
        assert ex("import cl_demo_pkg\n(cl_demo_pkg.VALUE, cl_demo_pkg.double(21))").output == (
            "from a wheel",
            42,
        )
        with pytest.raises(InterpreterError, match="Import of socket is not allowed"):
            ex("import socket")  # the policy still applies
    # the same content reuses the image (no build)
    t0 = time.perf_counter()
    with make(engine, additional_authorized_imports=["cl_demo_pkg"], packages=[wheel]) as again:
        assert again.image == ex.image and time.perf_counter() - t0 < 3


def test_agent_with_executor_type_docker(engine):
    @tool
    def add(a: int, b: int) -> int:
        """Add two numbers.

        Args:
            a: first number
            b: second number
        """
        return a + b

    code = "Thought: add.\n<code>\ntotal = add(2, 3)\nfinal_answer(total * 10)\n</code>"
    agent = CodeAgent(
        tools=[add],
        model=ScriptedModel([code]),
        executor_type="docker",
        executor_kwargs={"image_name": docker_engine.BASE_IMAGE, "docker_host": engine.host},
        verbosity_level=LogLevel.OFF,
    )
    assert agent.run("add 2 and 3, times ten") == 50
    agent.cleanup()
    assert wait_for(lambda: mine(engine) == [])


def test_create_executor_and_exports(engine):
    assert codeloop.DockerExecutor is DockerExecutor
    with create_executor("docker", image_name=docker_engine.BASE_IMAGE, docker_host=engine.host) as ex:
        assert isinstance(ex, DockerExecutor) and ex("2 ** 10").output == 1024


def test_unreachable_engine_is_one_clear_error():
    with pytest.raises(RuntimeError, match="Could not connect to the Docker engine at unix:///nonexistent"):
        DockerExecutor(docker_host="unix:///nonexistent/docker.sock")


def test_loosened_container_settings_are_reported_missing(engine):
    with make(engine, container_run_kwargs={"network_mode": "host", "read_only": False, "user": "0"}) as ex:
        missing = " | ".join(ex.isolation["missing"])
        assert "network_mode='host'" in missing and "read-only root" in missing and "non-root user" in missing
        assert ex("1 + 1").output == 2


async def test_async_runs_and_concurrent_async_tools(engine):
    import asyncio

    async def fetch(n: int) -> int:
        await asyncio.sleep(0.2)
        return n * n

    with make(engine, additional_authorized_imports=["asyncio"]) as ex:
        ex.send_tools({"fetch": fetch})
        t0 = time.perf_counter()
        out = await ex.aexecute(
            "import asyncio\nvals = await asyncio.gather(*[fetch.acall(i) for i in range(5)])\nsum(vals)"
        )
        assert out.output == 30 and time.perf_counter() - t0 < 0.9  # the five calls ran at once on the host
