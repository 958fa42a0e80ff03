"""codeloop: agents that think in code.

This module only re-exports the public API. Names are resolved lazily on first access so that
``import codeloop`` stays light (no provider SDK, no executor machinery is imported until used).
"""

from __future__ import annotations

import importlib
import os
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# public name -> module that defines it
_EXPORTS: dict[str, str] = {
    # data
    "ChatMessage": "codeloop.messages",
    "ChatMessageToolCall": "codeloop.messages",
    "ChatMessageToolCallFunction": "codeloop.messages",
    "ChatMessageStreamDelta": "codeloop.messages",
    "ChatMessageToolCallStreamDelta": "codeloop.messages",
    "MessageRole": "codeloop.messages",
    "TokenUsage": "codeloop.messages",
    "Timing": "codeloop.messages",
    "agglomerate_stream_deltas": "codeloop.messages",
    # errors
    "AgentError": "codeloop.errors",
    "AgentParsingError": "codeloop.errors",
    "AgentExecutionError": "codeloop.errors",
    "AgentToolCallError": "codeloop.errors",
    "AgentToolExecutionError": "codeloop.errors",
    "AgentMaxStepsError": "codeloop.errors",
    "AgentGenerationError": "codeloop.errors",
    "InterpreterError": "codeloop.errors",
    "ToolDefinitionError": "codeloop.errors",
    "ToolValidationError": "codeloop.errors",
    "ModelConfigurationError": "codeloop.errors",
    "ModelRequestError": "codeloop.errors",
    "ModelContextOverflowError": "codeloop.errors",
    # tools
    "Tool": "codeloop.tools",
    "tool": "codeloop.tools",
    "ToolCollection": "codeloop.tools",
    "FinalAnswerTool": "codeloop.tools",
    "UserInputTool": "codeloop.tools",
    "DuckDuckGoSearchTool": "codeloop.tools",
    "WebSearchTool": "codeloop.tools",
    "VisitWebpageTool": "codeloop.tools",
    "WikipediaSearchTool": "codeloop.tools",
    "ApiWebSearchTool": "codeloop.tools",
    "GoogleSearchTool": "codeloop.tools",
    "SpeechToTextTool": "codeloop.tools",
    "PythonInterpreterTool": "codeloop.executors.interpreter_tool",
    "AgentText": "codeloop.tools",
    "AgentImage": "codeloop.tools",
    "AgentAudio": "codeloop.tools",
    "MCPClient": "codeloop.tools.mcp_client",
    "load_tool": "codeloop.tools",
    "TOOL_MAPPING": "codeloop.agents.default_tools",
    # models
    "Model": "codeloop.models",
    "OpenAIModel": "codeloop.models",
    "OpenAIServerModel": "codeloop.models",
    "AzureOpenAIModel": "codeloop.models",
    "AzureOpenAIServerModel": "codeloop.models",
    "InferenceClientModel": "codeloop.models",
    "HfApiModel": "codeloop.models",
    "LiteLLMModel": "codeloop.models",
    "LiteLLMRouterModel": "codeloop.models",
    "TransformersModel": "codeloop.models",
    "MLXModel": "codeloop.models",
    "VLLMModel": "codeloop.models",
    "ScriptedModel": "codeloop.models",
    "CassetteModel": "codeloop.models",
    "AnthropicModel": "codeloop.models",
    "AmazonBedrockModel": "codeloop.models",
    "AmazonBedrockServerModel": "codeloop.models",
    "LlamaCppModel": "codeloop.models",
    # executors
    "LocalPythonExecutor": "codeloop.executors",
    "InProcessExecutor": "codeloop.executors",
    "E2BExecutor": "codeloop.executors.remote",
    "ModalExecutor": "codeloop.executors.remote",
    "BlaxelExecutor": "codeloop.executors.remote",
    "PythonExecutor": "codeloop.executors",
    "CodeOutput": "codeloop.executors",
    "create_executor": "codeloop.executors",
    "evaluate_python_code": "codeloop.executors",
    "DockerExecutor": "codeloop.executors.remote",
    "WasmExecutor": "codeloop.executors.remote",
    # agents and memory
    "MultiStepAgent": "codeloop.agents",
    "CodeAgent": "codeloop.agents",
    "ToolCallingAgent": "codeloop.agents",
    "RunResult": "codeloop.agents",
    "ActionOutput": "codeloop.agents",
    "ToolOutput": "codeloop.agents",
    "AgentLogger": "codeloop.agents",
    "LogLevel": "codeloop.agents",
    "Monitor": "codeloop.agents",
    "PromptTemplates": "codeloop.agents.prompts",
    "EMPTY_PROMPT_TEMPLATES": "codeloop.agents.prompts",
    "populate_template": "codeloop.agents.prompts",
    "CODEAGENT_RESPONSE_FORMAT": "codeloop.agents",
    "AgentType": "codeloop.tools",
    "AUTHORIZED_TYPES": "codeloop.tools",
    "validate_tool_arguments": "codeloop.tools.validation",
    "DocstringParsingException": "codeloop.tools.docstrings",
    "ApiModel": "codeloop.models",
    "REMOVE_PARAMETER": "codeloop.models",
    "get_clean_message_list": "codeloop.models",
    "get_tool_call_from_text": "codeloop.models",
    "remove_content_after_stop_sequences": "codeloop.models",
    "supports_stop_parameter": "codeloop.models",
    "tool_role_conversions": "codeloop.models",
    "ExecutionTimeoutError": "codeloop.errors",
    "ToolCall": "codeloop.memory",
    "AgentMemory": "codeloop.memory",
    "ActionStep": "codeloop.memory",
    "PlanningStep": "codeloop.memory",
    "TaskStep": "codeloop.memory",
    "SystemPromptStep": "codeloop.memory",
    "FinalAnswerStep": "codeloop.memory",
    # faces
    "GradioUI": "codeloop.ui",
    "stream_to_gradio": "codeloop.ui",
    "launch_gradio_demo": "codeloop.ui",
    # bounded runs: usage limits, compaction, cost
    "SummaryStep": "codeloop.memory",
    "UsageLimits": "codeloop.usage_limits",
    "UsageLimitExceeded": "codeloop.usage_limits",
    "Compaction": "codeloop.compaction",
    "register_price": "codeloop.models.cost",
    "Price": "codeloop.models.cost",
    # smolagents' safe value serializer (remote executors)
    "SafeSerializer": "codeloop.executors.serialization",
    "SerializationError": "codeloop.executors.serialization",
}

__all__ = sorted(_EXPORTS) + ["__version__"]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'codeloop' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return __all__


# CODELOOP_OTEL=1 traces every run without code changes (needs the "telemetry" extra).
if os.environ.get("CODELOOP_OTEL", "").lower() in ("1", "true", "yes", "on"):
    importlib.import_module("codeloop.telemetry").instrument_from_env()

if TYPE_CHECKING:  # let type checkers and IDEs see the real names
    from .errors import *  # noqa: F403
    from .messages import *  # noqa: F403
