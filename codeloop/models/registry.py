"""``MODEL_REGISTRY``: the model classes an agent dict may name (smolagents' registry of the same name).

Layer 3 (models). ``MultiStepAgent.from_dict`` builds only these classes, so a dict cannot make codeloop
import and instantiate an arbitrary class. Add your own ``Model`` subclass to load dicts that name it.
The classes are imported when this module is, which only ``from_dict`` and the compat view do.
"""

from __future__ import annotations

from .bedrock import AmazonBedrockModel
from .hf_inference import InferenceClientModel
from .litellm import LiteLLMModel, LiteLLMRouterModel
from .mlx import MLXModel
from .openai import AzureOpenAIModel, OpenAIModel
from .transformers import TransformersModel
from .vllm import VLLMModel

__all__ = ["MODEL_REGISTRY"]

MODEL_REGISTRY: dict[str, type] = {
    "VLLMModel": VLLMModel,
    "MLXModel": MLXModel,
    "TransformersModel": TransformersModel,
    "LiteLLMModel": LiteLLMModel,
    "LiteLLMRouterModel": LiteLLMRouterModel,
    "InferenceClientModel": InferenceClientModel,
    "OpenAIModel": OpenAIModel,
    "AzureOpenAIModel": AzureOpenAIModel,
    "AmazonBedrockModel": AmazonBedrockModel,
}
