"""Worker side of the tool RPC: the pipe channel and the tool proxies agent code calls.

A proxy is callable like the tool (``search("x")`` blocks until the host answers) and has an
awaitable form, ``await search.acall("x")``. Several ``acall``s awaited together (for example
``await asyncio.gather(a.acall(1), b.acall(2))`` in top-level-await code) are all sent before any
answer is awaited, so the host runs them concurrently. A tool error comes back as an exception the
code can catch: the builtin exception type of the same name when there is one, else RuntimeError.

Standard library only; imported by the child with no package ``__init__`` run.
"""

from __future__ import annotations

import builtins
import os
from typing import Any

from codeloop.executors.worker import codec
from codeloop.executors.worker.protocol import (
    DOORBELL_FRAME,
    FrameReader,
    ProtocolError,
    Spinner,
    dumps,
    dumps_str,
    pack,
    pack_call,
    pack_call_str,
    pack_call_text,
    parse_body,
    parse_box_str_result,
    write_frame,
)

__all__ = ["Channel", "ToolProxy", "HostGone"]

# Exception types a tool error may come back as; anything else becomes RuntimeError.
_REBUILDABLE = {
    name
    for name in dir(builtins)
    if isinstance(getattr(builtins, name), type)
    and issubclass(getattr(builtins, name), Exception)
    and not issubclass(getattr(builtins, name), (Warning, OSError))
}


# Mailbox flag reads before the Spinner takes over (see process._PRESPIN).
_PRESPIN = range(400)


class HostGone(BaseException):
    """The host closed the pipe: the worker must exit (BaseException so agent code cannot swallow it)."""


class Channel:
    """Blocking frame I/O on the two pipe fds, plus bookkeeping for outstanding tool calls."""

    def __init__(self, rfd: int, wfd: int, box: Any = None):
        self.rfd, self.wfd = rfd, wfd
        self.box = box  # shm.Mailbox for sync calls, or None (all through the pipe)
        self._box_busy = False
        self.reader = FrameReader()
        self.inbox: list[dict[str, Any]] = []  # frames read but not consumed yet
        self.results: dict[int, dict[str, Any]] = {}  # tool results that arrived for sync waiters
        self.futures: dict[int, Any] = {}  # cid -> asyncio future of an acall
        self._next_cid = 0
        self._loop: Any = None
        # Polled briefly before blocking where the host answers soon: a sync tool call, and the next
        # run right after a run ended (back-to-back runs; an idle worker soon stops polling).
        self._spin_call = Spinner(rfd)
        self._spin_next = Spinner(rfd)

    # -- raw I/O ---------------------------------------------------------------------------
    def send(self, message: dict[str, Any]) -> None:
        write_frame(self.wfd, pack(message))

    def _read_some(self) -> None:
        data = os.read(self.rfd, self.reader.read_size())
        if not data:
            raise HostGone()
        try:
            frames = self.reader.feed(data)
        except ProtocolError:
            raise HostGone() from None
        for frame in frames:
            op = frame["op"]
            if op == "result":
                self._deliver(frame)
            elif op != "doorbell":
                self.inbox.append(frame)

    def new_run(self) -> None:
        """Forget calls left over by earlier runs (never awaited; their answers may still arrive)."""
        self.futures.clear()
        self.results.clear()
        self._drop_reader()

    def recv(self) -> dict[str, Any]:
        """Next non-result frame from the host (blocking)."""
        if not self.inbox:
            spinner = self._spin_next
            if not spinner.ready():
                while not self.inbox:
                    self._read_some()
                spinner.settle()
        while not self.inbox:
            self._read_some()
        return self.inbox.pop(0)

    # -- tool calls ------------------------------------------------------------------------
    def _deliver(self, frame: dict[str, Any]) -> None:
        cid = frame.get("cid")
        fut = self.futures.pop(cid, None)
        if fut is None:
            self.results[cid] = frame
        elif not fut.done():
            try:
                fut.set_result(frame)
            except RuntimeError:  # its loop is closed: a call the code never awaited, from an earlier run
                pass
        if not self.futures and self._loop is not None:
            self._drop_reader()

    def _start_call(self, name: bytes, args: tuple, kwargs: dict, blocking: bool) -> int:
        self._next_cid = cid = self._next_cid + 1
        write_frame(self.wfd, pack_call(cid, name, blocking, _payload(name, args, kwargs)))
        return cid

    def call(self, name: bytes, args: tuple, kwargs: dict) -> Any:
        box = self.box
        self._next_cid = cid = self._next_cid + 1
        frame = None
        if not kwargs and len(args) == 1 and type(args[0]) is str:  # the usual call: one str
            frame = pack_call_str(cid, name, args[0])
        elif _all_str(args, kwargs):
            frame = pack_call_text(cid, name, args, kwargs)
        if frame is None:
            frame = pack_call(cid, name, True, _payload(name, args, kwargs))
        if box is None or self._box_busy:  # no mailbox, or code with threads: another call is in it
            write_frame(self.wfd, frame)
            return self._wait(name, cid, None)
        self._box_busy = True
        try:
            posted = box.post(frame)
            if posted is None:  # too large for the mailbox: the pipe (the answer may come either way)
                write_frame(self.wfd, frame)
            elif posted:  # the host blocks on the pipe: wake it
                write_frame(self.wfd, DOORBELL_FRAME)
            lens, incoming = box.lens, box.incoming
            for _ in _PRESPIN:  # the answer usually comes within a few microseconds
                if lens[incoming]:
                    data = box.take()
                    if data is not None:  # the usual answer, a str for this call: no message dict
                        try:
                            text = parse_box_str_result(data, cid)
                        except ProtocolError:
                            raise HostGone() from None
                        if text is not None:
                            return text
                    answer = self._take_box(data)
                    if answer is not None and answer["op"] == "result" and answer["cid"] == cid:
                        return _unwrap(name, answer)
                    self._deliver_box(answer)
                    break
            return self._wait(name, cid, box)
        finally:
            self._box_busy = False

    def _take_box(self, data: bytes | None) -> dict[str, Any] | None:
        """The message of a frame taken from the mailbox (None for none)."""
        if data is None:
            return None
        try:
            return parse_body(data, 4, len(data))
        except ProtocolError:
            raise HostGone() from None

    def _deliver_box(self, answer: dict[str, Any] | None) -> None:
        if answer is not None and answer["op"] == "result":
            self._deliver(answer)

    def _wait(self, name: bytes, cid: int, box: Any) -> Any:
        """Wait for the answer to sync call ``cid`` (from the pipe, and from ``box`` if given)."""
        results = self.results
        spinner = self._spin_call
        while cid not in results:
            if box is not None and box.lens[box.incoming]:
                self._deliver_box(self._take_box(box.take()))
            elif spinner.ready(box):
                if box is None or not box.lens[box.incoming]:
                    self._read_some()  # the pipe has data
            elif box is not None and box.away():  # it came meanwhile
                box.back()
            else:
                try:
                    self._read_some()  # block on the pipe: an answer, or a doorbell
                finally:
                    if box is not None:
                        box.back()
                spinner.settle()
        return _unwrap(name, results.pop(cid))

    async def acall(self, name: bytes, args: tuple, kwargs: dict) -> Any:
        import asyncio

        cid = self._start_call(name, args, kwargs, False)
        if cid in self.results:
            return _unwrap(name, self.results.pop(cid))
        loop = asyncio.get_running_loop()
        fut = loop.create_future()
        self.futures[cid] = fut
        if self._loop is not loop:
            self._drop_reader()
            loop.add_reader(self.rfd, self._on_readable)
            self._loop = loop
        return _unwrap(name, await fut)

    def _on_readable(self) -> None:
        try:
            self._read_some()
        except HostGone:
            os._exit(3)

    def _drop_reader(self) -> None:
        if self._loop is not None:
            try:
                self._loop.remove_reader(self.rfd)
            except Exception:  # noqa: BLE001 - the loop may be closed already
                pass
            self._loop = None


def _all_str(args: tuple, kwargs: dict) -> bool:
    for arg in args:
        if type(arg) is not str:
            return False
    if kwargs:
        for value in kwargs.values():
            if type(value) is not str:
                return False
    return True


def _payload(name: bytes, args: tuple, kwargs: dict) -> str:
    """JSON text of ``[encoded args, encoded kwargs]`` (strings, the usual arguments, need no encoder)."""
    if not kwargs:
        for arg in args:
            if type(arg) is not str:
                break
        else:
            return "[[" + ",".join(map(dumps_str, args)) + "],{}]"
    fallback = "repr" if name == b"final_answer" else "error"
    return dumps([codec.encode(list(args), fallback), codec.encode(kwargs, fallback) if kwargs else {}])


def _unwrap(name: bytes, frame: dict[str, Any]) -> Any:
    if frame.get("ok"):
        value = frame.get("value")
        if type(value) is str:
            return value
        return codec.decode(value, allow_pickle=True)
    err = frame.get("error") or {}
    kind, text = str(err.get("type", "Exception")), str(err.get("message", ""))
    if kind in _REBUILDABLE:
        try:
            exc = getattr(builtins, kind)(text)
        except Exception:  # noqa: BLE001 - e.g. UnicodeDecodeError wants five arguments
            exc = None
        if exc is not None:
            raise exc
    raise RuntimeError(f"tool {name.decode()!r} failed: {kind}: {text}")


class ToolProxy:
    """Stands for a host tool inside the worker. Call it (sync) or ``await tool.acall(...)``."""

    __slots__ = ("name", "_key", "_channel")

    def __init__(self, name: str, channel: Channel):
        key = name.encode("utf-8")
        if len(key) > 255:
            raise ValueError("tool names are limited to 255 bytes")
        self.name = name
        self._key = key
        self._channel = channel

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._channel.call(self._key, args, kwargs)

    async def acall(self, *args: Any, **kwargs: Any) -> Any:
        return await self._channel.acall(self._key, args, kwargs)

    def __repr__(self) -> str:
        return f"<tool {self.name}>"
