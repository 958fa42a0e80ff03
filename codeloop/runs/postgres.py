"""A run store on PostgreSQL, through psycopg 3 (``pip install 'codeloop[postgres]'``).

Layer 6 (runs). ``PostgresStore("postgresql://user@host:5432/db")``: the same tables and the same
transactions as the SQLite store; many processes and machines may share one database.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from .base import SQLStore

__all__ = ["PostgresStore"]


def _psycopg() -> Any:
    try:
        import psycopg
    except ImportError:
        raise ImportError(
            "PostgresStore needs psycopg 3: pip install 'codeloop[postgres]' (or psycopg[binary])."
        ) from None
    return psycopg


class PostgresStore(SQLStore):
    """Runs kept in a PostgreSQL database given by its connection string (DSN)."""

    _param = "%s"
    _real = "DOUBLE PRECISION"
    _for_update = " FOR UPDATE"

    def __init__(self, dsn: str, *, connect_timeout: float = 10.0):
        super().__init__()
        self.dsn = dsn
        psycopg = _psycopg()
        self._conn = psycopg.connect(dsn, connect_timeout=int(connect_timeout), autocommit=True)
        self._create_schema()

    @contextmanager
    def _transaction(self) -> Iterator[Any]:
        with self._lock:
            conn = self._conn
            if conn is None:
                raise RuntimeError("This PostgresStore is closed.")
            with conn.transaction(), conn.cursor() as cur:
                yield cur

    def _create_schema(self) -> None:
        # Two processes creating the tables at once would race on the catalog: serialize them.
        with self._transaction() as cur:
            cur.execute("SELECT pg_advisory_xact_lock(726354)")
            from .base import _SCHEMA

            for statement in _SCHEMA:
                cur.execute(statement.format(real=self._real))

    def close(self) -> None:
        with self._lock:
            conn, self._conn = self._conn, None
            if conn is not None:
                conn.close()

    def __repr__(self) -> str:
        return f"PostgresStore({self.dsn.split('@')[-1]!r})"
