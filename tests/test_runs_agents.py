"""Stored runs through the agents: run ids, resume with code replay, fork, approvals, idempotent calls."""

from __future__ import annotations

import sqlite3

import pytest

from codeloop import CodeAgent, ToolCallingAgent
from codeloop.events import ApprovalRequested
from codeloop.memory import ActionStep
from codeloop.models.scripted import ScriptedModel
from codeloop.runs import SQLiteStore
from codeloop.tools import tool

EFFECTS: list[str] = []


@tool
def send(to: str) -> str:
    """Send a message.

    Args:
        to: the recipient
    """
    EFFECTS.append(f"send:{to}")
    return f"sent to {to}"


@tool(idempotent=True)
def lookup(key: str) -> str:
    """Look a key up.

    Args:
        key: the key
    """
    EFFECTS.append(f"lookup:{key}")
    return key.upper()


@pytest.fixture(autouse=True)
def _clear():
    EFFECTS.clear()


def code(src: str) -> str:
    return f"Thought: go.\n<code>\n{src}\n</code>"


def by_step(replies):
    """A script keyed by how many replies the model has already given in this run (resume-proof)."""

    def reply(messages):
        roles = [getattr(m.role, "value", m.role) for m in messages]
        done = sum(1 for r in roles if r == "assistant") or sum(1 for r in roles if r == "tool-call")
        return replies[done]

    return reply


def agent_for(replies, store, executor_type="inprocess", **kwargs):
    kwargs.setdefault("tools", [send, lookup])
    return CodeAgent(
        model=ScriptedModel(by_step(replies)),
        store=store,
        executor_type=executor_type,
        verbosity_level=0,
        **kwargs,
    )


STEPS = [
    code("a = lookup('x')\nprint(a)"),
    code("b = send('bob')\nprint(b)"),
    code("final_answer(a + '|' + b)"),
]


def test_stored_run_has_id_state_steps_events_usage(tmp_path):
    store = SQLiteStore(tmp_path / "r.db")
    result = agent_for(STEPS, store).run("task", run_id="one", return_full_result=True)
    assert (result.run_id, result.state, result.output) == ("one", "success", "X|sent to bob")
    stored = store.get_run("one")
    assert stored.state == "success" and stored.output == "X|sent to bob"
    assert [s.get("step_number") for s in stored.steps] == [None, 1, 2, 3]
    # model inputs are not copied into each step: they are the earlier rows
    assert all(s.get("model_input_messages") is None for s in stored.steps[1:])
    types = [e["type"] for e in stored.events[1]]
    assert "model_output" in types and "tool_call_started" in types and "tool_call_finished" in types
    assert sorted(stored.calls) == ["1:lookup#1", "2:send#1"]
    assert stored.calls["2:send#1"].result == "sent to bob"
    assert stored.usage is not None and stored.data["step_number"] == 3
    with pytest.raises(ValueError, match="already stored"):
        agent_for(STEPS, store).run("task", run_id="one")
    # a finished run resumes to its stored result
    again = agent_for(STEPS, store).resume("one")
    assert (again.state, again.output) == ("success", "X|sent to bob")


def _crash_at_step(store, n, executor_type):
    broken = list(STEPS)
    broken[n - 1] = None  # the model fails there: the run stops as "failed", like a process dying

    def reply(messages):
        r = by_step(broken)(messages)
        if r is None:
            raise RuntimeError("model down")
        return r

    agent = CodeAgent(
        tools=[send, lookup],
        model=ScriptedModel(reply),
        store=store,
        executor_type=executor_type,
        verbosity_level=0,
    )
    result = agent.run("task", run_id="c", return_full_result=True)
    assert result.state == "failed" or result.output is None


@pytest.mark.parametrize("executor_type", ["inprocess", "local"])
def test_resume_rebuilds_variables_without_running_tools_again(tmp_path, executor_type):
    store = SQLiteStore(tmp_path / "r.db")
    with pytest.raises(Exception, match="model down"):
        _crash_at_step(store, 3, executor_type)
    assert store.get_run("c").state == "failed"
    assert EFFECTS == ["lookup:x", "send:bob"]
    result = agent_for(STEPS, str(tmp_path / "r.db"), executor_type).resume("c")
    assert (result.state, result.output) == ("success", "X|sent to bob")
    assert EFFECTS == ["lookup:x", "send:bob"]  # a and b came back from the record
    assert store.get_run("c").state == "success"


def test_lost_variables_are_named_when_replay_diverges(tmp_path):
    path = tmp_path / "r.db"
    store = SQLiteStore(path)
    with pytest.raises(Exception, match="model down"):
        _crash_at_step(store, 3, "inprocess")
    with sqlite3.connect(path) as conn:  # the record of step 2's call is gone
        conn.execute("DELETE FROM codeloop_calls WHERE call_key = '2:send#1'")
    steps = [*STEPS[:2], code("print(a)\nfinal_answer('ok')")]
    agent = agent_for(steps, str(path))
    result = agent.resume("c")
    assert result.output == "ok"
    last = [s for s in agent.memory.steps if isinstance(s, ActionStep)][-1]
    assert "could not be rebuilt" in last.observations and "b" in last.observations.split("lost:")[1]
    assert EFFECTS == ["lookup:x", "send:bob"]


def test_fork_takes_another_continuation(tmp_path):
    store = SQLiteStore(tmp_path / "r.db")
    agent_for(STEPS, store).run("task", run_id="base")
    other = [*STEPS[:1], code("final_answer('forked ' + a)")]
    result = agent_for(other, store).fork("base", at_step=1, new_run_id="f1")
    assert (result.run_id, result.state, result.output) == ("f1", "success", "forked X")
    fork = store.get_run("f1")
    assert fork.parent_id == "base" and fork.fork_step == 1
    assert EFFECTS == ["lookup:x", "send:bob"]  # the fork replayed lookup from the record
    assert [r.run_id for r in store.list_runs()][:2] == ["f1", "base"]


@pytest.mark.parametrize("executor_type", ["inprocess", "local"])
def test_approval_pauses_code_tool_calls_and_resumes_with_answers(tmp_path, executor_type):
    db = str(tmp_path / "r.db")
    agent = agent_for(STEPS, db, executor_type, approval={"send"})
    result = agent.run("task", run_id="ap", return_full_result=True)
    assert result.state == "awaiting_approval" and result.output is None
    assert EFFECTS == ["lookup:x"]
    (pending,) = result.pending_approvals
    assert (pending["call_id"], pending["tool"], pending["arguments"]) == ("2:send#1", "send", "bob")
    assert agent.store.get_run("ap").pending_approvals == result.pending_approvals
    with pytest.raises(ValueError, match="waits for"):
        agent_for(STEPS, db, executor_type, approval={"send"}).resume("ap", approvals={"9:nope#1": True})
    # another agent (as another process would) answers
    result = agent_for(STEPS, db, executor_type, approval={"send"}).resume("ap", approvals={"2:send#1": True})
    assert (result.state, result.output) == ("success", "X|sent to bob")
    assert EFFECTS == ["lookup:x", "send:bob"]


def test_denial_reaches_the_model_with_its_reason(tmp_path):
    db = str(tmp_path / "r.db")
    steps = [*STEPS[:2], code("final_answer('gave up')")]
    model = ScriptedModel(by_step(steps))
    agent = CodeAgent(
        tools=[send, lookup],
        model=model,
        store=db,
        approval={"send"},
        executor_type="inprocess",
        verbosity_level=0,
    )
    agent.run("task", run_id="d")
    result = agent.resume("d", approvals={"2:send#1": "not to bob, please"})
    assert result.output == "gave up"
    assert EFFECTS == ["lookup:x"]
    last_input = " ".join(str(m.text) for m in model.calls[-1])
    assert "denied by a person: not to bob, please" in last_input


def test_callable_approval_rule_and_handler_without_store():
    seen: list[ApprovalRequested] = []

    async def handler(request):
        seen.append(request)
        return request.arguments == "bob" or "only bob"

    rule = lambda name, arguments, run: None if name == "send" else True  # noqa: E731
    steps = [code("r1 = send('bob')\nr2 = send('eve')\nprint(r1)"), code("final_answer(r1)")]
    agent = CodeAgent(
        tools=[send, lookup],
        model=ScriptedModel(by_step(steps)),
        approval=rule,
        approval_handler=handler,
        executor_type="local",
        verbosity_level=0,
    )
    events = list(agent.stream("task"))
    assert [r.arguments for r in seen] == ["bob", "eve"]
    assert [e.tool_name for e in events if isinstance(e, ApprovalRequested)] == ["send", "send"]
    assert EFFECTS == ["send:bob"]
    assert events[-1].output == "sent to bob"
    step = [s for s in agent.memory.steps if isinstance(s, ActionStep)][0]
    assert "only bob" in str(step.error)
    with pytest.raises(ValueError, match="approval_handler"):
        CodeAgent(tools=[send], model=ScriptedModel([]), approval={"send"})


def test_rule_returning_false_denies_without_asking(tmp_path):
    steps = [code("print(send('x'))"), code("final_answer('done')")]
    agent = agent_for(steps, str(tmp_path / "r.db"), approval=lambda n, a, r: n != "send")
    assert agent.run("task") == "done"
    assert EFFECTS == []


def test_tool_calling_agent_approval_across_agents(tmp_path):
    db = str(tmp_path / "r.db")

    def replies(n):
        return [
            {
                "content": None,
                "tool_calls": [
                    {"name": "lookup", "arguments": {"key": "k"}, "id": "c1"},
                    {"name": "send", "arguments": {"to": "amy"}, "id": "c2"},
                ],
            },
            {
                "content": None,
                "tool_calls": [{"name": "final_answer", "arguments": {"answer": "fine"}, "id": "c3"}],
            },
        ]

    def make():
        return ToolCallingAgent(
            tools=[send, lookup],
            model=ScriptedModel(by_step(replies(0))),
            store=db,
            approval={"send"},
            verbosity_level=0,
        )

    result = make().run("task", run_id="tc", return_full_result=True)
    assert result.state == "awaiting_approval"
    assert [p["call_id"] for p in result.pending_approvals] == ["1:c2"]
    assert EFFECTS == ["lookup:k"]
    result = make().resume("tc", approvals={"1:c2": True})
    assert (result.state, result.output) == ("success", "fine")
    assert EFFECTS == ["lookup:k", "send:amy"]


def _in_flight(db, tool_name, argument):
    """A stored run whose step-2 call was started but never finished (the process died inside it)."""
    store = SQLiteStore(db)
    with pytest.raises(Exception, match="model down"):
        _crash_at_step(store, 3, "inprocess")
    from codeloop.runs import CallRecord

    store.record_call("c", CallRecord("2:send#1", 2, "send", "bob", "started"))
    EFFECTS.clear()
    return store


def test_in_flight_non_idempotent_call_waits_for_a_person(tmp_path):
    db = str(tmp_path / "r.db")
    store = _in_flight(db, "send", "bob")
    # step 2 is redone from its stored reply: the call's result is unknown
    store.update_run(
        "c", data={"pending_step": {"step_number": 2, "message": {"role": "assistant", "content": STEPS[1]}}}
    )
    with sqlite3.connect(db) as conn:
        conn.execute("DELETE FROM codeloop_steps WHERE idx >= 2")
    result = agent_for(STEPS, db).resume("c")
    assert result.state == "awaiting_approval"
    assert "may or may not have taken effect" in result.pending_approvals[0]["reason"]
    assert EFFECTS == []
    result = agent_for(STEPS, db).resume("c", approvals={"2:send#1": True})
    assert result.output == "X|sent to bob" and EFFECTS == ["send:bob"]


def test_in_flight_idempotent_call_runs_again(tmp_path):
    db = str(tmp_path / "r.db")
    store = SQLiteStore(db)
    with pytest.raises(Exception, match="model down"):
        _crash_at_step(store, 2, "inprocess")
    from codeloop.runs import CallRecord

    store.record_call("c", CallRecord("2:send#1", 2, "lookup", "y", "started"))
    steps = [STEPS[0], code("b = lookup('y')\nprint(b)"), code("final_answer(a + b)")]
    store.update_run(
        "c", data={"pending_step": {"step_number": 2, "message": {"role": "assistant", "content": steps[1]}}}
    )
    EFFECTS.clear()
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE codeloop_calls SET call_key = '2:lookup#1' WHERE call_key = '2:send#1'")
    assert agent_for(steps, db).resume("c").output == "XY"
    assert EFFECTS == ["lookup:y"]


def test_a_run_stopped_by_a_usage_limit_resumes_with_a_higher_limit(tmp_path):
    from codeloop import UsageLimitExceeded, UsageLimits

    replies = [code("a = 1"), code("b = a + 1"), code("c = b + 1"), code("final_answer(c * 10)")]
    store = SQLiteStore(tmp_path / "runs.db")
    agent = CodeAgent(
        tools=[], model=ScriptedModel(by_step(replies)), store=store, executor_type="inprocess",
        usage_limits=UsageLimits(max_model_calls=2),
    )
    with pytest.raises(UsageLimitExceeded, match="max_model_calls") as caught:
        agent.run("count", run_id="limited")
    assert caught.value.result.state == "usage_limit_exceeded"
    assert store.get_run("limited").state == "usage_limit_exceeded"

    # The same limit again stops at once: the stored run already made its two calls.
    with pytest.raises(UsageLimitExceeded, match="max_model_calls"):
        agent.resume("limited")
    result = agent.resume("limited", usage_limits=UsageLimits(max_model_calls=4))
    assert result.output == 30 and result.state == "success"


def test_an_interrupted_run_is_stored_as_cancelled_and_resumes(tmp_path):
    store = SQLiteStore(tmp_path / "runs.db")

    def stop(step, agent):
        if step.step_number == 1:
            agent.interrupt()

    script = by_step([code("x = 20"), code("final_answer(x + 1)")])
    agent = CodeAgent(tools=[], model=ScriptedModel(script), store=store, step_callbacks=[stop], verbosity_level=0)
    result = agent.run("t", run_id="c1", return_full_result=True)
    assert result.state == "cancelled"
    assert store.get_run("c1").state == "cancelled"
    assert [r.run_id for r in store.list_runs(state="cancelled")] == ["c1"]
    fresh = CodeAgent(tools=[], model=ScriptedModel(script), store=store, verbosity_level=0)
    resumed = fresh.resume("c1")
    assert (resumed.state, resumed.output) == ("success", 21)
    store.close()


def test_a_finished_step_goes_with_the_next_write_or_soon_after(tmp_path):
    """A step whose reply and tool results are stored waits for the run's next write (one transaction
    with the next step's first call); during a slow model call it is written after FLUSH_AFTER."""
    from codeloop.runs import journal

    db = str(tmp_path / "runs.db")
    transactions: list[int] = []
    stored_while_asking: list[int] = []

    class Counting(SQLiteStore):
        def write(self, run_id, *, steps=(), **kwargs):
            transactions.append(len(steps))
            super().write(run_id, steps=steps, **kwargs)

    def reply(messages):
        done = sum(1 for m in messages if getattr(m.role, "value", m.role) == "assistant")
        if done == 1:  # the model is slow here: step 1 must be in the store by now
            with SQLiteStore(db) as other:
                stored_while_asking.append(len(other.get_run("slow").steps))
        return STEPS[done]

    store = Counting(db)
    agent = CodeAgent(
        tools=[send, lookup], model=ScriptedModel(reply, latency=4 * journal.FLUSH_AFTER), store=store,
        executor_type="inprocess", verbosity_level=0,
    )
    result = agent.run("t", run_id="slow", return_full_result=True)
    assert result.state == "success"
    assert stored_while_asking == [2]  # the task and step 1, written by the timer during the slow call
    fast = CodeAgent(
        tools=[send, lookup], model=ScriptedModel(by_step(STEPS)), store=store, executor_type="inprocess",
        verbosity_level=0,
    )
    transactions.clear()
    assert fast.run("t", run_id="fast") == "X|sent to bob"
    # the task step; step 1 with step 2's call; step 2 with the final step (written at once: its reply is
    # in no call record); the end of the run. (Step 1's own call had no finished step to carry.)
    assert transactions == [1, 1, 2, 0]
    stored = store.get_run("fast")
    assert [s.get("step_number") for s in stored.steps] == [None, 1, 2, 3]
    # the reply is stored once, with its step; the ModelOutput event refers to it and reads back whole
    (output,) = [e for e in stored.events[1] if e["type"] == "model_output"]
    assert output["message"] == stored.steps[1]["model_output_message"] and "Thought: go." in str(output)
    with sqlite3.connect(db) as conn:
        raw = conn.execute("SELECT events FROM codeloop_steps WHERE run_id = 'fast' AND idx = 1").fetchone()[0]
    assert '"$ref"' in raw and "Thought: go." not in raw


def test_a_run_stored_without_its_task_step_resumes_with_its_task(tmp_path):
    store = SQLiteStore(str(tmp_path / "runs.db"))
    store.create_run("bare", agent="CodeAgent", task="Say the magic word.", data={"max_steps": 5})
    seen = []

    def reply(messages):
        seen.append(" ".join(str(m.content) for m in messages))
        return code("final_answer('please')")

    agent = CodeAgent(tools=[], model=ScriptedModel(reply), store=store, executor_type="inprocess", verbosity_level=0)
    assert agent.resume("bare").output == "please"
    assert "Say the magic word." in seen[0]
    assert store.get_run("bare").steps[0]["task"] == "Say the magic word."
