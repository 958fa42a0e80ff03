"""Tools every agent may get: ``final_answer`` and ``user_input``.

Layer 2 (tools). Names, inputs and output types match smolagents so prompts carry over.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .base import Tool

__all__ = ["FinalAnswerTool", "UserInputTool"]


class FinalAnswerTool(Tool):
    """Ends the run with its argument as the answer; the agent loop recognises the call by name."""

    name = "final_answer"
    description = "Provides a final answer to the given problem."
    inputs = {"answer": {"type": "any", "description": "The final answer to the problem"}}
    output_type = "any"
    blocking = False  # returns its argument: no thread needed in acall

    def forward(self, answer: Any) -> Any:
        return answer


def _stdin_input(prompt: str) -> str:
    return input(prompt)


class UserInputTool(Tool):
    """Asks the person running the agent a question.

    ``input_fn`` takes the prompt text and returns the answer; it defaults to reading stdin. It may be
    an ``async def`` function (for a web UI, say); ``acall`` then awaits it.
    """

    name = "user_input"
    description = "Asks for user's input on a specific question"
    inputs = {"question": {"type": "string", "description": "The question to ask the user"}}
    output_type = "string"

    def __init__(self, input_fn: Callable[[str], Any] | None = None) -> None:
        super().__init__()
        self.input_fn = input_fn or _stdin_input

    def forward(self, question: str) -> Any:
        return self.input_fn(f"{question} => Type your answer here:")
