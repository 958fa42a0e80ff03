"""Data layer: messages, usage, timing, errors and events round-trip through JSON and keep smolagents' meanings."""

from __future__ import annotations

import json

import pytest

from codeloop import errors
from codeloop.events import (
    EVENT_TYPES,
    ModelDelta,
    ModelOutput,
    RunFinished,
    ToolCallFinished,
    event_from_dict,
)
from codeloop.messages import (
    ChatMessage,
    ChatMessageStreamDelta,
    ChatMessageToolCall,
    ChatMessageToolCallFunction,
    ChatMessageToolCallStreamDelta,
    MessageRole,
    Timing,
    TokenUsage,
    agglomerate_stream_deltas,
    image_to_data_url,
)


def roundtrip(obj):
    return type(obj).from_dict(json.loads(json.dumps(obj.to_dict())))


def test_roles_match_smolagents_values():
    assert MessageRole.roles() == ["user", "assistant", "system", "tool-call", "tool-response"]
    assert ChatMessage("tool-response", "x").role is MessageRole.TOOL_RESPONSE


def test_unknown_role_is_a_clear_error():
    with pytest.raises(ValueError, match="Unknown message role 'robot'"):
        ChatMessage("robot", "x")


def test_token_usage_totals_sums_and_roundtrip():
    a = TokenUsage(10, 5, cost=0.25)
    b = TokenUsage(1, 2)
    total = a + b
    assert (total.input_tokens, total.output_tokens, total.total_tokens) == (11, 7, 18)
    assert total.cost == 0.25
    assert sum([a, b], TokenUsage()).total_tokens == 18
    assert (TokenUsage(1, 1) + None).total_tokens == 2
    assert roundtrip(a) == a
    assert a.dict()["total_tokens"] == 15


def test_timing_duration_and_roundtrip():
    t = Timing(start_time=100.0)
    assert t.duration is None
    t.end_time = 102.5
    assert t.duration == 2.5
    assert roundtrip(t) == t


def test_chat_message_with_tool_calls_roundtrip():
    msg = ChatMessage(
        MessageRole.ASSISTANT,
        content=[{"type": "text", "text": "Let me look."}],
        tool_calls=[ChatMessageToolCall(ChatMessageToolCallFunction("search", {"q": "x"}), id="c1")],
        token_usage=TokenUsage(3, 4),
        raw=object(),
    )
    back = roundtrip(msg)
    assert back.role is MessageRole.ASSISTANT
    assert back.tool_calls == msg.tool_calls
    assert back.token_usage == msg.token_usage
    assert back.raw is None  # provider objects are never persisted
    assert back.text == "Let me look."
    assert json.loads(msg.model_dump_json())["role"] == "assistant"


def test_images_in_content_become_data_urls():
    msg = ChatMessage("user", [{"type": "image", "image": b"\x89PNG"}, {"type": "text", "text": "what?"}])
    data = json.loads(json.dumps(msg.to_dict()))
    assert data["content"][0]["image"].startswith("data:image/png;base64,")
    assert image_to_data_url("https://x/y.png") == "https://x/y.png"
    with pytest.raises(TypeError, match="Cannot encode int"):
        image_to_data_url(3)


def test_stream_deltas_agglomerate_text_tool_pieces_and_usage():
    deltas = [
        ChatMessageStreamDelta(content="Hel"),
        ChatMessageStreamDelta(content="lo"),
        ChatMessageStreamDelta(
            tool_calls=[
                ChatMessageToolCallStreamDelta(
                    index=0, id="c1", type="function", function=ChatMessageToolCallFunction("get", '{"a"')
                )
            ]
        ),
        ChatMessageStreamDelta(
            tool_calls=[ChatMessageToolCallStreamDelta(index=0, function=ChatMessageToolCallFunction("", ": 1}"))]
        ),
        ChatMessageStreamDelta(token_usage=TokenUsage(7, 2)),
    ]
    msg = agglomerate_stream_deltas(deltas)
    assert msg.content == "Hello"
    assert msg.tool_calls[0].id == "c1"
    assert msg.tool_calls[0].function.name == "get"
    assert json.loads(msg.tool_calls[0].function.arguments) == {"a": 1}
    assert msg.token_usage == TokenUsage(7, 2)
    assert roundtrip(deltas[2]) == deltas[2]


def test_errors_hierarchy_and_dict_roundtrip():
    assert issubclass(errors.AgentToolCallError, errors.AgentExecutionError)
    assert issubclass(errors.AgentToolExecutionError, errors.AgentExecutionError)
    assert issubclass(errors.InterpreterError, ValueError)
    e = errors.AgentParsingError("no code block")
    back = errors.error_from_dict(json.loads(json.dumps(e.dict())))
    assert type(back) is errors.AgentParsingError and str(back) == "no code block"


def test_every_event_type_roundtrips_through_json():
    assert len(EVENT_TYPES) >= 12
    for cls in EVENT_TYPES.values():
        ev = cls(run_id="r1", step_number=2)
        back = event_from_dict(json.loads(json.dumps(ev.to_dict())))
        assert back == ev, cls
    rich = [
        ModelDelta(run_id="r", delta=ChatMessageStreamDelta(content="x", token_usage=TokenUsage(1, 1))),
        ModelOutput(run_id="r", message=ChatMessage("assistant", "hi"), usage=TokenUsage(1, 2), duration=0.5),
        ToolCallFinished(run_id="r", call_id="c", tool_name="t", result={"a": [1, 2]}, duration=0.1),
        RunFinished(run_id="r", output="42", steps=3, usage=TokenUsage(5, 5)),
    ]
    for ev in rich:
        assert event_from_dict(json.loads(json.dumps(ev.to_dict()))) == ev


def test_unknown_event_type_is_a_clear_error():
    with pytest.raises(ValueError, match="Unknown event type 'nope'"):
        event_from_dict({"type": "nope"})
