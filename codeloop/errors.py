"""The error types a user of codeloop can meet, one hierarchy for the whole library.

Layer 1 (data): no I/O and no imports from the rest of the package. Every error serializes to a
plain dict so the run store can persist it and a resumed run can show it again.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "CodeloopError",
    "AgentError",
    "AgentParsingError",
    "AgentExecutionError",
    "AgentToolCallError",
    "AgentToolExecutionError",
    "AgentMaxStepsError",
    "AgentGenerationError",
    "InterpreterError",
    "ToolDefinitionError",
    "ToolValidationError",
    "ModelConfigurationError",
    "ModelRequestError",
    "ModelContextOverflowError",
    "error_from_dict",
]


class CodeloopError(Exception):
    """Base of every error codeloop raises on purpose."""


class AgentError(CodeloopError):
    """An error during an agent run; its message is shown to the model as an observation.

    ``logger`` is accepted for smolagents compatibility; when given, the error is logged once.
    """

    def __init__(self, message: str, logger: Any = None):
        super().__init__(message)
        self.message = message
        if logger is not None and hasattr(logger, "log_error"):
            logger.log_error(message)

    def dict(self) -> dict[str, str]:
        return {"type": type(self).__name__, "message": str(self.message)}

    def __str__(self) -> str:
        return str(self.message)


class AgentParsingError(AgentError):
    """The model's reply could not be turned into an action (no code block, bad JSON...)."""


class AgentExecutionError(AgentError):
    """The action was parsed but failed while running."""


class AgentToolCallError(AgentExecutionError):
    """A tool was called with arguments that do not match its schema."""


class AgentToolExecutionError(AgentExecutionError):
    """A tool raised while running."""


class AgentMaxStepsError(AgentError):
    """The run reached max_steps without a final answer."""


class AgentGenerationError(AgentError):
    """The model could not be called (after retries); this ends the run."""


class InterpreterError(ValueError, CodeloopError):
    """Code broke a rule of the executor policy, or failed inside the executor.

    It is a ValueError, as in smolagents, so code written against that keeps catching it.
    """


class ExecutionTimeoutError(InterpreterError):
    """Code ran past ``timeout_seconds``. smolagents' name; an ``InterpreterError`` like every policy stop."""


class ToolDefinitionError(CodeloopError, TypeError, ValueError):
    """A tool is badly defined: missing docstring entry, unsupported type, bad name, schema mismatch.
    Both a TypeError and a ValueError, because smolagents raises one or the other for these mistakes."""


class ToolValidationError(CodeloopError, ValueError):
    """A tool was called with arguments that do not fit its inputs schema."""


class ModelConfigurationError(CodeloopError, ValueError):
    """A model cannot be built as configured (missing API key, missing extra, bad option). Also a
    ValueError, which is what smolagents raises for these mistakes."""


class ModelRequestError(CodeloopError):
    """A request to a model provider failed for good (after retries, or not retryable)."""

    def __init__(self, message: str, status_code: int | None = None, attempts: int = 1):
        super().__init__(message)
        self.status_code = status_code
        self.attempts = attempts


class ModelContextOverflowError(ModelRequestError):
    """The request does not fit the model's context window; nothing was truncated to make it fit."""

    def __init__(self, message: str, context_size: int, prompt_tokens: int | None = None):
        super().__init__(message, status_code=400)
        self.context_size = context_size
        self.prompt_tokens = prompt_tokens


_AGENT_ERRORS: dict[str, type[AgentError]] = {
    cls.__name__: cls
    for cls in (
        AgentError,
        AgentParsingError,
        AgentExecutionError,
        AgentToolCallError,
        AgentToolExecutionError,
        AgentMaxStepsError,
        AgentGenerationError,
    )
}


def error_from_dict(data: dict[str, Any]) -> AgentError:
    """Rebuild an AgentError from ``AgentError.dict()`` output (unknown types become AgentError)."""
    cls = _AGENT_ERRORS.get(str(data.get("type")), AgentError)
    return cls(str(data.get("message", "")))
