"""Every name in the ``__all__`` lists of smolagents 1.26.0's modules (57, read from its source) imports from
the top of codeloop, so ``from smolagents import X`` becomes ``from codeloop import X`` for any X."""

from __future__ import annotations

import codeloop

SMOLAGENTS_ALL = [
        "AUTHORIZED_TYPES", "AgentAudio", "AgentError", "AgentImage", "AgentLogger", "AgentMemory", "AgentText",
        "AgentType", "AmazonBedrockModel", "AmazonBedrockServerModel", "ApiModel", "ApiWebSearchTool",
        "AzureOpenAIModel", "AzureOpenAIServerModel", "BlaxelExecutor", "ChatMessage", "DockerExecutor",
        "DuckDuckGoSearchTool", "E2BExecutor", "FinalAnswerTool", "GoogleSearchTool", "GradioUI",
        "InferenceClientModel", "LiteLLMModel", "LiteLLMRouterModel", "LocalPythonExecutor", "LogLevel",
        "MCPClient", "MLXModel", "MessageRole", "ModalExecutor", "Model", "Monitor", "OpenAIModel",
        "OpenAIServerModel", "PythonInterpreterTool", "REMOVE_PARAMETER", "SafeSerializer",
        "SerializationError", "SpeechToTextTool", "Timing", "TokenUsage", "Tool", "ToolCollection",
        "TransformersModel", "UserInputTool", "VLLMModel", "VisitWebpageTool", "WebSearchTool",
        "WikipediaSearchTool", "evaluate_python_code", "get_clean_message_list", "launch_gradio_demo",
        "load_tool", "stream_to_gradio", "tool", "tool_role_conversions",
]  # fmt: skip


def test_every_smolagents_public_name_imports_from_codeloop() -> None:
    assert len(SMOLAGENTS_ALL) == 57
    missing = [name for name in SMOLAGENTS_ALL if not hasattr(codeloop, name)]
    assert missing == []
    assert set(SMOLAGENTS_ALL) <= set(codeloop.__all__)
