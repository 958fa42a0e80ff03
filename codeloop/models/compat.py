"""``LiteLLMModel`` without the ``litellm`` package, served over OpenAI-compatible endpoints.

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

__all__ = ["LiteLLMModel"]


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
