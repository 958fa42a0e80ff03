"""Context compaction: keep an agent's prompt under a token budget.

Layer 4 (memory). smolagents resends the whole memory at every step, so a long run grows its prompt
without bound. With ``max_context_tokens`` set, before each model call the agent estimates the request
(``models/tokens.py``) and, when it would go over the budget, compacts memory in two stages, stopping as
soon as the prompt is back under ``target_ratio`` of the budget (so compaction happens rarely and the
prompt prefix, which providers cache, stays stable in between):

1. older action steps (all but the last ``keep_last_steps``) drop their images and keep only the head
   and tail of long observations, with a note of what was cut;
2. those older steps (and an earlier summary) are folded into one :class:`~codeloop.memory.SummaryStep`
   written by the model; a CodeAgent's summary also lists the variables alive in its executor.

The system prompt, the task, plans and the last ``keep_last_steps`` steps always stay verbatim. This
module holds the policy and the memory surgery; the agent (``agents/context.py``) makes the model call.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .memory import ActionStep, AgentMemory, MemoryStep, SummaryStep
from .messages import ChatMessage, MessageRole

__all__ = ["Compaction", "truncate_middle", "shrink_old_steps", "foldable_steps", "summary_request", "fold"]

DEFAULT_SUMMARY_PROMPT = """You compress the history of an AI agent's work so that it can go on with its task using less context.
Summarize the steps below: what was tried, what was found (keep exact facts, numbers, names, paths, URLs
and values the task still needs), what failed and why, and what remains to be done. Drop repetition and
chatter; keep every fact needed to finish the task. Write in the first person, as the agent, in at most
{max_words} words."""


@dataclass
class Compaction:
    """How an agent keeps its prompt under ``max_context_tokens`` (estimated input tokens per request).

    Args:
        max_context_tokens: the budget; None turns compaction off.
        keep_last_steps: action steps kept verbatim at the end of memory.
        target_ratio: after compacting, the prompt is brought under this share of the budget.
        max_observation_chars: an older step's observation longer than this keeps head and tail.
        drop_old_images: drop the images of older steps.
        summarize: fold older steps into a model-written summary when truncation is not enough.
        summary_prompt: instructions for the summary (``{max_words}`` is filled in).
        summary_max_words: length asked of the summary.
        summary_model: the model writing summaries (default: the agent's own).
    """

    max_context_tokens: int | None = None
    keep_last_steps: int = 3
    target_ratio: float = 0.6
    max_observation_chars: int = 2000
    drop_old_images: bool = True
    summarize: bool = True
    summary_prompt: str = DEFAULT_SUMMARY_PROMPT
    summary_max_words: int = 300
    summary_model: Any = None

    def __post_init__(self) -> None:
        if self.max_context_tokens is not None and self.max_context_tokens < 1:
            raise ValueError(f"max_context_tokens must be positive, got {self.max_context_tokens!r}.")
        if self.keep_last_steps < 0:
            raise ValueError(f"keep_last_steps must be >= 0, got {self.keep_last_steps!r}.")
        if not 0 < self.target_ratio <= 1:
            raise ValueError(f"target_ratio must be in (0, 1], got {self.target_ratio!r}.")

    @property
    def target_tokens(self) -> int:
        return int((self.max_context_tokens or 0) * self.target_ratio)

    @classmethod
    def resolve(cls, max_context_tokens: int | None, compaction: Compaction | None) -> Compaction | None:
        """The agent's policy from its two arguments (``max_context_tokens`` wins over the object's)."""
        if compaction is None:
            return cls(max_context_tokens=max_context_tokens) if max_context_tokens else None
        if not isinstance(compaction, Compaction):
            raise TypeError(f"compaction must be a codeloop.Compaction, got {type(compaction).__name__}.")
        if max_context_tokens is not None:
            compaction = _replace(compaction, max_context_tokens=max_context_tokens)
        if compaction.max_context_tokens is None:
            raise ValueError("compaction= needs a budget: pass max_context_tokens=... (agent or Compaction).")
        return compaction


def _replace(policy: Compaction, **changes: Any) -> Compaction:
    from dataclasses import replace

    return replace(policy, **changes)


def truncate_middle(text: str, max_chars: int) -> str:
    """``text`` with its middle cut when longer than ``max_chars``, saying how much was cut."""
    if len(text) <= max_chars:
        return text
    head = max_chars * 2 // 3
    tail = max_chars - head
    cut = len(text) - head - tail
    return f"{text[:head]}\n[... {cut} characters cut here to save context ...]\n{text[len(text) - tail :]}"


def _older_actions(memory: AgentMemory, keep: int) -> list[ActionStep]:
    actions = [s for s in memory.steps if isinstance(s, ActionStep)]
    return actions[: max(0, len(actions) - keep)]


def shrink_old_steps(memory: AgentMemory, policy: Compaction) -> tuple[int, int]:
    """Stage 1: older steps lose images and the middle of long observations. Returns (observations
    truncated, images dropped)."""
    truncated = dropped = 0
    for step in _older_actions(memory, policy.keep_last_steps):
        if policy.drop_old_images and step.observations_images:
            count = len(step.observations_images)
            step.observations_images = None
            note = f"[{count} image(s) of this step dropped to save context]"
            step.observations = f"{step.observations}\n{note}" if step.observations else note
            dropped += count
        text = step.observations
        if text is not None and len(text) > policy.max_observation_chars:
            step.observations = truncate_middle(text, policy.max_observation_chars)
            truncated += 1
    return truncated, dropped


def foldable_steps(memory: AgentMemory, policy: Compaction) -> list[MemoryStep]:
    """Stage 2 candidates: an earlier summary and the older action steps (tasks and plans stay)."""
    older = set(map(id, _older_actions(memory, policy.keep_last_steps)))
    return [s for s in memory.steps if id(s) in older or isinstance(s, SummaryStep)]


def _transcript(steps: list[MemoryStep]) -> str:
    parts: list[str] = []
    for step in steps:
        title = f"Step {step.step_number}" if isinstance(step, ActionStep) else "Earlier summary"
        body = "\n".join(m.text for m in step.cached_messages())
        parts.append(f"## {title}\n{body}")
    return "\n\n".join(parts)


def summary_request(task: str, steps: list[MemoryStep], policy: Compaction) -> list[ChatMessage]:
    """The messages asking the model to summarize ``steps`` of work on ``task``."""
    instructions = policy.summary_prompt.replace("{max_words}", str(policy.summary_max_words))
    body = f"The task:\n{task}\n\nThe steps to summarize:\n\n{_transcript(steps)}\n\nNow write the summary."
    return [
        ChatMessage(MessageRole.SYSTEM, [{"type": "text", "text": instructions}]),
        ChatMessage(MessageRole.USER, [{"type": "text", "text": body}]),
    ]


def fold(memory: AgentMemory, steps: list[MemoryStep], summary: SummaryStep) -> None:
    """Replace ``steps`` in memory by ``summary`` (at the place of the first); an earlier summary's
    folded steps move into the new one, so nothing of the run is lost."""
    folded: list[MemoryStep] = []
    for step in steps:
        folded.extend(step.folded_steps if isinstance(step, SummaryStep) else [step])
    summary.folded_steps = folded
    gone = set(map(id, steps))
    index = next(i for i, s in enumerate(memory.steps) if id(s) in gone)
    kept = [s for s in memory.steps if id(s) not in gone]
    kept.insert(index, summary)
    memory.steps = kept  # type: ignore[assignment]
