"""Test helpers: a loopback OpenAI-compatible server, scripted and cassette models (no network, no keys)."""

from __future__ import annotations

from ..models.cassette import CassetteMissError, CassetteModel
from ..models.scripted import ScriptedModel, ScriptExhaustedError
from .server import OpenAICompatibleServer, Reply

__all__ = [
    "OpenAICompatibleServer",
    "Reply",
    "ScriptedModel",
    "ScriptExhaustedError",
    "CassetteModel",
    "CassetteMissError",
]
