"""``ToolCallingAgent``: the model acts by calling tools (native tool calls, or JSON in its text).

Layer 5 (agents). Several calls in one reply run concurrently (at most ``max_tool_threads`` at a time);
each call's arguments are validated against the tool's inputs before it runs. A failing call becomes an
error observation the model can act on; the other calls' results are kept. Calling ``final_answer``
(alone) ends the run.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

from .._sync import iterate_sync, run_sync
from ..errors import AgentExecutionError, AgentParsingError, AgentToolCallError, AgentToolExecutionError
from ..events import ActionParsed, ToolCallFinished, ToolCallStarted
from ..memory import ActionStep, ToolCall, set_model_inputs_ref
from ..messages import ChatMessage, ChatMessageToolCall, ChatMessageToolCallFunction
from ..tools.agent_types import AgentType
from .base import MultiStepAgent
from .loop import ActionOutput, ToolOutput, _Done, model_output_event
from .prompts import render_system_prompt
from .run import Run
from .toolbox import ManagedAgentTool, acall_tool

__all__ = ["ToolCallingAgent"]

_DEFAULT_MAX_PARALLEL = 8


def _parse_arguments(arguments: Any) -> Any:
    if isinstance(arguments, str):
        text = arguments.strip()
        if not text:
            return {}
        try:
            return json.loads(text)
        except json.JSONDecodeError:
            return arguments
    return arguments if arguments is not None else {}


class _CallError(Exception):
    def __init__(self, message: str, kind: type[Exception]):
        super().__init__(message)
        self.kind = kind


class ToolCallingAgent(MultiStepAgent):
    """An agent whose actions are tool calls. Takes MultiStepAgent's arguments plus ``stream_outputs`` and
    ``max_tool_threads`` (how many calls of one step run at the same time; default 8)."""

    _prompt_kind = "toolcalling"

    def __init__(
        self,
        tools: list[Any],
        model: Any,
        prompt_templates: dict[str, Any] | None = None,
        planning_interval: int | None = None,
        stream_outputs: bool = False,
        max_tool_threads: int | None = None,
        **kwargs: Any,
    ):
        super().__init__(
            tools=tools,
            model=model,
            prompt_templates=prompt_templates,
            planning_interval=planning_interval,
            stream_outputs=stream_outputs,
            **kwargs,
        )
        self.max_tool_threads = max_tool_threads

    def initialize_system_prompt(self) -> str:
        return render_system_prompt(
            self.prompt_templates,
            tools=self.tools,
            managed_agents=self._managed_tools,
            custom_instructions=self.instructions,
        )

    async def _astep_stream(self, run: Run, memory_step: ActionStep) -> AsyncIterator[Any]:
        memory = run.memory
        messages: list[ChatMessage] = []
        async for item in self._acontext(run):  # compacted to the token budget when one is set
            if type(item) is _Done:
                messages = item.value
            else:
                yield item
        if self.keep_model_input_messages:
            memory_step.model_input_messages = messages
        else:
            set_model_inputs_ref(memory_step, memory, len(memory.steps))
        start = time.perf_counter()
        message: ChatMessage | None = None
        async for item in self._amodel(
            run,
            messages,
            stop_sequences=["Observation:", "Calling tools:"],
            tools_to_call_from=self.tools_and_managed_agents,
        ):
            if type(item) is _Done:
                message = item.value
            else:
                yield item
        assert message is not None
        memory_step.model_output_message = message
        memory_step.model_output = message.content
        memory_step.token_usage = message.token_usage
        yield model_output_event(run, message, start)
        async for item in self._aprocess_tool_calls(run, message, memory_step):
            yield item

    async def _aprocess_tool_calls(
        self, run: Run, message: ChatMessage, memory_step: ActionStep
    ) -> AsyncIterator[Any]:
        """Run the tool calls of one model reply; yields events, ToolCall, ToolOutput, then ActionOutput."""
        message = self._tool_calls_of(message)
        calls = list(message.tool_calls or [])
        for call in calls:
            call.function.arguments = _parse_arguments(call.function.arguments)
        yield run.event(ActionParsed, tool_calls=calls)
        memory_calls = [
            ToolCall(name=c.function.name, arguments=c.function.arguments, id=c.id) for c in calls
        ]
        memory_step.tool_calls = memory_calls
        for call in memory_calls:
            yield call

        wants_final = [c for c in calls if c.function.name == "final_answer"]
        others = [c for c in calls if c.function.name != "final_answer"]
        outputs: dict[str, ToolOutput] = {}
        errors: list[tuple[str, _CallError]] = []
        async for item in self._await_with_events(run, self._run_calls(run, others, outputs, errors)):
            if type(item) is not _Done:
                yield item
        for call_id in [c.id for c in others]:
            if call_id in outputs:
                yield outputs[call_id]

        final_answer: Any = None
        got_final = False
        if wants_final:
            if len(calls) > 1:
                errors.append(
                    (
                        wants_final[0].id,
                        _CallError(
                            "If you want to return an answer, call final_answer alone, without any other tool "
                            "call in the same step.",
                            AgentExecutionError,
                        ),
                    )
                )
            else:
                call = wants_final[0]
                outs: dict[str, ToolOutput] = {}
                errs: list[tuple[str, _CallError]] = []
                async for item in self._await_with_events(
                    run, self._run_calls(run, [call], outs, errs, final=True)
                ):
                    if type(item) is not _Done:
                        yield item
                errors.extend(errs)
                if call.id in outs:
                    got_final = True
                    final_answer = outs[call.id].output
                    if isinstance(final_answer, str) and final_answer in run.state:
                        final_answer = run.state[final_answer]
                    yield outs[call.id]

        observations = []
        for call in calls:
            if call.id in outputs:
                text = outputs[call.id].observation
                observations.append(
                    text if len(calls) == 1 else f"[{call.function.name} | call id {call.id}]\n{text}"
                )
        if got_final:
            observations.append(str(final_answer).strip())
        memory_step.observations = "\n".join(observations) if observations else None
        if errors:
            kind = (
                AgentToolCallError
                if all(e.kind is AgentToolCallError for _, e in errors)
                else AgentToolExecutionError
            )
            if any(e.kind is AgentExecutionError for _, e in errors):
                kind = AgentExecutionError
            text = "\n".join(str(e) if len(calls) == 1 else f"Call id {cid}: {e}" for cid, e in errors)
            raise kind(text)
        if got_final:
            memory_step.action_output = final_answer
        yield ActionOutput(output=final_answer, is_final_answer=got_final)

    def _tool_calls_of(self, message: ChatMessage) -> ChatMessage:
        if message.tool_calls:
            return message
        parse = getattr(self.model, "parse_tool_calls", None)
        try:
            if parse is not None:
                return parse(message)
            from .parsing import parse_json_tool_calls

            found = parse_json_tool_calls(message.text)
        except AgentParsingError:
            raise
        except Exception as e:
            raise AgentParsingError(f"Error while parsing tool call from model output: {e}") from e
        if not found:
            raise AgentParsingError(
                "Your reply contained no tool call. Call a tool (or final_answer) with JSON like "
                '{"name": "tool_name", "arguments": {...}}.'
            )
        message.tool_calls = [
            ChatMessageToolCall(
                function=ChatMessageToolCallFunction(name=c["name"], arguments=c.get("arguments", {})),
                id=c.get("id") or f"call_{i}",
            )
            for i, c in enumerate(found)
        ]
        return message

    async def _run_calls(
        self,
        run: Run,
        calls: list[ChatMessageToolCall],
        outputs: dict[str, ToolOutput],
        errors: list[tuple[str, _CallError]],
        final: bool = False,
    ) -> None:
        if not calls:
            return
        limit = asyncio.Semaphore(self.max_tool_threads or _DEFAULT_MAX_PARALLEL)

        async def one(call: ChatMessageToolCall) -> None:
            async with limit:
                try:
                    outputs[call.id] = await self._execute_call(run, call, final)
                except _CallError as e:
                    errors.append((call.id, e))

        if len(calls) == 1:
            await one(calls[0])
        else:
            await asyncio.gather(*(one(c) for c in calls))

    def _substitute_state(self, run: Run, arguments: Any) -> Any:
        if isinstance(arguments, dict) and run.state:
            return {k: run.state.get(v, v) if isinstance(v, str) else v for k, v in arguments.items()}
        return arguments

    async def _execute_call(self, run: Run, call: ChatMessageToolCall, final: bool) -> ToolOutput:
        name = call.function.name
        available: dict[str, Any] = {**self.tools, **self._managed_tools}
        tool = available.get(name)
        arguments = self._substitute_state(run, call.function.arguments)
        if run.budget is not None and name != "final_answer":
            run.budget.before_tool_call(name)
        run.push_event(run.event(ToolCallStarted, call_id=call.id, tool_name=name, arguments=arguments))
        start = time.perf_counter()

        def finished(result: Any = None, error: str | None = None) -> None:
            run.push_event(
                run.event(
                    ToolCallFinished,
                    call_id=call.id,
                    tool_name=name,
                    result=result,
                    error=error,
                    duration=time.perf_counter() - start,
                )
            )

        if tool is None:
            message = f"Unknown tool {name!r}; use one of: {', '.join(available)}."
            finished(error=message)
            raise _CallError(message, AgentToolExecutionError)
        is_agent = isinstance(tool, ManagedAgentTool)
        if not isinstance(arguments, dict):
            inputs = getattr(tool, "inputs", {}) or {}
            arguments = {next(iter(inputs)): arguments} if len(inputs) == 1 else arguments
        validate = getattr(tool, "validate_arguments", None)
        if validate is not None:
            try:
                checked = validate(arguments)
                if isinstance(checked, dict):
                    arguments = checked
            except (ValueError, TypeError) as e:
                finished(error=str(e))
                raise _CallError(f"Invalid arguments for tool '{name}': {e}", AgentToolCallError) from e


        async def invoke() -> Any:
            if isinstance(arguments, dict):
                if is_agent:
                    return await tool.acall(**arguments)
                return await _acall_sanitized(tool, **arguments)
            return await acall_tool(tool, arguments)

        try:
            journal = run.journal
            if journal is None:
                result = await invoke()
            else:  # recorded, gated by approval, answered from the record on resume (codeloop.runs)
                key = f"{run.step_number}:{call.id}"
                result = await journal.acall_tool(key, name, tool, arguments, invoke)
        except asyncio.CancelledError:
            finished(error="cancelled")
            raise
        except Exception as e:
            if is_agent:
                text = (
                    f"Error executing request to team member '{name}' with arguments {arguments!r:.500}: {e}\n"
                    "Please try again or request to another team member."
                )
            else:
                text = (
                    f"Error executing tool '{name}' with arguments {arguments!r:.500}: {type(e).__name__}: {e}\n"
                    "Please try again or use another tool."
                )
            finished(error=f"{type(e).__name__}: {e}")
            raise _CallError(text, AgentToolExecutionError) from e
        finished(result=result)
        observation = str(result).strip()
        media = _media_state_name(result)
        if media is not None and not final:
            # As smolagents: an image or audio result is kept in the run's state under a name the model can
            # pass to later calls (or to final_answer) instead of a file path it would have to guess.
            run.state[media] = result
            observation = f"Stored '{media}' in memory."
        memory_call = ToolCall(name=name, arguments=arguments, id=call.id)
        return ToolOutput(
            id=call.id, output=result, is_final_answer=final, observation=observation, tool_call=memory_call
        )


    # ---- smolagents' public helpers (kept for compatibility) ----
    def _compat_run(self) -> Run:
        return self._view_run() or self._standby_run()  # type: ignore[attr-defined]

    def process_tool_calls(self, chat_message: ChatMessage, memory_step: ActionStep) -> Iterator[ToolCall | ToolOutput]:
        """Run the tool calls of ``chat_message`` and record them in ``memory_step`` (smolagents' method,
        kept for compatibility); yields each ``ToolCall``, then each ``ToolOutput``."""
        if not chat_message.tool_calls:  # no calls given, no work (smolagents); the loop parses text instead
            memory_step.tool_calls, memory_step.observations = [], ""
            return
        run = self._compat_run()
        for item in iterate_sync(self._aprocess_tool_calls(run, chat_message, memory_step)):
            if isinstance(item, ToolCall | ToolOutput):
                yield item

    def execute_tool_call(self, tool_name: str, arguments: dict[str, Any] | str) -> Any:
        """Call one tool or managed agent by name (smolagents' method, kept for compatibility).

        Raises ``AgentToolCallError`` for arguments the tool does not accept and ``AgentToolExecutionError``
        when the tool is unknown or fails.
        """
        call = ChatMessageToolCall(
            function=ChatMessageToolCallFunction(name=tool_name, arguments=arguments), id="call_direct"
        )
        try:
            return run_sync(self._execute_call(self._compat_run(), call, False)).output
        except _CallError as e:
            raise e.kind(str(e)) from e.__cause__


def _media_state_name(value: Any) -> str | None:
    if not isinstance(value, AgentType):
        return None
    return {"AgentImage": "image.png", "AgentAudio": "audio.mp3"}.get(type(value).__name__)


async def _acall_sanitized(tool: Any, **arguments: Any) -> Any:
    acall = getattr(tool, "acall", None)
    if acall is not None:
        try:
            return await acall(**arguments, sanitize_inputs_outputs=True)
        except TypeError as e:
            if "sanitize_inputs_outputs" not in str(e):
                raise
    return await acall_tool(tool, **arguments)


ToolCallingAgent._CACHEABLE_PROMPT_METHODS = (ToolCallingAgent.initialize_system_prompt,)
