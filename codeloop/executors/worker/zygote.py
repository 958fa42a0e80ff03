"""Host side of the fork server (forkserver.py): start it in the sandbox, ask it for fresh workers.

A fork request costs a fork of a warm interpreter instead of a sandbox start (bubblewrap, a new
Python, its imports: 60-115 ms here). The host makes each worker's pipes, error-output file and
mailbox itself and passes them with SCM_RIGHTS, picks its uid, and keeps killing in its own hands:
every process of a worker's uid is SIGKILLed from the host (with no uid of its own, the fork server
is asked to kill it). A thread reads the fork server's replies and exit reports; a fork server that
dies is noticed there (its workers die with it: PDEATHSIG, and with bubblewrap the pid namespace).
"""

from __future__ import annotations

import array
import functools
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from dataclasses import replace
from typing import Any

from codeloop.executors.worker import shm
from codeloop.executors.worker.process import _SPAWNER, WorkerDied, WorkerProcess, _kill_uid
from codeloop.executors.worker.sandbox import Limits, SandboxPlan, plan_sandbox

__all__ = ["ForkServer", "ForkedProc"]

START_TIMEOUT = 30.0


class ForkServer:
    """One fork server process (per sandbox mode and scratch size); thread-safe."""

    def __init__(self, sandbox: str, scratch_mb: int, policy: dict[str, Any]):
        self.sandbox = sandbox
        host_end, server_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self._sock = host_end
        # re-entrant: a LocalPythonExecutor's __del__ (garbage collection inside fork's json.dumps) kills its
        # worker through kill_child in the same thread; each send is one whole SEQPACKET message
        self._lock = threading.RLock()
        self._cond = threading.Condition()
        self._replies: dict[int, dict[str, Any]] = {}
        self._exits: dict[int, int] = {}
        self._on_exit: dict[int, Any] = {}  # pid -> called once that worker's end is reported
        self._next = 0
        self.dead = False
        self.hello: dict[str, Any] | None = None
        self.plan: SandboxPlan = plan_sandbox(
            limits=Limits(scratch_mb=scratch_mb, open_files=None, memory_mb=None, processes=None),
            timeout=None,
            sandbox=sandbox,
            fds=(-1, -1),
            policy=policy,
            zygote_fd=server_end.fileno(),
        )
        if not self.plan.child_cfg.get("fork_uids"):
            self.plan.host_report["missing"].append(
                "a uid per forked worker: workers of one fork server share its uid, so a worker could read "
                "another's scratch files or signal it (each gets its own when the host runs as root and, without "
                "bubblewrap, the Python installation is readable by other uids)"
            )
        fs = self.plan.host_report.get("filesystem")
        if fs:
            self.plan.host_report["filesystem"] = fs.replace(
                "scratch as cwd and /tmp",
                "scratch (shared by the fork server's workers), in it a 0700 directory "
                "per worker as cwd, HOME and TMPDIR; /tmp not writable",
            )
        # Said plainly: what forked workers still share (not "missing": each is bounded, see README).
        self.plan.host_report["shared_by_forked_workers"] = (
            f"the fork server's str hash secret (set when an interpreter starts; a running one cannot change "
            f"it: random is reseeded in each worker) and its {scratch_mb} MB scratch tmpfs (each file is capped "
            "by file_size_mb, but not a worker's total: one worker filling it makes the others' writes fail "
            "until it ends)"
        )
        self._stderr = tempfile.TemporaryFile(prefix="codeloop-forkserver-err-")
        try:
            popen = functools.partial(
                subprocess.Popen,
                self.plan.argv,
                env=self.plan.env,
                cwd=self.plan.cwd,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=self._stderr,
                pass_fds=(server_end.fileno(),),
                start_new_session=True,
            )
            # dies with the thread that started it (PDEATHSIG, --die-with-parent): a thread that lives on
            self.proc = _SPAWNER.submit(popen).result()
        finally:
            server_end.close()
        self._reader = threading.Thread(target=self._read, name="codeloop-forkserver", daemon=True)
        self._reader.start()
        with self._cond:
            self._cond.wait_for(lambda: self.hello is not None or self.dead, START_TIMEOUT)
        if self.hello is None:
            self.close()
            raise WorkerDied(f"the fork server did not start: {self._stderr_tail() or 'no output'}")

    # -- the reader thread -------------------------------------------------------------------
    def _read(self) -> None:
        sock = self._sock
        while True:
            try:
                data = sock.recv(65536)
            except OSError:
                data = b""
            if not data:
                break
            try:
                msg = json.loads(data)
            except ValueError:
                continue  # the fork server runs no agent code, but a bad message is still only dropped
            then = None
            with self._cond:
                op = msg.get("op")
                if op == "hello":
                    self.hello = msg
                elif op == "forked":
                    self._replies[int(msg["id"])] = msg
                elif op == "exit":
                    pid = int(msg["pid"])
                    then = self._on_exit.pop(pid, None)
                    if then is None:  # (a worker closed with a callback is forgotten at once)
                        self._exits[pid] = int(msg["code"])
                self._cond.notify_all()
            if then is not None:
                _call(then, int(msg["code"]))
        with self._cond:
            self.dead = True
            pending, self._on_exit = list(self._on_exit.values()), {}
            self._cond.notify_all()
        for then in pending:  # its workers died with it
            _call(then, -signal.SIGKILL)

    # -- forking -----------------------------------------------------------------------------
    def fork(self, limits: Limits, timeout: float | None, policy: dict[str, Any]) -> WorkerProcess:
        """A fresh worker (not yet greeted: see WorkerProcess.wait_hello)."""
        if self.dead:
            raise WorkerDied("the fork server is gone")
        c_read, h_write = os.pipe()
        h_read, c_write = os.pipe()
        err = tempfile.TemporaryFile(prefix="codeloop-worker-err-")
        shm_fd = shm.create()
        passed = [c_read, c_write, err.fileno()] + ([shm_fd] if shm_fd is not None else [])
        uid = 1_000_000_000 + secrets.randbelow(1_000_000_000) if self.plan.child_cfg.get("fork_uids") else None
        with self._lock:
            self._next += 1
            rid = self._next
            req = {
                "op": "fork",
                "id": rid,
                "n": rid,
                "uid": uid,
                "rlimits": limits.rlimits(timeout, own_uid=uid is not None),
                "policy": policy,
            }
            try:
                self._sock.sendmsg(
                    [json.dumps(req).encode()],
                    [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", passed).tobytes())],
                )
            except OSError as exc:
                self.dead = True
                for fd in (*passed[:2], h_read, h_write, *passed[3:]):
                    os.close(fd)
                err.close()
                raise WorkerDied(f"the fork server is gone ({exc})") from None
        os.close(c_read)
        os.close(c_write)
        with self._cond:
            self._cond.wait_for(lambda: rid in self._replies or self.dead, START_TIMEOUT)
            reply = self._replies.pop(rid, None)
        if reply is None or "pid" not in reply:
            for fd in (h_read, h_write, *passed[3:]):
                os.close(fd)
            err.close()
            why = reply.get("error") if reply else "it is gone or did not answer"
            raise WorkerDied(f"the fork server could not fork a worker ({why})")
        scratch = (
            "" if self.plan.child_cfg.get("pid_namespace") else os.path.join(self.plan.scratch, f"w{rid}")
        )
        plan = replace(self.plan, uid=uid, scratch=scratch, host_report=dict(self.plan.host_report))
        proc = ForkedProc(self, int(reply["pid"]), uid)
        box = shm.attach(shm_fd, host=True)
        if shm_fd is not None:
            os.close(shm_fd)
        return WorkerProcess.adopt(proc, plan, h_read, h_write, box, err)

    # -- one forked worker's status, kill --------------------------------------------------
    def exit_code(self, pid: int) -> int | None:
        with self._cond:
            if pid in self._exits:
                return self._exits[pid]
            return -signal.SIGKILL if self.dead else None

    def wait_exit(self, pid: int, timeout: float | None) -> int | None:
        with self._cond:
            self._cond.wait_for(lambda: pid in self._exits or self.dead, timeout)
        return self.exit_code(pid)

    def forget(self, pid: int) -> None:
        with self._cond:
            self._exits.pop(pid, None)

    def kill_child(self, pid: int, then: Any = None) -> None:
        """Ask the fork server to SIGKILL a worker; ``then(exit code)`` is called (on the reader
        thread, or here if it is already gone) once its end is reported."""
        if then is not None:
            with self._cond:
                code = self._exits.pop(pid, -signal.SIGKILL if self.dead else None)
                if code is None:
                    self._on_exit[pid] = then
            if code is not None:
                _call(then, code)
                return
        try:
            with self._lock:
                self._sock.send(json.dumps({"op": "kill", "pid": pid}).encode())
        except OSError:
            pass

    def alive(self) -> bool:
        return not self.dead and self.proc.poll() is None

    def close(self) -> None:
        """End the fork server and (through it) every worker it forked."""
        self.dead = self.dead or False
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except OSError:
            pass
        try:
            self.proc.kill()
            self.proc.wait(timeout=5)
        except (OSError, subprocess.TimeoutExpired):
            pass
        try:
            self._sock.close()
        except OSError:
            pass
        self._reader.join(timeout=2)
        self._stderr.close()
        if self.plan.scratch:
            shutil.rmtree(self.plan.scratch, ignore_errors=True)

    def _stderr_tail(self) -> str:
        try:
            self._stderr.seek(0)
            return self._stderr.read()[-2000:].decode("utf-8", "replace").strip()
        except (OSError, ValueError):
            return ""


def _call(then: Any, code: int) -> None:
    try:
        then(code)
    except Exception:  # noqa: BLE001 - the reader thread must go on (closing a worker cannot fail)
        pass


class ForkedProc:
    """What WorkerProcess needs of a Popen (poll, wait, kill, returncode) for a forked worker."""

    def __init__(self, server: ForkServer, pid: int, uid: int | None):
        self.server, self.pid, self.uid = server, pid, uid
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None:
            self.returncode = self.server.exit_code(self.pid)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        if self.returncode is None:
            self.returncode = self.server.wait_exit(self.pid, timeout)
        if self.returncode is None:
            raise subprocess.TimeoutExpired("worker", timeout or 0)
        self.server.forget(self.pid)
        return self.returncode

    def kill(self, then: Any = None) -> None:
        """Ask the fork server to kill the worker and its uid's processes (see WorkerProcess.kill);
        ``then``: called once its end is reported (see ForkServer.kill_child)."""
        if then is not None:
            self.server.kill_child(self.pid, then)
        elif self.poll() is None:
            self.server.kill_child(self.pid)

    def sweep(self) -> None:
        """The host's own, slower sweep: when the fork server did not report the worker's end."""
        if self.uid is not None:
            _kill_uid(self.uid)

    def started(self) -> float:
        return time.perf_counter()
