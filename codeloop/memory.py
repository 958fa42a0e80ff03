"""What an agent remembers of a run: the system prompt, the task, plans, actions and the final answer.

Layer 4 (memory). Steps keep smolagents' class names and fields so user code that reads
``agent.memory.steps`` keeps working. Two differences matter for size and speed:

- ``ActionStep.model_input_messages`` is *not* copied into every step (that made memory grow with the
  square of the step count). By default a step keeps a reference to the memory and the number of steps
  it saw; the list is rebuilt on demand from those steps. A run started with
  ``keep_model_input_messages=True`` stores the exact list instead.
- Each step memoises its ``to_messages`` result, keyed on the fields it reads, so building the prompt at
  step n costs O(n) cheap key checks instead of rebuilding every message; editing a step's fields (a plan,
  an observation) invalidates its entry. The cached message objects are shared: do not mutate them.
- Every step round-trips through JSON (``dict()`` / :func:`memory_step_from_dict`) because the run store
  persists them; images are stored as data URLs.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .errors import AgentError, error_from_dict
from .messages import ChatMessage, MessageRole, Timing, TokenUsage, image_to_data_url

if TYPE_CHECKING:
    from .agents.logger import AgentLogger

__all__ = [
    "ToolCall",
    "MemoryStep",
    "ActionStep",
    "PlanningStep",
    "TaskStep",
    "SystemPromptStep",
    "FinalAnswerStep",
    "SummaryStep",
    "AgentMemory",
    "CallbackRegistry",
    "memory_step_from_dict",
    "jsonable",
]


def jsonable(value: Any) -> Any:
    """A JSON-safe copy of ``value``: containers recursed, known types via to_dict, the rest as repr."""
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, list | tuple | set):
        return [jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    for name in ("to_dict", "model_dump"):
        method = getattr(value, name, None)
        if callable(method):
            try:
                return jsonable(method())
            except Exception:  # a broken to_dict must not make a step unserializable
                break
    return repr(value)


def _text(text: str) -> list[dict[str, Any]]:
    return [{"type": "text", "text": text}]


def _images_to_json(images: list[Any] | None) -> list[str] | None:
    return [image_to_data_url(i) for i in images] if images else None


@dataclass
class ToolCall:
    """A call the agent made in a step (for a CodeAgent: the code, as a call to ``python_interpreter``)."""

    name: str
    arguments: Any
    id: str

    def dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "type": "function",
            "function": {"name": self.name, "arguments": jsonable(self.arguments)},
        }

    to_dict = dict

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ToolCall:
        fn = data.get("function") or {}
        return cls(
            name=fn.get("name", data.get("name", "")), arguments=fn.get("arguments"), id=str(data["id"])
        )


class MemoryStep:
    """Base of all memory steps."""

    def dict(self) -> dict[str, Any]:
        if type(self) is MemoryStep:  # the base step has no fields (smolagents: asdict of an empty dataclass)
            return {}
        raise NotImplementedError(f"{type(self).__name__} must implement dict() to be saved or shown.")

    def _message_key(self) -> Any:
        """What to_messages depends on; None means "do not cache"."""
        return None

    def cached_messages(self, summary_mode: bool = False) -> list[ChatMessage]:
        """``to_messages`` memoised on the fields it reads, so building a step's prompt is O(new steps)
        rather than rebuilding every message of every step at every call. The list is shared: do not
        mutate it."""
        key = self._message_key()
        if key is None:
            return self.to_messages(summary_mode=summary_mode)
        slot = "_messages_summary" if summary_mode else "_messages_full"
        cached = self.__dict__.get(slot)
        if cached is not None and cached[0] == key:
            return cached[1]
        messages = self.to_messages(summary_mode=summary_mode)
        self.__dict__[slot] = (key, messages)
        return messages

    def to_dict(self) -> dict[str, Any]:
        return self.dict()

    def to_messages(self, summary_mode: bool = False) -> list[ChatMessage]:
        raise NotImplementedError


@dataclass
class ActionStep(MemoryStep):
    """One model call and the action it produced, with what came back."""

    step_number: int
    timing: Timing = field(default_factory=Timing)
    model_input_messages: list[ChatMessage] | None = None
    tool_calls: list[ToolCall] | None = None
    error: AgentError | None = None
    model_output_message: ChatMessage | None = None
    model_output: str | list[dict[str, Any]] | None = None
    code_action: str | None = None
    observations: str | None = None
    observations_images: list[Any] | None = None
    action_output: Any = None
    token_usage: TokenUsage | None = None
    is_final_answer: bool = False

    def dict(self) -> dict[str, Any]:
        inputs = self.model_input_messages
        return {
            "step_number": self.step_number,
            "timing": self.timing.dict(),
            "model_input_messages": [m.to_dict() for m in inputs] if inputs else None,
            "tool_calls": [tc.dict() for tc in self.tool_calls] if self.tool_calls else [],
            "error": self.error.dict() if self.error else None,
            "model_output_message": self.model_output_message.to_dict()
            if self.model_output_message
            else None,
            "model_output": self.model_output,
            "code_action": self.code_action,
            "observations": self.observations,
            "observations_images": _images_to_json(self.observations_images),
            "action_output": jsonable(self.action_output),
            "token_usage": self.token_usage.to_dict() if self.token_usage else None,
            "is_final_answer": self.is_final_answer,
        }

    def _message_key(self) -> Any:
        calls, images = self.tool_calls, self.observations_images
        return (
            self.model_output if isinstance(self.model_output, str | None) else id(self.model_output),
            id(calls),
            len(calls) if calls else 0,
            id(images),
            self.observations,
            id(self.error),
        )

    def to_messages(self, summary_mode: bool = False) -> list[ChatMessage]:
        messages: list[ChatMessage] = []
        if self.model_output is not None and not summary_mode:
            text = self.model_output if isinstance(self.model_output, str) else json.dumps(self.model_output)
            messages.append(ChatMessage(MessageRole.ASSISTANT, _text(text.strip())))
        if self.tool_calls is not None:
            calls = str([tc.dict() for tc in self.tool_calls])
            messages.append(ChatMessage(MessageRole.TOOL_CALL, _text("Calling tools:\n" + calls)))
        if self.observations_images:
            parts = [{"type": "image", "image": image} for image in self.observations_images]
            messages.append(ChatMessage(MessageRole.USER, parts))
        if self.observations is not None:
            messages.append(
                ChatMessage(MessageRole.TOOL_RESPONSE, _text(f"Observation:\n{self.observations}"))
            )
        if self.error is not None:
            text = f"Call id: {self.tool_calls[0].id}\n" if self.tool_calls else ""
            text += (
                f"Error:\n{self.error}\nNow let's retry: take care not to repeat previous errors! "
                "If you have retried several times, try a completely different approach.\n"
            )
            messages.append(ChatMessage(MessageRole.TOOL_RESPONSE, _text(text)))
        return messages


# model_input_messages is stored lazily: a step remembers (memory, number of steps before it, summary mode,
# messages before and after) and the list is rebuilt when read. Assigning a list stores it as given. The
# property replaces the dataclass field after the class is built, so the generated __init__ goes through
# the setter.
def _get_inputs(self: MemoryStep) -> list[ChatMessage] | None:
    stored = self.__dict__.get("_inputs")
    ref = self.__dict__.get("_inputs_ref")
    if stored is None and ref is not None:
        memory, steps, count, summary_mode, before, after = ref
        if memory.steps is steps:
            return [*before, *memory.messages_before(count, summary_mode=summary_mode), *after]
        # Compaction gave memory a new step list since: rebuild from the list this step saw.
        messages = list(before) + list(memory.system_prompt.cached_messages(summary_mode=summary_mode))
        for earlier in steps[:count]:
            messages.extend(earlier.cached_messages(summary_mode=summary_mode))
        return messages + list(after)
    return stored


def _set_inputs(self: MemoryStep, value: list[ChatMessage] | None) -> None:
    self.__dict__["_inputs"] = value
    self.__dict__["_inputs_ref"] = None


ActionStep.model_input_messages = property(_get_inputs, _set_inputs)  # type: ignore[assignment]


def set_model_inputs_ref(
    step: MemoryStep,
    memory: AgentMemory,
    count: int,
    *,
    summary_mode: bool = False,
    before: tuple[ChatMessage, ...] = (),
    after: tuple[ChatMessage, ...] = (),
) -> None:
    """Make ``step.model_input_messages`` = ``before`` + the memory's messages for its first ``count``
    steps + ``after``, rebuilt when read instead of copied into the step."""
    step.__dict__["_inputs"] = None
    # The step list itself is held too: compaction replaces memory.steps with a new list, and the
    # step must still show what it was sent.
    step.__dict__["_inputs_ref"] = (memory, memory.steps, count, summary_mode, before, after)


@dataclass
class PlanningStep(MemoryStep):
    """A plan (initial or updated); what the model sees is ``plan``, so editing it steers the run."""

    model_input_messages: list[ChatMessage]
    model_output_message: ChatMessage
    plan: str
    timing: Timing = field(default_factory=Timing)
    token_usage: TokenUsage | None = None

    def dict(self) -> dict[str, Any]:
        return {
            "model_input_messages": [m.to_dict() for m in self.model_input_messages or []],
            "model_output_message": self.model_output_message.to_dict()
            if self.model_output_message
            else None,
            "plan": self.plan,
            "timing": self.timing.dict(),
            "token_usage": self.token_usage.to_dict() if self.token_usage else None,
        }

    def _message_key(self) -> Any:
        return self.plan

    def to_messages(self, summary_mode: bool = False) -> list[ChatMessage]:
        if summary_mode:
            return []
        # The user turn after the plan stops models from simply continuing the plan message.
        return [
            ChatMessage(MessageRole.ASSISTANT, _text(self.plan.strip())),
            ChatMessage(MessageRole.USER, _text("Now proceed and carry out this plan.")),
        ]


PlanningStep.model_input_messages = property(_get_inputs, _set_inputs)  # type: ignore[assignment]


@dataclass
class TaskStep(MemoryStep):
    task: str
    task_images: list[Any] | None = None

    def dict(self) -> dict[str, Any]:
        return {"task": self.task, "task_images": _images_to_json(self.task_images)}

    def _message_key(self) -> Any:
        return (self.task, id(self.task_images))

    def to_messages(self, summary_mode: bool = False) -> list[ChatMessage]:
        content = _text(f"New task:\n{self.task}")
        if self.task_images:
            content.extend({"type": "image", "image": image} for image in self.task_images)
        return [ChatMessage(MessageRole.USER, content)]


@dataclass
class SystemPromptStep(MemoryStep):
    system_prompt: str

    def dict(self) -> dict[str, Any]:
        return {"system_prompt": self.system_prompt}

    def _message_key(self) -> Any:
        return self.system_prompt

    def to_messages(self, summary_mode: bool = False) -> list[ChatMessage]:
        if summary_mode:
            return []
        return [ChatMessage(MessageRole.SYSTEM, _text(self.system_prompt))]


@dataclass
class FinalAnswerStep(MemoryStep):
    output: Any

    def dict(self) -> dict[str, Any]:
        return {"output": jsonable(self.output)}

    def to_messages(self, summary_mode: bool = False) -> list[ChatMessage]:
        return []


@dataclass
class SummaryStep(MemoryStep):
    """Earlier action steps folded into a summary the model wrote, to keep the prompt under its token
    budget (see ``codeloop/compaction.py``). The prompt shows the summary in their place; the folded
    steps stay here (``folded_steps``) for inspection, replay and the run store. ``variables`` lists
    what the code executor still holds (CodeAgent), so the model knows what it can use."""

    summary: str
    folded_steps: list[MemoryStep] = field(default_factory=list)
    variables: str | None = None
    timing: Timing = field(default_factory=Timing)
    token_usage: TokenUsage | None = None

    @property
    def step_range(self) -> tuple[int, int] | None:
        numbers = [n for s in self.folded_steps for n in _step_numbers(s)]
        return (min(numbers), max(numbers)) if numbers else None

    def dict(self) -> dict[str, Any]:
        return {
            "summary": self.summary,
            "folded_steps": [s.dict() for s in self.folded_steps],
            "variables": self.variables,
            "timing": self.timing.dict(),
            "token_usage": self.token_usage.to_dict() if self.token_usage else None,
        }

    def _message_key(self) -> Any:
        return (self.summary, self.variables)

    def to_messages(self, summary_mode: bool = False) -> list[ChatMessage]:
        span = self.step_range
        what = f"steps {span[0]} to {span[1]}" if span else "earlier steps"
        text = f"Summary of my work in {what} (shortened to fit the context window):\n{self.summary.strip()}"
        if self.variables:
            text += f"\n\nVariables still defined in the Python session: {self.variables}"
        return [ChatMessage(MessageRole.USER, _text(text))]


def _step_numbers(step: MemoryStep) -> list[int]:
    if isinstance(step, ActionStep):
        return [step.step_number]
    if isinstance(step, SummaryStep):
        return [n for s in step.folded_steps for n in _step_numbers(s)]
    return []


def _message(data: dict[str, Any] | None) -> ChatMessage | None:
    return ChatMessage.from_dict(data) if data else None


def memory_step_from_dict(data: dict[str, Any]) -> MemoryStep:
    """Rebuild a step from its ``dict()``; the kind is recognised from its keys."""
    usage = TokenUsage.from_dict(data["token_usage"]) if data.get("token_usage") else None
    timing = Timing.from_dict(data["timing"]) if data.get("timing") else Timing()
    if "summary" in data and "folded_steps" in data:
        return SummaryStep(
            summary=data["summary"],
            folded_steps=[memory_step_from_dict(s) for s in data.get("folded_steps") or []],
            variables=data.get("variables"),
            timing=timing,
            token_usage=usage,
        )
    if "step_number" in data:
        inputs = data.get("model_input_messages")
        return ActionStep(
            step_number=int(data["step_number"]),
            timing=timing,
            model_input_messages=[ChatMessage.from_dict(m) for m in inputs] if inputs else None,
            tool_calls=[ToolCall.from_dict(tc) for tc in data.get("tool_calls") or []] or None,
            error=error_from_dict(data["error"]) if data.get("error") else None,
            model_output_message=_message(data.get("model_output_message")),
            model_output=data.get("model_output"),
            code_action=data.get("code_action"),
            observations=data.get("observations"),
            observations_images=data.get("observations_images"),
            action_output=data.get("action_output"),
            token_usage=usage,
            is_final_answer=bool(data.get("is_final_answer", False)),
        )
    if "plan" in data:
        return PlanningStep(
            model_input_messages=[ChatMessage.from_dict(m) for m in data.get("model_input_messages") or []],
            model_output_message=_message(data.get("model_output_message"))
            or ChatMessage(MessageRole.ASSISTANT, data["plan"]),
            plan=data["plan"],
            timing=timing,
            token_usage=usage,
        )
    if "task" in data:
        return TaskStep(task=data["task"], task_images=data.get("task_images"))
    if "system_prompt" in data:
        return SystemPromptStep(system_prompt=data["system_prompt"])
    if set(data) == {"output"}:
        return FinalAnswerStep(output=data["output"])
    raise ValueError(f"Cannot tell which memory step this is; keys: {sorted(data)}")


class AgentMemory:
    """The system prompt and the steps of a run, in order."""

    def __init__(self, system_prompt: str):
        self.system_prompt = SystemPromptStep(system_prompt=system_prompt)
        self.steps: list[TaskStep | ActionStep | PlanningStep | SummaryStep] = []

    def reset(self) -> None:
        """Forget all steps; the system prompt stays."""
        self.steps = []

    def messages_before(self, count: int | None = None, summary_mode: bool = False) -> list[ChatMessage]:
        """The messages for the system prompt and the first ``count`` steps (all when None)."""
        messages = list(self.system_prompt.cached_messages(summary_mode=summary_mode))
        for step in self.steps if count is None else self.steps[:count]:
            messages.extend(step.cached_messages(summary_mode=summary_mode))
        return messages

    def get_succinct_steps(self) -> list[dict[str, Any]]:
        """Each step as a dict, without the model input messages."""
        out = []
        for step in self.steps:
            data = step.dict()
            data.pop("model_input_messages", None)
            out.append(data)
        return out

    def get_full_steps(self) -> list[dict[str, Any]]:
        """Each step as a dict, model input messages included (rebuilt for steps that keep them lazily)."""
        return [step.dict() for step in self.steps]

    def return_full_code(self) -> str:
        """All code actions of the run, joined into one script."""
        def actions(steps: list[Any]) -> list[ActionStep]:
            out: list[ActionStep] = []
            for s in steps:
                out.extend(actions(s.folded_steps) if isinstance(s, SummaryStep) else [s])
            return [s for s in out if isinstance(s, ActionStep) and s.code_action is not None]

        return "\n\n".join(s.code_action for s in actions(self.steps))  # type: ignore[misc]

    def to_dict(self) -> dict[str, Any]:
        return {"system_prompt": self.system_prompt.system_prompt, "steps": self.get_succinct_steps()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AgentMemory:
        memory = cls(data.get("system_prompt", ""))
        memory.steps = [memory_step_from_dict(s) for s in data.get("steps", [])]  # type: ignore[misc]
        return memory

    def replay(self, logger: AgentLogger, detailed: bool = False) -> None:
        """Print the run again through ``logger`` (an AgentLogger): system prompt, task, each step's output,
        and with ``detailed`` the model inputs too. ``agent.replay()`` passes the agent's logger."""
        level = 0  # LogLevel.ERROR: a replay prints unless the logger is OFF (memory sits below agents)
        logger.log("Replaying the agent's steps:", level=level)
        logger.log_markdown(title="System prompt", content=self.system_prompt.system_prompt, level=level)
        for step in self.steps:
            if isinstance(step, TaskStep):
                logger.log_task(step.task, "", level=level)
            elif isinstance(step, ActionStep):
                logger.log_rule(f"Step {step.step_number}", level=level)
                if detailed and step.model_input_messages is not None:
                    logger.log_messages(step.model_input_messages, level=level)
                if step.model_output is not None:
                    logger.log_markdown(title="Agent output:", content=str(step.model_output), level=level)
                if step.observations:
                    logger.log_markdown(title="Observations:", content=step.observations, level=level)
                if step.error is not None:
                    logger.log_error(str(step.error))
            elif isinstance(step, SummaryStep):
                logger.log_rule("Summary of earlier steps", level=level)
                logger.log_markdown(title="Summary:", content=step.summary, level=level)
            elif isinstance(step, PlanningStep):
                logger.log_rule("Planning step", level=level)
                if detailed and step.model_input_messages:
                    logger.log_messages(step.model_input_messages, level=level)
                logger.log_markdown(title="Agent output:", content=step.plan, level=level)


def _arity(callback: Callable[..., Any]) -> bool:
    """True when the callback takes more than the step (it then also gets ``agent=``)."""
    try:
        params = inspect.signature(callback).parameters.values()
    except (TypeError, ValueError):
        return True
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    return len(positional) > 1 or any(p.kind in (p.VAR_KEYWORD, p.KEYWORD_ONLY) for p in params)


class CallbackRegistry:
    """Step callbacks by step class; a callback registered for a class also gets its subclasses' steps.

    Callbacks taking one parameter get the step; others get ``(step, agent=agent)``. Async callbacks are
    awaited by the agent loop (see :meth:`acall`).
    """

    def __init__(self) -> None:
        self._callbacks: dict[type, list[tuple[Callable[..., Any], bool]]] = {}

    def register(self, step_cls: type, callback: Callable[..., Any]) -> None:
        if not callable(callback):
            raise TypeError(f"Step callback {callback!r} for {step_cls.__name__} is not callable.")
        self._callbacks.setdefault(step_cls, []).append((callback, _arity(callback)))

    def __bool__(self) -> bool:
        return bool(self._callbacks)

    def _matching(self, step: MemoryStep) -> list[tuple[Callable[..., Any], bool]]:
        found: list[tuple[Callable[..., Any], bool]] = []
        for cls in type(step).__mro__:
            found.extend(self._callbacks.get(cls, ()))
        return found

    def callback(self, memory_step: MemoryStep, **kwargs: Any) -> None:
        """Call the callbacks for this step synchronously (async ones are not awaited here)."""
        for cb, wants_kwargs in self._matching(memory_step):
            cb(memory_step, **kwargs) if wants_kwargs else cb(memory_step)

    async def acall(self, memory_step: MemoryStep, **kwargs: Any) -> None:
        """Call the callbacks for this step in registration order, awaiting async ones."""
        if not self._callbacks:
            return
        for cb, wants_kwargs in self._matching(memory_step):
            result = cb(memory_step, **kwargs) if wants_kwargs else cb(memory_step)
            if inspect.isawaitable(result):
                await result
