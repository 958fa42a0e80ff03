"""The fork server (zygote): a warm, confined process inside the sandbox that forks fresh workers.

Started by zygote.py on the host like a worker (same bubblewrap or self-confinement, seccomp filter,
scrubbed environment), it loads the worker's modules and the safe standard-library modules once, runs
no agent code ever, and then only answers fork requests on a unix socket (SOCK_SEQPACKET: one request,
one message). A request carries the new worker's pipes, its error-output file and its shared-memory
mailbox as SCM_RIGHTS descriptors, plus its uid, rlimits and policy. The forked child, before it runs
anything, gets its own scratch directory (mode 0700, owned by its own uid), its own rlimits, its own uid
(when the host is root: so RLIMIT_NPROC, file permissions and signals separate it from its siblings),
a reseeded ``random``, and dies with the fork server (PDEATHSIG). It then serves the host exactly as a
directly started worker does (child.serve).

Because every worker is forked from this clean process and is thrown away after one executor used
it, no run's globals, files, environment or process ever reach another run.

The fork server reaps its children and reports each exit status to the host (the host words the
usual "killed (SIGKILL; often the memory limit...)" message from it), and removes the child's scratch.

Standard library only; imported by the child with no package ``__init__`` run.
"""

from __future__ import annotations

import array
import gc
import json
import os
import select
import shutil
import signal
import socket
import sys
import tempfile
import time
from typing import Any

from codeloop.executors.worker import child, confine, shm
from codeloop.executors.worker.reaper import kill_uids

# Modules every worker needs, or that agent code imports most, loaded once here (forks share them).
_PRELOAD = (
    "codeloop.errors",
    "codeloop.executors.policy",
    "codeloop.executors.session",
    "codeloop.executors.worker.rpc",
    "codeloop.executors.worker.codec",
    "collections",
    "datetime",
    "decimal",
    "fractions",
    "itertools",
    "json",
    "math",
    "random",
    "re",
    "statistics",
    "string",
    "tempfile",  # (every worker points it at its own TMPDIR)
    "time",
    "unicodedata",
)
MAX_FDS = 8
_SWEEP_BATCH = 32  # ended workers whose uids are swept in one pass of /proc ...
_SWEEP_DELAY_MS = 100  # ... or after this long without a request


def serve_forks(cfg: dict[str, Any]) -> None:
    sock = socket.socket(fileno=int(cfg["zygote"]))
    # Dies with the host even unsandboxed (sandbox="none"; confine.apply sets this only with seccomp).
    confine._libc().prctl(confine._PR_SET_PDEATHSIG, 9, 0, 0, 0)
    report = confine.apply({**cfg, "uid": None, "keep_caps": True})
    if os.geteuid() == 0:
        _keep_only_fork_capabilities(report)
    root = cfg["scratch_root"]
    if cfg.get("fork_uids"):
        # Only the fork server (root) may create in the scratch root; each worker gets its own 0700
        # directory below it, and /tmp (a link into it) is not writable: TMPDIR names the worker's own.
        for path in (root, os.path.join(root, "tmp")):
            try:
                os.chown(path, 0, 0)
                os.chmod(path, 0o711)
            except OSError as exc:
                report["missing"].append(f"private scratch per worker: {exc}")
    for name in _PRELOAD:
        try:
            __import__(name)
        except Exception:  # noqa: BLE001 - a module missing here is simply imported later by code
            pass
    # Warm the code paths every worker runs (no agent code: a constant policy and constant code), so
    # what they set up lazily is shared by every fork instead of built again in each one.
    spare = None
    try:
        session_cls, policy_cls, interp_error = child._load_core()
        # (no time limit here: a deadline would start the watchdog thread, and this process must
        # stay single-threaded, since a fork copies a lock some other thread holds as held)
        warm = session_cls(policy_cls.from_dict({**cfg["policy"], "timeout_seconds": None}), own_process=True)
        for code in ("x = 1\nprint(x)", "final_answer(x)"):
            reply, _ = child._run(warm, {"code": code}, interp_error)
            child.pack_logged(reply, str(reply.pop("logs", "")))
        del warm
        # A fresh session for the policy most requests carry: a worker forked with that policy uses
        # its copy of it (never used here: this process runs no code in it) instead of building one.
        spare = session_cls(policy_cls.from_dict(cfg["policy"]), own_process=True)
    except Exception:  # noqa: BLE001
        pass
    # Everything loaded so far stays put: a worker's garbage collector never walks (and so never
    # copies) the pages the fork server shares with it.
    gc.collect()
    gc.freeze()
    wake_r, wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)  # a handler, so the wakeup fd is written
    scratches: dict[int, str] = {}
    uids: dict[int, int | None] = {}  # pid -> the worker's own uid (its leftovers are swept at exit)
    # The host names a worker by its fork request id: a pid is only unique until its child is reaped
    # (then the kernel may hand it to the next fork), so kills go through this map of unreaped ones.
    live: dict[int, int] = {}  # request id -> pid, until reaped
    rids: dict[int, int] = {}  # pid -> request id, until reaped
    leftovers: set[int] = set()  # uids of workers that ended, to sweep (one pass of /proc for many)
    first_left = 0.0  # when the oldest of them ended
    sock.send(json.dumps({"op": "hello", "isolation": report, "pid": os.getpid()}).encode())
    poller = select.poll()
    poller.register(sock.fileno(), select.POLLIN)
    poller.register(wake_r, select.POLLIN)
    while True:
        try:
            events = poller.poll(_SWEEP_DELAY_MS if leftovers else None)
        except InterruptedError:
            events = []
        for fd, _ in events:
            if fd == wake_r:
                try:
                    os.read(wake_r, 4096)
                except BlockingIOError:
                    pass
        _reap(sock, scratches, uids, leftovers, live, rids)
        if not leftovers:
            first_left = 0.0
        elif not first_left:
            first_left = time.monotonic()
        if leftovers and (
            len(leftovers) >= _SWEEP_BATCH or time.monotonic() - first_left >= _SWEEP_DELAY_MS / 1000
        ):
            _kill_uids(leftovers)
            leftovers.clear()
            first_left = 0.0
        if not any(fd == sock.fileno() for fd, _ in events):
            continue
        try:
            data, ancdata, _, _ = sock.recvmsg(65536, socket.CMSG_SPACE(MAX_FDS * 4))
        except InterruptedError:
            continue
        if not data:  # the host is gone
            return
        fds = array.array("i")
        for level, kind, payload in ancdata:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                fds.frombytes(payload[: len(payload) - len(payload) % fds.itemsize])
        try:
            req = json.loads(data)
        except ValueError:
            req = {}
        if req.get("op") == "kill":
            try:
                # a worker already reaped is not in ``live``: its pid may be someone else's by now
                os.kill(live[int(req["id"])], signal.SIGKILL)
            except (OSError, ValueError, KeyError, TypeError):
                pass
            _close(*fds)  # (its uid is swept when it is reaped, right after)
            continue
        if req.get("op") != "fork" or len(fds) < 3:
            _close(*fds)
            continue
        scratch = os.path.join(root, f"w{int(req['n'])}")
        try:
            pid = os.fork()
        except OSError as exc:
            _close(*fds)
            sock.send(json.dumps({"op": "forked", "id": req["id"], "error": str(exc)}).encode())
            continue
        if pid == 0:
            try:
                signal.set_wakeup_fd(-1)
                signal.signal(signal.SIGCHLD, signal.SIG_DFL)
                _close(wake_r, wake_w, sock.detach())
                fresh = spare if spare is not None and req.get("policy") == cfg["policy"] else None
                _become_worker(cfg, req, list(fds), scratch, report, fresh)
            finally:
                os._exit(70)
        scratches[pid] = scratch
        uids[pid] = req.get("uid")
        live[int(req["id"])], rids[pid] = pid, int(req["id"])
        _close(*fds)
        sock.send(json.dumps({"op": "forked", "id": req["id"], "pid": pid}).encode())


# What the fork server itself needs as root: chown a worker's scratch to the worker's uid, remove it
# afterwards (dac_override), set the worker's uid and groups, kill what is left of a worker.
_CAP_CHOWN, _CAP_DAC_OVERRIDE, _CAP_KILL, _CAP_SETGID, _CAP_SETUID = 0, 1, 5, 6, 7
_FORK_CAPS = (_CAP_CHOWN, _CAP_DAC_OVERRIDE, _CAP_KILL, _CAP_SETGID, _CAP_SETUID)


def _keep_only_fork_capabilities(report: dict[str, Any]) -> None:
    """Give up every capability but _FORK_CAPS, for good (the bounding set too); a forked worker
    loses those as well when it drops to its own uid (or confine._drop_capabilities)."""
    import struct

    libc = confine._libc()
    try:
        with open("/proc/sys/kernel/cap_last_cap") as f:
            last = int(f.read())
    except (OSError, ValueError):
        last = 63
    for cap in range(last + 1):
        if cap not in _FORK_CAPS:
            libc.prctl(confine._PR_CAPBSET_DROP, cap, 0, 0, 0)
    mask = sum(1 << c for c in _FORK_CAPS)
    header = struct.pack("<Ii", 0x20080522, 0)  # _LINUX_CAPABILITY_VERSION_3, this process
    data = struct.pack("<6I", mask, mask, 0, 0, 0, 0)  # effective, permitted, inheritable (x2 words)
    if libc.capset(header, data) != 0:
        report["missing"].append("fork server capabilities: capset failed; it keeps root's capabilities")
        return
    report["fork_server_capabilities"] = "chown, dac_override, kill, setgid, setuid (nothing else)"


def _reap(
    sock: socket.socket,
    scratches: dict[int, str],
    uids: dict[int, int | None],
    leftovers: set[int],
    live: dict[int, int],
    rids: dict[int, int],
) -> None:
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        rid = rids.pop(pid, None)
        live.pop(rid, None)  # type: ignore[arg-type]
        uid = uids.pop(pid, None)
        if uid is not None:  # what the worker started, even outside its process group: swept soon
            leftovers.add(uid)
        shutil.rmtree(scratches.pop(pid, ""), ignore_errors=True) if pid in scratches else None
        try:
            sock.send(
                json.dumps(
                    {"op": "exit", "id": rid, "pid": pid, "code": os.waitstatus_to_exitcode(status)}
                ).encode()
            )
        except OSError:
            return


def _become_worker(
    cfg: dict[str, Any], req: dict[str, Any], fds: list[int], scratch: str, report: dict, session: Any = None
) -> None:
    """In the forked child: take this worker's descriptors, scratch, limits and uid, then serve."""
    libc = confine._libc()
    libc.prctl(confine._PR_SET_PDEATHSIG, 9, 0, 0, 0)
    if os.getppid() == 1 and not cfg.get("pid_namespace"):
        os._exit(71)  # the fork server died while forking this one
    rfd, wfd, err = fds[0], fds[1], fds[2]
    os.dup2(err, 2)
    _close(err)
    uid = req.get("uid")
    os.mkdir(scratch, 0o700)
    os.mkdir(os.path.join(scratch, "tmp"), 0o700)
    if uid is not None:
        for d in (scratch, os.path.join(scratch, "tmp")):
            os.chown(d, uid, uid)
    os.chdir(scratch)
    os.umask(0o077)
    os.environ["HOME"] = scratch
    os.environ["TMPDIR"] = os.path.join(scratch, "tmp")
    tempfile.tempdir = None
    random = sys.modules.get("random")
    if random is not None:  # the fork server's state must not repeat in every worker
        random.seed()
    box = shm.attach(fds[3], host=False) if len(fds) > 3 else None
    _close(*fds[3:])
    own: dict[str, Any] = {"missing": []}
    confine._rlimits(req.get("rlimits") or {}, own, own["missing"])
    if uid is not None:
        os.setgroups([])
        os.setgid(uid)
        os.setuid(uid)
        own["user"] = "own unprivileged uid (no capabilities)"
    elif os.geteuid() == 0:
        confine._drop_capabilities(own, own["missing"])
    merged = {**report, **{k: v for k, v in own.items() if k != "missing"}}
    merged["missing"] = [*report.get("missing", []), *own["missing"]]
    merged["fork_server"] = "forked from a warm fork server; own process, scratch, limits" + (
        ", uid" if uid is not None else ""
    )
    own_cfg = {**cfg, "fds": [rfd, wfd], "policy": req["policy"], "rlimits": req.get("rlimits"), "uid": uid}
    own_cfg.pop("zygote", None)
    sys.argv[1:] = [json.dumps(own_cfg)]  # what a directly started worker sees there too
    child.serve(own_cfg, box, merged, session)


def _kill_uids(uids: set[int]) -> None:
    """SIGKILL every process of these workers' own uids (freezing them first, see reaper.py); with
    bubblewrap /proc shows this sandbox only, so a pass is short."""
    kill_uids(uids)


def _close(*fds: int) -> None:
    for fd in fds:
        try:
            os.close(fd)
        except OSError:
            pass
