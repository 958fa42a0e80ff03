"""Confinement the worker applies to itself before it runs any agent code (child side).

Each layer is tried independently and reported: the returned dict says what is active and, under
"missing", what could not be applied and why. Nothing is silently skipped. Layers, in order:

1. resource limits (address space, CPU time, file size, open files, core dumps; process count when
   the worker runs under its own uid, because RLIMIT_NPROC counts every process of that uid),
2. a new network namespace (only when bubblewrap did not already give one): plain unshare as root,
   or a user namespace + network namespace otherwise,
3. dropping to an unprivileged uid/gid (when started as root and the host picked one); a worker that
   must stay uid 0 drops every capability instead,
4. Landlock: file access limited to the Python installation (read/execute) and the scratch
   directory (read/write); TCP connect/bind denied; signals and abstract unix sockets scoped to the
   worker,
5. a seccomp filter: socket() for anything but AF_UNIX, new namespaces (unshare, setns, clone with
   namespace flags; clone3 answers ENOSYS so libc falls back to clone), mount and the new mount API,
   ptrace, io_uring, bpf, keyctl, perf_event_open, userfaultfd, open_by_handle_at, process_vm_*,
   kernel modules and other syscall ABIs fail with EPERM: the kernel surface a sandbox escape needs.

Standard library only (ctypes for the syscalls); imported by the child with no package ``__init__``.
"""

from __future__ import annotations

import os
import struct
from typing import Any

try:
    import resource
except ModuleNotFoundError:  # WebAssembly (Pyodide): no resource limits, reported below
    resource = None  # type: ignore[assignment]

__all__ = ["apply"]

_CLONE_NEWUSER = 0x10000000
_CLONE_NEWNET = 0x40000000
_PR_SET_NO_NEW_PRIVS = 38
_PR_SET_PDEATHSIG = 1
_PR_CAPBSET_DROP = 24
_PR_CAP_AMBIENT, _PR_CAP_AMBIENT_CLEAR_ALL = 47, 4
_PR_SET_SECCOMP = 22
_SECCOMP_MODE_FILTER = 2

# arch -> (AUDIT_ARCH, syscall numbers); the seccomp filter is only installed on known architectures.
_NEW_MOUNT_API = [428, 429, 430, 431, 432, 433, 442]  # open_tree .. fspick, mount_setattr (same on both)
_ARCHES: dict[str, tuple[int, dict[str, int], list[int]]] = {
    "x86_64": (
        0xC000003E,
        {"socket": 41, "clone": 56, "clone3": 435, "landlock_create_ruleset": 444,
         "landlock_add_rule": 445, "landlock_restrict_self": 446},
        # ptrace, io_uring x3, unshare, setns, mount, umount2, pivot_root, keyctl, add_key, request_key,
        # bpf, userfaultfd, perf_event_open, open_by_handle_at, process_vm_readv/writev, kexec_load,
        # init_module, finit_module, delete_module
        [101, 425, 426, 427, 272, 308, 165, 166, 155, 250, 248, 249, 321, 323, 298, 304, 310, 311, 246,
         175, 313, 176, *_NEW_MOUNT_API,
         # iopl, ioperm, reboot, swapon, swapoff, sethostname, setdomainname, settimeofday, clock_settime,
         # adjtimex, clock_adjtime, chroot, syslog, setsid, setpgid, acct, quotactl, vhangup, mknod, mknodat
         172, 173, 169, 167, 168, 170, 171, 164, 227, 159, 305, 161, 103, 112, 109, 163, 179, 153, 133, 259],
    ),
    "aarch64": (
        0xC00000B7,
        {"socket": 198, "clone": 220, "clone3": 435, "landlock_create_ruleset": 444,
         "landlock_add_rule": 445, "landlock_restrict_self": 446},
        [117, 425, 426, 427, 97, 268, 40, 39, 41, 219, 217, 218, 280, 282, 241, 265, 270, 271, 104,
         105, 273, 106, *_NEW_MOUNT_API,
         142, 224, 225, 161, 162, 170, 112, 171, 266, 51, 116, 157, 154, 89, 60, 58, 33],
    ),
}  # fmt: skip
_CLONE_NS_FLAGS = 0x7E020000  # CLONE_NEWNS | NEWCGROUP | NEWUTS | NEWIPC | NEWUSER | NEWPID | NEWNET


def _libc() -> Any:
    import ctypes

    return ctypes.CDLL(None, use_errno=True)


def _errno_text() -> str:
    import ctypes

    return os.strerror(ctypes.get_errno())


def apply(cfg: dict[str, Any]) -> dict[str, Any]:
    """Apply the layers asked for in ``cfg`` (built by sandbox.py on the host); return the report."""
    report: dict[str, Any] = {"missing": []}
    missing: list[str] = report["missing"]
    if cfg.get("seccomp"):  # i.e. sandboxed at all: die with the host (bubblewrap does this for its child)
        _libc().prctl(_PR_SET_PDEATHSIG, 9, 0, 0, 0)
    _rlimits(cfg.get("rlimits") or {}, report, missing)
    if cfg.get("unshare_net"):
        _unshare_net(report, missing)
    uid = cfg.get("uid")
    if uid is not None:
        if os.geteuid() == 0:
            gid = cfg.get("gid", uid)
            os.setgroups([])
            os.setgid(gid)
            os.setuid(uid)
            report["user"] = "own unprivileged uid (no capabilities)"
        else:
            missing.append("uid drop: worker did not start as root")
    # (a fork server keeps them: each forked worker drops to its own uid, see forkserver.py)
    if cfg.get("seccomp") and not cfg.get("keep_caps") and os.geteuid() == 0:
        _drop_capabilities(report, missing)
    if cfg.get("landlock"):
        _landlock(cfg["landlock"], report, missing)
    if cfg.get("seccomp"):
        _seccomp(report, missing)
    return report


def _drop_capabilities(report: dict[str, Any], missing: list[str]) -> None:
    """Still uid 0 (no uid of its own could be used): give up every capability, for good.

    Root without capabilities only keeps owner rights on root's files, which Landlock then narrows to
    the Python installation and the scratch directory. (RLIMIT_NPROC never applies to uid 0.)
    """
    libc = _libc()
    try:
        with open("/proc/sys/kernel/cap_last_cap") as f:
            last = int(f.read())
    except (OSError, ValueError):
        last = 63
    for cap in range(last + 1):
        libc.prctl(_PR_CAPBSET_DROP, cap, 0, 0, 0)  # exec can never regain them
    libc.prctl(_PR_CAP_AMBIENT, _PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0)
    header = struct.pack("<Ii", 0x20080522, 0)  # _LINUX_CAPABILITY_VERSION_3, this process
    if libc.capset(header, bytes(24)) != 0:
        missing.append(f"capability drop: capset failed: {_errno_text()}")
        return
    report["user"] = "uid 0 without any capability (no uid of its own could be used)"


def _rlimits(limits: dict[str, int], report: dict[str, Any], missing: list[str]) -> None:
    if resource is None:
        asked = sorted(k for k, v in limits.items() if v is not None and k != "cpu_lifetime")
        if asked:
            missing.append(f"rlimits ({', '.join(asked)}): this runtime has no resource limits")
        report["rlimits"] = {}
        return
    names = {
        "as": resource.RLIMIT_AS,
        "cpu": resource.RLIMIT_CPU,
        "fsize": resource.RLIMIT_FSIZE,
        "nofile": resource.RLIMIT_NOFILE,
        "nproc": resource.RLIMIT_NPROC,
        "core": resource.RLIMIT_CORE,
    }
    applied: dict[str, int] = {}
    for key, value in limits.items():
        if value is None:
            continue
        soft = hard = int(value)
        if key == "cpu":
            # soft: this run's budget (raised before each run); hard: the worker's lifetime budget
            soft, hard = int(value), int(limits.get("cpu_lifetime") or value)
        elif key == "cpu_lifetime":
            continue
        try:
            resource.setrlimit(names[key], (soft, hard))
            applied[key] = soft
        except (ValueError, OSError) as exc:
            missing.append(f"rlimit {key}: {exc}")
    report["rlimits"] = applied


def _unshare_net(report: dict[str, Any], missing: list[str]) -> None:
    libc = _libc()
    if os.geteuid() == 0:
        if libc.unshare(_CLONE_NEWNET) == 0:
            report["network"] = "network namespace (unshare, no interfaces up)"
            return
        missing.append(f"network namespace: unshare failed: {_errno_text()}")
        return
    uid, gid = os.getuid(), os.getgid()
    if libc.unshare(_CLONE_NEWUSER | _CLONE_NEWNET) != 0:
        missing.append(f"network namespace: user namespace refused: {_errno_text()}")
        return
    try:
        with open("/proc/self/setgroups", "w") as f:
            f.write("deny")
        with open("/proc/self/uid_map", "w") as f:
            f.write(f"{uid} {uid} 1")
        with open("/proc/self/gid_map", "w") as f:
            f.write(f"{gid} {gid} 1")
    except OSError as exc:
        missing.append(f"user namespace id map: {exc}")
    report["network"] = "network namespace (user namespace + unshare, no interfaces up)"


# Landlock access bits (linux/landlock.h)
_FS_EXECUTE, _FS_WRITE_FILE, _FS_READ_FILE, _FS_READ_DIR = 1, 2, 4, 8
_FS_MAKE_CHAR, _FS_MAKE_BLOCK = 1 << 6, 1 << 11
_FS_ALL_V1 = (1 << 13) - 1
_FS_REFER, _FS_TRUNCATE, _FS_IOCTL_DEV = 1 << 13, 1 << 14, 1 << 15
_NET_BIND_TCP, _NET_CONNECT_TCP = 1, 2
_SCOPE_ABSTRACT_UNIX, _SCOPE_SIGNAL = 1, 2


def _landlock(rules: dict[str, list[str]], report: dict[str, Any], missing: list[str]) -> None:
    arch = _ARCHES.get(os.uname().machine)
    if arch is None:
        missing.append(f"landlock: unknown architecture {os.uname().machine}")
        return
    nr = arch[1]
    libc = _libc()
    libc.syscall.restype = int
    abi = libc.syscall(nr["landlock_create_ruleset"], None, 0, 1)  # LANDLOCK_CREATE_RULESET_VERSION
    if abi < 1:
        missing.append(f"landlock: not available ({_errno_text()})")
        return
    fs = _FS_ALL_V1 | (_FS_REFER if abi >= 2 else 0) | (_FS_TRUNCATE if abi >= 3 else 0)
    fs |= _FS_IOCTL_DEV if abi >= 5 else 0
    net = (_NET_BIND_TCP | _NET_CONNECT_TCP) if abi >= 4 else 0
    scoped = (_SCOPE_ABSTRACT_UNIX | _SCOPE_SIGNAL) if abi >= 6 else 0
    attr = struct.pack("<QQQ", fs, net, scoped)
    size = 24 if abi >= 6 else 16 if abi >= 4 else 8
    ruleset = libc.syscall(nr["landlock_create_ruleset"], attr[:size], size, 0)
    if ruleset < 0:
        missing.append(f"landlock: create_ruleset failed: {_errno_text()}")
        return
    file_bits = _FS_EXECUTE | _FS_WRITE_FILE | _FS_READ_FILE | (_FS_TRUNCATE if abi >= 3 else 0)
    read = _FS_EXECUTE | _FS_READ_FILE | _FS_READ_DIR
    try:
        writable = fs & ~(_FS_MAKE_CHAR | _FS_MAKE_BLOCK)  # never device nodes, even in the scratch
        for access, paths in ((read, rules.get("ro", [])), (writable, rules.get("rw", []))):
            for path in paths:
                try:
                    fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
                except OSError:
                    continue  # absent paths need no rule
                try:
                    allowed = access if os.path.isdir(path) else access & file_bits
                    rule = struct.pack("<Qi", allowed, fd)
                    if libc.syscall(nr["landlock_add_rule"], ruleset, 1, rule, 0) != 0:
                        missing.append(f"landlock: rule for {path} refused: {_errno_text()}")
                finally:
                    os.close(fd)
        libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
        if libc.syscall(nr["landlock_restrict_self"], ruleset, 0) != 0:
            missing.append(f"landlock: restrict_self failed: {_errno_text()}")
            return
    finally:
        os.close(ruleset)
    report["landlock"] = {
        "abi": abi,
        "filesystem": "read: python + scratch; write: scratch",
        "tcp": "denied" if net else "not covered (ABI < 4)",
        "signals": "scoped to the worker" if scoped else "not scoped (ABI < 6)",
    }
    if not net:
        missing.append("landlock TCP rules: kernel Landlock ABI < 4")


def _seccomp(report: dict[str, Any], missing: list[str]) -> None:
    import ctypes

    arch = _ARCHES.get(os.uname().machine)
    if arch is None:
        missing.append(f"seccomp: unknown architecture {os.uname().machine}")
        return
    audit_arch, nr, blocked = arch
    allow, deny = 0x7FFF0000, 0x00050000 | 1  # SECCOMP_RET_ALLOW, SECCOMP_RET_ERRNO | EPERM
    enosys = (
        0x00050000 | 38
    )  # clone3: its flags sit behind a pointer, so refuse it and libc falls back to clone
    ld, jeq, jge, jset, ret = 0x20, 0x15, 0x35, 0x45, 0x06
    prog: list[tuple[int, int, int, int]] = [
        (ld, 0, 0, 4),  # arch
        (jeq, 1, 0, audit_arch),
        (ret, 0, 0, deny),  # other syscall ABIs (e.g. i386 via int 0x80) are refused wholesale
        (ld, 0, 0, 0),  # syscall number
        (jge, 0, 1, 0x40000000),  # x32 ABI numbers
        (ret, 0, 0, deny),
    ]
    for number in blocked:
        prog += [(jeq, 0, 1, number), (ret, 0, 0, deny)]
    prog += [
        (jeq, 0, 1, nr["clone3"]),
        (ret, 0, 0, enosys),
        (jeq, 0, 4, nr["clone"]),
        (ld, 0, 0, 16),  # args[0] low 32 bits: clone flags
        (jset, 0, 1, _CLONE_NS_FLAGS),  # new namespaces (a user namespace above all) are refused
        (ret, 0, 0, deny),
        (ret, 0, 0, allow),
        (jeq, 0, 3, nr["socket"]),
        (ld, 0, 0, 16),  # args[0] low 32 bits: the address family
        (jeq, 1, 0, 1),  # AF_UNIX
        (ret, 0, 0, deny),
        (ret, 0, 0, allow),
    ]
    raw = b"".join(struct.pack("<HBBI", *ins) for ins in prog)
    buf = ctypes.create_string_buffer(raw, len(raw))

    class _Prog(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]

    fprog = _Prog(len(prog), ctypes.cast(buf, ctypes.c_void_p))
    libc = _libc()
    libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
    if libc.prctl(_PR_SET_SECCOMP, _SECCOMP_MODE_FILTER, ctypes.byref(fprog), 0, 0) != 0:
        missing.append(f"seccomp: filter refused: {_errno_text()}")
        return
    report["seccomp"] = (
        "EPERM for socket() except AF_UNIX, new namespaces (unshare, setns, clone flags), mount, ptrace, "
        "io_uring, bpf, keyctl, perf_event_open, userfaultfd, open_by_handle_at, process_vm_*, kernel "
        "modules, mknod, clock/hostname/reboot/swap changes, setsid/setpgid and foreign syscall ABIs"
    )
