"""``MultiStepAgent``: the agent's configuration and its public API (run, arun, astream, step...).

Layer 5 (agents). An agent holds configuration only; each call to ``run``/``arun``/``astream`` makes a
:class:`~codeloop.agents.run.Run` with all per-run state, so one agent serves many concurrent runs.
``agent.memory``, ``agent.state``, ``agent.step_number`` and ``agent.python_executor`` show the run of the
current context (inside a callback or tool) or else the most recent run, as smolagents users expect.

Cancellation: ``agent.interrupt()`` (or ``run.interrupt()``) ends every active run cleanly with state
"cancelled" (``run()`` then raises ``AgentError("Agent interrupted.")`` as in smolagents, or returns a
RunResult with that state when ``return_full_result``). Cancelling the task that
awaits ``arun`` propagates ``asyncio.CancelledError`` after the executor has been closed.
"""

from __future__ import annotations

import keyword
import weakref
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

from .._sync import iterate_sync, run_in_code_thread, run_sync
from ..compaction import Compaction
from ..errors import AgentError
from ..events import Event, ModelDelta, subscribers
from ..memory import ActionStep, AgentMemory, CallbackRegistry, MemoryStep, TaskStep
from ..messages import ChatMessage
from ..tools.agent_types import handle_agent_output_types
from ..usage_limits import RunBudget, UsageLimits
from .agent_dict import agent_from_dict, agent_to_dict
from .logger import AgentLogger, LogLevel, caller_captures
from .loop import AgentLoop
from .prompts import check_prompt_templates, load_prompt_templates, populate_template
from .run import Run, RunResult
from .run_views import RunViews
from .stored_runs import StoredRuns
from .toolbox import MANAGED_AGENT_INPUTS, ManagedAgentTool, final_answer_tool

__all__ = ["MultiStepAgent"]


def _validate_name(name: str | None) -> str | None:
    if name is not None and (not name.isidentifier() or keyword.iskeyword(name)):
        raise ValueError(f"Agent name {name!r} must be a valid Python identifier and not a reserved keyword.")
    return name


def _tools_key(tools: dict[str, Any]) -> tuple[Any, ...]:
    """What the prompt templates read from tools, cheaply comparable (see MultiStepAgent.system_prompt)."""
    return tuple(
        (
            name,
            id(tool),
            getattr(tool, "description", None),
            id(getattr(tool, "inputs", None)),
            getattr(tool, "output_type", None),
            id(getattr(tool, "output_schema", None)),
        )
        for name, tool in tools.items()
    )


class MultiStepAgent(RunViews, StoredRuns, AgentLoop):
    """An agent that solves a task step by step: the model acts, the agent observes, until a final answer.

    Args (as smolagents): tools, model, prompt_templates, instructions, max_steps (20), add_base_tools,
    verbosity_level, managed_agents, step_callbacks (list: called for ActionStep; or dict
    {StepClass: callback(s)}), planning_interval, name, description, provide_run_summary,
    final_answer_checks (callables ``(answer, memory, agent=...) -> bool``), return_full_result, logger.

    Added: ``output_type`` (pydantic model, dataclass, TypedDict or JSON schema dict: the final answer is
    validated and returned typed), ``max_output_retries`` (2), ``event_handlers`` (callables receiving each
    :class:`~codeloop.events.Event`), ``keep_model_input_messages`` (store each step's exact model input;
    by default it is rebuilt on demand, which keeps memory small), ``usage_limits`` (a
    :class:`~codeloop.usage_limits.UsageLimits` for every run; ``run(..., usage_limits=...)`` per run),
    ``max_context_tokens`` / ``compaction`` (keep each prompt under a token budget, see
    ``codeloop/compaction.py``).

    ``store`` (path, DSN or RunStore), ``approval`` (tool names, or ``(tool, arguments, run) -> True |
    False | None``) and ``approval_handler`` (async, without a store): runs that last, see codeloop.runs.
    """

    _prompt_kind = "code"
    # What the agent takes when it is a team member of another agent (smolagents sets this on the agent).
    inputs = MANAGED_AGENT_INPUTS

    def __init__(
        self,
        tools: list[Any],
        model: Any,
        prompt_templates: dict[str, Any] | None = None,
        instructions: str | None = None,
        max_steps: int = 20,
        add_base_tools: bool = False,
        verbosity_level: LogLevel | int = LogLevel.INFO,
        managed_agents: list[MultiStepAgent] | None = None,
        step_callbacks: list[Callable[..., Any]] | dict[type, Any] | None = None,
        planning_interval: int | None = None,
        name: str | None = None,
        description: str | None = None,
        provide_run_summary: bool = False,
        final_answer_checks: list[Callable[..., Any]] | None = None,
        return_full_result: bool = False,
        logger: AgentLogger | None = None,
        *,
        output_type: Any = None,
        max_output_retries: int = 2,
        event_handlers: list[Callable[[Event], Any]] | None = None,
        keep_model_input_messages: bool = False,
        stream_outputs: bool = False,
        usage_limits: UsageLimits | None = None,
        max_context_tokens: int | None = None,
        compaction: Compaction | None = None,
        store: Any = None,
        approval: Any = None,
        approval_handler: Callable[..., Any] | None = None,
    ):
        self.agent_name = type(self).__name__
        self.store = self.approval = self.approval_handler = None
        if store is not None or approval is not None or approval_handler is not None:
            from ..runs.resume import configure_agent

            configure_agent(self, store, approval, approval_handler)
        self.model = model
        if prompt_templates is None:
            prompt_templates = load_prompt_templates(self._prompt_kind)
        else:
            check_prompt_templates(prompt_templates)
        self.prompt_templates = prompt_templates
        self.instructions = instructions
        if max_steps is None or max_steps < 1:
            raise ValueError(f"max_steps must be at least 1, got {max_steps!r}.")
        self.max_steps = max_steps
        self.planning_interval = planning_interval
        self.name = _validate_name(name)
        self.description = description
        self.provide_run_summary = provide_run_summary
        self.final_answer_checks = list(final_answer_checks or [])
        self.return_full_result = return_full_result
        self.output_type = output_type
        self.max_output_retries = max_output_retries
        self.keep_model_input_messages = keep_model_input_messages
        self.stream_outputs = stream_outputs
        self.usage_limits = usage_limits
        self.compaction = Compaction.resolve(max_context_tokens, compaction)
        if stream_outputs and not (hasattr(model, "astream") or hasattr(model, "generate_stream")):
            raise ValueError("stream_outputs=True needs a model with astream (or generate_stream).")
        self.logger = logger if logger is not None else AgentLogger(level=verbosity_level)
        self.event_handlers = list(event_handlers or [])
        self._setup_managed_agents(managed_agents)
        self._setup_tools(tools, add_base_tools)
        self._validate_names(tools, managed_agents)
        self._setup_step_callbacks(step_callbacks)
        self._active_runs: weakref.WeakSet[Run] = weakref.WeakSet()
        self._last_run: Run | None = None
        self._output_spec_cache: tuple[Any, Any] | None = None
        self._system_prompt_cache: tuple[Any, str] | None = None

    # ---- setup ----
    def _setup_managed_agents(self, managed_agents: list[MultiStepAgent] | None) -> None:
        self.managed_agents: dict[str, MultiStepAgent] = {}
        self._managed_tools: dict[str, ManagedAgentTool] = {}
        for agent in managed_agents or []:
            if not (getattr(agent, "name", None) and getattr(agent, "description", None)):
                raise ValueError(
                    f"Managed agent {agent!r} needs both a name and a description: pass name=... and "
                    "description=... when creating it."
                )
            self.managed_agents[agent.name] = agent
            self._managed_tools[agent.name] = ManagedAgentTool(agent)

    def _setup_tools(self, tools: list[Any], add_base_tools: bool) -> None:
        if tools is None:
            tools = []
        self.tools: dict[str, Any] = {}
        for tool in tools:
            if not getattr(tool, "name", None) or not callable(tool):
                raise TypeError(
                    f"{tool!r} is not a tool: pass Tool instances or functions decorated with @tool."
                )
            self.tools[tool.name] = tool
        if add_base_tools:
            try:
                from .default_tools import TOOL_MAPPING
            except ImportError:
                raise ImportError(
                    "add_base_tools=True needs codeloop.tools.TOOL_MAPPING (base tools)."
                ) from None
            for tool_name, cls in TOOL_MAPPING.items():
                if tool_name == "python_interpreter" and self._prompt_kind != "toolcalling":
                    continue
                self.tools.setdefault(tool_name, cls())
        if "final_answer" not in self.tools:
            self.tools["final_answer"] = final_answer_tool()

    def _validate_names(self, tools: list[Any], managed_agents: list[Any] | None) -> None:
        names = [t.name for t in tools or []] + [a.name for a in managed_agents or []]
        if self.name:
            names.append(self.name)
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"Each tool or managed agent needs a unique name; duplicated: {duplicates}")

    def _setup_step_callbacks(self, step_callbacks: Any) -> None:
        self.step_callbacks = CallbackRegistry()
        # as in smolagents, the monitor sees every action step (only a monitor you set counts anything:
        # the default one reads the run's own usage)
        self.step_callbacks.register(ActionStep, self._feed_monitor)
        if not step_callbacks:
            return
        if isinstance(step_callbacks, list | tuple):
            for callback in step_callbacks:
                self.step_callbacks.register(ActionStep, callback)
        elif isinstance(step_callbacks, dict):
            for step_cls, callbacks in step_callbacks.items():
                if not (isinstance(step_cls, type) and issubclass(step_cls, MemoryStep)):
                    raise TypeError(f"step_callbacks keys must be memory step classes, got {step_cls!r}.")
                for callback in callbacks if isinstance(callbacks, list | tuple) else [callbacks]:
                    self.step_callbacks.register(step_cls, callback)
        else:
            raise ValueError("step_callbacks must be a list of callables or a dict {StepClass: callable(s)}.")

    def _event_handlers(self) -> list[Callable[[Event], Any]]:
        handlers = list(self.event_handlers)
        if self.logger is not None and getattr(self.logger, "level", LogLevel.INFO) > LogLevel.OFF:
            handlers.insert(0, self.logger)
        handlers.extend(subscribers())
        return handlers

    # ---- prompts ----
    @property
    def system_prompt(self) -> str:
        """The rendered system prompt. Every run needs it, so it is cached per configuration: the cache
        key holds what the templates read (templates, instructions, each tool's name, description,
        inputs and output type...), so reassigning any of them re-renders; editing a tool's ``inputs``
        dict in place does not (assign a new dict). A subclass that overrides
        ``initialize_system_prompt`` is rendered every time."""
        key = self._system_prompt_key()
        cached = self._system_prompt_cache
        if key is not None and cached is not None and cached[0] == key:
            return cached[1]
        text = self.initialize_system_prompt()
        self._system_prompt_cache = (key, text) if key is not None else None
        return text

    # The initialize_system_prompt methods whose output depends only on _system_prompt_key().
    _CACHEABLE_PROMPT_METHODS: tuple[Any, ...] = ()

    def _system_prompt_key(self) -> tuple[Any, ...] | None:
        if type(self).initialize_system_prompt not in self._CACHEABLE_PROMPT_METHODS:
            return None
        templates = self.prompt_templates
        return (
            id(templates),
            templates.get("system_prompt"),
            self.instructions,
            _tools_key(self.tools),
            _tools_key(self._managed_tools),
        )

    def initialize_system_prompt(self) -> str:
        return populate_template(
            self.prompt_templates["system_prompt"],
            {
                "tools": self.tools,
                "managed_agents": self._managed_tools,
                "custom_instructions": self.instructions,
            },
        )

    @property
    def tools_and_managed_agents(self) -> list[Any]:
        return list(self.tools.values()) + list(self._managed_tools.values())

    @system_prompt.setter
    def system_prompt(self, value: str) -> None:
        raise AttributeError(
            """The 'system_prompt' property is read-only. Use 'self.prompt_templates["system_prompt"]' instead."""
        )

    # ---- running ----
    def _output_spec(self, output_type: Any) -> Any:
        if output_type is None:
            return None
        if self._output_spec_cache is not None and self._output_spec_cache[0] is output_type:
            return self._output_spec_cache[1]
        from .output import OutputSpec

        spec = OutputSpec(output_type)
        self._output_spec_cache = (output_type, spec)
        return spec

    def _make_run(
        self,
        task: str,
        reset: bool = True,
        images: list[Any] | None = None,
        additional_args: dict[str, Any] | None = None,
        max_steps: int | None = None,
        output_type: Any = None,
        usage_limits: UsageLimits | None = None,
        run_id: str | None = None,
    ) -> Run:
        if not isinstance(task, str):
            raise TypeError(f"task must be a string, got {type(task).__name__}.")
        standby = (
            self._last_run if self._last_run is not None and self._last_run.status == "created" else None
        )
        previous = self._last_run if not reset else None
        system_prompt = self.system_prompt
        memory = previous.memory if previous is not None else AgentMemory(system_prompt)
        if previous is not None:
            memory.system_prompt.system_prompt = system_prompt
        source = previous if previous is not None else standby  # agent.state set before the first run counts
        state = dict(source.state) if source is not None else {}
        spec = self._output_spec(output_type if output_type is not None else self.output_type)
        full_task = task
        if additional_args:
            state.update(additional_args)
            full_task += (
                "\nYou have been provided with these additional arguments, that you can access directly using "
                f"the keys as variables:\n{additional_args!s}."
            )
        if spec is not None:
            full_task += "\n" + spec.instructions()
        run = Run(
            self,
            full_task,
            memory,
            max_steps=max_steps or self.max_steps,
            state=state,
            output_spec=spec,
            images=images,
        )
        if previous is not None:
            run.executor_snapshot = previous.executor_snapshot
            run.previous = previous
        if standby is not None and standby.executor is not None:
            # An executor made before any run (agent.python_executor, manual steps) carries over.
            run.executor, run.owns_executor = standby.executor, standby.owns_executor
            standby.executor = None
        memory.steps.append(TaskStep(task=full_task, task_images=images))
        limits = usage_limits if usage_limits is not None else self.usage_limits
        if limits is not None:
            run.budget = RunBudget(limits)
        if run_id is not None:
            run.id = run_id
        if self.store is not None or self.approval is not None:
            from ..runs.resume import attach_journal

            attach_journal(self, run)
        self._last_run = run
        return run

    async def _arun_setup(self, run: Run) -> None:
        """Per-run resources (CodeAgent creates its executor here)."""

    async def arun(
        self,
        task: str,
        reset: bool = True,
        images: list[Any] | None = None,
        additional_args: dict[str, Any] | None = None,
        max_steps: int | None = None,
        return_full_result: bool | None = None,
        output_type: Any = None,
        usage_limits: UsageLimits | None = None,
        run_id: str | None = None,
    ) -> Any:
        """Run the task; returns the final answer, or a RunResult when ``return_full_result``.
        ``usage_limits`` (for this run) overrides the agent's; crossing one raises UsageLimitExceeded.
        ``run_id`` names the run (with a store: the id to resume it by)."""
        run = self._make_run(
            task, reset, images, additional_args, max_steps, output_type, usage_limits, run_id=run_id
        )
        async for _ in self._drive(run, one_task=True):
            pass
        full = return_full_result if return_full_result is not None else self.return_full_result
        if full:
            return run.result()
        if run.status == "cancelled":
            raise AgentError("Agent interrupted.")
        return handle_agent_output_types(run.output)  # text comes back as AgentText, as in smolagents

    async def astream(
        self,
        task: str,
        reset: bool = True,
        images: list[Any] | None = None,
        additional_args: dict[str, Any] | None = None,
        max_steps: int | None = None,
        output_type: Any = None,
        usage_limits: UsageLimits | None = None,
        run_id: str | None = None,
    ) -> AsyncIterator[Event]:
        """Run the task, yielding every event (codeloop.events) as it happens."""
        run = self._make_run(
            task, reset, images, additional_args, max_steps, output_type, usage_limits, run_id=run_id
        )
        async for item in self._drive(run):
            if isinstance(item, Event):
                yield item

    async def _astream_steps(self, run: Run, items: AsyncIterator[Any] | None = None) -> AsyncIterator[Any]:
        """smolagents' stream items: stream deltas, ToolCall, ToolOutput, ActionOutput and memory steps."""
        async for item in items if items is not None else self._drive(run):
            if type(item) is ModelDelta:
                yield item.delta
            elif not isinstance(item, Event):
                yield item

    def run(
        self,
        task: str,
        stream: bool = False,
        reset: bool = True,
        images: list[Any] | None = None,
        additional_args: dict[str, Any] | None = None,
        max_steps: int | None = None,
        return_full_result: bool | None = None,
        output_type: Any = None,
        usage_limits: UsageLimits | None = None,
        run_id: str | None = None,
    ) -> Any:
        """Sync ``arun``; works inside a running event loop too. ``stream=True`` returns a generator of
        smolagents' stream items (memory steps, deltas, tool calls and outputs), ending with FinalAnswerStep."""
        if stream:
            run = self._make_run(
                task, reset, images, additional_args, max_steps, output_type, usage_limits, run_id=run_id
            )
            return iterate_sync(self._astream_steps(run))
        with caller_captures(self):
            return run_sync(
                self.arun(
                    task,
                    reset=reset,
                    images=images,
                    additional_args=additional_args,
                    max_steps=max_steps,
                    return_full_result=return_full_result,
                    output_type=output_type,
                    usage_limits=usage_limits,
                    run_id=run_id,
                )
            )

    def stream(self, task: str, **kwargs: Any) -> Iterator[Event]:
        """Sync ``astream``: the typed events of a run."""
        return iterate_sync(self.astream(task, **kwargs))

    def interrupt(self) -> None:
        """Stop every active run of this agent; each ends with state "cancelled"."""
        for run in list(self._active_runs):
            run.interrupt()

    # ---- manual stepping ----
    def step(self, memory_step: ActionStep) -> Any:
        """Run one action step on the current memory (smolagents' manual stepping). Returns the step's
        last stream item, an ``ActionOutput`` (``.output``, ``.is_final_answer``), as smolagents does.
        The caller appends the step to ``agent.memory.steps``."""
        return run_sync(self.astep(memory_step))

    async def astep(self, memory_step: ActionStep) -> Any:
        run = self._standby_run()
        await self._ensure_step_resources(run)
        last: Any = None
        async for item in self._astep_stream(run, memory_step):
            if not isinstance(item, Event):
                last = item
        return last

    def _step_stream(self, memory_step: ActionStep) -> Iterator[Any]:
        """smolagents' extension point: one step as a sync generator of stream items, ending with an
        ``ActionOutput``. A subclass that overrides it (smolagents style) is driven by the async loop in a
        code thread; by default it is a sync view of ``_astep_stream``."""
        run = self._standby_run()
        run_sync(self._ensure_step_resources(run))
        return iterate_sync(self._astream_steps(run, self._astep_stream(run, memory_step)))

    async def _astep_from_sync(self, run: Run, memory_step: ActionStep) -> AsyncIterator[Any]:
        """Drives a subclass's own sync ``_step_stream`` without blocking the loop."""
        iterator = iter(self._step_stream(memory_step))
        done = object()
        while (item := await run_in_code_thread(next, iterator, done)) is not done:
            yield item

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "_step_stream" in vars(cls) and "_astep_stream" not in vars(cls):
            cls._astep_stream = MultiStepAgent._astep_from_sync  # type: ignore[method-assign]

    async def _ensure_step_resources(self, run: Run) -> None:
        """Resources a standby run needs before manual steps (CodeAgent: its executor)."""

    async def _astep_stream(self, run: Run, memory_step: ActionStep) -> AsyncIterator[Any]:
        raise NotImplementedError("Subclasses implement _astep_stream")
        yield  # pragma: no cover

    # ---- managed agent ----
    async def acall_as_managed_agent(
        self, task: str, additional_args: dict[str, Any] | None = None, **kwargs: Any
    ) -> str:
        """Run as a team member: a fresh run with the managed_agent templates; returns the report text."""
        templates = self.prompt_templates["managed_agent"]
        full_task = populate_template(templates["task"], {"name": self.name, "task": task})
        result: RunResult = await self.arun(
            full_task, additional_args=additional_args, return_full_result=True, reset=True, **kwargs
        )
        if result.state == "cancelled":
            raise AgentError(f"Team member '{self.name}' was interrupted before it answered.")
        summary = result._memory.messages_before(summary_mode=True) if result._memory is not None else None
        return self._managed_report(result.output, result.state, summary)

    def _managed_report(self, output: Any, state: str | None, summary: list[ChatMessage] | None) -> str:
        templates = self.prompt_templates["managed_agent"]
        if output is None or (isinstance(output, str) and not output.strip()):
            output = f"(team member '{self.name}' gave no answer; its run ended with state {state!r})"
        answer = populate_template(templates["report"], {"name": self.name, "final_answer": output})
        if state == "max_steps_error":
            answer += f"\n(Note: team member '{self.name}' reached its step limit before finishing.)"
        if self.provide_run_summary and summary is not None:
            answer += "\n\nFor more detail, find below a summary of this agent's work:\n<summary_of_work>\n"
            for message in summary:
                content = str(message.text)
                answer += "\n" + (
                    content if len(content) < 4000 else content[:2000] + "\n...\n" + content[-2000:]
                )
                answer += "\n---"
            answer += "\n</summary_of_work>"
        return answer

    def __call__(self, task: str, **kwargs: Any) -> str:
        """Sync call as a managed agent (smolagents: ``manager`` calls ``member(task)``)."""
        if "run" in vars(self) or type(self).run is not MultiStepAgent.run:
            # a subclass (or instance) that overrides run(), smolagents style, is called through it
            templates = self.prompt_templates["managed_agent"]
            full_task = populate_template(templates["task"], {"name": self.name, "task": task})
            output = self.run(full_task, **kwargs)
            state = "success"
            if isinstance(output, RunResult):
                output, state = output.output, output.state
            return self._managed_report(output, state, self.write_memory_to_messages(summary_mode=True))
        return run_sync(self.acall_as_managed_agent(task, **kwargs))

    # ---- display ----
    def visualize(self) -> None:
        """Print a tree of this agent, its tools and its managed agents."""
        self.logger.visualize_agent_tree(self)

    def replay(self, detailed: bool = False) -> None:
        """Print the steps of the most recent run again."""
        logger = self.logger if self.logger.level > LogLevel.OFF else AgentLogger(LogLevel.INFO)
        self.memory.replay(logger, detailed=detailed)

    def provide_final_answer(self, task: str) -> ChatMessage:
        """Ask the model for a final answer from memory (what happens at max_steps), synchronously."""
        run = self._standby_run()

        async def _go() -> ChatMessage:
            previous, run.task = run.task, task  # the prompt asks about the task given here
            try:
                items = [i async for i in self._ahandle_max_steps(run)]
            finally:
                run.task = previous
            run.memory.steps.pop()  # the helper records a step; this public call only asks
            answer = items[-1].value
            return ChatMessage("assistant", answer if isinstance(answer, str) else str(answer))

        return run_sync(_go())

    def cleanup(self) -> None:
        """Close what the last run left open (the executor of manual steps)."""
        run = self._last_run
        if run is not None and run.executor is not None:
            run_sync(run.aclose())

    def __enter__(self) -> MultiStepAgent:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.cleanup()

    def to_dict(self) -> dict[str, Any]:
        """The agent as a dict in smolagents' layout (tools with their source; see agents/agent_dict.py)."""
        return agent_to_dict(self)

    @classmethod
    def from_dict(cls, agent_dict: dict[str, Any], **kwargs: Any) -> MultiStepAgent:
        """Rebuild an agent from ``to_dict()`` output; ``kwargs`` override its settings (``model=``...)."""
        return agent_from_dict(cls, agent_dict, **kwargs)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, tools={list(self.tools)}, model={self.model!r})"


MultiStepAgent._CACHEABLE_PROMPT_METHODS = (MultiStepAgent.initialize_system_prompt,)
