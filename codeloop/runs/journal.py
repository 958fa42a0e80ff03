"""What a run with a store or an approval rule carries: the journal of its steps and tool calls.

Layer 6 (runs). The agent loop knows only duck-typed hooks on ``run.journal``: ``on_event`` (the journal
is one more event subscriber: a StepFinished event writes the finished memory step and the step's events
in one transaction; RunFinished/RunFailed write the state), ``replayed_model_output``/``model_output``
(the reply of the step in progress is stored before its action runs, so a resumed run repeats the same
action) and ``call_tool``/``acall_tool`` (every tool call, from code or from the model: answered from the
record when it already finished, gated by approval, recorded before and after it runs).

A finished step whose reply went into the store with its first tool call, and whose code read no clock
or random value, is not written at once: it goes with the run's next write (the next step's first tool
call, a pause, the end), one transaction instead of two, or after ``FLUSH_AFTER`` seconds when nothing
else was written (a slow model call). A crash in between loses no effect: the step's reply and its tool
results are stored, so a resumed run redoes it from them with every call answered from the record.

Writes wait for the event loop to be idle where nothing depends on them yet, so that they overlap with
the worker process running the step's code: the next step's reply with the finished steps not written
yet, once the reply is known (then the step's first tool call is one small write), and the result of a
tool call made on the loop thread (an instant tool), once its answer went back to the code. Every write
keeps its place in the one order of the run's writes (a later write first writes what is still waiting,
in the same transaction), so the store always holds a prefix of that order, as it did when each write
was made at once: a tool's start is on record before it runs, and a result not yet on record at a crash
is a call in flight, as it would be after a crash right after the tool returned.
"""

from __future__ import annotations

import asyncio
import secrets
import threading
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from ..errors import AgentToolExecutionError
from ..events import ApprovalRequested, Event, RunFailed, RunFinished, RunStarted, StepFinished
from ..memory import ActionStep
from ..messages import ChatMessage
from .base import MESSAGE_REF, CallRecord, RunStore

if TYPE_CHECKING:
    from ..agents.run import Run

__all__ = ["Journal", "ApprovalPending", "ToolCallDenied", "ReplayDiverged", "step_record", "event_record"]

#: seconds a finished step may wait for the run's next write before it is written on its own
FLUSH_AFTER = 0.05

_IN_DOUBT = (
    "the call was in flight when the process stopped and may or may not have taken effect; "
    "approve to run it again, deny to skip it"
)


class ApprovalPending(Exception):
    """Raised inside a tool call that waits for a person; the loop then pauses the run."""


class ToolCallDenied(AgentToolExecutionError):
    """A person (or the approval rule) said no; the model sees this message as the call's error."""


class ReplayDiverged(Exception):
    """Replayed code made a tool call the record does not have: the state after it cannot be rebuilt."""


def step_record(step: Any) -> dict[str, Any]:
    """A memory step as stored: its dict, without the model input (rebuilt from the earlier steps)."""
    if step.__dict__.get("_inputs_ref") is not None or isinstance(step, ActionStep):
        # Reading the inputs of a step that refers to memory would rebuild (and store) the whole
        # conversation at every step: serialize a shallow copy without them (made by hand: copy.copy
        # goes through __reduce_ex__, which costs more than the rest of this).
        shallow = object.__new__(type(step))
        shallow.__dict__.update(step.__dict__)
        shallow.__dict__["_inputs"] = shallow.__dict__["_inputs_ref"] = None
        step = shallow
    return step.dict()


def event_record(event: Event) -> dict[str, Any]:
    """An event as stored: ``event.to_dict()``'s keys, with nested values (messages, usage) left for the
    store's JSON encoder to turn into dicts (one walk instead of two)."""
    record = {"type": event.type}
    record.update(event.__dict__)
    return record


def _row(index: int, record: dict[str, Any], message: Any, events: list[Event]) -> tuple[int, dict[str, Any], list[Any]]:
    """A finished step as the store writes it: (index, record, event records)."""
    records = []
    for event in events:
        item = event_record(event)
        if message is not None and item.get("message") is message:  # the reply is stored once, with the step
            item["message"] = MESSAGE_REF
        records.append(item)
    return index, record, records


class Journal:
    """Per-run: records into ``store`` (when given) and applies the approval rule."""

    def __init__(
        self,
        run: Run,
        store: RunStore | None,
        *,
        approval: Any = None,
        handler: Callable[[ApprovalRequested], Awaitable[Any]] | None = None,
        calls: dict[str, CallRecord] | None = None,
        approvals: dict[str, Any] | None = None,
        pending_step: dict[str, Any] | None = None,
        resumed: bool = False,
        seed: int | None = None,
    ):
        self.run = run
        self.store = store
        self.approval = approval
        self.handler = handler
        self.calls: dict[str, CallRecord] = dict(calls or {})
        self.approvals: dict[str, Any] = dict(approvals or {})
        self.pending_step = pending_step
        self.resumed = resumed
        self.pending: list[dict[str, Any]] = []
        self.replaying = False
        self.diverged = False
        self.replay_steps: list[tuple[int, str, list[Any] | None]] = []
        # the run's random seed and each step's recorded clock/random values (executors/tape.py)
        self.seed = seed
        self._tapes: dict[int, list[Any]] = {}
        self.replay_errors: set[int] = set()
        self.replay_seconds = 0.0
        self.note: str | None = None
        self._events: list[Event] = []
        self._counts: dict[tuple[int, str], int] = {}
        self._lock = threading.Lock()
        self._stored_steps = 0
        # the reply of the step in progress, not stored yet (taken as the model gave it: the agent may
        # edit the message afterwards)
        self._reply: dict[str, Any] | None = None
        # finished steps not written yet (index, record, reply message, events) and the run data that
        # goes with them; taken and written under _write_lock, so writes from the loop and from code
        # threads keep order. The record is taken when the step finishes (compaction may edit the step
        # later); the events are immutable and made into records when written (off the step's path
        # when the loop is idle).
        self._unsaved: list[tuple[int, dict[str, Any], Any, list[Event]]] = []
        self._unsaved_data: dict[str, Any] = {}
        self._write_lock = threading.Lock()
        self._flush_timer: Any = None
        # results of tool calls made on the loop thread, written when the loop is next idle (or first
        # thing in the run's next write); _idle: the loop such a write is scheduled on
        self._late: list[CallRecord] = []
        self._idle: asyncio.AbstractEventLoop | None = None
        # whether the code runs in another process (set by before_code): only then does a write made
        # while the code runs overlap with it (in-process code would wait for the lock and the GIL)
        self._overlap = False

    # ---- the event subscriber ----
    def on_event(self, event: Event) -> None:
        store = self.store
        if store is None:
            return
        kind = type(event)
        if kind is StepFinished:
            self._save_step()
        elif kind is RunFinished or kind is RunFailed:
            self._finish(event)
        elif kind is RunStarted:
            self._start()
        elif event.type != "model_delta":
            self._events.append(event)

    def _write(
        self,
        call: CallRecord | None = None,
        state: str | None = None,
        data: dict[str, Any] | None = None,
        *,
        reply: bool = False,
        keep: bool = False,
    ) -> None:
        """One write of the run, carrying what waits for it, in order: the finished steps not written
        yet, the results of calls made on the loop thread, then ``call``, ``state`` and ``data``.
        ``reply``: also the reply of the step in progress (taken here, under the lock, so that no tool
        call can go on record before the reply of its step). ``keep``: on failure, what was waiting
        waits again (for a write nobody waits on, whose error would otherwise be lost)."""
        with self._write_lock:
            steps, self._unsaved = self._unsaved, []
            late, self._late = self._late, []
            saved_data = self._unsaved_data
            if steps:
                data = {**saved_data, **(data or {})}
                self._unsaved_data = {}
            pending = self._reply if reply else None
            if pending is not None:
                self._reply = None
                data = {**(data or {}), "pending_step": pending}
            calls = late if call is None else [*late, call]
            try:
                if steps or state is not None or len(calls) != 1:
                    if steps or calls or state is not None or data:
                        rows = [_row(*unsaved) for unsaved in steps]
                        self.store.write(self.run.id, steps=rows, calls=calls, state=state, data=data)  # type: ignore[union-attr]
                else:
                    self.store.record_call(self.run.id, calls[0], data=data)  # type: ignore[union-attr]
            except BaseException:
                if keep:  # one transaction: none of it was written
                    self._unsaved[:0] = steps
                    self._late[:0] = late
                    if steps:
                        self._unsaved_data = {**saved_data, **self._unsaved_data}
                    if pending is not None and self._reply is None:
                        self._reply = pending
                raise

    def _when_idle(self) -> None:
        """Write what waits once the event loop has nothing else to do (when on the loop thread)."""
        loop = asyncio._get_running_loop()
        if loop is None:
            self._write(reply=True)
        elif self._idle is not loop:  # (a write scheduled on a loop that stopped since does not count)
            self._idle = loop
            # A timer due now runs after the callbacks already queued (call_soon would run first): the
            # task that sends the step's code to the worker goes before this write, so they overlap.
            loop.call_later(0, self._idle_write)

    def _idle_write(self) -> None:
        self._idle = None
        try:
            self._write(reply=True, keep=True)
        except Exception:  # noqa: BLE001 - it stays waiting: the run's next write retries it and fails there
            pass

    def flush(self) -> None:
        """Write the finished steps still waiting for the run's next write (no-op when none)."""
        timer, self._flush_timer = self._flush_timer, None
        if timer is not None:
            timer.cancel()
        self._write()

    def _usage(self) -> dict[str, Any] | None:
        usage = self.run.usage
        return usage.to_dict() if usage is not None else None

    def _extra(self) -> dict[str, Any]:
        """Fields other layers put on the run (usage limits, cost...): stored when JSON-friendly."""
        out: dict[str, Any] = {"usage": self._usage(), "step_number": self.run.step_number}
        for name in ("cost", "budget"):
            value = getattr(self.run, name, None)
            if value is not None:
                out[name] = value.to_dict() if hasattr(value, "to_dict") else value
        return out

    def _start(self) -> None:
        run = self.run
        steps = run.memory.steps
        if self.resumed:
            self._stored_steps = len(steps)
            self.store.update_run(run.id, state="running", data={"pending_approvals": []})  # type: ignore[union-attr]
            return
        self.seed = secrets.randbits(63)
        self.store.create_run(  # type: ignore[union-attr]
            run.id,
            agent=getattr(run.agent, "name", None) or type(run.agent).__name__,
            task=run.task,
            data={"max_steps": run.max_steps, "seed": self.seed, **self._extra()},
        )
        # The task step (and any steps of a reset=False predecessor) are the start of the record.
        if steps:
            rows = [(index, step_record(step), []) for index, step in enumerate(steps)]
            self.store.write(run.id, steps=rows)  # type: ignore[union-attr]
        self._stored_steps = len(steps)

    def _save_step(self) -> None:
        run = self.run
        steps = run.memory.steps
        events, self._events = self._events, []
        # A step may wait for the run's next write only when a resumed run can redo it exactly: its reply
        # went into the store with its first tool call (so no reply is waiting here), and its code read
        # no clock or random value (those are kept in the step's own record).
        defer = self._reply is None
        self._reply = None
        rows = []
        while self._stored_steps < len(steps):
            index = self._stored_steps
            step = steps[index]
            record = step_record(step)
            tape = self._tapes.pop(record.get("step_number", -1), None) if self._tapes else None
            if tape:
                record["tape"] = tape
                defer = False
            defer = defer and type(step) is ActionStep
            rows.append((index, record, getattr(step, "model_output_message", None), events))
            events = []
            self._stored_steps += 1
        if not rows:
            return
        data = self._extra()
        data["pending_step"] = None
        with self._write_lock:
            self._unsaved.extend(rows)
            self._unsaved_data.update(data)
        if not defer:
            self.flush()
        elif self._flush_timer is None:
            self._flush_timer = asyncio.get_running_loop().call_later(FLUSH_AFTER, self._timed_flush)

    def _timed_flush(self) -> None:
        self._flush_timer = None
        self._write()

    def _finish(self, event: Event) -> None:
        run = self.run
        data = self._extra()
        if isinstance(event, RunFailed):
            data["error"] = f"{event.error_type}: {event.error}"
            # a usage limit is a stop the user can lift (resume with higher usage_limits), not a failure
            state = "usage_limit_exceeded" if run.status == "usage_limit_exceeded" else "failed"
        else:
            state = run.status
            data["output"] = run.output
            data["pending_approvals"] = list(self.pending)
        if state != "awaiting_approval":
            data["pending_step"] = None
        self._reply = None
        timer, self._flush_timer = self._flush_timer, None
        if timer is not None:
            timer.cancel()
        self._write(state=state, data=data)

    # ---- clock and random values of code (executors/tape.py) ----
    def before_code(self, executor: Any, replay: list[Any] | None = None) -> None:
        """Ask the executor to record what the step's code reads from the clock and random sources (and,
        when a finished step is replayed, to give it the recorded values)."""
        if self.seed is None or self.store is None:
            return
        isolation = getattr(type(executor), "isolation", None)  # the class's: a property may block
        self._overlap = not (isinstance(isolation, dict) and isolation.get("process") is False)
        set_tape = getattr(executor, "set_tape", None)
        if set_tape is not None:
            set_tape({"seed": self.seed} if replay is None else {"seed": self.seed, "replay": replay})

    def after_code(self, executor: Any) -> dict[str, Any] | None:
        """What the executor recorded; kept for the step's record unless this is a replay."""
        if self.seed is None or self.store is None:
            return None
        take = getattr(executor, "take_tape", None)
        tape = take() if take is not None else None
        if not isinstance(tape, dict):
            return None
        values = tape.get("values")
        if not self.replaying and isinstance(values, list) and values:
            self._tapes[self.run.step_number] = values
        return tape

    # ---- model replies ----
    def replayed_model_output(self, run: Run) -> ChatMessage | None:
        """The stored reply of the step being redone after a resume (used once), else None."""
        pending = self.pending_step
        if pending is not None and pending.get("step_number") == run.step_number:
            self.pending_step = None
            return ChatMessage.from_dict(pending["message"])
        return None

    def model_output(self, run: Run, message: ChatMessage) -> None:
        """Keep the reply of the step in progress; it is stored with the step's first tool call (before
        any effect: a step redone from it repeats the same calls) or with the step itself, or earlier,
        with the finished steps still waiting, as soon as the loop is idle (the code runs meanwhile)."""
        if self.store is not None:
            self._reply = {"step_number": run.step_number, "message": message.to_dict()}
            if self._overlap and self._unsaved:
                self._when_idle()

    # ---- tool calls ----
    def code_call_key(self, name: str) -> str:
        step = self.run.step_number
        with self._lock:
            n = self._counts.get((step, name), 0) + 1
            self._counts[(step, name)] = n
        return f"{step}:{name}#{n}"

    def reset_counts(self) -> None:
        self._counts.clear()

    def _needs_approval(self, name: str, arguments: Any) -> bool | None:
        """True: ask; False: no need; None means deny (the rule itself said no)."""
        rule = self.approval
        if rule is None:
            return False
        if callable(rule):
            verdict = rule(name, arguments, self.run)
            if verdict is True:
                return False
            if verdict is False:
                return None
            return True
        return name in rule

    def _decide(self, key: str, name: str, tool: Any, arguments: Any) -> tuple[str, Any]:
        """("replay", record) | ("run", None) | ("deny", reason) | ("pause", reason) | ("ask", None)."""
        record = self.calls.get(key)
        if record is not None and record.status == "done":
            return "replay", record
        if self.replaying:
            self.diverged = True
            raise ReplayDiverged(f"the record has no result for tool call {key}")
        if self.run.paused:
            return "pause", None  # the run is pausing: nothing else runs in this step
        decision = self.approvals.get(key, record.decision if record is not None else None)
        if decision is not None:
            return ("run", None) if decision is True else ("deny", decision)
        if record is not None and record.status == "awaiting":
            return "pause", record.error or "approval required"
        if record is not None and record.status == "started" and not getattr(tool, "idempotent", False):
            return "pause", _IN_DOUBT
        need = self._needs_approval(name, arguments)
        if need is None:
            return "deny", "the approval rule refused this call"
        if not need:
            return "run", None
        return ("pause", "approval required") if self.store is not None else ("ask", None)

    def _pause(self, key: str, name: str, arguments: Any, reason: str | None) -> ApprovalPending:
        run = self.run
        run.paused = True
        if reason is not None:
            entry = {"call_id": key, "tool": name, "arguments": arguments, "reason": reason}
            self.pending.append(entry)
            if self.store is not None:
                self._write(CallRecord(key, run.step_number, name, arguments, "awaiting", error=reason), reply=True)
            run.push_event(
                run.event(ApprovalRequested, call_id=key, tool_name=name, arguments=arguments, reason=reason)
            )
        return ApprovalPending(f"The call to {name} waits for approval ({key}); the run pauses.")

    @staticmethod
    def _replayed(record: CallRecord) -> Any:
        if record.error is not None:
            raise AgentToolExecutionError(record.error)
        return record.result

    def _denied(self, name: str, reason: Any) -> ToolCallDenied:
        why = reason if isinstance(reason, str) else "no reason given"
        return ToolCallDenied(f"The call to tool '{name}' was denied by a person: {why}")

    def _before(self, key: str, name: str, arguments: Any) -> None:
        if self.store is not None:
            self._write(CallRecord(key, self.run.step_number, name, arguments, "started"), reply=True)

    def _after(self, key: str, name: str, arguments: Any, result: Any, error: BaseException | None) -> None:
        if self.store is None:
            return
        text = None if error is None else f"{type(error).__name__}: {error}"
        record = CallRecord(key, self.run.step_number, name, arguments, "done", None if error else result, text)
        if asyncio._get_running_loop() is None:  # a code or tool thread: nothing to overlap with
            self._write(record)
            return
        # On the loop thread (an instant tool): written once the answer went back to the code
        with self._write_lock:
            self._late.append(record)
        self._when_idle()

    async def _ask(self, key: str, name: str, arguments: Any) -> Any:
        run = self.run
        request = run.event(ApprovalRequested, call_id=key, tool_name=name, arguments=arguments)
        run.push_event(request)
        if self.handler is None:
            return "no approval handler is configured"
        return await self.handler(request)

    def call_tool(
        self,
        key: str,
        name: str,
        tool: Any,
        arguments: Any,
        call: Callable[[], Any],
        announce: Callable[[], None] | None = None,
    ) -> Any:
        """A sync tool call (code threads): the RPC call waits here while a person decides. ``announce``
        (the ToolCallStarted event) is called once the call is on record, right before it runs, or first
        thing when it is not to run (asked, denied, paused); never for an answer from the record."""
        verdict, detail = self._decide(key, name, tool, arguments)
        if verdict == "replay":
            return self._replayed(detail)
        if verdict != "run" and announce is not None:
            announce()
            announce = None
        if verdict == "pause":
            raise self._pause(key, name, arguments, detail)
        if verdict == "ask":
            loop = self.run._loop
            if loop is None:
                raise RuntimeError("No event loop to ask for approval on.")
            detail = asyncio.run_coroutine_threadsafe(self._ask(key, name, arguments), loop).result()
            verdict = "run" if detail is True else "deny"
        if verdict == "deny":
            raise self._denied(name, detail)
        return self._run_sync(key, name, arguments, call, announce)

    def _run_sync(
        self, key: str, name: str, arguments: Any, call: Callable[[], Any], announce: Callable[[], None] | None
    ) -> Any:
        self._before(key, name, arguments)
        if announce is not None:
            announce()
        try:
            result = call()
        except Exception as e:
            self._after(key, name, arguments, None, e)
            raise
        self._after(key, name, arguments, result, None)
        return result

    async def acall_tool(
        self, key: str, name: str, tool: Any, arguments: Any, call: Callable[[], Awaitable[Any]]
    ) -> Any:
        verdict, detail = self._decide(key, name, tool, arguments)
        if verdict == "replay":
            return self._replayed(detail)
        if verdict == "pause":
            raise self._pause(key, name, arguments, detail)
        if verdict == "ask":
            detail = await self._ask(key, name, arguments)
            verdict = "run" if detail is True else "deny"
        if verdict == "deny":
            raise self._denied(name, detail)
        self._before(key, name, arguments)
        try:
            result = await call()
        except Exception as e:
            self._after(key, name, arguments, None, e)
            raise
        self._after(key, name, arguments, result, None)
        return result

    def take_note(self) -> str:
        note, self.note = self.note, None
        return note or ""
