"""The async step loop shared by all agents: planning, action steps, final answer checks, max steps.

Layer 5 (agents). ``AgentLoop._loop(run)`` is one async generator that yields, in order, every event of
the run (codeloop.events) and the smolagents-style objects (memory steps, ToolCall, ToolOutput,
ActionOutput). ``_drive`` publishes the events to the subscribers (console logger, event handlers);
``arun`` just drains it, ``astream`` keeps the events, ``run(stream=True)`` keeps the smolagents objects.
Subclasses implement ``_astep_stream(run, step)``, which yields the same kinds of items and ends with an
:class:`ActionOutput`.
"""

from __future__ import annotations

import asyncio
import contextvars
import inspect
import time
import warnings
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..errors import AgentError, AgentExecutionError, AgentGenerationError, AgentMaxStepsError
from ..events import (
    Event,
    FinalAnswerEvent,
    ModelDelta,
    ModelOutput,
    PlanEvent,
    RunFailed,
    RunFinished,
    RunStarted,
    StepFinished,
)
from ..memory import ActionStep, FinalAnswerStep, PlanningStep, ToolCall, set_model_inputs_ref
from ..messages import ChatMessage, ChatMessageStreamDelta, MessageRole, Timing, agglomerate_stream_deltas
from ..usage_limits import UsageLimitExceeded
from .context import after_model_call, before_model_call, compacted_messages
from .final_reply import answer_from_final_reply
from .prompts import populate_template

if TYPE_CHECKING:
    from .run import Run

__all__ = ["AgentLoop", "ActionOutput", "ToolOutput", "current_run"]

# The runs active in this context, innermost last: lets agent.memory & co. answer for the run a callback or
# tool is part of, even when many runs of one agent are in flight.
_CURRENT_RUNS: contextvars.ContextVar[tuple[Run, ...]] = contextvars.ContextVar("codeloop_runs", default=())


def current_run(agent: Any = None) -> Run | None:
    """The innermost run active in this context (of ``agent`` when given)."""
    for run in reversed(_CURRENT_RUNS.get()):
        if agent is None or run.agent is agent:
            return run
    return None


@dataclass
class ActionOutput:
    """The outcome of an action step (smolagents stream item)."""

    output: Any
    is_final_answer: bool


@dataclass
class ToolOutput:
    """The result of one tool call (smolagents stream item)."""

    id: str
    output: Any
    is_final_answer: bool
    observation: str
    tool_call: ToolCall


async def generate(model: Any, messages: list[ChatMessage], **kwargs: Any) -> ChatMessage:
    """One model call without blocking the loop; a user's sync-only model (smolagents style, with just
    ``generate`` or ``__call__``) runs in a thread."""
    from ..models.base import Model, call_generate

    agenerate = getattr(model, "agenerate", None)
    if isinstance(model, Model) or inspect.iscoroutinefunction(agenerate):
        return await agenerate(messages, **kwargs)  # type: ignore[misc]
    # a duck-typed model (any object with generate, or a plain callable): only the kwargs it declares
    return await call_generate(getattr(model, "generate", model), messages, **kwargs)


class _Done:
    """Wraps the value an internal async generator hands back as its last item."""

    __slots__ = ("value",)

    def __init__(self, value: Any):
        self.value = value


def _text(text: str) -> list[dict[str, Any]]:
    return [{"type": "text", "text": text}]


class AgentLoop:
    """Mixin with the loop; MultiStepAgent provides the configuration it reads."""

    # ---- model calls ----
    async def _amodel(
        self,
        run: Run,
        messages: list[ChatMessage],
        _model: Any = None,
        record: bool = True,
        **kwargs: Any,
    ) -> AsyncIterator[Any]:
        """Call the model (``_model``, default the agent's); yields ModelDelta events when streaming, then
        _Done(ChatMessage).

        Any failure of the model ends the run with AgentGenerationError (the model layer already retried).
        The run's usage limits are checked first (UsageLimitExceeded), see agents/context.py.
        ``record``: an action step's reply, which a run journal stores (and replays on resume).
        """
        if run.interrupted:  # set while the loop was handed to the consumer: stop before the next call
            raise asyncio.CancelledError
        journal = run.journal if record else None
        if journal is not None:
            replayed = journal.replayed_model_output(run)
            if replayed is not None:
                if replayed.token_usage is not None:
                    run.usage = run.usage + replayed.token_usage
                yield _Done(replayed)
                return
        model = _model if _model is not None else self.model  # type: ignore[attr-defined]
        counted = before_model_call(self, run, model, messages, kwargs)
        budget = run.budget
        remaining = budget.remaining_seconds() if budget is not None else None
        try:
            if self.stream_outputs and hasattr(model, "astream"):  # type: ignore[attr-defined]
                deltas: list[ChatMessageStreamDelta] = []
                async for delta in model.astream(messages, **kwargs):
                    if remaining is not None:
                        budget.check_time()  # type: ignore[union-attr]
                    deltas.append(delta)
                    yield run.event(ModelDelta, delta=delta)
                message = agglomerate_stream_deltas(deltas)
            elif remaining is not None:
                try:
                    message = await asyncio.wait_for(generate(model, messages, **kwargs), remaining)
                except TimeoutError:
                    budget.time_out()  # type: ignore[union-attr]
            else:
                message = await generate(model, messages, **kwargs)
        except (asyncio.CancelledError, AgentGenerationError, UsageLimitExceeded):
            raise
        except Exception as e:
            raise AgentGenerationError(f"Error in generating model output:\n{type(e).__name__}: {e}") from e
        if not isinstance(message, ChatMessage):
            raise AgentGenerationError(
                f"The model returned {type(message).__name__}, expected a ChatMessage."
            )
        after_model_call(run, counted, message)
        if message.token_usage is not None:
            run.usage = run.usage + message.token_usage
        if journal is not None:
            journal.model_output(run, message)
        yield _Done(message)

    async def _acontext(self, run: Run) -> AsyncIterator[Any]:
        """The prompt for the next action step, compacted to the token budget; ends with _Done(messages)."""
        if getattr(self, "compaction", None) is None:
            yield _Done(run.memory.messages_before())
            return
        async for item in compacted_messages(self, run):
            yield item

    async def _variables_summary(self, run: Run) -> str | None:
        """What a summary should say about the executor's variables (CodeAgent lists them)."""
        return None

    # ---- the loop ----
    async def _drive(self, run: Run, one_task: bool = False) -> AsyncIterator[Any]:
        """``one_task``: the caller drains the whole run from one task (arun), so the task need not be
        looked up again after each item."""
        handlers = self._event_handlers()  # type: ignore[attr-defined]
        # The run store subscribes too, but unlike a printer its failure must stop the run.
        journal = run.journal
        current_task = asyncio.current_task
        async for item in self._loop(run):
            if journal is not None and isinstance(item, Event):
                journal.on_event(item)
            if handlers and isinstance(item, Event):
                for handler in handlers:
                    try:
                        result = handler(item)
                        if result is not None and inspect.isawaitable(result):
                            await result
                    except Exception as e:  # a broken printer or UI must not break the run
                        warnings.warn(f"Event handler {handler!r} failed on {item.type}: {e!r}", stacklevel=2)
            run._suspended = True
            yield item
            run._suspended = False
            if not one_task:
                # A sync stream resumes each item from a new task: interrupt() must cancel the current one.
                run._task = current_task()

    async def _loop(self, run: Run) -> AsyncIterator[Any]:
        token = _CURRENT_RUNS.set((*_CURRENT_RUNS.get(), run))
        run.attach()
        run.status = "running"
        self._active_runs.add(run)  # type: ignore[attr-defined]
        error: BaseException | None = None
        try:
            yield run.event(RunStarted, task=run.task, agent_name=self.name, step_number=None)  # type: ignore[attr-defined]
            try:
                await self._arun_setup(run)
                async for item in self._steps(run):
                    yield item
            except asyncio.CancelledError:
                if not run.interrupted:
                    raise
                task = asyncio.current_task()
                if task is not None and task.cancelling():
                    task.uncancel()
                run.status = "cancelled"
            if run.status in ("cancelled", "awaiting_approval"):
                run.output = None
            run.timing.stop()
            yield run.event(
                RunFinished,
                output=run.output,
                state=run.status,
                steps=run.step_number,
                usage=run.usage,
                duration=run.timing.duration,
            )
        except GeneratorExit:
            error = None
            run.status = "closed" if run.status == "running" else run.status
            raise
        except BaseException as e:
            error = e
            run.status = "usage_limit_exceeded" if isinstance(e, UsageLimitExceeded) else "failed"
            run.timing.stop()
            if isinstance(e, UsageLimitExceeded):
                e.result = run.result()  # the partial result: steps, usage and cost so far
            if not isinstance(e, asyncio.CancelledError | GeneratorExit):
                yield run.event(
                    RunFailed,
                    error_type=type(e).__name__,
                    error=str(e),
                    steps=run.step_number,
                    usage=run.usage,
                    duration=run.timing.duration,
                )
            raise
        finally:
            self._active_runs.discard(run)  # type: ignore[attr-defined]
            run.detach()
            try:
                await run.aclose()
            except Exception as close_error:  # closing must not hide the run's own error
                if error is None:
                    warnings.warn(f"Closing the executor failed: {close_error!r}", stacklevel=2)
            try:
                _CURRENT_RUNS.reset(token)
            except ValueError:  # generator finalized in another context
                pass

    async def _steps(self, run: Run) -> AsyncIterator[Any]:
        final = False
        answer: Any = None
        step: ActionStep | None = None
        while run.step_number < run.max_steps:
            if run.interrupted:
                run.status = "cancelled"
                return
            run.step_number += 1
            if self._planning_due(run):
                async for item in self._aplanning_step(run):
                    yield item
            step = ActionStep(step_number=run.step_number, timing=Timing())
            out: ActionOutput | None = None
            try:
                async for item in self._astep_stream(run, step):  # type: ignore[attr-defined]
                    if type(item) is ActionOutput:
                        out = item
                    yield item
                if out is not None and out.is_final_answer:
                    answer = await self._acheck_final_answer(run, out.output)
                    step.is_final_answer = True
                    final = True
            except AgentGenerationError as e:
                step.error = e
                for item in await self._finish_step(run, step):
                    yield item
                raise
            except AgentError as e:
                step.error = e
            except BaseException as e:
                if isinstance(e, asyncio.CancelledError) and run.interrupted:
                    step.error = AgentError("Run interrupted.")
                    await self._finish_step(run, step)
                raise
            if run.paused:  # a tool call waits for a person: the step is redone on resume
                run.status = "awaiting_approval"
                return
            for item in await self._finish_step(run, step):
                yield item
            if run.budget is not None and run.budget.exceeded is not None:
                raise run.budget.exceeded  # a tool call was refused inside the step; the step is recorded
            if final:
                break
        if not final:
            if run.interrupted:
                run.status = "cancelled"
                return
            async for item in self._ahandle_max_steps(run):
                if isinstance(item, _Done):
                    answer = item.value
                else:
                    yield item
            run.status = "max_steps_error"
        else:
            run.status = "success"
        run.output = answer
        final_step = FinalAnswerStep(output=answer)
        await self.step_callbacks.acall(final_step, agent=self)  # type: ignore[attr-defined]
        yield run.event(FinalAnswerEvent, output=answer)
        yield final_step

    async def _finish_step(self, run: Run, step: ActionStep) -> list[Any]:
        step.timing.end_time = time.time()
        await self.step_callbacks.acall(step, agent=self)  # type: ignore[attr-defined]
        run.memory.steps.append(step)
        error = step.error
        return [
            run.event(
                StepFinished,
                step_number=step.step_number,
                step_type="action",
                duration=step.timing.end_time - step.timing.start_time,
                usage=step.token_usage,
                observation=step.observations,
                error=None if error is None else f"{type(error).__name__}: {error}",
            ),
            step,
        ]

    async def _acheck_final_answer(self, run: Run, answer: Any) -> Any:
        """Validate the answer against output_type, then run final_answer_checks; AgentError on failure
        (shown to the model, the run goes on)."""
        spec = run.output_spec
        if spec is not None:
            from .output import OutputValidationError

            try:
                answer = spec.validate(answer)
            except OutputValidationError as e:
                run.output_retries += 1
                if run.output_retries > self.max_output_retries:  # type: ignore[attr-defined]
                    raise AgentGenerationError(
                        f"The final answer did not match output_type after {run.output_retries} attempts; "
                        f"last error: {e}"
                    ) from e
                raise AgentExecutionError(spec.feedback(e)) from e
        for check in self.final_answer_checks:  # type: ignore[attr-defined]
            name = getattr(check, "__name__", repr(check))
            try:
                try:
                    ok = check(answer, run.memory, agent=self)
                except TypeError as te:
                    if "agent" not in str(te):
                        raise
                    ok = check(answer, run.memory)
                if inspect.isawaitable(ok):
                    ok = await ok
            except Exception as e:
                raise AgentError(f"Check {name} failed with error: {type(e).__name__}: {e}") from e
            if not ok:
                raise AgentError(f"Check {name} failed: the final answer {answer!r:.200} was rejected.")
        return answer

    async def _ahandle_max_steps(self, run: Run) -> AsyncIterator[Any]:
        """Out of steps: ask the model for its best final answer from memory (final_answer templates)."""
        templates = self.prompt_templates["final_answer"]  # type: ignore[attr-defined]
        messages = [ChatMessage(MessageRole.SYSTEM, _text(templates["pre_messages"]))]
        messages += run.memory.messages_before()[1:]
        messages.append(
            ChatMessage(
                MessageRole.USER, _text(populate_template(templates["post_messages"], {"task": run.task}))
            )
        )
        start = time.time()
        kwargs: dict[str, Any] = {}
        counted = before_model_call(self, run, self.model, messages, kwargs)  # type: ignore[attr-defined]
        try:
            message = await generate(self.model, messages, **kwargs)  # type: ignore[attr-defined]
            after_model_call(run, counted, message)
            if message.token_usage is not None:
                run.usage = run.usage + message.token_usage
            answer: Any = message.content if isinstance(message.content, str) else message.text
            answer = answer_from_final_reply(answer)  # a structured reply carries the answer in JSON
            usage = message.token_usage
        except asyncio.CancelledError:
            raise
        except Exception as e:
            answer, usage = f"Error in generating final LLM output: {type(e).__name__}: {e}", None
        if run.output_spec is not None:
            try:
                answer = run.output_spec.validate(answer)
            except Exception:
                pass  # state "max_steps_error" tells the caller the answer may not be typed
        step = ActionStep(
            step_number=run.step_number + 1,
            timing=Timing(start_time=start),
            error=AgentMaxStepsError("Reached max steps."),
            token_usage=usage,
            action_output=answer,
        )
        for item in await self._finish_step(run, step):
            yield item
        yield _Done(answer)

    # ---- planning ----
    def _planning_due(self, run: Run) -> bool:
        interval = self.planning_interval  # type: ignore[attr-defined]
        return bool(interval) and (run.step_number == 1 or (run.step_number - 1) % interval == 0)

    async def _aplanning_step(self, run: Run) -> AsyncIterator[Any]:
        templates = self.prompt_templates["planning"]  # type: ignore[attr-defined]
        variables = {"task": run.task, "tools": self.tools, "managed_agents": self._managed_tools}  # type: ignore[attr-defined]
        start = time.time()
        # As in smolagents: only a memory holding just this task gets an initial plan; a memory that holds
        # earlier steps (a reset=False run, injected steps) gets an update plan that shows them.
        is_first = len(run.memory.steps) == 1
        if is_first:
            messages = [
                ChatMessage(MessageRole.USER, _text(populate_template(templates["initial_plan"], variables)))
            ]
        else:
            pre = populate_template(templates["update_plan_pre_messages"], {"task": run.task})
            post = populate_template(
                templates["update_plan_post_messages"],
                {**variables, "remaining_steps": run.max_steps - run.step_number + 1},
            )
            messages = [ChatMessage(MessageRole.SYSTEM, _text(pre))]
            messages += run.memory.messages_before(summary_mode=True)
            messages.append(ChatMessage(MessageRole.USER, _text(post)))
        message: ChatMessage | None = None
        async for item in self._amodel(run, messages, record=False, stop_sequences=["<end_plan>"]):
            if isinstance(item, _Done):
                message = item.value
            else:
                yield item
        assert message is not None
        content = message.text
        if is_first:
            plan = (
                "Here are the facts I know and the plan of action that I will follow to solve the task:\n"
                f"```\n{content}\n```"
            )
        else:
            plan = (
                f"I still need to solve the task I was given:\n```\n{run.task}\n```\n\n"
                f"Here are the facts I know and my new/updated plan of action to solve the task:\n```\n{content}\n```"
            )
        step = PlanningStep(
            model_input_messages=messages if (is_first or self.keep_model_input_messages) else None,  # type: ignore[attr-defined,arg-type]
            model_output_message=message,
            plan=plan,
            timing=Timing(start_time=start),
            token_usage=message.token_usage,
        )
        if not is_first and not self.keep_model_input_messages:  # type: ignore[attr-defined]
            # An update plan's input is the whole memory: keep a reference, not a copy.
            set_model_inputs_ref(
                step,
                run.memory,
                len(run.memory.steps),
                summary_mode=True,
                before=(messages[0],),
                after=(messages[-1],),
            )
        step.timing.end_time = time.time()
        # Callbacks run before the step joins memory: an edited plan is what the model sees next.
        await self.step_callbacks.acall(step, agent=self)  # type: ignore[attr-defined]
        run.memory.steps.append(step)
        yield run.event(PlanEvent, plan=step.plan, is_update=not is_first, usage=step.token_usage)
        yield run.event(
            StepFinished,
            step_type="planning",
            duration=step.timing.end_time - start,
            usage=step.token_usage,
        )
        yield step

    # ---- helpers for subclasses ----
    async def _await_with_events(self, run: Run, awaitable: Any) -> AsyncIterator[Any]:
        """Await ``awaitable`` while yielding the events tools push meanwhile; ends with _Done(result)."""
        loop = asyncio.get_running_loop()
        task = asyncio.ensure_future(awaitable)
        try:
            while True:
                while run._pending:
                    yield run._pending.popleft()
                if task.done():
                    break
                waiter = loop.create_future()
                run._wakeup = waiter
                if run._pending:  # pushed between the drain and installing the waiter
                    continue
                await asyncio.wait((task, waiter), return_when=asyncio.FIRST_COMPLETED)
            run._wakeup = None
            while run._pending:
                yield run._pending.popleft()
            yield _Done(task.result())
        finally:
            run._wakeup = None
            if not task.done():
                task.cancel()
                try:
                    await task
                except BaseException:
                    pass


def model_output_event(run: Run, message: ChatMessage, start: float) -> ModelOutput:
    return run.event(
        ModelOutput, message=message, usage=message.token_usage, duration=time.perf_counter() - start
    )
