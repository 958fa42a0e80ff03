"""``PythonInterpreterTool``: lets a tool-calling agent run a Python snippet.

Layer 3 (executors): a tool that runs code is built on the executors, so it lives here rather than
among the tools (layer 2), which never import upwards. ``codeloop.agents.default_tools`` lists it in
``TOOL_MAPPING``.

Name, input, answer layout (``Stdout:`` then ``Output:``) and the fresh namespace per call follow
smolagents. The difference: the code runs in codeloop's isolated worker process by default
(``executor_type="local"``), not in the host process, because it is code a model wrote; pass
``executor_type="inprocess"`` for the faster in-process executor with the same policy.
"""

from __future__ import annotations

from typing import Any

from ..errors import InterpreterError
from ..tools.base import Tool
from .policy import DEFAULT_AUTHORIZED_IMPORTS

__all__ = ["PythonInterpreterTool"]


class PythonInterpreterTool(Tool):
    """Evaluates Python code under codeloop's executor policy and returns what it printed and its value.

    Args:
        authorized_imports: Modules the code may import besides the safe default set (``"*"``: any).
        timeout_seconds: Wall-clock limit for one snippet (default 30, as smolagents).
        executor_type: ``"local"`` (isolated worker process, default) or ``"inprocess"``.
        executor_kwargs: Extra arguments for ``codeloop.executors.create_executor`` (memory limits...).

    A failing snippet raises ``InterpreterError`` (as smolagents does); its message names the line and
    the error and repeats what the code printed before failing. Agents show it to the model.
    """

    name = "python_interpreter"
    description = "This is a tool that evaluates python code. It can be used to perform calculations."
    inputs = {"code": {"type": "string", "description": "The python code to run in interpreter"}}
    output_type = "string"

    def __init__(
        self,
        *args: Any,
        authorized_imports: list[str] | None = None,
        timeout_seconds: float | None = 30,
        executor_type: str = "local",
        executor_kwargs: dict[str, Any] | None = None,
        **kwargs: Any,
    ):
        if executor_type not in ("local", "inprocess", "in_process", "in-process"):
            raise ValueError(f"Unknown executor_type {executor_type!r}: use 'local' or 'inprocess'.")
        self.additional_authorized_imports = sorted(set(authorized_imports or []))
        self.authorized_imports = sorted(
            set(DEFAULT_AUTHORIZED_IMPORTS) | set(self.additional_authorized_imports)
        )
        self.timeout_seconds = timeout_seconds
        self.executor_type = executor_type
        self.executor_kwargs = dict(executor_kwargs or {})
        allowed = (
            "any python library" if "*" in self.authorized_imports
            else f"the following python libraries: {self.authorized_imports}"
        )  # fmt: skip
        self.inputs = {
            "code": {
                "type": "string",
                "description": (
                    "The code snippet to evaluate. All variables used in this snippet must be defined in this "
                    f"same snippet, else you will get an error. This code can only import {allowed}."
                ),
            }
        }
        super().__init__(*args, **kwargs)

    async def forward(self, code: str) -> str:
        from . import create_executor  # the package imports this module's siblings, not this one

        executor = create_executor(
            self.executor_type,
            additional_authorized_imports=list(self.additional_authorized_imports),
            timeout_seconds=self.timeout_seconds,
            **self.executor_kwargs,
        )
        try:
            result = await executor.aexecute(code)
        except InterpreterError as e:
            logs = getattr(e, "logs", "") or ""
            message = str(e)
            if logs:
                message += f"\nStdout before the error:\n{logs}"
            error = type(e)(message)  # keeps ExecutionTimeoutError a timeout
            error.logs = logs  # type: ignore[attr-defined]
            error.exc_type = getattr(e, "exc_type", None)  # type: ignore[attr-defined]
            raise error from e
        finally:
            await executor.aclose()
        return f"Stdout:\n{result.logs}\nOutput: {result.output}"
