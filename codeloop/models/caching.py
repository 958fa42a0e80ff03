"""Prompt-cache hints the agent loop hands to a model with each request.

Providers cache the longest prefix of a request they saw before. The agent keeps that prefix stable
(the system prompt and earlier steps are the same message objects, converted the same way, at every
step; compaction moves the boundary rarely) and says where its stable segments end:

- ``key``: a stable id for requests sharing a prefix (one agent configuration); OpenAI's
  ``prompt_cache_key`` routes such requests to the same cache.
- ``breakpoints``: indices into the request's message list of the last message of each stable segment
  (the system prompt, the compacted head of memory, the newest message). An Anthropic adapter puts a
  ``cache_control`` breakpoint on those messages (Anthropic allows four).

A model receives ``cache_hints=CacheHints(...)`` as a keyword argument only when its class sets
``accepts_cache_hints = True``; other models never see it.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["CacheHints"]


@dataclass(frozen=True)
class CacheHints:
    key: str | None = None
    breakpoints: tuple[int, ...] = ()
