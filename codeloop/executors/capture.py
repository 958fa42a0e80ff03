"""Print capture for sandboxed code: per session, capped, keeping the head and the tail.

Layer 3 (executors). Code's ``print`` is a per-session function in the session's builtins that
writes here, never to ``sys.stdout`` (so concurrent sessions in threads or tasks never mix their
output and nothing needs ``redirect_stdout``). Memory stays bounded by about twice the cap however
much the code prints.
"""

from __future__ import annotations

import builtins
from typing import Any

__all__ = ["PrintCapture"]

_real_print = builtins.print
_PLAIN = frozenset({int, float, bool, type(None)})  # types whose str() runs no code of the user


class PrintCapture:
    """A write-only text sink that keeps the first and last ``cap // 2`` characters."""

    def __init__(self, cap: int | None):
        self.cap = cap
        self._head_cap = cap // 2 if cap is not None else 0
        self._tail_cap = cap - self._head_cap if cap is not None else 0
        # the fast path in print() may append while the head is below this many characters
        self._head_limit = self._head_cap if cap is not None else 1 << 62
        self._head: list[str] = []
        self.reset()

    def reset(self) -> None:
        self._head.clear()
        self._head_len = 0
        self._tail: list[str] = []
        self._tail_len = 0
        self._dropped = 0

    def write(self, s: str) -> int:
        if not isinstance(s, str):
            raise TypeError(f"write() argument must be str, not {type(s).__name__}")
        n = len(s)
        if self.cap is None:
            self._head.append(s)
            return n
        room = self._head_cap - self._head_len
        if room > 0:
            part = s[:room]
            self._head.append(part)
            self._head_len += len(part)
            s = s[room:]
        if s:
            self._tail.append(s)
            self._tail_len += len(s)
            if self._tail_len > 2 * self._tail_cap + 1024:
                joined = "".join(self._tail)
                keep = joined[-self._tail_cap :] if self._tail_cap else ""
                self._dropped += len(joined) - len(keep)
                self._tail = [keep]
                self._tail_len = len(keep)
        return n

    def flush(self) -> None:
        pass

    def getvalue(self) -> str:
        head = "".join(self._head)
        tail = "".join(self._tail)
        if self.cap is None or self._dropped + len(head) + len(tail) <= self.cap:
            return head + tail
        keep = tail[-self._tail_cap :] if self._tail_cap else ""
        dropped = self._dropped + len(tail) - len(keep)
        return (
            f"{head}\n... [{dropped} characters of print output truncated: the output exceeded "
            f"max_print_outputs_length={self.cap}] ...\n{keep}"
        )

    def make_print(self) -> Any:
        """The ``print`` code sees: same signature and errors as the builtin, default file is this capture.

        The common case (default sep/end, output still under the head cap) appends to the head list
        without calling ``write``: printing is frequent in agent code.
        """
        write = self.write
        capture = self
        head = self._head

        def print(*args: Any, sep: Any = " ", end: Any = "\n", file: Any = None, flush: bool = False) -> None:  # noqa: A001
            if file is None:
                if sep is None:
                    sep = " "
                if end is None:
                    end = "\n"
                if type(sep) is str and type(end) is str:
                    if len(args) == 1 and type(args[0]) is str:
                        text = args[0] + end
                    else:
                        parts: list[str] = []
                        for a in args:
                            t = type(a)
                            if t is str:
                                parts.append(a)
                            elif t in _PLAIN:
                                parts.append(str(a))
                            else:  # str() of other objects may print or raise: keep CPython's order
                                _real_print(*args, sep=sep, end=end, file=self, flush=flush)
                                return
                        text = sep.join(parts) + end
                    n = len(text)
                    if capture._head_len + n <= capture._head_limit:
                        head.append(text)
                        capture._head_len += n
                    else:
                        write(text)
                    return
                file = self
            _real_print(*args, sep=sep, end=end, file=file, flush=flush)

        return print
