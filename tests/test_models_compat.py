"""LiteLLMModel ids over OpenAI-compatible endpoints."""

from __future__ import annotations

import pytest

from codeloop.errors import ModelConfigurationError
from codeloop.models import LiteLLMModel
from codeloop.testing import OpenAICompatibleServer

USER = [{"role": "user", "content": "hi"}]


def test_litellm_local_ollama_id():
    with OpenAICompatibleServer(["from ollama"]) as server:
        model = LiteLLMModel("ollama_chat/llama3.1", api_base=server.url)
        assert model.api_base == server.base_url
        assert model.generate(USER).content == "from ollama"
        assert server.last_request["json"]["model"] == "llama3.1"


def test_litellm_hosted_ids(monkeypatch):
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    with pytest.raises(ModelConfigurationError, match="ANTHROPIC_API_KEY"):
        LiteLLMModel("anthropic/claude-sonnet-4-5")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant")
    model = LiteLLMModel("anthropic/claude-sonnet-4-5")
    assert (model.model_id, model.api_key) == ("claude-sonnet-4-5", "sk-ant")
    assert "anthropic.com" in model.api_base
    monkeypatch.setenv("OPENAI_API_KEY", "sk")
    plain = LiteLLMModel("gpt-4o")
    assert (plain.model_id, plain.api_base) == ("gpt-4o", None)
