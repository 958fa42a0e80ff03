"""ScriptedModel: replies from a list or a function, recording, tool calls, streaming, exhaustion."""

from __future__ import annotations

import asyncio

import pytest

from codeloop.errors import ModelRequestError
from codeloop.messages import (
    ChatMessage,
    ChatMessageToolCall,
    ChatMessageToolCallFunction,
    agglomerate_stream_deltas,
)
from codeloop.models import ScriptedModel
from codeloop.testing import ScriptedModel as ReExported
from codeloop.testing import ScriptExhaustedError

USER = [{"role": "user", "content": "hello there"}]


async def test_replies_in_order_and_calls_recorded():
    model = ScriptedModel(["one", "two"])
    first = await model.agenerate(USER, stop_sequences=["<end>"])
    second = await model.agenerate([ChatMessage(role="user", content="x")], temperature=0.1)
    assert (first.content, second.content) == ("one", "two")
    assert len(model.calls) == 2 and model.calls[0][0] is USER[0]  # recorded, not copied deeply
    assert model.call_kwargs[0]["stop_sequences"] == ["<end>"]
    assert model.call_kwargs[1]["temperature"] == 0.1
    assert first.token_usage.input_tokens >= 1 and first.token_usage.output_tokens >= 1
    assert model.remaining == 0
    assert ReExported is ScriptedModel


async def test_runs_out_with_clear_error():
    model = ScriptedModel(["only"])
    await model.agenerate(USER)
    with pytest.raises(ScriptExhaustedError, match="ran out of replies") as info:
        await model.agenerate(USER)
    assert isinstance(info.value, ModelRequestError)


async def test_function_script_sync_and_async():
    model = ScriptedModel(lambda messages: f"n={len(messages)}")
    assert (await model.agenerate(USER * 3)).content == "n=3"

    async def afn(messages):
        await asyncio.sleep(0)
        return {"content": "async " + messages[-1]["content"]}

    assert (await ScriptedModel(afn).agenerate(USER)).content == "async hello there"


async def test_tool_call_replies():
    scripted = ChatMessage(
        role="assistant",
        tool_calls=[ChatMessageToolCall(ChatMessageToolCallFunction("search", {"q": "x"}), id="c9")],
    )
    model = ScriptedModel([scripted, {"tool_calls": [{"name": "add", "arguments": {"a": 1, "b": 2}}]}])
    first = await model.agenerate(USER)
    assert first.tool_calls[0].id == "c9" and first is not scripted and scripted.token_usage is None
    second = await model.agenerate(USER)
    assert second.tool_calls[0].function.name == "add"
    assert second.tool_calls[0].function.arguments == {"a": 1, "b": 2}


async def test_astream_chunks_text_and_tool_calls():
    model = ScriptedModel(
        [
            "streamed reply text",
            {"content": "calling", "tool_calls": [{"name": "f", "arguments": {"long": "x" * 40}}]},
        ],
        stream_chunk_size=4,
    )
    deltas = [d async for d in model.astream(USER)]
    texts = [d.content for d in deltas if d.content]
    assert texts[0] == "stre" and "".join(texts) == "streamed reply text"
    assert deltas[-1].token_usage is not None
    deltas = [d async for d in model.astream(USER)]
    assert sum(1 for d in deltas if d.tool_calls) > 2  # arguments streamed in pieces
    message = model.parse_tool_calls(agglomerate_stream_deltas(deltas))
    assert message.content == "calling"
    assert message.tool_calls[0].function.arguments == {"long": "x" * 40}


async def test_word_streaming_by_default():
    model = ScriptedModel(["a few words here"])
    assert [d.content for d in [d async for d in model.astream(USER)] if d.content] == [
        "a ",
        "few ",
        "words ",
        "here",
    ]


async def test_stop_sequences_optional_and_latency():
    plain = ScriptedModel(["code<end_code>junk"])
    assert (await plain.agenerate(USER, stop_sequences=["<end_code>"])).content == "code<end_code>junk"
    cut = ScriptedModel(["code<end_code>junk"], apply_stop_sequences=True)
    assert (await cut.agenerate(USER, stop_sequences=["<end_code>"])).content == "code"
    slow = ScriptedModel(["x"], latency=0.05)
    loop = asyncio.get_running_loop()
    start = loop.time()
    await slow.agenerate(USER)
    assert loop.time() - start >= 0.04


async def test_sync_generate_inside_running_loop_and_fixed_usage():
    from codeloop.messages import TokenUsage

    model = ScriptedModel(["sync"], model_id="gpt-4o", token_usage=TokenUsage(1_000_000, 0))
    message = model.generate(USER)
    assert message.content == "sync"
    assert message.token_usage.cost == pytest.approx(2.5)  # gpt-4o input price, USD per million


async def test_input_token_estimate_matches_a_full_count_as_conversations_grow():
    def reference(messages):
        chars = 0
        for m in messages:
            content = m["content"] if isinstance(m, dict) else m.content
            chars += len(content) if isinstance(content, str) else sum(len(p["text"]) for p in content)
        return chars // 4 + 1

    system = ChatMessage(role="system", content=[{"type": "text", "text": "s" * 400}])
    model = ScriptedModel(lambda messages: "ok")
    runs = [[system, {"role": "user", "content": f"task {i} " * (i + 1)}] for i in range(3)]
    for step in range(4):
        for i, conversation in enumerate(runs):  # interleaved, like concurrent runs sharing one model
            conversation.append(ChatMessage(role="assistant", content="a" * (10 * step + i)))
            conversation.append({"role": "user", "content": [{"type": "text", "text": "o" * (7 * step)}]})
            usage = (await model.agenerate(conversation)).token_usage
            assert usage.input_tokens == reference(conversation)
    edited = runs[0]
    edited[-1]["content"] = "replaced " * 50  # the last message's content replaced: measured again
    assert (await model.agenerate(edited)).token_usage.input_tokens == reference(edited)
    shorter = [edited[0], edited[1], edited[-1]]  # same objects, other neighbours
    assert (await model.agenerate(shorter)).token_usage.input_tokens == reference(shorter)
    assert (await model.agenerate([])).token_usage.input_tokens == 1
