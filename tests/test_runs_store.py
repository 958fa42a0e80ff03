"""One test suite for every run store: SQLite and PostgreSQL (a real server the tests start)."""

from __future__ import annotations

import multiprocessing
import os

import pytest
from pg_server import postgres_server

from codeloop.runs import CallRecord, PostgresStore, RunStore, SQLiteStore, open_store


@pytest.fixture(scope="module")
def pg_dsn():
    with postgres_server() as dsn:
        yield dsn


_pg_count = iter(range(1_000_000))


@pytest.fixture(params=["sqlite", "postgres"])
def store_factory(request, tmp_path):
    """Makes stores on one fresh database (several stores = several connections / processes)."""
    made: list[RunStore] = []
    if request.param == "sqlite":
        path = tmp_path / "runs.db"
        spec = str(path)

        def make() -> RunStore:
            made.append(SQLiteStore(path))
            return made[-1]
    else:
        import psycopg

        dsn = request.getfixturevalue("pg_dsn")
        name = f"t{os.getpid()}_{next(_pg_count)}"
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")
        spec = dsn.rsplit("/", 1)[0] + "/" + name

        def make() -> RunStore:
            made.append(PostgresStore(spec))
            return made[-1]

    make.spec = spec  # type: ignore[attr-defined]
    yield make
    for store in made:
        store.close()


@pytest.fixture
def store(store_factory):
    return store_factory()


def test_create_get_list_update(store):
    store.create_run("r1", agent="CodeAgent", task="t1", data={"max_steps": 5})
    store.create_run("r2", agent="CodeAgent", task="t2")
    with pytest.raises(ValueError, match="already stored"):
        store.create_run("r1", agent="x", task="y")
    store.update_run("r1", state="success", data={"output": {"a": [1, 2]}, "usage": {"input_tokens": 3}})
    run = store.get_run("r1")
    assert (run.task, run.state, run.output, run.data["max_steps"]) == ("t1", "success", {"a": [1, 2]}, 5)
    assert run.usage == {"input_tokens": 3}
    assert store.get_run("nope") is None
    assert [r.run_id for r in store.list_runs()] == ["r1", "r2"]
    assert [r.run_id for r in store.list_runs(state="running")] == ["r2"]
    assert len(store.list_runs(limit=1)) == 1


def test_steps_and_calls_round_trip(store):
    store.create_run("r", agent="a", task="t")
    store.append_step("r", 0, {"task": "t"}, [])
    store.append_step("r", 1, {"step_number": 1, "code_action": "x=1"}, [{"type": "x"}], data={"k": 1})
    store.record_call("r", CallRecord("1:f#1", 1, "f", {"a": 1}, "started"))
    store.record_call("r", CallRecord("1:f#1", 1, "f", {"a": 1}, "done", result=[1, "two"]))
    store.record_call("r", CallRecord("1:g#1", 1, "g", "x", "awaiting", error="approval required"))
    run = store.get_run("r")
    assert run.steps == [{"task": "t"}, {"step_number": 1, "code_action": "x=1"}]
    assert run.events == [[], [{"type": "x"}]]
    assert run.data == {"k": 1}
    assert run.calls["1:f#1"].status == "done" and run.calls["1:f#1"].result == [1, "two"]
    assert run.calls["1:g#1"].status == "awaiting" and run.calls["1:g#1"].error == "approval required"


def test_fork_copies_steps_and_finished_calls(store):
    store.create_run("r", agent="a", task="t", data={"max_steps": 3})
    for i in range(4):
        store.append_step("r", i, {"step_number": i} if i else {"task": "t"}, [])
        store.record_call("r", CallRecord(f"{i}:f#1", i, "f", i, "done", result=i))
    store.record_call("r", CallRecord("2:g#1", 2, "g", 0, "started"))
    store.update_run("r", state="success", data={"output": 9})
    store.fork_run("r", "r2", 3, last_step_number=2)
    fork = store.get_run("r2")
    assert (fork.parent_id, fork.fork_step, fork.state) == ("r", 2, "forked")
    assert len(fork.steps) == 3 and fork.output is None and fork.data["max_steps"] == 3
    assert sorted(fork.calls) == ["0:f#1", "1:f#1", "2:f#1"]
    with pytest.raises(KeyError, match="runs list"):
        store.fork_run("missing", "x", 1, last_step_number=1)


def test_a_failed_write_leaves_nothing(store):
    store.create_run("r", agent="a", task="t")

    class Boom(Exception):
        pass

    original = store._execute
    seen = []

    def failing(cur, text, params=()):
        seen.append(text)
        if text.startswith("UPDATE"):
            raise Boom
        return original(cur, text, params)

    store._execute = failing
    with pytest.raises(Boom):
        store.append_step("r", 0, {"task": "t"}, [], data={"x": 1})
    store._execute = original
    assert any(t.startswith("INSERT INTO codeloop_steps") for t in seen)
    assert store.get_run("r").steps == []  # the step insert was rolled back with the update


def _writer(spec: str, worker: int, n: int) -> None:
    store = open_store(spec)
    for i in range(n):
        store.append_step("shared", worker * 1000 + i, {"w": worker, "i": i}, [], data={f"w{worker}": i})
        store.record_call("shared", CallRecord(f"{worker}:{i}", i, "t", None, "done", result=i))
    store.close()


def test_several_processes_write_one_run(store_factory):
    store = store_factory()
    store.create_run("shared", agent="a", task="t")
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(store_factory.spec, w, 25)) for w in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    run = store.get_run("shared")
    assert len(run.steps) == 75 and len(run.calls) == 75
    assert {run.data[f"w{w}"] for w in range(3)} == {24}


def test_open_store_specs(tmp_path):
    assert open_store(None) is None
    s = open_store(str(tmp_path / "a.db"))
    assert isinstance(s, SQLiteStore) and open_store(s) is s
    s.close()
    with pytest.raises(TypeError, match="postgresql://"):
        open_store(42)


def test_agent_runs_pause_and_resume_on_each_store(store_factory):
    from test_runs_agents import EFFECTS, STEPS, agent_for

    EFFECTS.clear()
    first = agent_for(STEPS, store_factory(), approval={"send"}).run("task", run_id="s", return_full_result=True)
    assert first.state == "awaiting_approval" and EFFECTS == ["lookup:x"]
    # a second connection, as another process would open
    result = agent_for(STEPS, store_factory(), approval={"send"}).resume("s", approvals={"2:send#1": True})
    assert (result.state, result.output) == ("success", "X|sent to bob")
    assert EFFECTS == ["lookup:x", "send:bob"]
    assert store_factory().get_run("s").state == "success"


def test_runs_stored_as_interrupted_read_back_as_cancelled(store):
    store.create_run("old", agent="a", task="t")
    store.update_run("old", state="interrupted")  # what earlier versions wrote for a stopped run
    store.create_run("new", agent="a", task="t")
    store.update_run("new", state="cancelled")
    assert store.get_run("old").state == "cancelled"
    assert sorted(r.run_id for r in store.list_runs(state="cancelled")) == ["new", "old"]
    assert {r.state for r in store.list_runs()} == {"cancelled"}


def test_merges_see_writes_of_other_connections(store_factory):
    # a store keeps its last write of a run's data to skip reading it back; another writer must not be lost
    one, two = store_factory(), store_factory()
    one.create_run("m", agent="a", task="t", data={"a": 1})
    one.update_run("m", data={"b": 2})
    two.update_run("m", data={"c": 3})
    one.update_run("m", data={"d": 4})
    two.update_run("m", state="success")
    one.update_run("m", data={"e": 5})
    run = two.get_run("m")
    assert {k: run.data[k] for k in "abcde"} == {"a": 1, "b": 2, "c": 3, "d": 4, "e": 5}
    assert run.state == "success"
    one.record_call("m", CallRecord("1:t#1", 1, "t", {"x": [1]}, "started"), data={"pending_step": {"s": 1}})
    one.record_call("m", CallRecord("1:t#1", 1, "t", {"x": [1]}, "done", result={"ok": True}))
    call = two.get_run("m").calls["1:t#1"]
    assert (call.status, call.arguments, call.result) == ("done", {"x": [1]}, {"ok": True})
    assert two.get_run("m").data["pending_step"] == {"s": 1}
