"""Starting, resuming and forking stored runs; rebuilding a resumed run's executor state.

Layer 6 (runs). A resumed run gets its memory back from the stored steps and continues after the last
finished step. The executor's variables are rebuilt by running each finished step's code again with
every tool call answered from the record (no tool runs twice). A step that was in progress (its model
reply is stored) is done again from that reply: calls that finished are answered from the record, and a
call that was in flight runs again only if its tool is idempotent; otherwise the run waits for approval.
"""

from __future__ import annotations

import ast
import time
import uuid
from typing import TYPE_CHECKING, Any

from ..memory import ActionStep, AgentMemory, PlanningStep, TaskStep, memory_step_from_dict
from ..messages import TokenUsage
from .base import RunStore, StoredRun
from .journal import Journal, ReplayDiverged

if TYPE_CHECKING:
    from ..agents.run import Run, RunResult

__all__ = ["configure_agent", "attach_journal", "aresume", "afork", "restore_executor", "assigned_names"]

_FINISHED = ("success", "max_steps_error")


def configure_agent(agent: Any, store: Any, approval: Any, approval_handler: Any) -> None:
    """The agent's ``store``, ``approval`` and ``approval_handler`` options, checked."""
    from . import open_store

    agent.approval = set(approval) if isinstance(approval, list | tuple | set | frozenset) else approval
    agent.approval_handler = approval_handler
    agent.store = open_store(store)
    if approval is not None and agent.store is None and approval_handler is None:
        raise ValueError(
            "approval= needs somewhere to ask: pass store=... (the run pauses as 'awaiting_approval') "
            "or approval_handler=async_callable (awaited for each call that needs approval)."
        )


def attach_journal(agent: Any, run: Run) -> None:
    """Give a new run its journal when the agent has a store or an approval rule."""
    if agent.store is None and agent.approval is None:
        return
    run.journal = Journal(run, agent.store, approval=agent.approval, handler=agent.approval_handler)


def _store(agent: Any) -> RunStore:
    if agent.store is None:
        raise ValueError(
            "This agent has no store: create it with store='runs.db' (or a RunStore) to resume runs."
        )
    return agent.store


def _load(store: RunStore, run_id: str) -> StoredRun:
    stored = store.get_run(run_id)
    if stored is None:
        raise KeyError(f"No stored run {run_id!r} in {store!r}: `codeloop runs list` shows the stored runs.")
    return stored


def _stored_result(stored: StoredRun) -> RunResult:
    from ..agents.run import RunResult

    usage = TokenUsage.from_dict(stored.usage) if stored.usage else None
    result = RunResult(output=stored.output, state=stored.state, steps=stored.steps, token_usage=usage)
    result.run_id = stored.run_id
    return result


def _rebuild(agent: Any, stored: StoredRun, approvals: dict[str, Any] | None, usage_limits: Any = None) -> Run:
    from ..agents.run import Run

    if not stored.steps:  # the process stopped between storing the run and its task step
        task_step = TaskStep(task=stored.task).dict()
        agent.store.append_step(stored.run_id, 0, task_step, [])
        stored.steps = [task_step]
    memory = AgentMemory(agent.system_prompt)
    memory.steps = [memory_step_from_dict(step) for step in stored.steps]
    task = next((s.task for s in memory.steps if isinstance(s, TaskStep)), stored.task)
    run = Run(agent, task, memory, max_steps=int(stored.data.get("max_steps") or agent.max_steps))
    run.id = stored.run_id
    actions = [s for s in memory.steps if isinstance(s, ActionStep)]
    run.step_number = max((s.step_number for s in actions), default=0)
    if memory.steps and isinstance(memory.steps[-1], PlanningStep):
        run.step_number = max(run.step_number, int(stored.data.get("step_number") or 0) - 1)
    if stored.usage:
        run.usage = TokenUsage.from_dict(stored.usage)
    limits = usage_limits if usage_limits is not None else getattr(agent, "usage_limits", None)
    if limits is not None:  # the limits go on counting from where the stored run was
        from ..usage_limits import RunBudget

        saved = stored.data.get("budget")
        run.budget = RunBudget.from_dict(saved, limits) if saved else RunBudget(limits)
    decisions = dict(approvals or {})
    waiting = {p["call_id"] for p in stored.pending_approvals}
    unknown = sorted(set(decisions) - waiting - set(stored.calls))
    if unknown:
        raise ValueError(
            f"Unknown call id(s) {unknown} for run {stored.run_id!r}; the run waits for: {sorted(waiting) or 'nothing'}."
        )
    for key, decision in decisions.items():
        if not (decision is True or decision is False or isinstance(decision, str)):
            raise TypeError(f"Approval for {key} must be True, False or a reason string, got {decision!r}.")
        record = stored.calls.get(key)
        if record is not None:  # kept, so that a crash after this point does not ask again
            record.decision = decision
            agent.store.record_call(run.id, record)
    journal = Journal(
        run,
        agent.store,
        approval=agent.approval,
        handler=agent.approval_handler,
        calls=stored.calls,
        approvals=decisions,
        pending_step=stored.data.get("pending_step"),
        resumed=True,
        seed=stored.data.get("seed"),
    )
    tapes = {d.get("step_number"): d.get("tape") or [] for d in stored.steps if "step_number" in d}
    journal.replay_steps = [
        (s.step_number, s.code_action, tapes.get(s.step_number, [])) for s in actions if s.code_action
    ]
    journal.replay_errors = {s.step_number for s in actions if s.error is not None}
    run.journal = journal
    return run


async def aresume(
    agent: Any, run_id: str, approvals: dict[str, Any] | None = None, *, usage_limits: Any = None
) -> RunResult:
    """Continue stored run ``run_id``; a run that already ended returns its stored result."""
    store = _store(agent)
    stored = _load(store, run_id)
    if stored.state in _FINISHED:
        return _stored_result(stored)
    run = _rebuild(agent, stored, approvals, usage_limits)
    agent._last_run = run
    last = run.memory.steps[-1] if run.memory.steps else None
    if isinstance(last, ActionStep) and last.is_final_answer and last.error is None:
        # The answer was stored but the process died before the run was marked finished.
        run.output, run.status = last.action_output, "success"
        store.update_run(run_id, state="success", data={"output": run.output, "pending_step": None})
        return run.result()
    async for _ in agent._drive(run, one_task=True):
        pass
    return run.result()


async def afork(
    agent: Any, run_id: str, at_step: int, task: str | None = None, new_run_id: str | None = None
) -> RunResult:
    """A new run from the stored steps of ``run_id`` up to action step ``at_step``, then live."""
    store = _store(agent)
    stored = _load(store, run_id)
    keep = 0
    for index, step in enumerate(stored.steps):
        number = step.get("step_number")
        if number is not None and number > at_step:
            break
        if "output" in step and len(step) == 1:  # a final answer step
            break
        keep = index + 1
    new_id = new_run_id or f"{run_id}-fork-{uuid.uuid4().hex[:8]}"
    store.fork_run(run_id, new_id, keep, last_step_number=at_step)
    if task is not None:
        from ..memory import TaskStep as _Task

        forked = _load(store, new_id)
        store.append_step(new_id, len(forked.steps), _Task(task=task).dict(), [])
    return await aresume(agent, new_id)


def assigned_names(code: str) -> set[str]:
    """Top-level names a piece of code binds (what is lost when it cannot be replayed)."""
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return set()
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.alias):
            names.add((node.asname or node.name).split(".")[0])
    return names


async def restore_executor(run: Run) -> float:
    """Rerun the finished steps' code with recorded tool results; returns the seconds it took."""
    journal: Journal = run.journal
    steps = getattr(journal, "replay_steps", None)
    if not steps:
        return 0.0
    journal.replay_steps = []
    start = time.perf_counter()
    current = run.step_number
    executor = run.executor
    lost: set[str] = set()
    journal.replaying = True
    try:
        for index, (number, code, tape) in enumerate(steps):
            run.step_number = number
            failed = False
            journal.before_code(executor, tape)
            try:
                await executor.aexecute(code)
            except ReplayDiverged:
                failed = True
            except Exception:
                failed = number not in journal.replay_errors
            finally:
                replayed = journal.after_code(executor)
            if replayed is not None and replayed.get("diverged"):
                failed = True  # the code read other clock/random values than the first time
            if failed or journal.diverged:
                for _, later, _tape in steps[index:]:
                    lost |= assigned_names(later)
                break
    finally:
        journal.replaying = False
        run.step_number = current
    if lost:
        journal.note = (
            "Note: this run was resumed after a stop, and these variables could not be rebuilt, so they are "
            f"lost: {', '.join(sorted(lost))}. Compute them again if you need them.\n"
        )
    journal.replay_seconds = time.perf_counter() - start
    return journal.replay_seconds
