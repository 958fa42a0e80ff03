"""``ToolCollection``: a named group of tools handed to an agent together.

Layer 2 (tools). ``from_mcp`` loads the tools of MCP servers (``mcp_client``); ``from_hub`` loads a Hub
collection of tool Spaces or repositories.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
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
    def from_hub(
        cls, collection_slug: str, token: str | None = None, trust_remote_code: bool = False
    ) -> ToolCollection:
        """The tools of every Space in a Hub collection (each Space's ``tool.py``); needs trust_remote_code=True."""
        from .sharing import collection_from_hub

        return cls(collection_from_hub(collection_slug, token=token, trust_remote_code=trust_remote_code))

    @classmethod
    @contextmanager
    def from_mcp(
        cls,
        server_parameters: Any,
        trust_remote_code: bool = False,
        structured_output: bool | None = None,
        **kwargs: Any,
    ) -> Iterator[ToolCollection]:
        """``with ToolCollection.from_mcp(params, trust_remote_code=True) as tc:`` the tools of one or
        several MCP servers (see ``MCPClient`` for ``server_parameters``); disconnects at the end."""
        if not trust_remote_code:
            raise ValueError(
                "Loading tools from an MCP server runs what that server does on your behalf (a stdio server "
                "is a program started on this machine): pass trust_remote_code=True if you trust it."
            )
        from .mcp_client import MCPClient

        client = MCPClient(server_parameters, structured_output=structured_output, **kwargs)
        try:
            yield cls(client.get_tools())
        finally:
            client.disconnect()
