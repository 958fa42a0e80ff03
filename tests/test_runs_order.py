"""The order of a stored run's writes: some are made when the event loop is idle (the next reply with
the finished steps, the result of an instant tool call), yet the store always holds a prefix of the one
order of the run's writes, and a write that failed while nobody waited on it is made by the next one."""

from __future__ import annotations

import asyncio

import pytest

from codeloop import CodeAgent
from codeloop.models.scripted import ScriptedModel
from codeloop.runs import SQLiteStore
from codeloop.runs.journal import Journal
from codeloop.tools import tool

REPLIES = [
    "Thought: one.\n<code>\na = note('1')\nprint(a)\n</code>",
    "Thought: two.\n<code>\nb = note('2') + note('3')\nprint(b)\n</code>",
    "Thought: done.\n<code>\nfinal_answer(a + b)\n</code>",
]


def reply(messages):
    return REPLIES[sum(1 for m in messages if getattr(m.role, "value", m.role) == "assistant")]


@tool
def note(tag: str) -> str:
    """Note a tag.

    Args:
        tag: the tag
    """
    return tag + ";"


note.blocking = False  # an instant tool: it runs on the event loop thread, its result is written later


class Logging(SQLiteStore):
    """Logs each transaction as a list of what it wrote: ("step", index), ("reply", step number),
    ("call", key, status)."""

    def __init__(self, path, fail_idle_once=False):
        super().__init__(path)
        self.log: list[list[tuple]] = []
        self.fail_idle_once = fail_idle_once

    @staticmethod
    def _reply(data):
        pending = (data or {}).get("pending_step")
        return [("reply", pending["step_number"])] if pending else []

    def write(self, run_id, *, steps=(), call=None, state=None, data=None, calls=()):
        entry = [("step", index) for index, _, _ in steps] + self._reply(data)
        entry += [("call", c.key, c.status) for c in (*calls, *([call] if call else []))]
        if self.fail_idle_once and steps and call is None and steps[0][0] > 0:
            self.fail_idle_once = False
            raise OSError("disk full, once")
        super().write(run_id, steps=steps, call=call, state=state, data=data, calls=calls)
        self.log.append(entry)

    def record_call(self, run_id, call, *, data=None):
        super().record_call(run_id, call, data=data)
        self.log.append(self._reply(data) + [("call", call.key, call.status)])


def _check_order(log, steps):
    """What a resumed run relies on, at every prefix of the log: a step's reply is stored before its
    first tool call starts; a call's result comes after its start and before the next call starts; a
    step row comes after the results of its calls."""
    order = [item for transaction in log for item in transaction]
    at = {item: i for i, item in enumerate(order)}
    starts = [item for item in order if item[0] == "call" and item[2] == "started"]
    assert len(starts) == 3
    for n, start in enumerate(starts):
        key = start[1]
        step = int(key.split(":")[0])
        done = ("call", key, "done")
        assert at[("reply", step)] <= at[start] < at[done]
        if n + 1 < len(starts):
            assert at[done] < at[starts[n + 1]]
        assert at[done] < at[("step", steps[step])]


@pytest.mark.parametrize("executor_type", ["local", "inprocess"])
def test_each_write_keeps_its_place_in_the_run_order(tmp_path, executor_type):
    store = Logging(str(tmp_path / "runs.db"))
    agent = CodeAgent(
        tools=[note], model=ScriptedModel(reply), store=store, executor_type=executor_type, verbosity_level=0
    )
    result = agent.run("Note.", run_id="r", return_full_result=True)
    assert (result.state, result.output) == ("success", "1;2;3;")
    stored = store.get_run("r")
    index = {s["step_number"]: i for i, s in enumerate(stored.steps) if "step_number" in s}
    _check_order(store.log, index)
    assert {k: (c.status, c.result) for k, c in stored.calls.items()} == {
        "1:note#1": ("done", "1;"), "2:note#1": ("done", "2;"), "2:note#2": ("done", "3;"),
    }
    if executor_type == "local":
        # Code in another process: step 1 went with step 2's reply in a write of their own, made while
        # the code ran, so step 2's first call needed only its own record.
        assert [("step", index[1]), ("reply", 2)] in store.log
    store.close()


def test_a_write_that_failed_while_the_loop_was_idle_goes_with_the_next_one(tmp_path):
    store = Logging(str(tmp_path / "runs.db"), fail_idle_once=True)
    agent = CodeAgent(tools=[note], model=ScriptedModel(reply), store=store, executor_type="local", verbosity_level=0)
    result = agent.run("Note.", run_id="r", return_full_result=True)
    assert (result.state, result.output) == ("success", "1;2;3;")
    assert not store.fail_idle_once  # the idle write did fail once
    stored = store.get_run("r")
    assert [s.get("step_number") for s in stored.steps] == [None, 1, 2, 3]
    index = {s["step_number"]: i for i, s in enumerate(stored.steps) if "step_number" in s}
    _check_order(store.log, index)
    store.close()


def test_an_instant_tools_result_is_written_when_the_loop_is_next_idle(tmp_path):
    """The result of a call made on the loop thread waits for the loop's next turn (the code has its
    answer by then), or for the run's next write, whichever comes first; a thread writes at once."""
    from codeloop.agents.run import Run
    from codeloop.runs.base import CallRecord

    store = Logging(str(tmp_path / "runs.db"))
    agent = CodeAgent(tools=[note], model=ScriptedModel(reply), store=store, executor_type="inprocess", verbosity_level=0)
    run = Run(agent, "t", agent.memory, max_steps=3)
    run.id = "r"
    store.create_run("r", agent="CodeAgent", task="t")
    journal = Journal(run, store)
    run.step_number = 1

    async def on_the_loop():
        journal._before("1:note#1", "note", "1")
        journal._after("1:note#1", "note", "1", "1;", None)
        waiting = list(store.log)
        await asyncio.sleep(0.01)
        return waiting

    waiting = asyncio.run(on_the_loop())
    assert waiting == [[("call", "1:note#1", "started")]]
    assert store.log[-1] == [("call", "1:note#1", "done")]

    async def next_write_first():
        journal._before("1:note#2", "note", "2")
        journal._after("1:note#2", "note", "2", "2;", None)
        journal._before("1:note#3", "note", "3")  # before the loop's next turn: it carries the result
        await asyncio.sleep(0.01)

    asyncio.run(next_write_first())
    assert store.log[-2:] == [[("call", "1:note#2", "started")], [("call", "1:note#2", "done"), ("call", "1:note#3", "started")]]
    journal._after("1:note#3", "note", "3", "3;", None)  # no loop here: written at once
    assert store.log[-1] == [("call", "1:note#3", "done")]
    assert store.get_run("r").calls["1:note#2"] == CallRecord("1:note#2", 1, "note", "2", "done", "2;")
    store.close()
