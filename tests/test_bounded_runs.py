"""Bounded runs: context compaction under a token budget, usage limits, cost, prompt caching."""

from __future__ import annotations

import json
import warnings

import pytest

from codeloop import (
    CodeAgent,
    Compaction,
    ScriptedModel,
    SummaryStep,
    ToolCallingAgent,
    UsageLimitExceeded,
    UsageLimits,
    register_price,
)
from codeloop.agents import LogLevel
from codeloop.compaction import truncate_middle
from codeloop.events import ContextCompacted, RunFailed, event_from_dict
from codeloop.memory import ActionStep, AgentMemory, memory_step_from_dict
from codeloop.messages import ChatMessage, TokenUsage
from codeloop.models import Model, OpenAIModel
from codeloop.models.tokens import TokenCounter
from codeloop.testing import OpenAICompatibleServer, Reply
from codeloop.tools import tool
from codeloop.usage_limits import RunBudget

SUMMARY_MARK = "You compress the history"


@tool
def fetch(n: int) -> str:
    """Fetch a long page.

    Args:
        n: which page
    """
    return f"page {n}: " + "lorem ipsum " * 300


def squares_script(steps: int, big: int = 3000):
    """A model that stores i*i in p{i} for ``steps`` steps (printing a lot), then answers their sum. It
    answers summary requests with a fixed summary and counts them."""
    state = {"actions": 0, "summaries": 0}

    def reply(messages):
        if messages and SUMMARY_MARK in messages[0].text:
            state["summaries"] += 1
            return "I stored i*i in variables p0, p1, ... and printed long pages. Next: add them up."
        n = state["actions"]
        state["actions"] += 1
        if n < steps:
            return f"Storing square {n}.\n<code>\np{n} = {n} * {n}\nprint('x' * {big})\n</code>"
        total = "+".join(f"p{i}" for i in range(steps))
        return f"Adding up.\n<code>\nfinal_answer({total})\n</code>"

    return reply, state


def agent_for(model, **kwargs):
    kwargs.setdefault("executor_type", "inprocess")
    kwargs.setdefault("max_steps", 40)
    return CodeAgent(tools=[], model=model, verbosity_level=LogLevel.OFF, **kwargs)


# ---- compaction ---------------------------------------------------------------------------------------


def test_compaction_keeps_the_answer_right_and_the_prompt_under_budget():
    reply, state = squares_script(14)
    model = ScriptedModel(reply)
    budget = 7000
    agent = agent_for(model, max_context_tokens=budget, compaction=Compaction(keep_last_steps=2))
    events = list(agent.stream("Add the squares of 0..13."))
    assert events[-1].type == "run_finished" and events[-1].output == sum(i * i for i in range(14))
    compacted = [e for e in events if isinstance(e, ContextCompacted)]
    assert compacted and state["summaries"] >= 1
    assert all(e.tokens_before > budget >= e.tokens_after for e in compacted)
    assert compacted[0].folded_steps[0] == 1 and compacted[0].summary.startswith("I stored")
    counter = TokenCounter()
    action_calls = [c for c in model.calls if SUMMARY_MARK not in c[0].text]
    system, task = action_calls[0][0], action_calls[0][1]
    for call in action_calls:
        # the system prompt and the task stay verbatim; every request fits the budget
        assert call[0].text == system.text and call[1].text == task.text
        assert counter.count(call) <= budget * 1.05
    memory = agent.memory
    summaries = [s for s in memory.steps if isinstance(s, SummaryStep)]
    assert len(summaries) == 1  # a later compaction folds the earlier summary in
    summary = summaries[0]
    # the folded steps are kept, in order, and their code is still part of the run
    numbers = [s.step_number for s in summary.folded_steps]
    assert numbers == list(range(1, len(numbers) + 1))
    assert "p0 = 0 * 0" in memory.return_full_code()
    # the CodeAgent's summary lists the executor's variables with their types
    text = summary.to_messages()[0].text
    assert "Variables still defined in the Python session:" in text and "p0: int" in text
    # the last steps stay verbatim
    last = [s for s in memory.steps if isinstance(s, ActionStep)][-2:]
    assert all("x" * 3000 in (s.observations or "") for s in last[:1])
    # a step folded away still shows what it was sent (model_input_messages is rebuilt lazily)
    first = summary.folded_steps[0]
    assert [m.text for m in first.model_input_messages] == [m.text for m in action_calls[0]]
    kept = [s for s in memory.steps if isinstance(s, ActionStep)][-1]
    assert [m.text for m in kept.model_input_messages] == [m.text for m in action_calls[-1]]
    # the summary round-trips through JSON (the run store keeps it)
    again = memory_step_from_dict(json.loads(json.dumps(summary.dict())))
    assert isinstance(again, SummaryStep) and again.summary == summary.summary
    assert [s.step_number for s in again.folded_steps] == numbers
    assert AgentMemory.from_dict(memory.to_dict()).steps[1].summary == summary.summary
    event = event_from_dict(json.loads(json.dumps(compacted[0].to_dict())))
    assert isinstance(event, ContextCompacted) and event.folded_steps == compacted[0].folded_steps
    # the summary calls' usage is part of the run's
    assert all(e.usage is not None for e in compacted if e.summary)
    assert events[-1].usage.input_tokens >= sum(e.usage.input_tokens for e in compacted if e.usage)


def test_compaction_cuts_fewer_input_tokens_than_without():
    totals = {}
    for budget in (None, 8000):
        reply, _ = squares_script(24)
        model = ScriptedModel(reply)
        agent = agent_for(model, max_context_tokens=budget)
        result = agent.run("Add the squares of 0..23.", return_full_result=True)
        assert result.output == sum(i * i for i in range(24))
        totals[budget] = result.token_usage.input_tokens  # summary calls included
    assert totals[8000] < 0.7 * totals[None]


def test_long_observations_keep_head_and_tail_and_old_images_are_dropped():
    text = "HEAD" + "m" * 5000 + "TAIL"
    cut = truncate_middle(text, 600)
    assert cut.startswith("HEAD") and cut.endswith("TAIL") and len(cut) < 700
    assert "[... 4408 characters cut here to save context ...]" in cut

    calls = {"n": 0}

    def reply(messages):
        calls["n"] += 1
        if calls["n"] <= 4:
            return f"<code>\nprint('HEAD{calls['n']}' + 'y' * 6000 + 'TAIL')\n</code>"
        return "<code>\nfinal_answer('done')\n</code>"

    model = ScriptedModel(reply)
    image_step_seen = []

    def add_image(step, agent):
        if step.step_number == 1:
            step.observations_images = ["data:image/png;base64,iVBORw0KGgo="]
            image_step_seen.append(step)

    agent = agent_for(
        model,
        step_callbacks=[add_image],
        compaction=Compaction(max_context_tokens=5200, keep_last_steps=1, max_observation_chars=800),
    )
    events = list(agent.stream("print things"))
    assert events[-1].output == "done"
    compacted = [e for e in events if isinstance(e, ContextCompacted)]
    assert compacted and compacted[0].observations_truncated >= 1 and compacted[0].images_dropped == 1
    assert compacted[0].summary is None  # truncation alone was enough: no model call for a summary
    step1 = image_step_seen[0]
    assert step1.observations_images is None and "image(s) of this step dropped" in step1.observations
    assert "characters cut here to save context" in step1.observations and "HEAD1" in step1.observations
    last = model.calls[-1]
    assert "y" * 6000 in last[-1].text  # the newest step is verbatim


def test_compaction_arguments_are_checked():
    with pytest.raises(ValueError, match="needs a budget"):
        agent_for(ScriptedModel(["x"]), compaction=Compaction())
    with pytest.raises(TypeError, match="codeloop.Compaction"):
        agent_for(ScriptedModel(["x"]), compaction={"max_context_tokens": 5})
    with pytest.raises(ValueError, match="target_ratio"):
        Compaction(max_context_tokens=10, target_ratio=0)
    agent = agent_for(ScriptedModel(["x"]), max_context_tokens=1000, compaction=Compaction(keep_last_steps=5))
    assert agent.compaction.max_context_tokens == 1000 and agent.compaction.keep_last_steps == 5


def test_worker_executor_variables_reach_the_summary():
    reply, state = squares_script(6, big=4000)
    agent = CodeAgent(
        tools=[],
        model=ScriptedModel(reply),
        verbosity_level=LogLevel.OFF,
        max_context_tokens=4500,
        compaction=Compaction(keep_last_steps=1),
    )
    result = agent.run("Add the squares of 0..5.", return_full_result=True)
    assert result.output == 55 and state["summaries"] >= 1
    summary = next(s for s in agent.memory.steps if isinstance(s, SummaryStep))
    assert "p1: int" in (summary.variables or "")


# ---- usage limits -------------------------------------------------------------------------------------


class CharModel(Model):
    """Reports one input token per character and 10 output tokens per call; counted exactly offline."""

    def __init__(self, replies):
        super().__init__(model_id="char-model", prices={"input": 1.0, "output": 2.0})
        self.replies = list(replies)
        self.calls = []
        self.kwargs_seen = []
        self.token_counter = TokenCounter(chars_per_token=1.0)

    async def agenerate(
        self, messages, stop_sequences=None, response_format=None, tools_to_call_from=None, **kw
    ):
        self.calls.append(messages)
        self.kwargs_seen.append(kw)
        chars = sum(len(m.text) for m in messages)
        usage = self._finish_usage(TokenUsage(input_tokens=chars, output_tokens=10))
        return ChatMessage("assistant", self.replies[len(self.calls) - 1], token_usage=usage)


LOOP = ["<code>\nprint(1)\n</code>"] * 6 + ["<code>\nfinal_answer(7)\n</code>"]


def test_max_model_calls_stops_before_the_call_and_keeps_the_partial_result():
    model = CharModel(LOOP)
    agent = agent_for(model, usage_limits=UsageLimits(max_model_calls=3))
    with pytest.raises(UsageLimitExceeded, match="max_model_calls=3") as caught:
        agent.run("loop")
    error = caught.value
    assert error.limit == "max_model_calls" and len(model.calls) == 3
    result = error.result
    assert result.state == "usage_limit_exceeded"
    assert len([s for s in result.steps if "step_number" in s]) == 3
    assert result.token_usage.output_tokens == 30 and result.cost == pytest.approx(result.token_usage.cost)
    # a follow-up run over the same memory with a higher limit finishes the task
    answer = agent.run("go on", reset=False, usage_limits=UsageLimits(max_model_calls=10))
    assert answer == 7


@pytest.mark.parametrize("slack", [0, -1])
def test_max_input_tokens_stops_exactly_at_the_boundary(slack):
    free = CharModel(LOOP)
    agent_for(free).run("loop")
    per_call = [sum(len(m.text) for m in call) for call in free.calls]
    limit = sum(per_call[:3]) + slack
    model = CharModel(LOOP)
    agent = agent_for(model, usage_limits=UsageLimits(max_input_tokens=limit))
    with pytest.raises(UsageLimitExceeded) as caught:
        agent.run("loop")
    assert caught.value.limit == "max_input_tokens"
    assert len(model.calls) == (3 if slack == 0 else 2)
    assert caught.value.result.token_usage.input_tokens <= limit


def test_output_limits_cap_the_next_call_and_then_stop():
    model = CharModel(LOOP)
    agent = agent_for(model, usage_limits=UsageLimits(max_output_tokens=25))
    with pytest.raises(UsageLimitExceeded, match="max_output_tokens"):
        agent.run("loop")
    assert len(model.calls) == 3
    assert [kw.get("max_tokens") for kw in model.kwargs_seen] == [25, 15, 5]


def test_cost_limit_uses_the_price_of_the_next_requests_input():
    model = CharModel(LOOP)
    # $1 per million input characters here: allow about two calls
    free = CharModel(LOOP)
    agent_for(free).run("loop")
    first_two = sum(sum(len(m.text) for m in call) for call in free.calls[:2])
    limit = (first_two * 1.0 + 20 * 2.0) / 1e6 + 1e-9
    agent = agent_for(model, usage_limits=UsageLimits(max_cost_usd=limit))
    with pytest.raises(UsageLimitExceeded, match="max_cost_usd") as caught:
        agent.run("loop")
    assert len(model.calls) == 2 and caught.value.result.cost <= limit


def test_max_tool_calls_refuses_the_call_inside_code_and_records_the_step():
    model = ScriptedModel(
        [
            "<code>\nfetch(1)\nfetch(2)\n</code>",
            "<code>\nfetch(3)\n</code>",
            "<code>\nfinal_answer(1)\n</code>",
        ]
    )
    agent = CodeAgent(
        tools=[fetch],
        model=model,
        executor_type="inprocess",
        verbosity_level=LogLevel.OFF,
        usage_limits=UsageLimits(max_tool_calls=2),
    )
    events = []
    with pytest.raises(UsageLimitExceeded, match="max_tool_calls") as caught:
        for event in agent.stream("fetch"):
            events.append(event)
    assert isinstance(events[-1], RunFailed) and events[-1].error_type == "UsageLimitExceeded"
    started = [e for e in events if e.type == "tool_call_started"]
    assert len(started) == 2 and len(model.calls) == 2
    assert caught.value.result.state == "usage_limit_exceeded"
    assert len(caught.value.result.steps) == 3  # task + two action steps, the refused one recorded


def test_tool_calling_agent_limits_tool_calls():
    model = ScriptedModel(
        [
            {"content": "", "tool_calls": [{"name": "fetch", "arguments": {"n": 1}, "id": "a"}]},
            {"content": "", "tool_calls": [{"name": "fetch", "arguments": {"n": 2}, "id": "b"}]},
        ]
    )
    agent = ToolCallingAgent(
        tools=[fetch], model=model, verbosity_level=LogLevel.OFF, usage_limits=UsageLimits(max_tool_calls=1)
    )
    with pytest.raises(UsageLimitExceeded, match="max_tool_calls"):
        agent.run("fetch")


async def test_max_seconds_bounds_a_slow_model_call():
    model = ScriptedModel(["<code>\nfinal_answer(1)\n</code>"], latency=5)
    agent = agent_for(model)
    with pytest.raises(UsageLimitExceeded, match="max_seconds"):
        await agent.arun("slow", usage_limits=UsageLimits(max_seconds=0.2))


def test_budget_serializes_and_resumes_with_higher_limits():
    budget = RunBudget(UsageLimits(max_model_calls=2))
    budget.model_called()
    budget.model_called()
    with pytest.raises(UsageLimitExceeded):
        budget.before_model_call(TokenUsage(), 10, None)
    data = json.loads(json.dumps(budget.to_dict()))
    resumed = RunBudget.from_dict(data, UsageLimits(max_model_calls=3))
    resumed.before_model_call(TokenUsage(), 10, None)  # one more is allowed now
    resumed.model_called()
    with pytest.raises(UsageLimitExceeded):
        resumed.before_model_call(TokenUsage(), 10, None)
    assert RunBudget.from_dict(data).limits == UsageLimits(max_model_calls=2)
    with pytest.raises(ValueError, match="max_tool_calls"):
        UsageLimits(max_tool_calls=-1)


# ---- cost ----------------------------------------------------------------------------------------------


def test_cost_plain_cached_and_reasoning_over_http():
    usage = {
        "prompt_tokens": 1000,
        "completion_tokens": 500,
        "cached_tokens": 400,
        "completion_tokens_details": {"reasoning_tokens": 300},
    }
    with OpenAICompatibleServer([Reply(content="a", usage=usage)] * 3) as server:
        o3 = OpenAIModel("o3", api_base=server.base_url, api_key="k")
        message = o3.generate([{"role": "user", "content": "hi"}])
        u = message.token_usage
        assert (u.input_tokens, u.cached_input_tokens, u.output_tokens, u.reasoning_tokens) == (
            1000,
            400,
            500,
            300,
        )
        # o3 in genai-prices: $2 input, $0.50 cached input, $8 output (reasoning billed as output)
        assert u.cost == pytest.approx((600 * 2.0 + 400 * 0.5 + 500 * 8.0) / 1e6)
        register_price("house-model", input=1.0, output=4.0, cached_input=0.1, reasoning=10.0)
        mine = OpenAIModel("house-model", api_base=server.base_url, api_key="k")
        u = mine.generate([{"role": "user", "content": "hi"}]).token_usage
        assert u.cost == pytest.approx((600 * 1.0 + 400 * 0.1 + 200 * 4.0 + 300 * 10.0) / 1e6)
        unknown = OpenAIModel("nobody-knows-this-model", api_base=server.base_url, api_key="k")
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            assert unknown.generate([{"role": "user", "content": "hi"}]).token_usage.cost is None
        assert (
            sum("No price known for model 'nobody-knows-this-model'" in str(w.message) for w in caught) == 1
        )


def test_run_result_and_events_carry_the_cost():
    model = ScriptedModel(
        ["<code>\nprint(1)\n</code>", "<code>\nfinal_answer(2)\n</code>"],
        model_id="gpt-4o-mini",
        token_usage=TokenUsage(input_tokens=1_000_000, output_tokens=100_000, cached_input_tokens=500_000),
    )
    agent = agent_for(model)
    events = list(agent.stream("x"))
    one = 0.5 * 0.15 + 0.5 * 0.075 + 0.1 * 0.60
    outputs = [e for e in events if e.type == "model_output"]
    assert [e.usage.cost for e in outputs] == [pytest.approx(one)] * 2
    assert events[-1].usage.cost == pytest.approx(2 * one)
    model2 = ScriptedModel(
        ["<code>\nfinal_answer(2)\n</code>"], model_id="gpt-4o-mini", token_usage=TokenUsage(1_000_000, 0)
    )
    result = agent_for(model2).run("x", return_full_result=True)
    assert result.cost == pytest.approx(0.15) and result.dict()["cost"] == pytest.approx(0.15)


# ---- prompt caching and message building ---------------------------------------------------------------


def test_request_prefix_is_byte_identical_between_steps_and_cache_hits():
    replies = [f"Step {i}.\n<code>\nprint('{i}' * 200)\n</code>" for i in range(6)]
    replies.append("<code>\nfinal_answer('ok')\n</code>")
    with OpenAICompatibleServer(
        replies, prompt_cache=True, cache_min_tokens=256, cache_block_tokens=64
    ) as server:
        model = OpenAIModel(
            "gpt-4o-mini", api_base=server.base_url, api_key="k", profile={"supports_prompt_cache_key": True}
        )
        agent = agent_for(model)
        result = agent.run("print things", return_full_result=True)
        requests = server.chat_requests
    assert result.output == "ok"
    bodies = [r["json"] for r in requests]
    keys = {b.get("prompt_cache_key") for b in bodies}
    assert len(keys) == 1 and next(iter(keys)).startswith("codeloop-")
    for before, after in zip(bodies, bodies[1:], strict=False):
        n = len(before["messages"])
        assert json.dumps(after["messages"][:n]) == json.dumps(before["messages"])
        raw_before = requests[bodies.index(before)]["body"]
        # the serialized messages of one request are a byte prefix of the next one's
        first = raw_before[raw_before.index(b'"messages"') :].rsplit(b"}]", 1)[0]
        assert first in requests[bodies.index(after)]["body"]
    assert result.token_usage.cached_input_tokens > 0.5 * result.token_usage.input_tokens


def test_prompt_cache_key_only_goes_to_openai_unless_the_profile_says_so():
    from codeloop.models.caching import CacheHints

    hints = CacheHints(key="codeloop-abc", breakpoints=(0, 3))
    local = OpenAIModel("gpt-4o", api_base="http://127.0.0.1:9/v1", api_key="k")
    request, _ = local.prepare_request([{"role": "user", "content": "x"}], cache_hints=hints)
    assert "prompt_cache_key" not in request and "cache_hints" not in request
    official = OpenAIModel("gpt-4o", api_key="k")
    request, _ = official.prepare_request([{"role": "user", "content": "x"}], cache_hints=hints)
    assert request["extra_body"] == {"prompt_cache_key": "codeloop-abc"}
    mine = OpenAIModel("gpt-4o", api_key="k", extra_body={"user": "u"})
    request, _ = mine.prepare_request([{"role": "user", "content": "x"}], cache_hints=hints)
    assert request["extra_body"] == {"user": "u", "prompt_cache_key": "codeloop-abc"}
    assert mine.kwargs["extra_body"] == {"user": "u"}  # the model's own settings are not changed


def test_cache_hints_mark_the_system_prompt_the_summary_and_the_newest_message():
    reply, _ = squares_script(8)
    model = ScriptedModel(reply)
    agent = agent_for(model, max_context_tokens=5000, compaction=Compaction(keep_last_steps=1))
    assert agent.run("Add the squares of 0..7.") == 140
    hints = [kw["cache_hints"] for kw, call in zip(model.call_kwargs, model.calls, strict=True)]
    assert len({h.key for h in hints}) == 1
    last_call = model.calls[-1]
    points = hints[-1].breakpoints
    assert points[0] == 0 and points[-1] == len(last_call) - 1
    assert len(points) == 3 and last_call[points[1]].text.startswith("Summary of my work")


def test_message_building_converts_each_step_once():
    calls = {"n": 0}
    original = ActionStep.to_messages

    def counting(self, summary_mode=False):
        calls["n"] += 1
        return original(self, summary_mode)

    replies = [f"<code>\nprint({i})\n</code>" for i in range(15)] + ["<code>\nfinal_answer(1)\n</code>"]
    ActionStep.to_messages = counting
    try:
        agent_for(ScriptedModel(replies)).run("x")
    finally:
        ActionStep.to_messages = original
    assert calls["n"] <= 16  # once per step, not once per step per later step (that would be ~120)

    from codeloop.models import convert

    converted = {"n": 0}
    real = convert._convert_content

    def counting_convert(content, flatten):
        converted["n"] += 1
        return real(content, flatten)

    convert._convert_content = counting_convert
    try:
        messages = [ChatMessage("system", [{"type": "text", "text": "s"}])]
        for i in range(30):
            messages.append(ChatMessage("assistant" if i % 2 else "user", [{"type": "text", "text": str(i)}]))
            convert.to_chat_messages(messages)
    finally:
        convert._convert_content = real
    assert converted["n"] == 31  # each message converted once, however often it is sent


def test_token_counter_calibrates_from_provider_usage():
    counter = TokenCounter()
    messages = [ChatMessage("user", [{"type": "text", "text": "word " * 400}])]
    assert counter.count(messages) == 500
    counter.observe(2000, 0, 1, 400)  # the provider counted 5 characters a token
    assert counter.count(messages) == 400
    counter.observe(2000, 0, 1, 100_000)  # nonsense is ignored
    assert counter.count(messages) == 400


def test_the_answer_asked_for_at_max_steps_respects_the_limits_too():
    model = CharModel(LOOP)
    agent = agent_for(model, max_steps=2, usage_limits=UsageLimits(max_model_calls=2))
    with pytest.raises(UsageLimitExceeded, match="max_model_calls"):
        agent.run("loop")
    assert len(model.calls) == 2


def test_tool_calling_agent_compacts_its_memory_too():
    calls = {"n": 0}

    def reply(messages):
        if messages and SUMMARY_MARK in messages[0].text:
            return "I fetched pages 0 to some n; all say lorem ipsum."
        calls["n"] += 1
        if calls["n"] <= 8:
            return {
                "content": "",
                "tool_calls": [{"name": "fetch", "arguments": {"n": calls["n"]}, "id": f"c{calls['n']}"}],
            }
        return {
            "content": "",
            "tool_calls": [{"name": "final_answer", "arguments": {"answer": "lorem"}, "id": "f"}],
        }

    agent = ToolCallingAgent(
        tools=[fetch], model=ScriptedModel(reply), verbosity_level=LogLevel.OFF, max_context_tokens=4000
    )
    events = list(agent.stream("fetch pages"))
    assert events[-1].output == "lorem"
    assert any(isinstance(e, ContextCompacted) and e.summary for e in events)
    assert any(isinstance(s, SummaryStep) and s.variables is None for s in agent.memory.steps)


# ---- CLI -------------------------------------------------------------------------------------------------


def test_cli_summary_line_compaction_line_and_budget_options(monkeypatch, capsys):
    import io

    from rich.console import Console

    from codeloop.cli import EXIT_FAILED, LiveView, main
    from codeloop.events import RunFinished, StepFinished

    buffer = io.StringIO()
    view = LiveView(Console(file=buffer, width=140, color_system=None), verbose=False)
    usage = TokenUsage(
        input_tokens=1000, output_tokens=50, cached_input_tokens=800, cost=0.0012, reasoning_tokens=20
    )
    view(StepFinished(step_number=1, duration=0.5, usage=usage))
    view(
        ContextCompacted(
            tokens_before=9000, tokens_after=4000, max_context_tokens=8000, folded_steps=[1, 2, 3]
        )
    )
    view(RunFinished(output=1, steps=1, duration=0.5, usage=TokenUsage(10, 5)))
    text = buffer.getvalue()
    assert "tokens: 1,000 in (80% cached) / 50 out (20 reasoning) · $0.0012" in text
    assert "context compacted: ~9,000 -> ~4,000 tokens (budget 8,000), steps 1-3 summarized" in text
    assert "tokens: 10 in / 5 out · cost unknown" in text

    for name in ("OPENAI_API_KEY", "CODELOOP_MODEL", "CODELOOP_API_BASE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CODELOOP_LOCAL_SERVERS", "none")
    register_price("cli-priced-model", input=1000.0, output=1000.0)
    loop_reply = "<code>\nprint('again')\n</code>"
    with OpenAICompatibleServer([loop_reply] * 5) as server:
        argv = ["run", "loop", "--api-base", server.base_url, "--model-id", "cli-priced-model"]
        code = main([*argv, "--executor", "inprocess", "--max-cost", "0.5", "--max-context-tokens", "50000"])
        sent = len(server.chat_requests)
    err = capsys.readouterr().err
    assert code == EXIT_FAILED
    assert "UsageLimitExceeded" in err and "max_cost_usd=0.5" in err
    assert sent == 1  # the first call cost ~$0.5 already: the second is not made


def test_missing_price_database_gives_one_clear_warning(monkeypatch):
    import sys

    from codeloop.models import cost

    monkeypatch.setattr(cost, "_database", None)
    monkeypatch.setitem(sys.modules, "genai_prices", None)  # import fails
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert cost.cost_of(TokenUsage(10, 10), "gpt-4o") is None
        assert cost.cost_of(TokenUsage(10, 10), "gpt-4o-mini") is None
    assert len(caught) == 1 and "pip install genai-prices" in str(caught[0].message)
    assert cost.cost_of(TokenUsage(10, 10), "gpt-4o", {"input": 1.0, "output": 1.0}) == pytest.approx(2e-5)
