"""Text-safe worker output for sandbox SDKs that hand a process's stdout back as decoded text lines.

Layer 3 (executors). The worker protocol is binary frames. E2B's SDK decodes a command's stdout as
UTF-8 (undecodable bytes become U+FFFD) and Blaxel's streams it as log lines, so raw frames would not
survive the trip. Stdin is no problem (both send bytes verbatim). So, inside the sandbox, a small
stdlib relay process (``RELAY``, codeloop's own code, passed with ``python3 -c``) starts the worker with
stdin inherited and stdout on a pipe, and writes what the worker sends as numbered base64 lines:
``<seq hex> <base64>\\n``, after a first line ``MARKER``. On the host, ``LineDecoder`` turns those
lines back into bytes: it skips whatever came before the marker (a login shell's greeting), drops a
line it has already seen (an SDK that reconnects a log stream may send lines again) and refuses a gap
or any other line, which ends the connection (the executor then reports the sandbox lost). ``TextStream`` is the byte stream the shared relay (``relay.py``) pumps: ``read`` gives the
decoded bytes, ``write`` sends bytes to the process's stdin through the SDK.

The cost is a third more bytes out of the sandbox and one more small Python process in it.
"""

from __future__ import annotations

import base64
import binascii
import queue
import threading
from collections.abc import Callable

__all__ = ["RELAY", "MARKER", "relay_argv", "LineDecoder", "TextStream", "LINE_BYTES"]

#: the relay's first line: what comes before it is not the worker's
MARKER = "codeloop-relay-v1"

#: raw bytes per output line (base64 makes 4/3 of that): small enough for SDKs that cut long lines
LINE_BYTES = 3072

# The sandbox side. argv: [bytes per line, worker argv...]; its exit status is the worker's.
RELAY = (
    "import sys,base64,subprocess\n"
    "n=int(sys.argv[1]);p=subprocess.Popen(sys.argv[2:],stdout=subprocess.PIPE,bufsize=0)\n"
    "o=sys.stdout.buffer;o.write(b'codeloop-relay-v1\\n');o.flush();s=0\n"
    "while True:\n"
    " b=p.stdout.read(n)\n"
    " if not b:break\n"
    " o.write(b'%x '%s+base64.b64encode(b)+b'\\n');o.flush();s+=1\n"
    "sys.exit(p.wait())\n"
)


def relay_argv(worker_argv: list[str], python: str = "python3", line_bytes: int = LINE_BYTES) -> list[str]:
    """The command that runs ``worker_argv`` behind the base64 line relay."""
    return [python, "-I", "-S", "-B", "-c", RELAY, str(line_bytes), *worker_argv]


class LineDecoder:
    """Turns the relay's text (in chunks split anywhere) back into the worker's bytes, in order."""

    def __init__(self) -> None:
        self._partial = ""
        self._next = 0
        self._started = False
        self.preamble: list[str] = []  # lines before the marker (kept for error messages, at most 20)

    @property
    def started(self) -> bool:
        return self._started

    def feed(self, text: str) -> bytes:
        """Decode every complete line in ``text`` (plus what was left over); raise ValueError on a
        line that is not the relay's or on a gap in the numbering."""
        text = self._partial + text
        lines = text.split("\n")
        self._partial = lines.pop()
        return b"".join(self._line(line) for line in lines if line)

    def line(self, line: str) -> bytes:
        """Decode one whole line (for SDKs that deliver lines without their newline)."""
        return self._line(line) if line else b""

    def _line(self, line: str) -> bytes:
        line = line.strip("\r")
        if line == MARKER:
            self._started = True
            return b""
        if not self._started:
            if len(self.preamble) < 20:
                self.preamble.append(line[:200])
            return b""
        seq_text, _, payload = line.partition(" ")
        try:
            seq = int(seq_text, 16)
            data = base64.b64decode(payload, validate=True)
        except (ValueError, binascii.Error):
            raise ValueError(f"the sandbox sent a line that is not the worker relay's: {line[:80]!r}") from None
        if seq < self._next:  # a line sent again (a log stream that reconnected)
            return b""
        if seq > self._next:
            raise ValueError(f"the sandbox output skipped lines {self._next}..{seq - 1}: the stream lost data")
        self._next += 1
        return data


class TextStream:
    """The worker's byte stream over an SDK that delivers stdout as text and takes stdin as bytes.

    ``send(data)`` writes to the process's stdin; ``on_close()`` (optional) says the host is done.
    The SDK's reader calls ``feed_text``/``feed_line`` and, when the process's output ends, ``end``.
    """

    def __init__(self, send: Callable[[bytes], None], on_close: Callable[[], None] | None = None):
        self._send = send
        self._on_close = on_close
        self.decoder = LineDecoder()
        self._chunks: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()
        self._lock = threading.Lock()  # SDK callbacks may come from more than one thread
        self._ended = False
        self.error: str | None = None  # why the stream ended early, if it did

    # -- fed by the SDK's reader --
    def feed_text(self, text: str) -> None:
        self._feed(self.decoder.feed, text)

    def feed_line(self, line: str) -> None:
        self._feed(self.decoder.line, line)

    def _feed(self, decode: Callable[[str], bytes], text: str) -> None:
        with self._lock:
            if self._ended:
                return
            try:
                data = decode(text)
            except ValueError as exc:
                self.error = str(exc)
                self._end()
                return
            if data:
                self._chunks.put(data)

    def end(self, error: str | None = None) -> None:
        with self._lock:
            if error and self.error is None:
                self.error = error
            self._end()

    def _end(self) -> None:
        if not self._ended:
            self._ended = True
            self._chunks.put(None)

    # -- the byte stream relay.py pumps --
    def read(self, n: int = -1) -> bytes:
        chunk = self._chunks.get()
        if chunk is None:
            self._chunks.put(None)  # every later read sees the end too
            return b""
        return chunk

    def write(self, data: bytes) -> None:
        self._send(bytes(data))

    def close_input(self) -> None:
        if self._on_close is not None:
            self._on_close()
