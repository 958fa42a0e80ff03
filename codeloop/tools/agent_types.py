"""Wrapper types for tool inputs and outputs when ``sanitize_inputs_outputs=True``.

Layer 2 (tools). smolagents wraps tool outputs in ``AgentText``/``AgentImage``/``AgentAudio`` so a UI can
render them, and unwraps such values (``to_raw()``) before a tool sees them. codeloop keeps the text
type (a ``str`` subclass, so nothing else changes) and the unwrapping rule; ``AgentImage`` and
``AgentAudio`` live in ``agent_media`` (loaded only when an image or audio value is wrapped, since the image
type needs Pillow).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

__all__ = [
    "AgentType",
    "AgentText",
    "AGENT_TYPE_MAPPING",
    "handle_agent_input_types",
    "handle_agent_output_types",
]


class AgentType:
    """A value that knows its raw form and its text form."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def to_raw(self) -> Any:
        raise NotImplementedError

    def to_string(self) -> str:
        return str(self.to_raw())


class AgentText(str, AgentType):
    """Text returned by a tool; it is a ``str``."""

    def to_raw(self) -> str:
        return str(self)

    def to_string(self) -> str:
        return str(self)


class _AgentTypeMapping(Mapping[str, type]):
    """Output type name -> wrapper class ("string", "image", "audio"). A mapping rather than a dict so that
    the media classes (they need Pillow) load only when one is looked up."""

    _NAMES = ("string", "image", "audio")

    def __getitem__(self, output_type: str) -> type:
        if output_type == "string":
            return AgentText
        if output_type in ("image", "audio"):
            from .agent_media import AgentAudio, AgentImage

            return AgentImage if output_type == "image" else AgentAudio
        raise KeyError(output_type)

    def __iter__(self) -> Iterator[str]:
        return iter(self._NAMES)

    def __len__(self) -> int:
        return len(self._NAMES)

    def __repr__(self) -> str:
        return "AGENT_TYPE_MAPPING"


AGENT_TYPE_MAPPING: Mapping[str, type] = _AgentTypeMapping()
_AGENT_TYPE_MAPPING = AGENT_TYPE_MAPPING  # smolagents' name


def handle_agent_input_types(*args: Any, **kwargs: Any) -> tuple[list[Any], dict[str, Any]]:
    """Replace wrapped values by their raw form."""
    unwrap = lambda v: v.to_raw() if isinstance(v, AgentType) else v  # noqa: E731
    return [unwrap(a) for a in args], {k: unwrap(v) for k, v in kwargs.items()}


def handle_agent_output_types(output: Any, output_type: str | None = None) -> Any:
    """Wrap outputs as smolagents does: text as AgentText, declared image/audio outputs (or PIL images)
    as AgentImage/AgentAudio; leave everything else as it is."""
    if output_type in ("image", "audio") and output is not None and not isinstance(output, AgentType):
        return AGENT_TYPE_MAPPING[output_type](output)
    if output_type in (None, "any") and type(output).__module__.startswith("PIL."):
        from .agent_media import AgentImage

        return AgentImage(output)
    if (
        isinstance(output, str)
        and not isinstance(output, AgentText)
        and output_type in (None, "string", "any")
    ):
        return AgentText(output)
    return output
