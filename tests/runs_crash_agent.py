"""The agent the crash test runs in a subprocess (tests/test_runs_crash.py).

``python runs_crash_agent.py run DB LEDGER RUN_ID N``: runs the agent and SIGKILLs itself at the N-th
crash point (in a model call, in a tool call made by code, between steps, inside a store write);
N = 0 runs to the end and prints how many points it passed. ``resume DB LEDGER RUN_ID``: finishes the
run (starting it when the store never got it), approving calls that were in flight, and prints the answer.
"""

from __future__ import annotations

import json
import os
import signal
import sys

from codeloop import CodeAgent, tool
from codeloop.models.scripted import ScriptedModel
from codeloop.runs import SQLiteStore, journal

# A finished step waits for the run's next write, or is written by a timer when none comes soon (a slow
# model call); here that timer never fires, so every run passes the same crash points in the same order
# and a point counted in a full run is reached in a killed one (tests/test_runs_agents.py tests the timer).
journal.FLUSH_AFTER = 3600.0

POINTS = 0
CRASH_AT = 0


def point() -> None:
    global POINTS
    POINTS += 1
    if POINTS == CRASH_AT:
        os.kill(os.getpid(), signal.SIGKILL)


class CrashingStore(SQLiteStore):
    def _execute(self, cursor, text, params=()):
        point()  # dies between statements of one transaction: the write must vanish whole
        return super()._execute(cursor, text, params)


REPLIES = [
    "Thought: one.\n<code>\na = ledger('one')\nprint(a)\n</code>",
    "Thought: two.\n<code>\nb = quick('two') + ledger('three')\nprint(b)\n</code>",
    "Thought: done.\n<code>\nfinal_answer(a + b)\n</code>",
]


def reply(messages):
    point()
    roles = [getattr(m.role, "value", m.role) for m in messages]
    done = roles.count("assistant")
    if done >= len(REPLIES):
        # The script is done and the run goes on: a step failed. Say why (a bare IndexError here once
        # hid it in a resumed run, under heavy load).
        said = [str(m.content)[-400:] for m, role in zip(messages, roles, strict=True) if role != "assistant"][-3:]
        raise RuntimeError(f"the script has no reply {done + 1}: a step failed; the run's last messages: {said}")
    return REPLIES[done]


def make_agent(db: str, ledger_path: str) -> CodeAgent:
    @tool
    def ledger(tag: str) -> str:
        """Append a tag to the ledger (an effect that must happen once).

        Args:
            tag: what to write
        """
        point()
        with open(ledger_path, "a") as f:
            f.write(tag + "\n")
        return tag + ";"

    @tool
    def quick(tag: str) -> str:
        """Append a tag to the ledger, as an instant tool: it runs on the event loop thread, and its
        result is written once its answer went back to the code.

        Args:
            tag: what to write
        """
        return ledger(tag)

    quick.blocking = False

    return CodeAgent(
        tools=[ledger, quick],
        model=ScriptedModel(reply),
        store=CrashingStore(db),
        step_callbacks=[lambda step, agent=None: point()],
        executor_type=os.environ.get("CRASH_EXECUTOR", "local"),
        verbosity_level=0,
    )


def main() -> None:
    global CRASH_AT
    mode, db, ledger_path, run_id = sys.argv[1:5]
    CRASH_AT = int(sys.argv[5]) if mode == "run" else 0
    agent = make_agent(db, ledger_path)
    if mode == "run":
        result = agent.run("Write the ledger.", run_id=run_id, return_full_result=True)
        print(json.dumps({"output": result.output, "points": POINTS}))
        return
    if agent.store.get_run(run_id) is None:
        result = agent.run("Write the ledger.", run_id=run_id, return_full_result=True)
    else:
        result = agent.resume(run_id)
    approved = []
    while result.state == "awaiting_approval":
        # A person would look at the ledger; this one approves every call in doubt and reports, for each,
        # whether its effect was already there (it happened, but the process died before recording it).
        ledger_now = open(ledger_path).read().split() if os.path.exists(ledger_path) else []
        answers = {p["call_id"]: True for p in result.pending_approvals}
        approved += [
            {"reason": p["reason"], "tag": p["arguments"], "already_there": ledger_now.count(p["arguments"])}
            for p in result.pending_approvals
        ]
        result = agent.resume(run_id, approvals=answers)
    print(json.dumps({"output": result.output, "state": result.state, "approved": approved}))


if __name__ == "__main__":
    main()
