"""The provider table: which class serves each ``CODELOOP_MODEL=provider:model`` prefix, and the capability
profile of each OpenAI-compatible hosted provider.

* ``NATIVE``: providers with their own SDK and class (``anthropic:``, ``hf:``, ``bedrock:``, ``litellm:``,
  ``transformers:``, ``mlx:``, ``vllm-engine:``), with the key variable a hosted one needs. ``anthropic:`` and
  ``hf:`` use their SDK when it is installed, else the provider's OpenAI-compatible endpoint (the extras
  ``codeloop[anthropic]`` / ``codeloop[hf]`` switch them to the native API).
* ``PROVIDER_PROFILES``: what each OpenAI-compatible endpoint accepts, applied on top of the model-name
  rules of ``profiles.py`` (a user's ``profile=`` still wins).
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Mapping
from typing import Any

from ..errors import ModelConfigurationError

__all__ = ["NATIVE", "PROVIDER_PROFILES", "native_model", "provider_profile"]

# prefix -> (module, class, SDK module that must be importable or None, env var with the key or None)
NATIVE: dict[str, tuple[str, str, str | None, str | None]] = {
    "anthropic": ("codeloop.models.anthropic", "AnthropicModel", "anthropic", "ANTHROPIC_API_KEY"),
    "hf": ("codeloop.models.hf_inference", "InferenceClientModel", "huggingface_hub", "HF_TOKEN"),
    "bedrock": ("codeloop.models.bedrock", "AmazonBedrockModel", None, None),
    "litellm": ("codeloop.models.litellm", "LiteLLMModel", None, None),
    "transformers": ("codeloop.models.transformers", "TransformersModel", None, None),
    "mlx": ("codeloop.models.mlx", "MLXModel", None, None),
    "vllm-engine": ("codeloop.models.vllm", "VLLMModel", None, None),
}

# What each OpenAI-compatible endpoint accepts (from the providers' compatibility documentation).
PROVIDER_PROFILES: dict[str, dict[str, Any]] = {
    "gemini": {"supports_streaming_usage": True},
    # Groq: text models only take text; json_schema output only on some models (json_object on all).
    "groq": {"supports_images": False},
    # Mistral's API rejects stream_options (usage comes in the last chunk by itself).
    "mistral": {"supports_streaming_usage": False},
    # DeepSeek: text only; JSON output is json_object, not json_schema.
    "deepseek": {"supports_images": False, "supports_response_format": False},
    "openrouter": {},
    "together": {"supports_images": False},
    "xai": {},
}


def provider_profile(provider: str, model_kwargs: Mapping[str, Any]) -> dict[str, Any] | None:
    """The profile override for a hosted provider, merged under the user's own ``profile`` dict."""
    base = PROVIDER_PROFILES.get(provider)
    user = model_kwargs.get("profile")
    if base is None or not isinstance(user, dict | None):
        return user  # type: ignore[return-value]
    return {**base, **(user or {})}


def native_model(provider: str, name: str, env: Mapping[str, str], **kwargs: Any) -> Any | None:
    """The native model for ``provider:name``, or None when its SDK is missing and a fallback exists."""
    module, cls, sdk, key_var = NATIVE[provider]
    if sdk is not None and importlib.util.find_spec(sdk) is None:
        return None
    model_class = getattr(importlib.import_module(module), cls)
    if key_var is not None:
        if not env.get(key_var):
            raise ModelConfigurationError(f"CODELOOP_MODEL={provider}:{name} needs {key_var}: export {key_var}=...")
        kwargs.setdefault("token" if provider == "hf" else "api_key", env[key_var])
    if not name and provider in ("bedrock", "litellm", "transformers", "mlx", "vllm-engine"):
        raise ModelConfigurationError(f"CODELOOP_MODEL={provider}:<model> needs the model id after the colon.")
    return model_class(name, **kwargs) if name else model_class(**kwargs)
