"""Tools: the ``Tool`` base class, the ``@tool`` decorator, schemas, validation and builtin tools.

Layer 2. Importing this package loads no optional dependency (pydantic is recognised by duck typing).
"""

from .agent_types import AgentText, AgentType, handle_agent_input_types, handle_agent_output_types
from .base import Tool, load_tool, run_coroutine_sync
from .builtin import FinalAnswerTool, UserInputTool
from .collection import ToolCollection
from .decorator import FunctionTool, function_schema, tool
from .schema import AUTHORIZED_TYPES, json_schema_for_type, schema_for_type, to_json_schema, validate_value
from .validation import check_call_arguments, is_valid_name

__all__ = [
    "AUTHORIZED_TYPES",
    "AgentText",
    "AgentType",
    "FinalAnswerTool",
    "FunctionTool",
    "Tool",
    "ToolCollection",
    "UserInputTool",
    "check_call_arguments",
    "function_schema",
    "handle_agent_input_types",
    "handle_agent_output_types",
    "is_valid_name",
    "json_schema_for_type",
    "load_tool",
    "run_coroutine_sync",
    "schema_for_type",
    "to_json_schema",
    "tool",
    "validate_value",
]
