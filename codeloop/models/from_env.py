"""``model_from_env``: pick a model from the environment, for the CLI and quick scripts.

Resolution order:

1. ``model_id`` argument, else ``CODELOOP_MODEL``: ``"provider:model"`` (providers: openai, anthropic, hf,
   gemini, groq, mistral, deepseek, openrouter, together, xai, azure, ollama, llamacpp, vllm, lmstudio, and
   the SDK-backed bedrock, litellm, transformers, mlx, vllm-engine; see ``providers.py``) or a bare model id;
   ``llamacpp:/path/model.gguf`` (or ``llamacpp:smollm2``) loads the file in-process;
2. ``CODELOOP_API_BASE`` (+ optional ``CODELOOP_API_KEY``): any OpenAI-compatible server;
3. API keys: ``OPENAI_API_KEY`` (OpenAI), ``ANTHROPIC_API_KEY`` (Anthropic's OpenAI-compatible endpoint),
   ``HF_TOKEN`` (Hugging Face router). A bare id picks the provider it belongs to when that key is set
   ("claude-..." -> Anthropic, "org/name" -> Hugging Face), else the first key found;
4. a local OpenAI-compatible server answering ``GET /v1/models`` (Ollama :11434, llama.cpp :8080, vLLM
   :8000, LM Studio :1234), probed with a short timeout; its first model is used unless one was named.

With none of these, ``ModelConfigurationError`` explains how to configure one.
"""

from __future__ import annotations

import json
import os
import urllib.request
from collections.abc import Mapping, Sequence
from typing import Any

from ..errors import ModelConfigurationError
from .base import Model
from .providers import NATIVE, native_model, provider_profile

__all__ = ["model_from_env", "LOCAL_SERVERS", "probe_local_server", "CONFIG_HELP"]

# (provider name, port) of local OpenAI-compatible servers, probed in this order.
LOCAL_SERVERS: list[tuple[str, int]] = [
    ("ollama", 11434),
    ("llamacpp", 8080),
    ("vllm", 8000),
    ("lmstudio", 1234),
]

# provider -> (base URL, env var holding the key, default model)
HOSTED: dict[str, tuple[str | None, str, str]] = {
    "openai": (None, "OPENAI_API_KEY", "gpt-4o-mini"),
    "anthropic": ("https://api.anthropic.com/v1/", "ANTHROPIC_API_KEY", "claude-sonnet-4-5"),
    "hf": ("https://router.huggingface.co/v1", "HF_TOKEN", "Qwen/Qwen2.5-Coder-32B-Instruct"),
    # Only used when named ("gemini:gemini-2.5-flash"); the key scan below sticks to the three above.
    "gemini": (
        "https://generativelanguage.googleapis.com/v1beta/openai/",
        "GEMINI_API_KEY",
        "gemini-2.5-flash",
    ),
    "groq": ("https://api.groq.com/openai/v1", "GROQ_API_KEY", "llama-3.3-70b-versatile"),
    "mistral": ("https://api.mistral.ai/v1", "MISTRAL_API_KEY", "mistral-large-latest"),
    "deepseek": ("https://api.deepseek.com/v1", "DEEPSEEK_API_KEY", "deepseek-chat"),
    "openrouter": ("https://openrouter.ai/api/v1", "OPENROUTER_API_KEY", "openai/gpt-4o-mini"),
    "together": (
        "https://api.together.xyz/v1",
        "TOGETHER_API_KEY",
        "meta-llama/Llama-3.3-70B-Instruct-Turbo",
    ),
    "xai": ("https://api.x.ai/v1", "XAI_API_KEY", "grok-4"),
}
_ALIASES = {
    "huggingface": "hf",
    "hf-inference": "hf",
    "llama.cpp": "llamacpp",
    "llama-cpp": "llamacpp",
    "lm-studio": "lmstudio",
    "azure-openai": "azure",
    "google": "gemini",
    "together_ai": "together",
    "x-ai": "xai",
    "amazon-bedrock": "bedrock",
    "aws": "bedrock",
    "vllm_engine": "vllm-engine",
}

CONFIG_HELP = """No model is configured. Set one of:
  CODELOOP_MODEL=openai:gpt-4o-mini      with OPENAI_API_KEY=sk-...
  CODELOOP_MODEL=anthropic:claude-sonnet-4-5  with ANTHROPIC_API_KEY=sk-ant-...
  CODELOOP_MODEL=hf:Qwen/Qwen2.5-Coder-32B-Instruct  with HF_TOKEN=hf_...
  CODELOOP_MODEL=ollama:llama3.1         (Ollama on localhost:11434; also llamacpp:, vllm:, lmstudio:)
  CODELOOP_MODEL=llamacpp:/path/model.gguf  (llama.cpp in this process: pip install 'codeloop[llamacpp]')
  CODELOOP_MODEL=gemini:gemini-2.5-flash with GEMINI_API_KEY (also groq:, mistral:, deepseek:, openrouter:,
                                         together:, xai: with GROQ_API_KEY, MISTRAL_API_KEY, ...)
  CODELOOP_API_BASE=http://host:port/v1  (any OpenAI-compatible server; CODELOOP_API_KEY if it needs one)
or just OPENAI_API_KEY, ANTHROPIC_API_KEY or HF_TOKEN, or start a local server (Ollama, llama.cpp,
vLLM, LM Studio) on its default port.
No model at all? Watch the loop run offline on a tiny bundled model: ./run.sh --local "task"
(it installs llama.cpp and a 135M model into .venv; that model shows the mechanics, not good answers)."""


def probe_local_server(base_url: str, timeout: float = 0.3) -> list[str] | None:
    """The model ids a server lists at ``{base_url}/models``, or None when nothing answers there."""
    # No proxies: a probe of localhost must not be sent to an HTTP proxy from the environment.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(base_url.rstrip("/") + "/models", timeout=timeout) as response:
            data = json.loads(response.read())
    except (OSError, ValueError):
        return None
    items = data.get("data") if isinstance(data, dict) else None
    if not isinstance(items, list):
        return None
    return [str(item["id"]) for item in items if isinstance(item, dict) and "id" in item]


def _is_gguf(name: str) -> bool:
    """``llamacpp:<name>`` names a model file to load (not a model on a running server)."""
    from .llamacpp import BUNDLED_MODELS

    return name.lower().endswith(".gguf") or name.lower() in BUNDLED_MODELS


def _with_profile(provider: str, model_kwargs: dict[str, Any]) -> dict[str, Any]:
    profile = provider_profile(provider, model_kwargs)
    return {**model_kwargs, "profile": profile} if profile is not None else model_kwargs


def _openai_model(model_id: str, api_base: str | None, api_key: str | None, **kwargs: Any) -> Model:
    from .openai import OpenAIModel

    return OpenAIModel(model_id, api_base=api_base, api_key=api_key or "not-needed", **kwargs)


def model_from_env(
    model_id: str | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    local_host: str = "127.0.0.1",
    local_servers: Sequence[tuple[str, int]] | None = None,
    probe_timeout: float = 0.3,
    **model_kwargs: Any,
) -> Model:
    """Build a model from ``model_id`` / the environment (see the module docstring for the rules).

    ``environ``, ``local_host`` and ``local_servers`` exist so tests (and unusual setups) can point the
    lookup somewhere else; ``model_kwargs`` go to the model constructor.
    """
    env = os.environ if environ is None else environ
    servers = LOCAL_SERVERS if local_servers is None else list(local_servers)
    ports = dict(servers)
    spec = (model_id or env.get("CODELOOP_MODEL") or "").strip()

    provider, name = "", spec
    head, sep, rest = spec.partition(":")
    known = {*HOSTED, *ports, "azure", *dict(LOCAL_SERVERS), *NATIVE}
    if sep and _ALIASES.get(head.lower(), head.lower()) in known:
        provider, name = _ALIASES.get(head.lower(), head.lower()), rest.strip()

    if provider in NATIVE:  # a provider with its own SDK (see providers.py)
        default = HOSTED[provider][2] if provider in HOSTED else ""
        if provider not in HOSTED or env.get(HOSTED[provider][1]):
            native = native_model(provider, name or default, env, **model_kwargs)
            if native is not None:
                return native
    if provider in HOSTED:
        base, key_var, default = HOSTED[provider]
        if not env.get(key_var):
            raise ModelConfigurationError(
                f"CODELOOP_MODEL={spec!r} needs {key_var}: export {key_var}=... (or pick another provider).\n\n"
                + CONFIG_HELP
            )
        return _openai_model(name or default, base, env[key_var], **_with_profile(provider, model_kwargs))
    if provider == "azure":
        from .openai import AzureOpenAIModel

        if not name:
            raise ModelConfigurationError("CODELOOP_MODEL=azure:<deployment> needs the deployment name.")
        return AzureOpenAIModel(
            name,
            azure_endpoint=env.get("AZURE_OPENAI_ENDPOINT"),
            api_key=env.get("AZURE_OPENAI_API_KEY"),
            api_version=env.get("OPENAI_API_VERSION"),
            **model_kwargs,
        )
    if provider == "llamacpp" and _is_gguf(name):  # a GGUF file (or bundled model) run in this process
        from .llamacpp import LlamaCppModel

        return LlamaCppModel(name, **model_kwargs)
    if provider:  # a local server named explicitly
        port = ports.get(provider, dict(LOCAL_SERVERS).get(provider))
        base = env.get("OLLAMA_HOST") if provider == "ollama" else None
        base = (base.rstrip("/") + "/v1") if base else f"http://{local_host}:{port}/v1"
        if not base.startswith("http"):
            base = "http://" + base
        if not name:
            models = probe_local_server(base, probe_timeout)
            if not models:
                raise ModelConfigurationError(
                    f"CODELOOP_MODEL={spec!r}: no model named and no {provider} server answering at {base}. "
                    f"Start it, or name the model: CODELOOP_MODEL={provider}:<model>."
                )
            name = models[0]
        return _openai_model(name, base, None, **model_kwargs)

    if env.get("CODELOOP_API_BASE"):
        base = env["CODELOOP_API_BASE"]
        if not name:
            models = probe_local_server(base, max(probe_timeout, 2.0))
            if not models:
                raise ModelConfigurationError(
                    f"CODELOOP_API_BASE={base} lists no model: set CODELOOP_MODEL=<model id> as well."
                )
            name = models[0]
        return _openai_model(name, base, env.get("CODELOOP_API_KEY"), **model_kwargs)

    # A bare id (or none): use the provider it obviously belongs to, else the first key present.
    preferred: list[str] = []
    if name.lower().startswith("claude"):
        preferred.append("anthropic")
    elif "/" in name:
        preferred.append("hf")
    for provider in [*preferred, "openai", "anthropic", "hf"]:
        base, key_var, default = HOSTED[provider]
        if env.get(key_var):
            native = native_model(provider, name or default, env, **model_kwargs) if provider in NATIVE else None
            return native or _openai_model(name or default, base, env[key_var], **model_kwargs)

    for _server, port in servers:
        base = f"http://{local_host}:{port}/v1"
        models = probe_local_server(base, probe_timeout)
        if models is not None and (models or name):
            return _openai_model(name or models[0], base, None, **model_kwargs)

    raise ModelConfigurationError(CONFIG_HELP)
