"""The order of a stored run's writes: some are made when the event loop is idle (the next reply with
the finished steps, the result of an instant tool call), yet the store always holds a prefix of the one
order of the run's writes, and a write that failed while nobody waited on it is made by the next one."""

from __future__ import annotations

import asyncio

import pytest

from codeloop import CodeAgent
from codeloop.memory import ActionStep
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
        if self.fail_idle_once and steps and not any(c.status == "started" for c in calls):
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
    store.close()


def _journal(store):
    from codeloop.agents.run import Run

    agent = CodeAgent(tools=[note], model=ScriptedModel(reply), store=store, executor_type="inprocess", verbosity_level=0)
    run = Run(agent, "t", agent.memory, max_steps=3)
    run.id = "r"
    store.create_run("r", agent="CodeAgent", task="t")
    run.step_number = 2
    return Journal(run, store)


def test_a_write_that_failed_while_the_loop_was_idle_goes_with_the_next_one(tmp_path):
    store = Logging(str(tmp_path / "runs.db"), fail_idle_once=True)
    journal = _journal(store)
    step = ActionStep(step_number=1, model_output="Thought: one.", observations="1;")
    journal._unsaved.append((1, step.dict(), None, []))
    journal._unsaved_data.update({"step_number": 1, "pending_step": None})
    journal._reply = {"step_number": 2, "message": {"role": "assistant", "content": "Thought: two."}}
    journal._idle_write()  # fails: nobody waits on it, so what it carried waits again
    assert not store.fail_idle_once and store.log == []
    assert store.get_run("r").steps == [] and journal._reply is not None
    journal._before("2:note#1", "note", "2")
    assert store.log == [[("step", 1), ("reply", 2), ("call", "2:note#1", "started")]]
    stored = store.get_run("r")
    assert stored.steps[0]["observations"] == "1;" and stored.data["pending_step"]["step_number"] == 2
    store.close()


def test_an_instant_tools_result_is_written_when_the_loop_is_next_idle(tmp_path):
    """The result of a call made on the loop thread waits for the loop's next turn (the code has its
    answer by then), or for the run's next write, whichever comes first; a thread writes at once."""
    from codeloop.runs.base import CallRecord

    store = Logging(str(tmp_path / "runs.db"))
    journal = _journal(store)
    journal.run.step_number = 1

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


def test_the_finished_steps_go_with_the_next_reply_after_the_code_is_sent(tmp_path):
    """With code in another process, the reply's write waits for the loop's next turn and comes after
    what was already queued: the task that sends the step's code goes first, so the two overlap."""
    from codeloop.messages import ChatMessage

    order: list[str] = []

    class Ordered(Logging):
        def write(self, run_id, **kwargs):
            order.append("write")
            super().write(run_id, **kwargs)

    store = Ordered(str(tmp_path / "runs.db"))
    journal = _journal(store)
    journal._overlap = True  # as before_code sets it for an executor whose code runs in another process
    journal._unsaved.append((1, ActionStep(step_number=1, model_output="Thought: one.").dict(), None, []))

    async def send_code():
        order.append("code sent")

    async def step():
        journal.model_output(journal.run, ChatMessage(role="assistant", content="Thought: two."))
        task = asyncio.ensure_future(send_code())  # as the agent starts the executor's run
        await asyncio.sleep(0.01)
        await task

    asyncio.run(step())
    assert order == ["code sent", "write"]
    assert store.log == [[("step", 1), ("reply", 2)]]
    store.close()
