"""``CodeAgent``: the model acts by writing Python, which runs in the run's executor session.

Layer 5 (agents). Each run creates its own executor (``executor_type`` "local" = isolated worker process,
the default; "inprocess" = same process, trusted code) and closes it when the run ends. Variables persist
across the steps of a run; ``reset=False`` carries them into the next run. Tools stay on the host: code
calls them through :class:`~codeloop.agents.toolbox.RunTool` wrappers, which report each call as events.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any

from .._sync import run_in_code_thread
from ..errors import AgentExecutionError, AgentParsingError, InterpreterError
from ..events import ActionParsed, CodeOutputEvent
from ..executors.policy import check_installed
from ..executors.remote import BACKENDS as REMOTE_BACKENDS
from ..memory import ActionStep, ToolCall, set_model_inputs_ref
from ..messages import ChatMessage
from .base import MultiStepAgent
from .loop import ActionOutput, _Done, model_output_event
from .parsing import extract_code_from_text, resolve_code_block_tags
from .prompts import render_system_prompt
from .run import Run
from .toolbox import RunTool

__all__ = ["CodeAgent", "CODEAGENT_RESPONSE_FORMAT"]

CODEAGENT_RESPONSE_FORMAT: dict[str, Any] = {
    "type": "json_schema",
    "json_schema": {
        "name": "ThoughtAndCodeAnswer",
        "schema": {
            "type": "object",
            "properties": {
                "thought": {"type": "string", "description": "A free-form thought before the code."},
                "code": {"type": "string", "description": "Valid Python code to run."},
            },
            "required": ["thought", "code"],
            "additionalProperties": False,
        },
        "strict": True,
    },
}

_MAX_OBSERVATION = 20_000


def _truncate(text: str, limit: int = _MAX_OBSERVATION) -> str:
    if len(text) <= limit:
        return text
    half = limit // 2
    return f"{text[:half]}\n..._This content has been truncated to stay below {limit} characters_...\n{text[-half:]}"


def _slow_state(executor: Any) -> bool:
    isolation = getattr(executor, "isolation", None)
    return bool(isolation.get("process", False)) if isinstance(isolation, dict) else True


def _default_imports() -> set[str]:
    try:
        from ..executors import DEFAULT_AUTHORIZED_IMPORTS  # type: ignore[attr-defined]
    except ImportError:
        from ..executors.policy import DEFAULT_AUTHORIZED_IMPORTS  # type: ignore[attr-defined]
    return set(DEFAULT_AUTHORIZED_IMPORTS)


class CodeAgent(MultiStepAgent):
    """An agent whose actions are Python code. Takes MultiStepAgent's arguments plus:

    additional_authorized_imports (list; "*" allows all), executor (a PythonExecutor you own: shared by
    every run and never closed by the agent), executor_type ("local" isolated worker, default; or
    "inprocess"), executor_kwargs, max_print_outputs_length, stream_outputs,
    use_structured_outputs_internally (ask for JSON {thought, code}), code_block_tags (None for
    <code>...</code>, "markdown", or a pair).
    """

    _prompt_kind = "code"

    def __init__(
        self,
        tools: list[Any],
        model: Any,
        prompt_templates: dict[str, Any] | None = None,
        additional_authorized_imports: list[str] | None = None,
        planning_interval: int | None = None,
        executor: Any = None,
        executor_type: str = "local",
        executor_kwargs: dict[str, Any] | None = None,
        max_print_outputs_length: int | None = None,
        stream_outputs: bool = False,
        use_structured_outputs_internally: bool = False,
        code_block_tags: str | tuple[str, str] | None = None,
        **kwargs: Any,
    ):
        self.additional_authorized_imports = list(additional_authorized_imports or [])
        if executor_type not in REMOTE_BACKENDS:  # (a remote sandbox installs them itself)
            check_installed(self.additional_authorized_imports)  # as smolagents: fail now, not mid-run
        self.authorized_imports = sorted(_default_imports() | set(self.additional_authorized_imports))
        self.max_print_outputs_length = max_print_outputs_length
        self._use_structured_outputs_internally = use_structured_outputs_internally
        if use_structured_outputs_internally:
            # The reply format changes (JSON {thought, code}), so the default prompt must say so.
            self._prompt_kind = "structured_code"
        self.code_block_tags = resolve_code_block_tags(code_block_tags)
        self.executor_type = executor_type
        self.executor_kwargs: dict[str, Any] = dict(executor_kwargs or {})
        self._user_executor = executor
        super().__init__(
            tools=tools,
            model=model,
            prompt_templates=prompt_templates,
            planning_interval=planning_interval,
            stream_outputs=stream_outputs,
            **kwargs,
        )

    def initialize_system_prompt(self) -> str:
        return render_system_prompt(
            self.prompt_templates,
            tools=self.tools,
            managed_agents=self._managed_tools,
            custom_instructions=self.instructions,
            authorized_imports=self.authorized_imports,
            code_block_tags=self.code_block_tags,
        )

    def _system_prompt_key(self) -> tuple[Any, ...] | None:
        key = super()._system_prompt_key()
        if key is None:
            return None
        return (*key, tuple(self.authorized_imports), self.code_block_tags)

    # ---- executor per run ----
    def create_python_executor(self) -> Any:
        """A new executor as configured (what each run gets unless ``executor=`` was given)."""
        from ..executors import create_executor  # type: ignore[attr-defined]

        kwargs: dict[str, Any] = {"additional_authorized_imports": self.additional_authorized_imports}
        if self.max_print_outputs_length is not None:
            kwargs["max_print_outputs_length"] = self.max_print_outputs_length
        kwargs.update(self.executor_kwargs)
        return create_executor(self.executor_type, **kwargs)

    @property
    def python_executor(self) -> Any:
        """The executor of the current (or last) run; before any run, one made for manual steps (the next
        run adopts it, with the variables sent to it)."""
        if self._user_executor is not None:
            return self._user_executor
        run = self._view_run() or self._standby_run()
        if run.executor is None:
            if run.status == "created":
                run.executor, run.owns_executor = self.create_python_executor(), True
                self._bind_executor(run)
            elif run.closed_executor is not None:
                return run.closed_executor
        return run.executor

    def _bind_executor(self, run: Run) -> None:
        """Send this run's variables and tools (wrapped to report calls as this run's events)."""
        executor = run.executor
        if run.executor_snapshot:
            executor.send_variables(dict(run.executor_snapshot))
        if run.state:
            executor.send_variables(dict(run.state))
        tools: dict[str, Any] = {}
        for name, tool in self.tools.items():
            tools[name] = tool if name == "final_answer" else RunTool(tool, run, name)
        for name, tool in self._managed_tools.items():
            tools[name] = RunTool(tool, run, name)
        executor.send_tools(tools)
        run.tool_names = tuple(n for n in tools if n != "final_answer")
        run.executor_bound = True

    async def _arun_setup(self, run: Run) -> None:
        await self._ensure_step_resources(run)
        if run.journal is not None and run.journal.replay_steps:  # a resumed run: rebuild the variables
            from ..runs.resume import restore_executor

            await restore_executor(run)

    async def _ensure_step_resources(self, run: Run) -> None:
        if run.executor is None:
            if self._user_executor is not None:
                run.executor, run.owns_executor = self._user_executor, False
            elif self.executor_type in ("inprocess", "local"):
                # (a local executor only takes an idle worker from its pool, or none yet: its first
                # run checks one out without blocking the loop)
                run.executor, run.owns_executor = self.create_python_executor(), True
            else:  # starting a sandbox may block: keep the loop free
                run.executor, run.owns_executor = await run_in_code_thread(self.create_python_executor), True
        if not run.executor_bound:
            self._bind_executor(run)

    def cleanup(self) -> None:
        super().cleanup()
        if self._user_executor is not None and hasattr(self._user_executor, "cleanup"):
            self._user_executor.cleanup()

    async def _variables_summary(self, run: Run) -> str | None:
        """The variables alive in the run's executor, with their types, for a compaction summary."""
        executor = run.executor
        if executor is None:
            return None
        try:
            if _slow_state(executor):
                state = await run_in_code_thread(getattr, executor, "state", None)
            else:
                state = executor.state
        except Exception:  # a dead worker has no variables to list; the summary says nothing of them
            return None
        if not isinstance(state, dict):
            return None
        tools = set(self.tools) | set(self._managed_tools)
        names = [
            f"{name}: {type(value).__name__}"
            for name, value in state.items()
            if not str(name).startswith("_") and name not in tools and type(value).__name__ != "module"
        ]
        if not names:
            return None
        shown = names[:60]
        return ", ".join(shown) + (f" (and {len(names) - 60} more)" if len(names) > 60 else "")

    # ---- one step ----
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
        tags = self.code_block_tags
        stop_sequences = ["Observation:", "Calling tools:"]
        if tags[1] not in tags[0]:
            stop_sequences.append(tags[1])
        extra: dict[str, Any] = {}
        if self._use_structured_outputs_internally:
            extra["response_format"] = CODEAGENT_RESPONSE_FORMAT
        start = time.perf_counter()
        message: ChatMessage | None = None
        async for item in self._amodel(run, messages, stop_sequences=stop_sequences, **extra):
            if type(item) is _Done:
                message = item.value
            else:
                yield item
        assert message is not None
        output_text = message.content if isinstance(message.content, str) else message.text
        if (
            output_text
            and not self._use_structured_outputs_internally
            and not output_text.strip().endswith(tags[1])
        ):
            # Showing the closing tag in history nudges the model to end its code with it (a stop sequence).
            output_text += tags[1]
            message.content = output_text
        memory_step.model_output_message = message
        memory_step.model_output = output_text
        memory_step.token_usage = message.token_usage
        yield model_output_event(run, message, start)

        code = self._parse_code(output_text or "")
        memory_step.code_action = code
        call = ToolCall(name="python_interpreter", arguments=code, id=f"call_{len(memory.steps)}")
        memory_step.tool_calls = [call]
        yield run.event(ActionParsed, code=code)
        yield call

        executor = run.executor
        journal = run.journal
        if journal is not None:  # a stored run records the clock and random values the code reads
            journal.before_code(executor)
        try:
            if any(name in code for name in run.tool_names):
                result = None
                async for item in self._await_with_events(run, executor.aexecute(code)):
                    if type(item) is _Done:
                        result = item.value
                    else:
                        yield item
                code_output = result
            else:
                code_output = await executor.aexecute(code)
        except asyncio.CancelledError:
            raise
        except Exception as e:
            for item in run.pop_events():
                yield item
            logs = getattr(e, "logs", "") or ""
            if logs:
                memory_step.observations = "Execution logs:\n" + _truncate(logs)
            message_text = str(e) if isinstance(e, InterpreterError) else f"{type(e).__name__}: {e}"
            if "Import of " in message_text and " is not allowed" in message_text:
                message_text += (
                    "\n(Note for the user: add the module to `additional_authorized_imports` when creating the "
                    "CodeAgent if it should be allowed.)"
                )
            yield run.event(CodeOutputEvent, logs=logs, error=message_text)
            raise AgentExecutionError(message_text) from e
        finally:
            if journal is not None:
                journal.after_code(executor)
        if run._pending:  # a call the name check could not foresee
            for item in run.pop_events():
                yield item
        logs = code_output.logs or ""
        observation = "Execution logs:\n" + _truncate(logs) if logs else "Execution logs:\n"
        observation += "Last output from code snippet:\n" + _truncate(str(code_output.output))
        if run.journal is not None and run.journal.note:
            observation = run.journal.take_note() + observation
        memory_step.observations = observation
        memory_step.action_output = code_output.output
        yield run.event(
            CodeOutputEvent, logs=logs, output=code_output.output, is_final_answer=code_output.is_final_answer
        )
        yield ActionOutput(output=code_output.output, is_final_answer=bool(code_output.is_final_answer))

    def _parse_code(self, text: str) -> str:
        if self._use_structured_outputs_internally:
            try:
                code = json.loads(text)["code"]
            except (json.JSONDecodeError, KeyError, TypeError) as e:
                raise AgentParsingError(
                    f"Your reply must be a JSON object with keys 'thought' and 'code' ({type(e).__name__}: {e})."
                ) from e
            try:
                return extract_code_from_text(code, self.code_block_tags)
            except AgentParsingError:
                return code
        return extract_code_from_text(text, self.code_block_tags)

    def to_dict(self) -> dict[str, Any]:
        data = super().to_dict()
        data.update(
            authorized_imports=self.authorized_imports,
            executor_type=self.executor_type,
            executor_kwargs=self.executor_kwargs,
            max_print_outputs_length=self.max_print_outputs_length,
        )
        return data


CodeAgent._CACHEABLE_PROMPT_METHODS = (CodeAgent.initialize_system_prompt,)
