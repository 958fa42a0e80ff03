"""smolagents model classes that are not OpenAI by name, served over OpenAI-compatible endpoints.

So that ``from smolagents import InferenceClientModel`` -> ``from codeloop import InferenceClientModel``
keeps working without extra SDKs:

* ``InferenceClientModel`` (alias ``HfApiModel``) talks to the Hugging Face router
  (``https://router.huggingface.co/v1``); ``provider=`` is sent as the router's ``model:provider`` suffix,
  ``bill_to=`` as the ``X-HF-Bill-To`` header.
* ``LiteLLMModel`` takes LiteLLM-style ids (``"anthropic/claude-sonnet-4-5"``, ``"ollama_chat/llama3.1"``,
  ``"gpt-4o"``) and maps the prefix to that provider's OpenAI-compatible endpoint and key variable (the
  table in ``from_env.py``). It does not need or use the ``litellm`` package.
"""

from __future__ import annotations

import os
from typing import Any

from ..errors import ModelConfigurationError
from .from_env import _ALIASES, HOSTED, LOCAL_SERVERS
from .openai import OpenAIModel

__all__ = ["InferenceClientModel", "HfApiModel", "LiteLLMModel"]

HF_ROUTER = "https://router.huggingface.co/v1"


class InferenceClientModel(OpenAIModel):
    """A model on Hugging Face Inference Providers, through the router's OpenAI-compatible API."""

    def __init__(
        self,
        model_id: str = HOSTED["hf"][2],
        provider: str | None = None,
        token: str | None = None,
        timeout: float = 120,
        client_kwargs: dict[str, Any] | None = None,
        custom_role_conversions: dict[str, str] | None = None,
        api_key: str | None = None,
        bill_to: str | None = None,
        base_url: str | None = None,
        **kwargs: Any,
    ):
        key = api_key or token or os.environ.get("HF_TOKEN")
        if not key:
            raise ModelConfigurationError(
                "InferenceClientModel needs a Hugging Face token: export HF_TOKEN=hf_... or pass token=..."
            )
        client_kwargs = {"timeout": timeout, **(client_kwargs or {})}
        if bill_to:
            client_kwargs["default_headers"] = {
                **client_kwargs.get("default_headers", {}),
                "X-HF-Bill-To": bill_to,
            }
        if provider and provider != "auto":
            kwargs.setdefault("model", f"{model_id}:{provider}")
        self.provider = provider
        super().__init__(
            model_id,
            api_base=base_url or HF_ROUTER,
            api_key=key,
            client_kwargs=client_kwargs,
            custom_role_conversions=custom_role_conversions,
            **kwargs,
        )


HfApiModel = InferenceClientModel  # the older smolagents name


class LiteLLMModel(OpenAIModel):
    """A LiteLLM-style ``provider/model`` id, served by the provider's OpenAI-compatible endpoint."""

    def __init__(
        self,
        model_id: str = "gpt-4o-mini",
        api_base: str | None = None,
        api_key: str | None = None,
        custom_role_conversions: dict[str, str] | None = None,
        flatten_messages_as_text: bool | None = None,
        **kwargs: Any,
    ):
        head, sep, rest = model_id.partition("/")
        provider = _ALIASES.get(head.lower(), head.lower()).removesuffix("_chat") if sep else ""
        local = dict(LOCAL_SERVERS)
        name = rest if provider in HOSTED or provider in local or provider == "azure" else model_id
        if provider == "azure":
            raise ModelConfigurationError(
                "For Azure use AzureOpenAIModel(deployment, azure_endpoint=..., ...)."
            )
        if sep and provider not in HOSTED and provider not in local and not api_base:
            # never guess a route: 'bedrock/...' sent to api.openai.com would fail late and confusingly
            raise ModelConfigurationError(
                f"LiteLLMModel({model_id!r}): codeloop cannot route the provider {head!r} itself. It routes "
                f"{', '.join(sorted({*HOSTED, *local}))} over their OpenAI-compatible APIs. For {head!r} "
                "install the litellm package (pip install litellm) once codeloop's LiteLLM backend is "
                "available, or use that provider's own model class; for an OpenAI-compatible endpoint pass "
                "api_base=... (and api_key=...)."
            )
        if provider in local:
            base = api_base or f"http://localhost:{local[provider]}"
            api_base = base if base.rstrip("/").endswith("/v1") else base.rstrip("/") + "/v1"
            api_key = api_key or "not-needed"
        elif provider in HOSTED:
            default_base, key_var, _ = HOSTED[provider]
            api_base = api_base or default_base
            api_key = api_key or os.environ.get(key_var)
            if not api_key:
                raise ModelConfigurationError(
                    f"LiteLLMModel({model_id!r}) needs {key_var}: export {key_var}=..."
                )
        super().__init__(
            name,
            api_base=api_base,
            api_key=api_key,
            custom_role_conversions=custom_role_conversions,
            flatten_messages_as_text=flatten_messages_as_text,
            **kwargs,
        )
