"""Models: one async ``Model`` interface, providers (one module each), retries, rate limits, profiles, cost.

Names are imported lazily so ``import codeloop.models`` does not import a provider SDK (``openai`` is only
imported when an OpenAI model is created).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS: dict[str, str] = {
    "Model": "codeloop.models.base",
    "cut_at_stop": "codeloop.models.base",
    "StopCutter": "codeloop.models.base",
    "ApiModel": "codeloop.models.base",
    "REMOVE_PARAMETER": "codeloop.models.base",
    "remove_content_after_stop_sequences": "codeloop.models.base",
    "supports_stop_parameter": "codeloop.models.profiles",
    "get_clean_message_list": "codeloop.models.convert",
    "get_tool_json_schema": "codeloop.models.convert",
    "tool_role_conversions": "codeloop.models.convert",
    "get_tool_call_from_text": "codeloop.models.toolcall_parsing",
    "parse_json_if_needed": "codeloop.models.toolcall_parsing",
    "ScriptedModel": "codeloop.models.scripted",
    "VLLMModel": "codeloop.models.vllm",
    "MLXModel": "codeloop.models.mlx",
    "TransformersModel": "codeloop.models.transformers",
    "ScriptExhaustedError": "codeloop.models.scripted",
    "CassetteModel": "codeloop.models.cassette",
    "AnthropicModel": "codeloop.models.anthropic",
    "AmazonBedrockModel": "codeloop.models.bedrock",
    "AmazonBedrockServerModel": "codeloop.models.bedrock",
    "InferenceClientModel": "codeloop.models.hf_inference",
    "HfApiModel": "codeloop.models.hf_inference",
    "LiteLLMModel": "codeloop.models.litellm",
    "LiteLLMRouterModel": "codeloop.models.litellm",
    "AzureOpenAIServerModel": "codeloop.models.openai",
    "OpenAIModel": "codeloop.models.openai",
    "OpenAIServerModel": "codeloop.models.openai",
    "AzureOpenAIModel": "codeloop.models.openai",
    "LlamaCppModel": "codeloop.models.llamacpp",
    "MODEL_REGISTRY": "codeloop.models.registry",
    "ModelProfile": "codeloop.models.profiles",
    "resolve_profile": "codeloop.models.profiles",
    "register_profile": "codeloop.models.profiles",
    "Price": "codeloop.models.cost",
    "PRICES": "codeloop.models.cost",
    "register_price": "codeloop.models.cost",
    "compute_cost": "codeloop.models.cost",
    "RetryPolicy": "codeloop.models.retry",
    "RateLimiter": "codeloop.models.ratelimit",
    "model_from_env": "codeloop.models.from_env",
    "tool_calls_from_text": "codeloop.models.toolcall_parsing",
    "to_chat_messages": "codeloop.models.convert",
    "tool_schema": "codeloop.models.convert",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'codeloop.models' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__


if TYPE_CHECKING:
    from .anthropic import AnthropicModel  # noqa: F401
    from .base import Model, StopCutter, cut_at_stop  # noqa: F401
    from .bedrock import AmazonBedrockModel, AmazonBedrockServerModel  # noqa: F401
    from .cassette import CassetteModel  # noqa: F401
    from .convert import to_chat_messages, tool_schema  # noqa: F401
    from .cost import PRICES, Price, compute_cost, register_price  # noqa: F401
    from .from_env import model_from_env  # noqa: F401
    from .hf_inference import HfApiModel, InferenceClientModel  # noqa: F401
    from .litellm import LiteLLMModel, LiteLLMRouterModel  # noqa: F401
    from .llamacpp import LlamaCppModel  # noqa: F401
    from .mlx import MLXModel  # noqa: F401
    from .openai import AzureOpenAIModel, AzureOpenAIServerModel, OpenAIModel, OpenAIServerModel  # noqa: F401
    from .profiles import ModelProfile, register_profile, resolve_profile  # noqa: F401
    from .ratelimit import RateLimiter  # noqa: F401
    from .retry import RetryPolicy  # noqa: F401
    from .scripted import ScriptedModel, ScriptExhaustedError  # noqa: F401
    from .toolcall_parsing import tool_calls_from_text  # noqa: F401
    from .transformers import TransformersModel  # noqa: F401
    from .vllm import VLLMModel  # noqa: F401
