"""model_from_env: every branch, with injected environments and the loopback server as the 'local' server."""

from __future__ import annotations

import socket

import pytest

from codeloop.errors import ModelConfigurationError
from codeloop.models import OpenAIModel, model_from_env
from codeloop.models.from_env import probe_local_server
from codeloop.testing import OpenAICompatibleServer


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


NOTHING_LOCAL = [("ollama", 1)]  # port 1: connection refused at once


@pytest.fixture
def local():
    with OpenAICompatibleServer(models=["llama3.1:8b", "qwen2.5"]) as server:
        yield server


@pytest.mark.parametrize(
    "spec, env, model_id, api_base",
    [
        ("openai:gpt-4.1-mini", {"OPENAI_API_KEY": "sk"}, "gpt-4.1-mini", None),
        ("openai:", {"OPENAI_API_KEY": "sk"}, "gpt-4o-mini", None),
        (
            "anthropic:claude-3-5-haiku-latest",
            {"ANTHROPIC_API_KEY": "a"},
            "claude-3-5-haiku-latest",
            "anthropic",
        ),
        (
            "hf:Qwen/Qwen2.5-Coder-32B-Instruct",
            {"HF_TOKEN": "h"},
            "Qwen/Qwen2.5-Coder-32B-Instruct",
            "huggingface",
        ),
        ("huggingface:org/model", {"HF_TOKEN": "h"}, "org/model", "huggingface"),
        (
            "claude-sonnet-4-5",
            {"OPENAI_API_KEY": "sk", "ANTHROPIC_API_KEY": "a"},
            "claude-sonnet-4-5",
            "anthropic",
        ),
        ("org/model", {"OPENAI_API_KEY": "sk", "HF_TOKEN": "h"}, "org/model", "huggingface"),
        ("gpt-4o", {"ANTHROPIC_API_KEY": "a", "OPENAI_API_KEY": "sk"}, "gpt-4o", None),
        (None, {"ANTHROPIC_API_KEY": "a"}, "claude-sonnet-4-5", "anthropic"),
        (None, {"HF_TOKEN": "h"}, "Qwen/Qwen2.5-Coder-32B-Instruct", "huggingface"),
        ("gemini:gemini-2.5-pro", {"GEMINI_API_KEY": "g"}, "gemini-2.5-pro", "googleapis"),
        ("groq:", {"GROQ_API_KEY": "q"}, "llama-3.3-70b-versatile", "groq"),
    ],
)
def test_hosted_providers(spec, env, model_id, api_base):
    model = model_from_env(spec, environ=env, local_servers=NOTHING_LOCAL)
    assert isinstance(model, OpenAIModel)
    assert model.model_id == model_id
    from codeloop.models import AnthropicModel, InferenceClientModel

    native = {"anthropic": AnthropicModel, "huggingface": InferenceClientModel}.get(api_base)
    if native is not None:
        assert type(model) is native  # its SDK is installed (test extra), so the native API is used
    elif api_base is None:
        assert model.api_base is None
    else:
        assert api_base in model.api_base
    key_var = {
        None: "OPENAI_API_KEY",
        "anthropic": "ANTHROPIC_API_KEY",
        "huggingface": "HF_TOKEN",
        "googleapis": "GEMINI_API_KEY",
        "groq": "GROQ_API_KEY",
    }[api_base]
    assert model.api_key == env[key_var]


def test_codeloop_model_env_and_argument_precedence():
    env = {"CODELOOP_MODEL": "openai:gpt-4o", "OPENAI_API_KEY": "sk"}
    assert model_from_env(environ=env).model_id == "gpt-4o"
    assert model_from_env("openai:o3-mini", environ=env).model_id == "o3-mini"


def test_reads_os_environ_by_default(monkeypatch):
    monkeypatch.setenv("CODELOOP_MODEL", "openai:gpt-4.1")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-env")
    model = model_from_env()
    assert (model.model_id, model.api_key) == ("gpt-4.1", "sk-env")


def test_named_provider_without_key_says_which_key():
    with pytest.raises(ModelConfigurationError, match="ANTHROPIC_API_KEY"):
        model_from_env("anthropic:claude-sonnet-4-5", environ={"OPENAI_API_KEY": "sk"})


def test_named_local_server_with_model(local):
    model = model_from_env(
        "ollama:llama3.1", environ={}, local_servers=[("ollama", local.port)], local_host="127.0.0.1"
    )
    assert model.model_id == "llama3.1" and model.api_base == local.base_url
    local.add("hi from local")
    assert model.generate([{"role": "user", "content": "x"}]).content == "hi from local"
    assert local.last_request["json"]["model"] == "llama3.1"


def test_named_local_server_without_model_picks_first(local):
    model = model_from_env("vllm:", environ={}, local_servers=[("vllm", local.port)])
    assert model.model_id == "llama3.1:8b"


def test_named_local_server_not_running():
    with pytest.raises(ModelConfigurationError, match="no llamacpp server answering"):
        model_from_env("llamacpp:", environ={}, local_servers=[("llamacpp", free_port())])


def test_ollama_host_env(local):
    model = model_from_env("ollama:", environ={"OLLAMA_HOST": local.url})
    assert model.model_id == "llama3.1:8b" and model.api_base == local.base_url


def test_codeloop_api_base(local):
    model = model_from_env(environ={"CODELOOP_API_BASE": local.base_url, "CODELOOP_API_KEY": "k"})
    assert (model.model_id, model.api_base, model.api_key) == ("llama3.1:8b", local.base_url, "k")
    named = model_from_env("qwen2.5", environ={"CODELOOP_API_BASE": local.base_url})
    assert named.model_id == "qwen2.5"


def test_probes_local_servers_in_order(local):
    servers = [("ollama", free_port()), ("llamacpp", local.port), ("vllm", free_port())]
    model = model_from_env(environ={}, local_servers=servers)
    assert model.api_base == local.base_url and model.model_id == "llama3.1:8b"
    assert [r["path"] for r in local.requests] == ["/v1/models"]
    local.add("probed")
    assert model.generate([{"role": "user", "content": "x"}]).content == "probed"


def test_keys_win_over_local_servers(local):
    model = model_from_env(environ={"OPENAI_API_KEY": "sk"}, local_servers=[("ollama", local.port)])
    assert model.api_base is None and model.model_id == "gpt-4o-mini"
    assert local.requests == []


def test_azure_prefix(local):
    env = {
        "AZURE_OPENAI_ENDPOINT": local.url,
        "AZURE_OPENAI_API_KEY": "az",
        "OPENAI_API_VERSION": "2024-10-21",
    }
    model = model_from_env("azure:my-dep", environ=env)
    local.add("azure ok")
    assert model.generate([{"role": "user", "content": "x"}]).content == "azure ok"
    assert local.last_request["path"] == "/openai/deployments/my-dep/chat/completions"


def test_nothing_configured_explains_how():
    with pytest.raises(ModelConfigurationError) as info:
        model_from_env(environ={}, local_servers=[("ollama", free_port()), ("vllm", free_port())])
    text = str(info.value)
    for needle in (
        "CODELOOP_MODEL=openai:gpt-4o-mini",
        "OPENAI_API_KEY",
        "ANTHROPIC_API_KEY",
        "HF_TOKEN",
        "ollama:",
    ):
        assert needle in text


def test_probe_helper(local):
    assert probe_local_server(local.base_url) == ["llama3.1:8b", "qwen2.5"]
    assert probe_local_server(f"http://127.0.0.1:{free_port()}/v1") is None
