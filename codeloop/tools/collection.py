"""``ToolCollection``: a named group of tools handed to an agent together.

Layer 2 (tools). Loading collections from the Hugging Face Hub or an MCP server comes in a later
release; those constructors exist so code written for smolagents fails with a message that says so.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from ..errors import ToolDefinitionError
from .base import Tool

__all__ = ["ToolCollection"]


class ToolCollection:
    """A list of tools (``.tools``) with lookup by name; pass ``collection.tools`` to an agent."""

    def __init__(self, tools: Iterable[Tool]):
        self.tools: list[Tool] = list(tools)
        seen: set[str] = set()
        for item in self.tools:
            if not isinstance(item, Tool):
                raise ToolDefinitionError(
                    f"ToolCollection holds Tool instances; got {type(item).__name__}. Wrap functions with @tool."
                )
            if item.name in seen:
                raise ToolDefinitionError(
                    f"ToolCollection has two tools named '{item.name}'; names must be unique."
                )
            seen.add(item.name)

    def __iter__(self) -> Iterator[Tool]:
        return iter(self.tools)

    def __len__(self) -> int:
        return len(self.tools)

    def __contains__(self, name: object) -> bool:
        return any(t.name == name for t in self.tools)

    def __getitem__(self, name: str) -> Tool:
        for item in self.tools:
            if item.name == name:
                return item
        raise KeyError(
            f"No tool named '{name}' in this collection; it has: {', '.join(self.names) or 'none'}."
        )

    @property
    def names(self) -> list[str]:
        return [t.name for t in self.tools]

    def __repr__(self) -> str:
        return f"ToolCollection({self.names})"

    @classmethod
    def from_hub(cls, collection_slug: str, token: str | None = None, trust_remote_code: bool = False) -> Any:
        raise NotImplementedError(
            f"ToolCollection.from_hub({collection_slug!r}) is not available in codeloop yet. Load the tools "
            "yourself and pass them as ToolCollection([tool_a, tool_b])."
        )

    @classmethod
    def from_mcp(cls, server_parameters: Any, trust_remote_code: bool = False, **kwargs: Any) -> Any:
        raise NotImplementedError(
            "ToolCollection.from_mcp is not available in codeloop yet (MCP support is planned). Until then, "
            "wrap the server's tools with @tool functions and pass them as ToolCollection([...])."
        )
