"""Relay: a real file descriptor for a sandbox whose byte stream is an SDK object, not an fd.

Layer 3 (executors). The host side of the worker protocol (worker/process.py) polls and reads a file
descriptor. A backend whose SDK gives the worker's stdin/stdout as callbacks, iterators or a socket
with its own framing (Docker's multiplexed attach stream) implements ``Sandbox.read``/``write``
instead; ``relay`` then pumps bytes between those and one end of a socketpair, whose other end the
host uses like a pipe. Two daemon threads per sandbox, each ending when its side ends.
"""

from __future__ import annotations

import os
import socket
import threading
from typing import Any

__all__ = ["relay"]

_CHUNK = 256 * 1024


def relay(sandbox: Any, name: str = "sandbox") -> tuple[int, int]:
    """Start pumping ``sandbox.read()`` -> host and host -> ``sandbox.write()``; return (read fd, write fd).

    The two fds are distinct (dups of one socket end), so closing each once is safe. When the
    sandbox's output ends, the host sees end of file; when the host closes its fds, the writer
    thread calls ``sandbox.close_input()`` and ends.
    """
    host, near = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    rfd, wfd = os.dup(host.fileno()), os.dup(host.fileno())
    host.close()

    def outbound() -> None:  # sandbox -> host
        try:
            while True:
                data = sandbox.read(_CHUNK)
                if not data:
                    break
                near.sendall(data)
        except Exception:  # noqa: BLE001 - an OS or SDK error: the stream is gone
            pass
        finally:
            try:
                near.shutdown(socket.SHUT_WR)  # the host reads end of file
            except OSError:
                pass
            _done()

    def inbound() -> None:  # host -> sandbox
        try:
            while True:
                data = near.recv(_CHUNK)
                if not data:
                    break
                sandbox.write(data)
        except Exception:  # noqa: BLE001 - an OS or SDK error: the stream is gone, the host sees EOF
            pass
        finally:
            try:
                sandbox.close_input()
            except Exception:  # noqa: BLE001
                pass
            _done()

    lock = threading.Lock()
    count = [0]

    def _done() -> None:
        with lock:
            count[0] += 1
            last = count[0] == 2
        if last:
            near.close()

    for target, what in ((outbound, "out"), (inbound, "in")):
        threading.Thread(target=target, name=f"codeloop-relay-{name}-{what}", daemon=True).start()
    return rfd, wfd
