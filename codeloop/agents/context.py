"""What the loop does around each model call for bounded runs: compaction, usage limits, cache hints.

Layer 5 (agents). ``AgentLoop`` calls three hooks and knows nothing else of this:

- ``compacted_messages(agent, run)`` builds the prompt from memory and, when the agent has a token
  budget (``max_context_tokens`` / ``compaction=``) and the prompt would exceed it, compacts memory
  first (``codeloop/compaction.py``), asking the model for the summary and emitting
  :class:`~codeloop.events.ContextCompacted`;
- ``before_model_call`` checks the run's usage limits (``codeloop/usage_limits.py``) against the
  request about to be sent, caps its output to what the limits leave, and adds prompt-cache hints
  (``models/caching.py``) for models that take them;
- ``after_model_call`` counts the call and calibrates the offline token counter from provider usage.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from ..compaction import Compaction, fold, foldable_steps, shrink_old_steps, summary_request
from ..events import ContextCompacted
from ..memory import ActionStep, SummaryStep
from ..messages import ChatMessage, Timing, TokenUsage
from ..models.caching import CacheHints
from ..models.tokens import counter_for

if TYPE_CHECKING:
    from .run import Run

__all__ = ["compacted_messages", "before_model_call", "after_model_call", "cache_hints"]


async def compacted_messages(agent: Any, run: Run) -> AsyncIterator[Any]:
    """Yields ContextCompacted events (and the summary call's stream events), then _Done(messages)."""
    from .loop import _Done  # the loop imports this module

    memory = run.memory
    messages = memory.messages_before()
    policy: Compaction | None = getattr(agent, "compaction", None)
    if policy is None or policy.max_context_tokens is None:
        yield _Done(messages)
        return
    counter = counter_for(agent.model)
    chars, images = counter.count_chars(messages)
    before = counter.tokens(chars, images, len(messages))
    if before <= policy.max_context_tokens:
        run.prompt_count = (messages, chars, images)  # before_model_call need not count again
        yield _Done(messages)
        return
    target = policy.target_tokens
    truncated, dropped = shrink_old_steps(memory, policy)
    messages = memory.messages_before()
    after = counter.count(messages)
    summary: SummaryStep | None = None
    if after > target and policy.summarize:
        steps = foldable_steps(memory, policy)
        if any(isinstance(s, ActionStep) for s in steps):  # an earlier summary alone is not re-summarized
            start = time.time()
            request = summary_request(run.task, steps, policy)
            reply: ChatMessage | None = None
            async for item in agent._amodel(run, request, _model=policy.summary_model):
                if type(item) is _Done:
                    reply = item.value
                else:
                    yield item
            assert reply is not None
            variables = await agent._variables_summary(run)
            summary = SummaryStep(
                summary=reply.text.strip(),
                variables=variables,
                timing=Timing(start_time=start, end_time=time.time()),
                token_usage=reply.token_usage,
            )
            fold(memory, steps, summary)
            await agent.step_callbacks.acall(summary, agent=agent)
            messages = memory.messages_before()
            after = counter.count(messages)
    span = summary.step_range if summary is not None else None
    yield run.event(
        ContextCompacted,
        tokens_before=before,
        tokens_after=after,
        max_context_tokens=policy.max_context_tokens,
        observations_truncated=truncated,
        images_dropped=dropped,
        folded_steps=[] if span is None else list(range(span[0], span[1] + 1)),
        summary=None if summary is None else summary.summary,
        usage=None if summary is None else summary.token_usage,
    )
    if summary is not None:
        yield summary
    yield _Done(messages)


def cache_hints(run: Run, messages: list[Any]) -> CacheHints:
    """A stable key for the agent configuration's prefix, and where the stable segments end."""
    key = run.cache_key
    if key is None:
        system = run.memory.system_prompt.system_prompt
        digest = hashlib.sha256(f"{type(run.agent).__name__}\0{system}".encode()).hexdigest()[:24]
        key = run.cache_key = f"codeloop-{digest}"
    last = len(messages) - 1
    points = [0] if messages and getattr(messages[0], "role", None) == "system" else []
    for step in reversed(run.memory.steps):
        if isinstance(step, SummaryStep):
            mark = step.cached_messages()[-1]
            for i in range(last, -1, -1):
                if messages[i] is mark:
                    points.append(i)
                    break
            break
    if last >= 0 and last not in points:
        points.append(last)
    return CacheHints(key=key, breakpoints=tuple(points))


def before_model_call(agent: Any, run: Run, model: Any, messages: list[Any], kwargs: dict[str, Any]) -> Any:
    """Raise UsageLimitExceeded when this call would cross a limit; add cache hints and an output cap
    to ``kwargs``. Returns what ``after_model_call`` needs."""
    if getattr(model, "accepts_cache_hints", False) and "cache_hints" not in kwargs:
        kwargs["cache_hints"] = cache_hints(run, messages)
    budget = run.budget
    counted = None
    if budget is not None or getattr(agent, "compaction", None) is not None:
        counter = counter_for(model)
        known = run.prompt_count
        if known is not None and known[0] is messages:
            chars, images = known[1], known[2]
        else:
            chars, images = counter.count_chars(messages)
        run.prompt_count = None
        counted = (counter, chars, images, len(messages))
        if budget is not None:
            limits = budget.limits
            tokens = counter.tokens(chars, images, len(messages))
            cost = _input_cost(model, tokens) if limits.max_cost_usd is not None else None
            budget.before_model_call(run.usage, tokens, cost)
            cap = budget.output_allowance(run.usage, tokens)
            if cap is not None:
                kwargs["max_tokens"] = min(cap, kwargs.get("max_tokens") or cap)
    return counted


_input_rates: dict[tuple[Any, ...], float | None] = {}


def _input_cost(model: Any, tokens: int) -> float | None:
    """Dollars for ``tokens`` input tokens of ``model``. The per-token rate is looked up once per model and
    size class (prices can be tiered by prompt length) rather than priced anew before every call."""
    model_id, prices = getattr(model, "model_id", None), getattr(model, "prices", None)
    key = (model_id, repr(prices), tokens.bit_length())
    if key not in _input_rates:
        from ..models.cost import cost_of

        sample = max(tokens, 1)
        cost = cost_of(TokenUsage(input_tokens=sample), model_id, prices)
        _input_rates[key] = None if cost is None else cost / sample
    rate = _input_rates[key]
    return None if rate is None else rate * tokens


def after_model_call(run: Run, counted: Any, message: ChatMessage) -> None:
    if run.budget is not None:
        run.budget.model_called()
    usage = message.token_usage
    if counted is not None and usage is not None and usage.input_tokens:
        counter, chars, images, count = counted
        counter.observe(chars, images, count, usage.input_tokens)
