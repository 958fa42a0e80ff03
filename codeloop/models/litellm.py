"""``LiteLLMModel`` and ``LiteLLMRouterModel`` on the ``litellm`` package (extra ``codeloop[litellm]``).

They keep smolagents' parameters: ``model_id`` in LiteLLM's ``provider/model`` form (``"anthropic/claude-
sonnet-4-5"``, ``"ollama_chat/llama3.1"``, ``"bedrock/..."``), ``api_base``, ``api_key``,
``custom_role_conversions``, ``flatten_messages_as_text`` and completion ``**kwargs``; the router takes
``model_list`` (LiteLLM's deployment list) and ``client_kwargs`` for ``litellm.Router`` (routing strategy,
fallbacks...), and ``model_id`` is the model group to call.

litellm answers in the chat-completions format, so replies, streamed deltas, usage and retries are
``OpenAIModel``'s; litellm's own retries are switched off (``num_retries=0``) so ``max_retries`` is the only
retry count. litellm pins SDK versions the rest of codeloop may not share: install it in its own environment
if it conflicts (``pip install 'codeloop[litellm]'``).
"""

from __future__ import annotations

import os
from typing import Any

from ..errors import ModelConfigurationError
from ._sdk_params import ClosableStream
from .openai import OpenAIModel

__all__ = ["LiteLLMModel", "LiteLLMRouterModel"]


def _import_litellm() -> Any:
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # no cost-map download at import
    try:
        import litellm
    except ImportError as exc:
        raise ModelConfigurationError(
            "LiteLLMModel needs the 'litellm' package: pip install 'codeloop[litellm]'"
        ) from exc
    return litellm


class LiteLLMModel(OpenAIModel):
    """Any model litellm reaches, by its ``provider/model`` id."""

    def __init__(
        self,
        model_id: str | None = None,
        api_base: str | None = None,
        api_key: str | None = None,
        custom_role_conversions: dict[str, str] | None = None,
        flatten_messages_as_text: bool | None = None,
        **kwargs: Any,
    ):
        if not model_id:
            raise ModelConfigurationError("LiteLLMModel needs a model_id such as 'anthropic/claude-sonnet-4-5'.")
        _import_litellm()  # a missing extra is reported now, as smolagents does
        super().__init__(
            model_id,
            api_base=api_base,
            api_key=api_key,
            custom_role_conversions=custom_role_conversions,
            flatten_messages_as_text=flatten_messages_as_text,
            **kwargs,
        )

    def _resolve_api_key(self, api_key: str | None) -> str | None:
        return api_key  # litellm finds each provider's own key variable itself

    def create_client(self) -> Any:
        return _import_litellm()

    def create_async_client(self) -> Any:
        return _Client(_import_litellm())

    def _what(self) -> str:
        return f"litellm request to model {self.model_id!r}"

    async def _create(self, client: Any, request: dict[str, Any]) -> Any:
        call: dict[str, Any] = {**request, "num_retries": 0}
        if self.api_base:
            call["api_base"] = self.api_base
        if self.api_key:
            call["api_key"] = self.api_key
        result = await client.acompletion(**call)
        return ClosableStream(result) if request.get("stream") else result


class _Client:
    """litellm is a module, not a client: this holds it per loop and has the ``close()`` the holder calls."""

    def __init__(self, module: Any):
        self.acompletion = module.acompletion

    async def close(self) -> None:
        return None


class LiteLLMRouterModel(OpenAIModel):
    """A ``litellm.Router`` over several deployments; ``model_id`` is the model group name."""

    def __init__(
        self,
        model_id: str,
        model_list: list[dict[str, Any]],
        client_kwargs: dict[str, Any] | None = None,
        custom_role_conversions: dict[str, str] | None = None,
        flatten_messages_as_text: bool | None = None,
        **kwargs: Any,
    ):
        if not model_list:
            raise ModelConfigurationError("LiteLLMRouterModel needs model_list (LiteLLM's deployment list).")
        self.model_list = model_list
        super().__init__(
            model_id,
            api_key="router",
            client_kwargs=client_kwargs,
            custom_role_conversions=custom_role_conversions,
            flatten_messages_as_text=flatten_messages_as_text,
            **kwargs,
        )

    def _resolve_api_key(self, api_key: str | None) -> str | None:
        return None  # keys live in model_list

    def create_client(self) -> Any:
        return _import_litellm().Router(model_list=self.model_list, **{"num_retries": 0, **self.client_kwargs})

    def create_async_client(self) -> Any:
        return _Client(self.create_client())

    def _what(self) -> str:
        return f"litellm router request to model group {self.model_id!r}"

    async def _create(self, client: Any, request: dict[str, Any]) -> Any:
        result = await client.acompletion(**request)
        return ClosableStream(result) if request.get("stream") else result

    def to_dict(self) -> dict[str, Any]:
        data = super().to_dict()
        data["model_list"] = [
            {**entry, "litellm_params": {k: v for k, v in (entry.get("litellm_params") or {}).items()
                                         if k != "api_key"}}
            for entry in self.model_list
        ]
        return data
