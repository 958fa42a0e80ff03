"""smolagents-named models (InferenceClientModel, LiteLLMModel) over OpenAI-compatible endpoints."""

from __future__ import annotations

import pytest

from codeloop.errors import ModelConfigurationError
from codeloop.models import HfApiModel, InferenceClientModel, LiteLLMModel
from codeloop.testing import OpenAICompatibleServer

USER = [{"role": "user", "content": "hi"}]


def test_inference_client_model_provider_suffix_and_bill_to():
    with OpenAICompatibleServer(["from hf"]) as server:
        model = InferenceClientModel(
            "Qwen/Qwen2.5-Coder-32B-Instruct",
            provider="together",
            token="hf_x",
            bill_to="my-org",
            base_url=server.base_url,
        )
        assert model.generate(USER).content == "from hf"
        sent = server.last_request
    assert sent["json"]["model"] == "Qwen/Qwen2.5-Coder-32B-Instruct:together"
    assert sent["headers"]["authorization"] == "Bearer hf_x"
    assert sent["headers"]["x-hf-bill-to"] == "my-org"
    assert HfApiModel is InferenceClientModel


def test_inference_client_model_defaults(monkeypatch):
    monkeypatch.setenv("HF_TOKEN", "hf_env")
    model = InferenceClientModel()
    assert model.api_base == "https://router.huggingface.co/v1" and model.api_key == "hf_env"
    assert "model" not in model.kwargs
    monkeypatch.delenv("HF_TOKEN")
    with pytest.raises(ModelConfigurationError, match="HF_TOKEN"):
        InferenceClientModel()


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
