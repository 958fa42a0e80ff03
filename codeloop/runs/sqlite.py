"""The default run store: one SQLite file (stdlib ``sqlite3``), in WAL mode.

Layer 6 (runs). Several processes may share the file: writes take the database lock at their start
(``BEGIN IMMEDIATE``) and wait up to ``timeout`` seconds for it; readers never block writers (WAL).
``synchronous=NORMAL`` keeps every committed step across a process crash (a power loss may drop the
last few commits, never corrupt the file).
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from .base import CallRecord, SQLStore

__all__ = ["SQLiteStore"]


class SQLiteStore(SQLStore):
    """``SQLiteStore("runs.db")``: runs kept in one file (created when missing)."""

    _param = "?"
    _real = "REAL"

    def __init__(self, path: str | os.PathLike[str] = "runs.db", *, timeout: float = 30.0):
        super().__init__()
        self.path = os.fspath(path)
        self._conn = sqlite3.connect(
            self.path, timeout=timeout, isolation_level=None, check_same_thread=False
        )
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._create_schema()

    @contextmanager
    def _transaction(self) -> Iterator[Any]:
        with self._lock:
            conn = self._conn
            if conn is None:
                raise RuntimeError("This SQLiteStore is closed.")
            cur = conn.cursor()
            cur.execute("BEGIN IMMEDIATE")
            try:
                yield cur
            except BaseException:
                conn.rollback()
                raise
            else:
                conn.commit()
            finally:
                cur.close()

    def record_call(self, run_id: str, call: CallRecord, *, data: dict[str, Any] | None = None) -> None:
        if data:
            super().record_call(run_id, call, data=data)
            return
        # A call record alone is one statement (a result whose start is not on record: an UPDATE that
        # changes nothing, then the upsert), each atomic on its own, so it needs no BEGIN and COMMIT
        # round trips: this is the write made before and after every tool call.
        with self._lock:
            conn = self._conn
            if conn is None:
                raise RuntimeError("This SQLiteStore is closed.")
            cur = conn.cursor()
            try:
                self._upsert_call(cur, run_id, call)
            finally:
                cur.close()

    def close(self) -> None:
        with self._lock:
            conn, self._conn = self._conn, None  # type: ignore[assignment]
            if conn is not None:
                conn.close()

    def __repr__(self) -> str:
        return f"SQLiteStore({self.path!r})"
