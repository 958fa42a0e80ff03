"""Agents: the async step loop, ``CodeAgent``, ``ToolCallingAgent``, runs, the console logger.

Layer 5. ``from codeloop.agents import CodeAgent`` works like smolagents' class of the same name.
"""

from .base import MultiStepAgent
from .code_agent import CODEAGENT_RESPONSE_FORMAT, CodeAgent
from .logger import AgentLogger, LogLevel, Monitor
from .loop import ActionOutput, ToolOutput, current_run
from .output import OutputSpec, OutputValidationError
from .run import Run, RunResult
from .tool_calling_agent import ToolCallingAgent
from .toolbox import ManagedAgentTool

__all__ = [
    "MultiStepAgent",
    "CodeAgent",
    "ToolCallingAgent",
    "Run",
    "RunResult",
    "ActionOutput",
    "ToolOutput",
    "AgentLogger",
    "LogLevel",
    "Monitor",
    "ManagedAgentTool",
    "OutputSpec",
    "OutputValidationError",
    "CODEAGENT_RESPONSE_FORMAT",
    "current_run",
]
