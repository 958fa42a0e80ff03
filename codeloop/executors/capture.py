"""Print capture for sandboxed code: per session, capped, keeping the head and the tail.

Layer 3 (executors). Code's ``print`` is a per-session function in the session's builtins that
writes here, never to ``sys.stdout`` (so concurrent sessions in threads or tasks never mix their
output and nothing needs ``redirect_stdout``). Memory stays bounded by about twice the cap however
much the code prints.
"""

from __future__ import annotations

import builtins
import inspect
from typing import Any

__all__ = ["PrintCapture"]

_real_print = builtins.print
_NONE_TYPE = type(None)
_SIGNATURE = inspect.signature(_real_print)


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
        """The ``print`` code sees: same behaviour and errors as the builtin, default file is this capture.

        ``**kw`` rather than CPython's keyword-only parameters: a call without keywords then skips
        the four default lookups and the sep/end checks (printing is frequent in agent code). The
        common case (one str, output still under the head cap) appends to the head list without
        calling ``write``. Whatever the fast paths do not handle goes to the real ``print``: an
        unknown keyword or a bad ``sep`` gets CPython's own error, in CPython's order.
        """
        write = self.write
        capture = self
        append = self._head.append  # reset() clears this list in place
        limit = self._head_limit

        def print(*args: Any, **kw: Any) -> None:  # noqa: A001
            if not kw and len(args) == 1:
                text = args[0]
                if type(text) is str:
                    n = capture._head_len + len(text) + 1
                    if n <= limit:
                        capture._head_len = n
                        append(text + "\n")
                        return
            sep = end = None
            if kw:
                sep = kw.pop("sep", None)
                end = kw.pop("end", None)
                file = kw.pop("file", None)
                flush = kw.pop("flush", False)
                # an unknown keyword (the real print raises CPython's error), another file, or a
                # flush that is not a bool (the real print takes its truth value, which may run code)
                if kw or file is not None or (flush is not False and flush is not True):
                    file = capture if file is None else file
                    _real_print(*args, sep=sep, end=end, file=file, flush=flush, **kw)
                    return
            if sep is None:
                sep = " "
            if end is None:
                end = "\n"
            if type(sep) is str and type(end) is str:
                parts: list[str] = []
                try:
                    for a in args:
                        t = type(a)
                        if t is str:
                            parts.append(a)
                        # str() of these runs no code of the user (compared by identity: a set
                        # lookup would call a metaclass __hash__); an int over the digit limit
                        # raises ValueError
                        elif t is int or t is float or t is bool or t is _NONE_TYPE:
                            parts.append(str(a))
                        else:  # str() of other objects may print or raise: keep CPython's order
                            break
                    else:
                        text = sep.join(parts) + end
                        n = len(text)
                        if capture._head_len + n <= limit:
                            append(text)
                            capture._head_len += n
                        else:
                            write(text)
                        return
                except ValueError:
                    pass  # CPython writes the arguments before the one that fails: let it
            _real_print(*args, sep=sep, end=end, file=capture)

        print.__signature__ = _SIGNATURE  # type: ignore[attr-defined]  # inspect shows CPython's
        return print
