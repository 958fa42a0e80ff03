"""E2BExecutor, ModalExecutor and BlaxelExecutor, at the SDK boundary.

The clouds cannot be reached from a test, so each SDK's sandbox class is replaced, at the SDK's own
import path (``e2b.Sandbox``, ``modal.App``/``Image``/``Sandbox``, ``blaxel.core.SyncSandboxInstance``),
by the stand-ins of codeloop.testing (same parameters, same return shapes, the real SDK's exception
and result classes), which run each sandbox command as a local process: the real worker runs behind
each executor's real transport code (the line relay for E2B and Blaxel, raw bytes for Modal). Every
SDK call is recorded, so the tests check what crossed into a "sandbox".
"""

from __future__ import annotations

import inspect
import json
import os
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass
from typing import Any

import pytest

from codeloop.agents import CodeAgent, LogLevel
from codeloop.errors import InterpreterError
from codeloop.executors.remote.cloud import SandboxConfigurationError, pip_requirements
from codeloop.executors.remote.textpipe import MARKER, LineDecoder
from codeloop.models.scripted import ScriptedModel
from codeloop.testing.blaxel_standin import BlaxelCloud
from codeloop.testing.e2b_standin import E2BCloud
from codeloop.testing.modal_standin import ModalCloud
from codeloop.tools import tool

CREDENTIALS = {
    "e2b": {"E2B_API_KEY": "e2b_test_key"},
    "modal": {"MODAL_TOKEN_ID": "ak-test", "MODAL_TOKEN_SECRET": "as-test"},
    "blaxel": {"BL_API_KEY": "bl_test_key", "BL_WORKSPACE": "test-ws"},
}
WRONG = {
    "e2b": {"E2B_API_KEY": "e2b_revoked"},
    "modal": {"MODAL_TOKEN_ID": "ak-test", "MODAL_TOKEN_SECRET": "as-wrong"},
    "blaxel": {"BL_API_KEY": "bl_revoked", "BL_WORKSPACE": "test-ws"},
}
# Should a stand-in ever not be in place, the real SDKs would reach 127.0.0.1:9 (refused), nothing else.
OFFLINE = {
    "E2B_API_URL": "http://127.0.0.1:9",
    "MODAL_SERVER_URL": "http://127.0.0.1:9",
    "HTTPS_PROXY": "http://127.0.0.1:9",
    "HTTP_PROXY": "http://127.0.0.1:9",
    "ALL_PROXY": "http://127.0.0.1:9",
}
CLOUDS = {"e2b": E2BCloud, "modal": ModalCloud, "blaxel": BlaxelCloud}
KILL = {"e2b": "Sandbox.kill", "modal": "Sandbox.terminate", "blaxel": "SyncSandboxInstance.delete"}
CREATE = {"e2b": "Sandbox.create", "modal": "Sandbox.create", "blaxel": "SyncSandboxInstance.create"}


def executor_class(backend: str) -> type:
    from codeloop.executors.remote import load

    return load(backend)


@dataclass
class Cloud:
    backend: str
    cloud: Any

    def make(self, *args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("timeout_seconds", 5)
        return executor_class(self.backend)(*args, **kwargs)

    @property
    def log(self) -> Any:
        return self.cloud.log

    def kills(self) -> int:
        return len(self.log.named(KILL[self.backend]))

    def creates(self) -> int:
        return len(self.log.named(CREATE[self.backend]))

    def local_processes(self) -> list[Any]:
        return [p for sb in self.cloud.sandboxes for p in sb._local.processes]


def _env(monkeypatch: pytest.MonkeyPatch, backend: str, values: dict[str, str] | None) -> None:
    for names in CREDENTIALS.values():
        for name in names:
            monkeypatch.delenv(name, raising=False)
    for name, value in {**OFFLINE, **(values or {})}.items():
        monkeypatch.setenv(name, value)


@pytest.fixture(params=["e2b", "modal", "blaxel"])
def cloud(request, monkeypatch):
    backend = request.param
    _env(monkeypatch, backend, CREDENTIALS[backend])
    kwargs = {"duplicate_every": 3} if backend == "blaxel" else {}  # a log stream that sends lines twice
    c = CLOUDS[backend](**kwargs)
    with c.patch():
        yield Cloud(backend, c)
    for sb in c.sandboxes:  # never leave a process behind, whatever a test did
        sb._local.kill()


@pytest.fixture
def executor(cloud):
    ex = cloud.make()
    yield ex
    ex.close()


def test_state_printed_output_and_final_answer(cloud, executor):
    out = executor("x = 20\nprint('hello', x)\nx + 1")
    assert (out.output, out.logs, out.is_final_answer) == (21, "hello 20\n", False)
    out = executor("big = 'ab' * 50_000\nprint(len(big))\nx * 2")  # many relay lines (and duplicates on Blaxel)
    assert (out.output, out.logs) == (40, "100000\n")
    assert executor("big[-3:]").output == "bab"
    final = executor("final_answer({'x': x, 'n': len(big)})")
    assert final.is_final_answer and final.output == {"x": 20, "n": 100_000}
    assert executor.state["x"] == 20
    assert cloud.creates() == 1  # one sandbox served every step


def test_host_tool_from_code_and_nothing_secret_enters_the_sandbox(cloud, executor, monkeypatch):
    secret = "sk-tool-credential-0123456789"
    monkeypatch.setenv("OPENAI_API_KEY", secret)  # the host's own credentials, too
    calls = []

    def lookup(query: str) -> str:
        # TOOL-SOURCE-MARKER: this function's code must never be shipped
        calls.append(query)
        return f"result for {query} ({len(secret)})"

    executor.send_tools({"lookup": lookup})
    out = executor("r = lookup('paris')\nprint(r)\nr.upper()")
    assert calls == ["paris"] and out.output == "RESULT FOR PARIS (29)" and "result for paris" in out.logs
    assert executor("repr(lookup)").output == "<tool lookup>"  # a proxy, not the function
    blob = cloud.log.blob()
    assert b"TOOL-SOURCE-MARKER" not in blob and b"def lookup" not in blob
    assert secret.encode() not in blob
    for name in CREDENTIALS[cloud.backend].values():  # the SDK's own key is the SDK's business, not the sandbox's
        assert name.encode() not in blob
    if cloud.backend == "e2b":
        assert all(k["envs"] == {} for _, k in cloud.log.named("commands.run"))
    elif cloud.backend == "modal":
        assert all(k["env"] is None for _, k in cloud.log.named("Sandbox.exec"))
    else:
        assert all("env" not in a[0] for a, _ in cloud.log.named("process.exec"))


def test_policy_error_is_the_local_workers(cloud, executor):
    from codeloop.executors.worker import LocalPythonExecutor

    local = LocalPythonExecutor(timeout_seconds=5, sandbox="none")
    try:
        for code in ("import os\nos.listdir('/')", "(1).__class__.__subclasses__()", "open('/etc/passwd').read()"):
            with pytest.raises(InterpreterError) as remote_err:
                executor(code)
            with pytest.raises(InterpreterError) as local_err:
                local(code)
            assert str(remote_err.value) == str(local_err.value)
    finally:
        local.close()
    assert executor("1 + 1").output == 2  # a policy error does not cost the sandbox
    assert cloud.kills() == 0


def test_timeout_kills_and_replaces_the_sandbox_and_names_lost_variables(cloud):
    executor = cloud.make(timeout_seconds=2)
    try:
        executor("kept = 1\nalso = [2]")
        first = cloud.cloud.sandboxes[-1]
        t0 = time.monotonic()
        with pytest.raises(InterpreterError) as info:
            executor("sum(range(10**13))")
        assert time.monotonic() - t0 < 10
        message = str(info.value)
        assert "timed out after 2 seconds" in message and "also, kept" in message
        assert cloud.kills() == 1 and not first._local.alive
        out = executor("'kept' in dir()")
        assert out.output is False and "Variables lost: also, kept" in out.logs
        assert cloud.creates() == 2 and len(cloud.cloud.running()) == 1
    finally:
        executor.close()
    assert cloud.cloud.running() == []


def test_a_sandbox_the_cloud_ended_is_replaced(cloud, executor):
    executor("y = 5")
    cloud.cloud.sandboxes[-1]._local.kill()  # the cloud ended it (lifetime over), not codeloop
    deadline = time.monotonic() + 10
    while executor._worker.proc.poll() is None and time.monotonic() < deadline:  # the SDK's stream ends
        time.sleep(0.02)
    out = executor("2 + 2")
    assert out.output == 4 and "Variables lost: y" in out.logs
    assert cloud.creates() == 2


def test_close_deletes_the_sandbox_and_leaves_no_process(cloud):
    executor = cloud.make()
    executor("1")
    assert len(cloud.cloud.running()) == 1
    executor.close()
    executor.close()  # twice is fine
    assert cloud.kills() == 1 and cloud.cloud.running() == []
    assert all(p.proc.poll() is not None for p in cloud.local_processes())
    with pytest.raises(InterpreterError, match="closed"):
        executor("1")


def test_isolation_says_what_the_backend_gives(cloud, executor):
    iso = executor.isolation
    assert iso["sandbox"] == cloud.backend and "vm" in iso and "credentials" in iso
    assert "seccomp" in iso and "rlimits" in iso  # the worker's own layers, inside the sandbox
    if cloud.backend == "e2b":
        assert iso["network"].startswith("no egress") and cloud.log.named("Sandbox.create")[0][1]["allow_internet_access"] is False
    elif cloud.backend == "modal":
        assert iso["network"].startswith("blocked") and cloud.log.named("Sandbox.create")[0][1]["block_network"]
    else:
        assert any(m.startswith("network") for m in iso["missing"])


def test_missing_and_rejected_credentials_fail_once_at_construction(cloud, monkeypatch):
    _env(monkeypatch, cloud.backend, None)
    with pytest.raises(SandboxConfigurationError) as missing:
        cloud.make()
    hint = {"e2b": "E2B_API_KEY", "modal": "MODAL_TOKEN_ID", "blaxel": "BL_API_KEY"}[cloud.backend]
    assert hint in str(missing.value)
    _env(monkeypatch, cloud.backend, WRONG[cloud.backend])
    with pytest.raises(SandboxConfigurationError) as wrong:
        cloud.make()
    assert hint in str(wrong.value) and ("rejected" in str(wrong.value) or "did not accept" in str(wrong.value))
    assert cloud.cloud.running() == [] and cloud.local_processes() == []


def test_authorized_imports_are_installed_with_the_sdks_mechanism(cloud):
    executor = cloud.make(additional_authorized_imports=["numpy", "sklearn.linear_model", "json"])
    try:
        # the stand-in's sandbox runs this interpreter, where numpy is installed
        assert executor("import numpy\nint(numpy.arange(5).sum())").output == 10
    finally:
        executor.close()
    if cloud.backend == "modal":
        assert cloud.log.named("Image.pip_install") == [(("numpy", "scikit-learn"), {})]
        return
    if cloud.backend == "e2b":
        pip = [a[0] for a, _ in cloud.log.named("commands.run") if "pip" in a[0]]
        create = cloud.log.named("Sandbox.create")[0][1]
        assert create["allow_internet_access"] is True  # only while installing:
        assert cloud.log.named("Sandbox.update_network") == [(({"deny_out": ["0.0.0.0/0"]},), {})]
    else:
        pip = [a[0]["command"] for a, _ in cloud.log.named("process.exec") if "pip" in a[0]["command"]]
    assert len(pip) == 1 and pip[0].endswith("--target /tmp/codeloop-site numpy scikit-learn")


def test_a_package_that_does_not_install_is_one_clear_error(monkeypatch):
    for backend in ("e2b", "blaxel"):
        _env(monkeypatch, backend, CREDENTIALS[backend])
        c = CLOUDS[backend](pip_failure="ERROR: No matching distribution found for nosuchpkg")
        with c.patch(), pytest.raises(SandboxConfigurationError, match="nosuchpkg.*No matching distribution"):
            executor_class(backend)(["nosuchpkg"], timeout_seconds=5)
        assert c.sandboxes and c.running() == []


def test_code_agent_runs_on_each_cloud_and_leaves_nothing(cloud):
    @tool
    def capital(country: str) -> str:
        """The capital of a country.

        Args:
            country: the country's name.
        """
        return {"France": "Paris"}.get(country, "?")

    replies = [
        "Thought: ask the tool.\n<code>\nc = capital('France')\nprint(c)\n</code>",
        "Thought: done.\n<code>\nfinal_answer(c + '!')\n</code>",
    ]
    agent = CodeAgent(
        tools=[capital],
        model=ScriptedModel(replies),
        executor_type=cloud.backend,
        executor_kwargs={"timeout_seconds": 10},
        verbosity_level=LogLevel.OFF,
    )
    assert agent.run("Capital of France?") == "Paris!"
    assert cloud.creates() == 1 and cloud.kills() == 1 and cloud.cloud.running() == []


def test_atexit_deletes_sandboxes_of_executors_never_closed(tmp_path):
    script = textwrap.dedent(
        f"""
        import atexit, json, os, sys
        os.environ.update({json.dumps({**OFFLINE, **{k: v for d in CREDENTIALS.values() for k, v in d.items()}})})
        from codeloop.testing.e2b_standin import E2BCloud
        from codeloop.testing.modal_standin import ModalCloud
        from codeloop.testing.blaxel_standin import BlaxelCloud
        from codeloop.executors.remote import load
        clouds = {{"e2b": E2BCloud(), "modal": ModalCloud(), "blaxel": BlaxelCloud()}}
        kept = []
        for name, cloud in clouds.items():
            patch = cloud.patch()  # kept: the patch lasts as long as its context manager
            patch.__enter__()
            kept.append(patch)
            ex = load(name)(timeout_seconds=5)
            assert ex("40 + 2").output == 42
            kept.append(ex)
        pids = [p.pid for c in clouds.values() for s in c.sandboxes for p in s._local.processes]
        # runs after codeloop's own exit hook (atexit runs after threading's)
        atexit.register(lambda: open({str(tmp_path / "log.json")!r}, "w").write(json.dumps(
            {{"calls": {{n: c.log.names() for n, c in clouds.items()}}, "pids": pids}})))
        """
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    report = json.loads((tmp_path / "log.json").read_text())
    for backend, calls in report["calls"].items():
        assert calls.count(KILL[backend]) == 1, (backend, calls)
    time.sleep(0.2)
    for pid in report["pids"]:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def test_missing_sdk_names_the_extra(monkeypatch):
    from codeloop.executors.remote.e2b import E2BExecutor

    monkeypatch.setitem(sys.modules, "e2b", None)
    with pytest.raises(ImportError, match=r"pip install 'codeloop\[e2b\]'"):
        E2BExecutor()


def test_smolagents_names_and_parameters(monkeypatch):
    import codeloop

    for name in ("E2BExecutor", "ModalExecutor", "BlaxelExecutor"):
        cls = getattr(codeloop, name)
        params = list(inspect.signature(cls).parameters)
        assert params[:3] == ["additional_imports", "logger", "allow_pickle"], name
    assert {"app_name", "port", "create_kwargs"} <= set(inspect.signature(codeloop.ModalExecutor).parameters)
    assert {"sandbox_name", "image", "memory", "ttl", "region"} <= set(
        inspect.signature(codeloop.BlaxelExecutor).parameters
    )
    # E2B's **kwargs go to e2b.Sandbox.create; the executor's own options stay with the executor
    _env(monkeypatch, "e2b", CREDENTIALS["e2b"])
    c = E2BCloud()
    with c.patch():
        ex = codeloop.E2BExecutor(["math"], None, template="my-template", metadata={"team": "a"}, timeout_seconds=4)
        try:
            assert ex.timeout_seconds == 4 and ex.additional_imports == ["math"]
            create = c.log.named("Sandbox.create")[0][1]
            assert create["template"] == "my-template" and create["metadata"] == {"team": "a"} and create["timeout"] == 900
        finally:
            ex.close()


def _real(path: str) -> Any:
    module, _, attr = path.rpartition(":")
    obj: Any = __import__(module, fromlist=["_"])
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj


@pytest.mark.parametrize(
    "standin, real",
    [
        ("codeloop.testing.e2b_standin:_Commands.run", "e2b.sandbox_sync.commands.command:Commands.run"),
        ("codeloop.testing.e2b_standin:_Commands.send_stdin", "e2b.sandbox_sync.commands.command:Commands.send_stdin"),
        ("codeloop.testing.e2b_standin:_Handle.wait", "e2b.sandbox_sync.commands.command_handle:CommandHandle.wait"),
        ("codeloop.testing.e2b_standin:_Files.write", "e2b.sandbox_sync.filesystem.filesystem:Filesystem.write"),
        ("codeloop.testing.modal_standin:_Writer.write", "modal.io_streams:StreamWriter.write"),
        ("codeloop.testing.blaxel_standin:_Process.exec", "blaxel.core.sandbox.sync.process:SyncSandboxProcess.exec"),
        (
            "codeloop.testing.blaxel_standin:_Process.stream_logs",
            "blaxel.core.sandbox.sync.process:SyncSandboxProcess.stream_logs",
        ),
        (
            "codeloop.testing.blaxel_standin:_Process.write_stdin",
            "blaxel.core.sandbox.sync.process:SyncSandboxProcess.write_stdin",
        ),
        ("codeloop.testing.blaxel_standin:_Process.wait", "blaxel.core.sandbox.sync.process:SyncSandboxProcess.wait"),
    ],
)
def test_stand_ins_take_the_real_sdk_parameters(standin, real):
    assert _params(_real(standin)) == _params(_real(real))


def test_stand_in_classes_take_the_real_sdk_parameters():
    import blaxel.core
    import e2b
    import modal

    pairs = [
        (E2BCloud().Sandbox.create, e2b.Sandbox.create),
        (E2BCloud().Sandbox.update_network, e2b.Sandbox.update_network),
        (ModalCloud().App.lookup, modal.App.lookup),
        (ModalCloud().Image.debian_slim, modal.Image.debian_slim),
        (ModalCloud().Image.pip_install, modal.Image.pip_install),
        (BlaxelCloud().SyncSandboxInstance.create, blaxel.core.SyncSandboxInstance.create),
    ]
    for standin, real in pairs:
        assert _params(standin) == _params(real), real
    # Modal's create/exec: every parameter the stand-in names is the real one's (the rest go through **options)
    for standin, real in ((ModalCloud().Sandbox.create, modal.Sandbox.create), (ModalCloud().Sandbox.exec, modal.Sandbox.exec)):
        assert set(_params(standin)) - {"options"} <= set(_params(real))


def _params(fn: Any) -> list[str]:
    return [p for p in inspect.signature(fn).parameters if p not in ("self", "cls")]


def test_line_decoder_restores_bytes_drops_repeats_and_refuses_gaps():
    import base64

    lines = [f"{i:x} {base64.b64encode(bytes([i]) * 5).decode()}\n" for i in range(4)]
    text = "Welcome to the sandbox!\n" + MARKER + "\n" + "".join(lines)
    d = LineDecoder()
    got = b"".join(d.feed(text[i : i + 7]) for i in range(0, len(text), 7))  # split anywhere
    assert got == b"".join(bytes([i]) * 5 for i in range(4))
    assert d.preamble == ["Welcome to the sandbox!"]  # before the marker: not the worker's
    assert d.feed(lines[3] + MARKER + "\n") == b""  # sent again: dropped
    with pytest.raises(ValueError, match="skipped lines 4..5"):
        d.feed(f"6 {base64.b64encode(b'x').decode()}\n")
    d = LineDecoder()
    d.line(MARKER)
    with pytest.raises(ValueError, match="not the worker relay's"):
        d.feed("Traceback (most recent call last):\n")


def test_a_login_greeting_is_skipped_and_a_sandbox_without_python_fails_at_construction(monkeypatch, tmp_path):
    _env(monkeypatch, "e2b", CREDENTIALS["e2b"])
    missing = tmp_path / "no-python"
    missing.write_text("#!/bin/sh\necho 'bash: python3: command not found' >&2\nexit 127\n")
    missing.chmod(0o755)
    c = E2BCloud(greeting="Welcome to the sandbox!")
    with c.patch():
        ex = executor_class("e2b")(timeout_seconds=5)
        try:
            assert ex("6 * 7").output == 42
        finally:
            ex.close()
    c = E2BCloud(python=str(missing))
    with c.patch(), pytest.raises(SandboxConfigurationError, match="(?s)could not run codeloop's worker.*command not found"):
        executor_class("e2b")(timeout_seconds=5)
    assert c.sandboxes and c.running() == []


def test_pip_requirements_from_authorized_imports():
    assert pip_requirements(["numpy", "numpy.linalg", "sklearn.*", "PIL", "json", "os.path", "*", "bs4"]) == [
        "beautifulsoup4",
        "numpy",
        "pillow",
        "scikit-learn",
    ]


def test_the_readme_stand_in_example_runs_as_written():
    readme = open(os.path.join(os.path.dirname(__file__), "..", "README.md"), encoding="utf-8").read()
    start = readme.index("```python\nimport os\nfrom codeloop import CodeAgent, ScriptedModel")
    block = readme[start + len("```python\n") : readme.index("```\n", start + 10)]
    env = {**os.environ, **OFFLINE}
    proc = subprocess.run([sys.executable, "-c", block], capture_output=True, text=True, timeout=60, env=env)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[-2:] == ["42", "['Sandbox.create', 'commands.run', 'commands.send_stdin']"]


def test_every_sandbox_has_a_bounded_life_should_the_host_die(cloud, executor):
    """After a SIGKILL of the host nothing deletes the sandbox but the cloud: each one is created with
    a lifetime (E2B, Modal) or an idle rule (Blaxel) that ends it."""
    create = cloud.log.named(CREATE[cloud.backend])[0]
    if cloud.backend == "blaxel":
        assert create[0][0]["lifecycle"] == {
            "expiration_policies": [{"type": "ttl-idle", "value": "15m", "action": "delete"}]
        }
        assert create[0][0]["labels"] == {"created-by": "codeloop"}
    else:
        assert create[1]["timeout"] == 900


def test_egress_that_cannot_be_closed_is_reported(monkeypatch):
    _env(monkeypatch, "e2b", CREDENTIALS["e2b"])
    c = E2BCloud()

    def refuse(self, network, **opts):
        raise RuntimeError("network updates are not available on this plan")

    monkeypatch.setattr(c.Sandbox, "update_network", refuse)
    with c.patch():
        ex = executor_class("e2b")(["numpy"], timeout_seconds=5)
        try:
            missing = ex.isolation["missing"]
            assert any("egress: still open" in m and "not available on this plan" in m for m in missing)
        finally:
            ex.close()
