"""The run store interface: what a store keeps of each run, and the SQL both stores share.

Layer 6 (runs). A store holds, per run, one row (task, state, output, usage and whatever else the run
reports, as JSON), one row per finished memory step (written in one transaction with the events of that
step) and one row per tool call (its arguments, then its result: a call that has arguments but no result
was in flight when the process died). Model inputs are not copied: step ``i``'s input is the steps
before it, so each step row refers to the earlier rows by position. ``SQLStore`` holds the SQL that
SQLite and PostgreSQL share; each store module supplies the connection and placeholder style.
"""

from __future__ import annotations

import json
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

__all__ = ["RunStore", "SQLStore", "StoredRun", "CallRecord", "dumps", "loads", "MESSAGE_REF", "resolve_events"]

#: in a stored step's events, a ModelOutput's message that is the step's own ``model_output_message``
#: (stored once, with the step)
MESSAGE_REF = {"$ref": "model_output_message"}


def resolve_events(step: dict[str, Any], events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A step's stored events with references to the step's data replaced by that data."""
    for event in events:
        if event.get("message") == MESSAGE_REF:
            event["message"] = step.get("model_output_message")
    return events


def _jsonable(value: Any) -> Any:
    from ..memory import jsonable

    return jsonable(value)


def _default(value: Any) -> Any:
    """A value the C encoder does not know: an object's ``to_dict()`` as it is (the encoder walks it and
    comes back here for what is nested in it); anything else through memory.jsonable (the rest as repr)."""
    to_dict = getattr(value, "to_dict", None)
    if callable(to_dict) and not isinstance(value, type):
        try:
            data = to_dict()
        except Exception:  # noqa: BLE001 - a broken to_dict must not make a step unserializable
            return repr(value)
        if type(data) is dict:
            return data
    return _jsonable(value)


# The C encoder does the walk; only values it does not know (objects with to_dict, sets...) come to
# _default, which turns them into JSON-safe data.
_encoder = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, default=_default)
_encode = _encoder.encode
# One C encoder for every call (JSONEncoder.encode builds a new one per call, which costs as much as
# encoding a small row). Without a markers dict it keeps no state between calls, so threads may share
# it; a cycle then ends in RecursionError, as it does in the thorough copy below.
_iterencode = (
    None
    if json.encoder.c_make_encoder is None
    else json.encoder.c_make_encoder(
        None, _default, json.encoder.encode_basestring, None, ":", ",", False, False, True
    )
)


def dumps(value: Any) -> str:
    if value is None:
        return "null"
    try:
        if _iterencode is None or type(value) is str:
            return _encode(value)
        return "".join(_iterencode(value, 0))
    except (TypeError, ValueError):  # e.g. a dict key JSON cannot take: the slow, thorough copy
        return json.dumps(_jsonable(value), separators=(",", ":"), ensure_ascii=False)


def loads(text: str | None) -> Any:
    return None if text is None else json.loads(text)


@dataclass
class CallRecord:
    """One tool call of a run. ``status``: "started" (no result recorded: in flight at a crash),
    "done" (``result`` or ``error`` recorded) or "awaiting" (waits for a person's approval)."""

    key: str
    step: int
    tool: str
    arguments: Any
    status: str
    result: Any = None
    error: str | None = None
    decision: Any = None  # True, False or a reason string, once a person answered


@dataclass
class StoredRun:
    """A run as the store has it. ``steps`` (memory steps as dicts, task first) and ``calls`` are filled
    by ``get_run``, not by ``list_runs``; ``data`` holds output, usage, pending approvals and any other
    field the run reported."""

    run_id: str
    agent: str
    task: str
    state: str
    created: float
    updated: float
    parent_id: str | None = None
    fork_step: int | None = None
    data: dict[str, Any] = field(default_factory=dict)
    steps: list[dict[str, Any]] = field(default_factory=list)
    events: list[list[dict[str, Any]]] = field(default_factory=list)
    calls: dict[str, CallRecord] = field(default_factory=dict)

    @property
    def output(self) -> Any:
        return self.data.get("output")

    @property
    def pending_approvals(self) -> list[dict[str, Any]]:
        return list(self.data.get("pending_approvals") or [])

    @property
    def usage(self) -> dict[str, Any] | None:
        return self.data.get("usage")


class RunStore(ABC):
    """Where runs are kept. Every write is one transaction, so a crash at any point leaves the store as
    it was before or after that write. Safe to share between processes (and threads of one process)."""

    @abstractmethod
    def create_run(
        self,
        run_id: str,
        *,
        agent: str,
        task: str,
        data: dict[str, Any] | None = None,
        parent_id: str | None = None,
        fork_step: int | None = None,
    ) -> None:
        """Add a run; ValueError when the id is taken."""

    @abstractmethod
    def update_run(
        self, run_id: str, *, state: str | None = None, data: dict[str, Any] | None = None
    ) -> None:
        """Set the state and merge ``data`` into the run's data (top-level keys replaced)."""

    @abstractmethod
    def append_step(
        self,
        run_id: str,
        index: int,
        step: dict[str, Any],
        events: list[dict[str, Any]],
        *,
        state: str | None = None,
        data: dict[str, Any] | None = None,
    ) -> None:
        """Write memory step ``index`` with its events and update the run, in one transaction."""

    @abstractmethod
    def record_call(self, run_id: str, call: CallRecord, *, data: dict[str, Any] | None = None) -> None:
        """Insert or replace a tool call record (and merge ``data`` into the run's, in one transaction)."""

    def write(
        self,
        run_id: str,
        *,
        steps: list[tuple[int, dict[str, Any], list[Any]]] = (),  # type: ignore[assignment]
        call: CallRecord | None = None,
        state: str | None = None,
        data: dict[str, Any] | None = None,
        calls: Sequence[CallRecord] = (),
    ) -> None:
        """Several writes of one run: memory steps ``(index, step, events)``, then ``calls`` and ``call``
        in that order, then the run's state and ``data``. The SQL stores do it in one transaction (a run
        journal batches a finished step with the next write this way); this default makes one write
        after the other."""
        for index, step, events in steps:
            self.append_step(run_id, index, step, events)
        for record in (*calls, call) if call is not None else calls:
            self.record_call(run_id, record)
        if state is not None or data:
            self.update_run(run_id, state=state, data=data)

    @abstractmethod
    def get_run(self, run_id: str) -> StoredRun | None: ...

    @abstractmethod
    def list_runs(self, *, state: str | None = None, limit: int = 50) -> list[StoredRun]:
        """Newest first, without steps and calls."""

    @abstractmethod
    def fork_run(self, run_id: str, new_id: str, steps: int, *, last_step_number: int) -> None:
        """Copy run ``run_id`` into ``new_id`` with its first ``steps`` memory steps and the tool calls of
        action steps up to ``last_step_number``."""

    def close(self) -> None:  # noqa: B027 - stores without connections need not override it
        """Release connections."""

    def __enter__(self) -> RunStore:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS codeloop_runs (
        run_id TEXT PRIMARY KEY, agent TEXT NOT NULL, task TEXT NOT NULL, state TEXT NOT NULL,
        created {real} NOT NULL, updated {real} NOT NULL, parent_id TEXT, fork_step INTEGER,
        data TEXT NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS codeloop_steps (
        run_id TEXT NOT NULL, idx INTEGER NOT NULL, step TEXT NOT NULL, events TEXT NOT NULL,
        PRIMARY KEY (run_id, idx))""",
    """CREATE TABLE IF NOT EXISTS codeloop_calls (
        run_id TEXT NOT NULL, call_key TEXT NOT NULL, step INTEGER NOT NULL, tool TEXT NOT NULL,
        arguments TEXT, status TEXT NOT NULL, result TEXT, error TEXT, decision TEXT,
        PRIMARY KEY (run_id, call_key))""",
    "CREATE INDEX IF NOT EXISTS codeloop_runs_updated ON codeloop_runs (updated)",
)

# the usual result of a started call (a no-op when the call is not "started": then it is upserted)
DONE_SQL = (
    "UPDATE codeloop_calls SET status = 'done', result = ?, error = ? "
    "WHERE run_id = ? AND call_key = ? AND status = 'started'"
)

_RUN_COLUMNS = "run_id, agent, task, state, created, updated, parent_id, fork_step, data"
# states stored by earlier versions, read back under their current names
_OLD_STATES = {"interrupted": "cancelled"}


class SQLStore(RunStore):
    """The SQL shared by the SQLite and PostgreSQL stores. Subclasses set ``_param`` ("?" or "%s") and
    ``_real`` and implement ``_transaction`` (a cursor inside one committed transaction)."""

    _param = "?"
    _real = "REAL"
    _for_update = ""  # PostgreSQL locks the row it merges into (SQLite's write lock covers the file)

    def __init__(self) -> None:
        self._lock = threading.RLock()
        # run id -> (updated, data) as this store last wrote them: the next merge skips reading the row
        # back when no one else wrote it since (checked in the UPDATE itself, see _update)
        self._written: dict[str, tuple[float, dict[str, Any]]] = {}

    @contextmanager
    def _transaction(self) -> Iterator[Any]:
        raise NotImplementedError
        yield

    def _sql(self, text: str) -> str:
        return text.replace("?", self._param)

    def _execute(self, cursor: Any, text: str, params: tuple[Any, ...] = ()) -> Any:
        """Every statement goes through here (tests hook it to kill a process inside a write)."""
        return cursor.execute(self._sql(text), params)

    def _create_schema(self) -> None:
        with self._transaction() as cur:
            for statement in _SCHEMA:
                self._execute(cur, statement.format(real=self._real))

    def create_run(
        self,
        run_id: str,
        *,
        agent: str,
        task: str,
        data: dict[str, Any] | None = None,
        parent_id: str | None = None,
        fork_step: int | None = None,
    ) -> None:
        now = time.time()
        with self._transaction() as cur:
            self._execute(cur, "SELECT 1 FROM codeloop_runs WHERE run_id = ?", (run_id,))
            if cur.fetchone() is not None:
                raise ValueError(f"A run with id {run_id!r} is already stored: choose another run_id.")
            self._execute(
                cur,
                f"INSERT INTO codeloop_runs ({_RUN_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (run_id, agent, task, "running", now, now, parent_id, fork_step, dumps(data or {})),
            )
            self._remember(run_id, now, dict(data or {}))

    def _remember(self, run_id: str, updated: float, data: dict[str, Any]) -> None:
        if len(self._written) > 256 and run_id not in self._written:
            self._written.clear()  # a long-lived store serving many runs keeps only recent ones
        self._written[run_id] = (updated, data)

    def _update(self, cur: Any, run_id: str, state: str | None, data: dict[str, Any] | None) -> None:
        written = self._written.get(run_id)
        now = time.time()
        if written is not None:
            now = max(now, written[0] + 1e-6)  # each write moves ``updated`` on, so it identifies the write
        if data and written is not None:
            merged = {**written[1], **data}
            self._execute(
                cur,
                "UPDATE codeloop_runs SET data = ?, updated = ?, state = COALESCE(?, state) "
                "WHERE run_id = ? AND updated = ?",
                (dumps(merged), now, state, run_id, written[0]),
            )
            if cur.rowcount == 1:  # nobody else wrote the run since our last write: our copy is current
                self._written[run_id] = (now, merged)
                return
        if data:
            self._execute(
                cur, f"SELECT data FROM codeloop_runs WHERE run_id = ?{self._for_update}", (run_id,)
            )
            row = cur.fetchone()
            if row is None:
                raise KeyError(f"No stored run {run_id!r}.")
            merged = loads(row[0])
            merged.update(data)
            self._execute(
                cur,
                "UPDATE codeloop_runs SET data = ?, updated = ?, state = COALESCE(?, state) WHERE run_id = ?",
                (dumps(merged), now, state, run_id),
            )
            self._remember(run_id, now, merged)
        elif state is not None:
            self._execute(
                cur, "UPDATE codeloop_runs SET state = ?, updated = ? WHERE run_id = ?", (state, now, run_id)
            )
            if written is not None:
                self._written[run_id] = (now, written[1])

    def update_run(
        self, run_id: str, *, state: str | None = None, data: dict[str, Any] | None = None
    ) -> None:
        with self._transaction() as cur:
            self._update(cur, run_id, state, data)

    def append_step(
        self,
        run_id: str,
        index: int,
        step: dict[str, Any],
        events: list[dict[str, Any]],
        *,
        state: str | None = None,
        data: dict[str, Any] | None = None,
    ) -> None:
        with self._transaction() as cur:
            self._insert_step(cur, run_id, index, step, events)
            self._update(cur, run_id, state, data)

    def _insert_step(self, cur: Any, run_id: str, index: int, step: dict[str, Any], events: list[Any]) -> None:
        self._execute(
            cur,
            "INSERT INTO codeloop_steps (run_id, idx, step, events) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (run_id, idx) DO UPDATE SET step = excluded.step, events = excluded.events",
            (run_id, index, dumps(step), dumps(events)),
        )

    def record_call(self, run_id: str, call: CallRecord, *, data: dict[str, Any] | None = None) -> None:
        with self._transaction() as cur:
            self._update(cur, run_id, None, data)
            self._upsert_call(cur, run_id, call)

    def write(
        self,
        run_id: str,
        *,
        steps: list[tuple[int, dict[str, Any], list[Any]]] = (),  # type: ignore[assignment]
        call: CallRecord | None = None,
        state: str | None = None,
        data: dict[str, Any] | None = None,
        calls: Sequence[CallRecord] = (),
    ) -> None:
        with self._transaction() as cur:
            for index, step, events in steps:
                self._insert_step(cur, run_id, index, step, events)
            self._update(cur, run_id, state, data)
            for record in calls:
                self._upsert_call(cur, run_id, record)
            if call is not None:
                self._upsert_call(cur, run_id, call)

    def _upsert_call(self, cur: Any, run_id: str, call: CallRecord) -> None:
        if call.status == "done" and call.decision is None:  # the usual result of a started call
            self._execute(cur, DONE_SQL, (dumps(call.result), call.error, run_id, call.key))
            if cur.rowcount == 1:
                return
        self._execute(
            cur,
            "INSERT INTO codeloop_calls (run_id, call_key, step, tool, arguments, status, result, error, "
            "decision) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (run_id, call_key) DO UPDATE SET "
            "status = excluded.status, result = excluded.result, error = excluded.error, "
            "decision = excluded.decision, arguments = excluded.arguments",
            (
                run_id,
                call.key,
                call.step,
                call.tool,
                dumps(call.arguments),
                call.status,
                dumps(call.result),
                call.error,
                dumps(call.decision),
            ),
        )

    @staticmethod
    def _stored(row: Any) -> StoredRun:
        return StoredRun(
            run_id=row[0],
            agent=row[1],
            task=row[2],
            state=_OLD_STATES.get(row[3], row[3]),
            created=float(row[4]),
            updated=float(row[5]),
            parent_id=row[6],
            fork_step=row[7],
            data=loads(row[8]),
        )

    def get_run(self, run_id: str) -> StoredRun | None:
        with self._transaction() as cur:
            self._execute(cur, f"SELECT {_RUN_COLUMNS} FROM codeloop_runs WHERE run_id = ?", (run_id,))
            row = cur.fetchone()
            if row is None:
                return None
            run = self._stored(row)
            self._execute(
                cur, "SELECT step, events FROM codeloop_steps WHERE run_id = ? ORDER BY idx", (run_id,)
            )
            for step, events in cur.fetchall():
                run.steps.append(loads(step))
                run.events.append(resolve_events(run.steps[-1], loads(events)))
            self._execute(
                cur,
                "SELECT call_key, step, tool, arguments, status, result, error, decision FROM codeloop_calls "
                "WHERE run_id = ?",
                (run_id,),
            )
            for key, step_no, tool, arguments, status, result, error, decision in cur.fetchall():
                run.calls[key] = CallRecord(
                    key, step_no, tool, loads(arguments), status, loads(result), error, loads(decision)
                )
            return run

    def list_runs(self, *, state: str | None = None, limit: int = 50) -> list[StoredRun]:
        names = (state, *[old for old, new in _OLD_STATES.items() if new == state]) if state else ()
        where = f"WHERE state IN ({', '.join('?' * len(names))})" if names else ""
        params = names
        with self._transaction() as cur:
            self._execute(
                cur,
                f"SELECT {_RUN_COLUMNS} FROM codeloop_runs {where} ORDER BY updated DESC LIMIT {int(limit)}",
                params,
            )
            return [self._stored(row) for row in cur.fetchall()]

    def fork_run(self, run_id: str, new_id: str, steps: int, *, last_step_number: int) -> None:
        with self._transaction() as cur:
            self._execute(cur, f"SELECT {_RUN_COLUMNS} FROM codeloop_runs WHERE run_id = ?", (run_id,))
            row = cur.fetchone()
            if row is None:
                raise KeyError(f"No stored run {run_id!r}: `codeloop runs list` shows the stored runs.")
            self._execute(cur, "SELECT 1 FROM codeloop_runs WHERE run_id = ?", (new_id,))
            if cur.fetchone() is not None:
                raise ValueError(f"A run with id {new_id!r} is already stored: choose another run_id.")
            data = loads(row[8])
            for key in ("output", "pending_approvals", "pending_step", "error"):
                data.pop(key, None)
            now = time.time()
            self._execute(
                cur,
                f"INSERT INTO codeloop_runs ({_RUN_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (new_id, row[1], row[2], "forked", now, now, run_id, last_step_number, dumps(data)),
            )
            self._execute(
                cur,
                "INSERT INTO codeloop_steps (run_id, idx, step, events) SELECT ?, idx, step, events "
                "FROM codeloop_steps WHERE run_id = ? AND idx < ?",
                (new_id, run_id, steps),
            )
            self._execute(
                cur,
                "INSERT INTO codeloop_calls (run_id, call_key, step, tool, arguments, status, result, error, "
                "decision) SELECT ?, call_key, step, tool, arguments, status, result, error, decision "
                "FROM codeloop_calls WHERE run_id = ? AND step <= ? AND status = 'done'",
                (new_id, run_id, last_step_number),
            )
