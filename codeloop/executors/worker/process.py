"""One worker process seen from the host: spawn, frame I/O with deadlines, kill, exit diagnosis.

The host reads the worker's pipe with ``poll`` (no descriptor-number limit, unlike ``select``) + ``os.read``, and sync tool calls from its
shared-memory mailbox (shm.py); it parses frames with protocol.py (JSON, or binary envelopes around
JSON), so nothing the worker sends can make the host run code. Killing is thorough: the
process group, and (when the worker has its own uid) every process of that uid, which catches
anything that forked and left the group; with bubblewrap the pid namespace dies with it anyway.
"""

from __future__ import annotations

import concurrent.futures
import functools
import os
import select
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from typing import Any

from codeloop.executors.worker import shm
from codeloop.executors.worker.protocol import (
    DOORBELL_FRAME,
    MAX_FRAME,
    RING,
    FrameReader,
    ProtocolError,
    Spinner,
    pack,
    parse_body,
    parse_box_call,
    write_frame,
)
from codeloop.executors.worker.reaper import kill_uids
from codeloop.executors.worker.sandbox import Limits, SandboxPlan, plan_sandbox

__all__ = ["WorkerProcess", "WorkerDied", "BoxCall"]


_SPAWNER = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="codeloop-worker-spawn")


# Mailbox flag reads before the Spinner takes over, after an answer through the mailbox: the next
# call from code usually comes within this many (a few microseconds), and the loop is cheaper than
# the Spinner's timed poll. Not before other waits: a frame on the pipe goes unnoticed meanwhile.
_PRESPIN = range(400)


BoxCall = tuple[int, str, str]  # (call id, tool name, argument): see protocol.parse_box_call


class WorkerDied(Exception):
    """The worker process ended or broke the protocol; ``str()`` says why."""


class WorkerProcess:
    def __init__(
        self,
        *,
        limits: Limits,
        timeout: float | None,
        sandbox: str,
        policy: dict[str, Any],
        max_frame: int = MAX_FRAME,
    ):
        self.started = time.perf_counter()
        c_read, h_write = os.pipe()
        h_read, c_write = os.pipe()
        shm_fd = shm.create()
        passed = (c_read, c_write) if shm_fd is None else (c_read, c_write, shm_fd)
        self.plan: SandboxPlan = plan_sandbox(
            limits=limits,
            timeout=timeout,
            sandbox=sandbox,
            fds=(c_read, c_write),
            policy=policy,
            shm_fd=shm_fd,
        )
        self._stderr = tempfile.TemporaryFile(prefix="codeloop-worker-err-")
        try:
            popen = functools.partial(
                subprocess.Popen,
                self.plan.argv,
                env=self.plan.env,
                cwd=self.plan.cwd,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=self._stderr,
                pass_fds=passed,
                start_new_session=True,
            )
            # The worker dies with the *thread* that started it (PR_SET_PDEATHSIG, bubblewrap's
            # --die-with-parent), so start it from a thread that lives as long as the process.
            self.proc = _SPAWNER.submit(popen).result()
        except BaseException:
            for fd in (*passed, h_read, h_write):
                os.close(fd)
            if self.plan.scratch:
                shutil.rmtree(self.plan.scratch, ignore_errors=True)
            raise
        finally:
            pass
        os.close(c_read)
        os.close(c_write)
        # The sync tool-call path (see shm.py); None: everything goes through the pipe.
        mailbox = shm.attach(shm_fd, host=True)
        if shm_fd is not None:
            os.close(shm_fd)  # the mapping stays
        self._setup(h_read, h_write, mailbox)

    @classmethod
    def adopt(
        cls, proc: Any, plan: SandboxPlan, h_read: int, h_write: int, mailbox: Any, stderr: Any
    ) -> WorkerProcess:
        """A worker started elsewhere (forked by the fork server, see zygote.py): ``proc`` has
        Popen's poll/wait/kill/returncode; the pipes, mailbox and error file are the host's ends."""
        self = cls.__new__(cls)
        self.started = time.perf_counter()
        self.plan, self.proc, self._stderr = plan, proc, stderr
        self._setup(h_read, h_write, mailbox)
        return self

    def _setup(self, h_read: int, h_write: int, mailbox: Any) -> None:
        self.mailbox = mailbox
        self.on_close: Any = None  # called once closed (the pool frees the worker's place)
        self.rfd, self.wfd = h_read, h_write
        self.reader = FrameReader(MAX_FRAME)
        self._pending: list[dict[str, Any]] = []
        self._write_lock = threading.Lock()
        self.hello: dict[str, Any] | None = None
        self.startup_seconds: float | None = None
        self.dead_reason: str | None = None
        self.killed_by_host: str | None = None  # why the host killed it, if it did
        self.closed = False
        self._spinner = Spinner(h_read)
        self._poll = select.poll()  # poll, not select: fds above 1024 are common under load
        self._poll.register(h_read, select.POLLIN)
        self._box_turn = False  # the last answer went through the mailbox (see next_frame)
        self.broken: str | None = None  # why a frame was invalid (reported by next_frame)
        self.eof = False  # the pipe reached end of file (the worker is gone)

    # -- I/O -------------------------------------------------------------------------------
    def send(self, message: dict[str, Any]) -> None:
        self._box_turn = False  # a run or request starts: no call through the mailbox is due at once
        self.send_frame(pack(message))

    def send_frame(self, data: bytes, box: bool = False) -> None:
        """Write one complete frame (``pack``, ``pack_result``); threads may send at once.
        ``box``: the answer to a call that came through the mailbox, which it goes back through."""
        posted = None
        if box and self.mailbox is not None:
            # No lock: the mailbox slot has one writer, the answer to the one call waiting there.
            posted = self.mailbox.post(data)
            self._box_turn = True
            if posted is False:
                return
        with self._write_lock:
            try:
                # posted: the worker blocks on the pipe, ring; None: not in the mailbox, send it here
                write_frame(self.wfd, DOORBELL_FRAME if posted else data)
            except OSError as exc:  # broken pipe: the worker is gone; the reader will see EOF
                raise WorkerDied(self.describe_exit()) from exc

    def next_frame(self, deadline: float | None, spin: bool = False) -> dict[str, Any] | BoxCall | None:
        """Next frame from the worker, or None when ``deadline`` (monotonic) passes first.

        ``spin``: poll briefly before blocking (the worker is expected to answer soon). A frame from
        the mailbox (a sync tool call) comes back with ``"box": True``: answer it with ``box=True``;
        the usual one, a call with one str argument, comes as a tuple (``protocol.parse_box_call``).
        """
        box = self.mailbox
        pending = self._pending
        while not pending:
            if self.broken:
                self.kill(f"the worker broke the protocol ({self.broken})")
                raise WorkerDied(self.describe_exit())
            if box is not None:
                lens, incoming = box.lens, box.incoming
                # after an answer through the mailbox, the next call likely comes there soon
                if spin and self._box_turn:
                    for _ in _PRESPIN:
                        if lens[incoming]:
                            break
                if lens[incoming]:
                    got = self._from_box()
                    if got is not None:
                        return got
                    continue
            if spin and self._spinner.ready(box, self._box_turn):  # data is there: read it without a select
                if box is not None and box.lens[box.incoming]:
                    continue
            else:
                if box is not None and box.away():
                    box.back()
                    continue  # a frame arrived in the mailbox meanwhile
                timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
                try:
                    ready = self._poll.poll(None if timeout is None else timeout * 1000)
                finally:
                    if box is not None:
                        box.back()
                if not ready:
                    return None
                if spin:
                    self._spinner.settle()
            if not self._read_pipe():
                raise WorkerDied(self.describe_exit())
        return pending.pop(0)

    def poll_frame(self) -> dict[str, Any] | BoxCall | None:
        """A frame that is already there (mailbox or pipe), without blocking: for a caller that waits
        for the pipe on an event loop (see evloop.py). None: none yet, or the worker ended or broke
        the protocol; ``next_frame`` then reports that (it may block to learn the exit status)."""
        box, pending = self.mailbox, self._pending
        while not pending:
            if self.broken or self.closed:  # (closed: its descriptor numbers may be another's now)
                return None
            if box is not None and box.lens[box.incoming]:
                got = self._from_box()
                if got is not None:
                    return got
                continue
            if not self._poll.poll(0) or not self._read_pipe():
                return None
        return pending.pop(0)

    def _from_box(self) -> dict[str, Any] | BoxCall | None:
        """The frame waiting in the mailbox (None: a doorbell, or nothing after all)."""
        try:
            data = self.mailbox.take()
            if data is None:
                return None
            call = parse_box_call(data)
            if call is not None:
                return call
            frame = parse_body(data, 4, len(data))
        except ProtocolError as exc:
            self.broken = str(exc)
            return None
        if frame is RING:
            return None
        frame["box"] = True
        return frame

    def _read_pipe(self) -> bool:
        """Read what the pipe holds into ``_pending`` (it is readable). False: end of file."""
        try:
            data = os.read(self.rfd, self.reader.read_size())
        except BlockingIOError:
            return True
        except OSError:
            data = b""
        if not data:
            self.eof = True
            return False
        self._box_turn = False
        try:
            frames = self.reader.feed(data)
        except ProtocolError as exc:
            self.broken = str(exc)
            return True
        for frame in frames:
            if frame["op"] != "doorbell":
                self._pending.append(frame)
        return True

    def wait_hello(self, timeout: float) -> dict[str, Any]:
        if self.hello is not None:
            return self.hello
        deadline = time.monotonic() + timeout
        while True:
            frame = self.next_frame(deadline)
            if frame is None:
                self.kill(f"the worker did not start within {timeout:g} s")
                raise WorkerDied(self.describe_exit())
            if frame["op"] == "hello":
                self.hello = frame
                self.startup_seconds = time.perf_counter() - self.started
                return frame

    # -- ending ----------------------------------------------------------------------------
    def _forked(self) -> bool:
        """Whether the fork server owns this worker's process (kills and exits go through it)."""
        return not isinstance(self.proc, subprocess.Popen)

    def alive(self) -> bool:
        return not self.closed and self.proc.poll() is None

    def kill(self, reason: str | None = None) -> None:
        if reason and self.killed_by_host is None:
            self.killed_by_host = reason
        if self.proc.poll() is None:
            if isinstance(self.proc, subprocess.Popen):  # (a forked worker's pid is another namespace's)
                try:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                except OSError:
                    pass
            try:
                self.proc.kill()
            except OSError:
                pass
        forked = self._forked()
        if self.plan.uid is not None and not forked:
            _kill_uid(self.plan.uid)
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            if forked:
                self.proc.sweep()

    def close(self, graceful: bool = True, wait: bool = True) -> None:
        """End the worker and free what it holds. A forked worker still running is asked to die (a
        message to its fork server); the rest happens when its end is reported, on the fork
        server's reader thread. ``wait=False``: return at once (a run's end need not wait for the
        kill's round trip; the pool frees the worker's place only once it is gone)."""
        if self.closed:
            return
        forked = self._forked()
        # (a forked worker is simply killed: it holds nothing that needs an orderly exit)
        # (a remote sandbox is not a Popen either: its kill() ends the sandbox, not only the worker)
        if graceful and isinstance(self.proc, subprocess.Popen) and self.proc.poll() is None:
            try:
                self.send({"op": "exit"})
                self.proc.wait(timeout=0.5)
            except (WorkerDied, subprocess.TimeoutExpired):
                pass
        if forked and self.proc.poll() is None:
            self.closed = True
            self._close_pipes()
            gone = threading.Event()

            def then(code: int) -> None:
                self.proc.returncode = code
                gone.set()
                self._closed()

            self.proc.kill(then=then)
            if wait and not gone.wait(5):
                self.proc.sweep()  # the fork server did not report it: the host's own sweep
            return
        self.kill()
        self.closed = True
        self._close_pipes()
        self._closed()

    def _close_pipes(self) -> None:
        for fd in (self.rfd, self.wfd):
            try:
                os.close(fd)
            except OSError:
                pass

    def _closed(self) -> None:
        """The process is gone: drop its error output and scratch, tell the pool."""
        self._stderr.close()
        if self.plan.scratch:
            shutil.rmtree(self.plan.scratch, ignore_errors=True)
        if self.on_close is not None:
            self.on_close(self)

    def describe_exit(self) -> str:
        """Human explanation of why the worker is gone (host kill reason, signal, exit code, stderr)."""
        if self.dead_reason:
            return self.dead_reason
        try:
            code = self.proc.wait(timeout=2)
        except subprocess.TimeoutExpired:
            self.kill()
            code = self.proc.returncode
        if self.killed_by_host:
            text = self.killed_by_host
        else:
            bwrap = self.plan.host_report.get("sandbox") == "bubblewrap" and isinstance(
                self.proc, subprocess.Popen
            )
            text = _exit_text(code, bwrap=bwrap)
            tail = self._stderr_tail()
            if tail:
                text += f"; its last error output was:\n{tail}"
        self.dead_reason = text
        return text

    def _stderr_tail(self, limit: int = 2000) -> str:
        try:
            self._stderr.seek(0, os.SEEK_END)
            size = self._stderr.tell()
            self._stderr.seek(max(0, size - limit))
            return self._stderr.read().decode("utf-8", "replace").strip()
        except (OSError, ValueError):
            return ""


_SIGNAL_TEXT = {
    signal.SIGXCPU: "the worker reached its CPU time limit",
    signal.SIGXFSZ: "the worker wrote a file larger than the file size limit",
    signal.SIGSEGV: "the worker crashed (segmentation fault)",
    signal.SIGABRT: "the worker aborted",
    signal.SIGKILL: "the worker was killed (SIGKILL; often the memory limit or the OOM killer)",
    signal.SIGBUS: "the worker crashed (bus error)",
}


def _exit_text(code: int | None, bwrap: bool) -> str:
    if code is None:
        return "the worker stopped responding"
    sig = -code if code < 0 else (code - 128 if bwrap and 128 < code < 160 else 0)
    if sig:
        try:
            name = signal.Signals(sig).name
        except ValueError:
            name = f"signal {sig}"
        return _SIGNAL_TEXT.get(sig, f"the worker was ended by {name}")
    return f"the worker process exited (exit code {code}; code called os._exit/exit or the worker failed)"


def _kill_uid(uid: int) -> None:
    """SIGKILL every process owned by ``uid`` (a uid only this worker uses). Root only; best effort."""
    kill_uids({uid})
