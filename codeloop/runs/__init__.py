"""Runs that last: stores that keep every step of a run, resume after a crash, fork, and approvals.

Layer 6 (runs). ``CodeAgent(..., store="runs.db")`` (a path: SQLite; ``"postgresql://..."``: PostgreSQL;
or a :class:`RunStore`) stores each run as it goes; ``agent.resume(run_id)`` continues a stored run in
any process sharing the store. ``approval=`` pauses tool calls for a person.
"""

from __future__ import annotations

import importlib
import os
from typing import TYPE_CHECKING, Any

from .base import CallRecord, RunStore, StoredRun
from .journal import ApprovalPending, Journal, ToolCallDenied
from .sqlite import SQLiteStore

if TYPE_CHECKING:
    from .postgres import PostgresStore

__all__ = [
    "RunStore",
    "StoredRun",
    "CallRecord",
    "SQLiteStore",
    "PostgresStore",
    "open_store",
    "Journal",
    "ApprovalPending",
    "ToolCallDenied",
]


def __getattr__(name: str) -> Any:
    if name == "PostgresStore":  # psycopg is optional: imported when asked for
        return importlib.import_module(".postgres", __name__).PostgresStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def open_store(store: Any) -> RunStore | None:
    """A store from what ``store=`` accepts: None, a RunStore, a PostgreSQL DSN or a file path."""
    if store is None or isinstance(store, RunStore):
        return store
    if isinstance(store, str) and store.startswith(("postgresql://", "postgres://")):
        return __getattr__("PostgresStore")(store)
    if isinstance(store, str | os.PathLike):
        return SQLiteStore(store)
    raise TypeError(
        f"store must be a path (SQLite), a 'postgresql://' DSN or a RunStore, got {type(store).__name__}."
    )
