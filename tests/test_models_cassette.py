"""CassetteModel: record from a live model, replay offline, miss clearly."""

from __future__ import annotations

import pytest

from codeloop.models.cassette import CassetteMissError, CassetteModel
from codeloop.models.scripted import ScriptedModel


def ask(text):
    return [{"role": "system", "content": "sys"}, {"role": "user", "content": text}]


async def test_record_then_replay_by_request(tmp_path):
    path = tmp_path / "run.jsonl"
    live = ScriptedModel(["first", {"tool_calls": [{"name": "f", "arguments": {"x": 1}}]}, "again"])
    recorder = CassetteModel(path, live, mode="record")
    assert (await recorder.agenerate(ask("a"), stop_sequences=["<end>"])).content == "first"
    assert (await recorder.agenerate(ask("b"))).tool_calls[0].function.name == "f"
    assert (await recorder.agenerate(ask("a"), stop_sequences=["<end>"])).content == "again"
    assert len(path.read_text().splitlines()) == 3

    replay = CassetteModel(path, mode="replay")
    # out of order: matched by request, repeated requests answered in recorded order
    call = await replay.agenerate(ask("b"))
    assert call.tool_calls[0].function.arguments == {"x": 1}
    assert (await replay.agenerate(ask("a"), stop_sequences=["<end>"])).content == "first"
    assert (await replay.agenerate(ask("a"), stop_sequences=["<end>"])).content == "again"
    with pytest.raises(CassetteMissError, match="no reply for this request"):
        await replay.agenerate(ask("a"))  # different stop sequences: a different request
    assert len(live.calls) == 3


async def test_auto_mode_fills_gaps(tmp_path):
    path = tmp_path / "auto.jsonl"
    live = ScriptedModel(lambda messages: "live:" + messages[-1]["content"])
    auto = CassetteModel(path, live)
    assert (await auto.agenerate(ask("q"))).content == "live:q"
    again = CassetteModel(path, live)
    assert (await again.agenerate(ask("q"))).content == "live:q"
    assert len(live.calls) == 1  # second answer came from the cassette


def test_configuration_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="record one first"):
        CassetteModel(tmp_path / "none.jsonl", mode="replay")
    with pytest.raises(ValueError, match="needs the live model"):
        CassetteModel(tmp_path / "x.jsonl", mode="record")
