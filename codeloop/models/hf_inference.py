"""Hugging Face Inference Providers on the official ``huggingface_hub`` client (extra ``codeloop[hf]``).

``InferenceClientModel`` (alias ``HfApiModel``) keeps smolagents' parameters: ``provider`` (a provider name
or ``"auto"``: the router picks), ``token`` / ``api_key`` (default ``HF_TOKEN`` or the cached login),
``bill_to`` (an organization to bill), ``base_url`` (a dedicated endpoint or any OpenAI-compatible server),
``timeout`` and ``client_kwargs`` (more ``AsyncInferenceClient`` arguments, e.g. ``headers``).

Requests go through ``AsyncInferenceClient.chat_completion``; the request loop, retries (429 with
``Retry-After``, 5xx, dropped connections, raised by the SDK as ``HfHubHTTPError``), usage and client
lifetime are ``OpenAIModel``'s, because the router speaks the chat-completions format.
"""

from __future__ import annotations

import os
from typing import Any

from ..errors import ModelConfigurationError
from ._sdk_params import ClosableStream, fit_to_sdk
from .openai import OpenAIModel
from .retry import ErrorInfo, classify_error

__all__ = ["InferenceClientModel", "HfApiModel", "DEFAULT_HF_MODEL"]

DEFAULT_HF_MODEL = "Qwen/Qwen2.5-Coder-32B-Instruct"


def classify_hf_error(exc: BaseException) -> ErrorInfo:
    """As ``classify_error``, but offline mode (``HF_HUB_OFFLINE=1``) is a setting, not a network fault:
    it is reported at once, not retried."""
    if type(exc).__name__ == "OfflineModeIsEnabled":
        return ErrorInfo(True, False, None, None, f"{exc} (InferenceClientModel needs the network: unset "
                         "HF_HUB_OFFLINE, or use a local model)")
    return classify_error(exc)


class InferenceClientModel(OpenAIModel):
    """A model on Hugging Face Inference Providers (or a dedicated endpoint / TGI server via ``base_url``)."""

    def __init__(
        self,
        model_id: str = DEFAULT_HF_MODEL,
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
        if token and api_key and token != api_key:
            raise ModelConfigurationError(
                "Received both `token` and `api_key` arguments: pass only one of them to InferenceClientModel."
            )
        self.provider = provider
        self.bill_to = bill_to
        self.timeout = timeout
        self._token = token or api_key
        super().__init__(
            model_id,
            api_base=base_url,
            client_kwargs=client_kwargs,
            custom_role_conversions=custom_role_conversions,
            **kwargs,
        )

    def _resolve_api_key(self, api_key: str | None) -> str | None:
        token = self._token or os.environ.get("HF_TOKEN")
        if token or self.api_base:
            return token
        try:
            from huggingface_hub import get_token

            token = get_token()
        except ImportError:
            token = None
        if not token:
            raise ModelConfigurationError(
                f"InferenceClientModel({self.model_id!r}) needs a Hugging Face token: export HF_TOKEN=hf_..., "
                "run `hf auth login`, or pass token=..."
            )
        return token

    def _import_hf(self) -> Any:
        try:
            import huggingface_hub
        except ImportError as exc:
            raise ModelConfigurationError(
                "InferenceClientModel needs the 'huggingface_hub' package: pip install 'codeloop[hf]'"
            ) from exc
        return huggingface_hub

    def _sdk_kwargs(self) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"token": self.api_key, "timeout": self.timeout, "bill_to": self.bill_to,
                                  **self.client_kwargs}
        if self.api_base:
            kwargs["base_url"] = self.api_base
        else:
            kwargs["provider"] = self.provider
        return kwargs

    def create_client(self) -> Any:
        return self._import_hf().InferenceClient(**self._sdk_kwargs())

    def create_async_client(self) -> Any:
        return self._import_hf().AsyncInferenceClient(**self._sdk_kwargs())

    _classify = staticmethod(classify_hf_error)

    def _what(self) -> str:
        where = self.api_base or f"provider {self.provider or 'auto'}"
        return f"Hugging Face inference request to model {self.model_id!r} ({where})"

    async def _create(self, client: Any, request: dict[str, Any]) -> Any:
        result = await client.chat_completion(**fit_to_sdk(client.chat_completion, request))
        return ClosableStream(result) if request.get("stream") else result

    def to_dict(self) -> dict[str, Any]:
        data = super().to_dict()
        data.pop("api_base", None)
        for name in ("provider", "bill_to"):
            if getattr(self, name):
                data[name] = getattr(self, name)
        if self.api_base:
            data["base_url"] = self.api_base
        if self.timeout != 120:
            data["timeout"] = self.timeout
        return data


HfApiModel = InferenceClientModel  # the older smolagents name
