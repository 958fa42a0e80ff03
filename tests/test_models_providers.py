"""The provider table: CODELOOP_MODEL prefixes for every provider, hosted-provider profiles, and
to_dict()/from_dict() without secrets."""

from __future__ import annotations

import pytest

from codeloop.errors import ModelConfigurationError
from codeloop.models import (
    AmazonBedrockModel,
    AnthropicModel,
    InferenceClientModel,
    Model,
    OpenAIModel,
    model_from_env,
)
from codeloop.models.providers import PROVIDER_PROFILES
from codeloop.testing import OpenAICompatibleServer

KEYS = {"GEMINI_API_KEY": "g-secret", "GROQ_API_KEY": "q-secret", "MISTRAL_API_KEY": "m-secret",
        "DEEPSEEK_API_KEY": "d-secret", "OPENROUTER_API_KEY": "o-secret", "TOGETHER_API_KEY": "t-secret",
        "XAI_API_KEY": "x-secret", "ANTHROPIC_API_KEY": "a-secret", "HF_TOKEN": "hf_secret"}


@pytest.mark.parametrize("provider", sorted(PROVIDER_PROFILES))
def test_hosted_openai_compatible_providers_get_their_profile(provider):
    model = model_from_env(f"{provider}:", environ=KEYS, local_servers=[])
    assert type(model) is OpenAIModel
    for field, value in PROVIDER_PROFILES[provider].items():
        assert getattr(model.profile, field) == value
    data = model.to_dict()
    assert "secret" not in str(data) and data["api_base"] == model.api_base
    mine = model_from_env(f"{provider}:m", environ=KEYS, local_servers=[], profile={"supports_stop": False})
    assert mine.profile.supports_stop is False  # the user's profile is merged over the provider's


def test_provider_profiles_shape_requests():
    with OpenAICompatibleServer(["x", "y"]) as server:
        mistral = OpenAIModel("mistral-large-latest", api_base=server.base_url, profile=PROVIDER_PROFILES["mistral"])
        list(mistral.generate_stream([{"role": "user", "content": "hi"}]))
        assert "stream_options" not in server.last_request["json"]
        groq = OpenAIModel("llama-3.3-70b-versatile", api_base=server.base_url, profile=PROVIDER_PROFILES["groq"])
        groq.generate([{"role": "user", "content": [{"type": "text", "text": "hi"}, {"type": "image", "image": b"x"}]}])
        assert server.last_request["json"]["messages"][0]["content"] == "hi"  # text-only endpoint
    deepseek = OpenAIModel("deepseek-chat", api_base="http://127.0.0.1:9/v1", profile=PROVIDER_PROFILES["deepseek"])
    with pytest.raises(ModelConfigurationError, match="response_format"):
        deepseek.generate([{"role": "user", "content": "hi"}], response_format={"type": "json_schema"})


def test_native_prefixes(monkeypatch):
    assert type(model_from_env("anthropic:claude-haiku-4-5", environ=KEYS, local_servers=[])) is AnthropicModel
    hf = model_from_env("hf:", environ=KEYS, local_servers=[])
    assert type(hf) is InferenceClientModel and hf.api_key == "hf_secret"
    bedrock = model_from_env("bedrock:amazon.nova-lite-v1:0", environ={}, local_servers=[])
    assert type(bedrock) is AmazonBedrockModel and bedrock.model_id == "amazon.nova-lite-v1:0"
    assert type(model_from_env("aws:amazon.nova-lite-v1:0", environ={}, local_servers=[])) is AmazonBedrockModel
    for prefix in ("transformers", "mlx", "vllm-engine", "bedrock"):
        with pytest.raises(ModelConfigurationError, match="needs the model id"):
            model_from_env(f"{prefix}:", environ={}, local_servers=[])
    with pytest.raises(ModelConfigurationError, match="ANTHROPIC_API_KEY"):
        model_from_env("anthropic:claude-haiku-4-5", environ={}, local_servers=[])


def test_dicts_have_no_secrets_and_round_trip():
    models = [
        AnthropicModel("claude-haiku-4-5", api_key="a-secret", max_tokens=10),
        InferenceClientModel("org/m", token="hf_secret", provider="together"),
        AmazonBedrockModel("amazon.nova-lite-v1:0", client_kwargs={"region_name": "eu-west-1",
                                                               "aws_secret_access_key": "s-secret"}),
        OpenAIModel("gpt-4o-mini", api_key="sk-secret", api_base="http://127.0.0.1:9/v1", temperature=0.1),
    ]
    for model in models:
        data = model.to_dict()
        assert "secret" not in str(data), data
        clone = Model.from_dict({**data, **({"api_key": "k"} if isinstance(model, AnthropicModel) else {}),
                                 **({"token": "hf_k"} if isinstance(model, InferenceClientModel) else {})})
        assert type(clone) is type(model) and clone.model_id == model.model_id
    with pytest.raises(ValueError, match="Unknown model class"):
        Model.from_dict({"class": "NoSuchModel", "model_id": "x"})
