"""Google-style docstring parsing for tools: description, per-argument text, returns text, choices.

Layer 2 (tools). Pure string work, no imports from the rest of codeloop.

The parser reads sections by indentation rather than by regular expressions over the whole text, so
an argument description may span several lines and may itself contain ``Note: ...`` without being
mistaken for a new argument. Lines of one description are joined with single spaces.
"""

from __future__ import annotations

import ast
import inspect
import json
import re
from dataclasses import dataclass, field
from typing import Any

from ..errors import ToolDefinitionError

__all__ = ["ParsedDocstring", "parse_docstring", "split_choices"]

# Section headers that end the free-text description. Other Google headers (Examples:, Note:) after the
# Args block end the previous section and are otherwise ignored.
_ARGS_HEADERS = {"args", "arguments", "parameters", "params", "attributes", "keyword args", "kwargs"}
_RETURNS_HEADERS = {"returns", "return", "yields", "yield"}
_OTHER_HEADERS = {
    "raises",
    "examples",
    "example",
    "note",
    "notes",
    "see also",
    "warning",
    "warnings",
    "todo",
    "references",
}
_ALL_HEADERS = _ARGS_HEADERS | _RETURNS_HEADERS | _OTHER_HEADERS
_DESCRIPTION_HEADERS = _OTHER_HEADERS - {"raises"}  # headers that do not end the description
_HEADER_RE = re.compile(r"^([A-Za-z][A-Za-z ]*):\s*$")
# "name: text", "name (int, optional): text", "*args: text"
_ARG_LINE_RE = re.compile(r"^\*{0,2}(\w+)\s*(?:\([^)]*\))?\s*:\s*(.*)$")
# A leading type in a Returns block ("str: the text", "list[int] | None: ...") is dropped; a sentence
# such as "The sum: a number" is kept because a type never holds a bare space between words.
# a type written before the description ("list[dict[str, Any]]: ..."), brackets nested two deep
_TYPE_TEXT = r"[A-Za-z_][\w.]*(\[(?:[^\[\]]|\[(?:[^\[\]]|\[[^\[\]]*\])*\])*\])?"
_RETURN_TYPE_RE = re.compile(rf"^{_TYPE_TEXT}(\s*\|\s*{_TYPE_TEXT})*\s*:\s+")
# A sentence may end after the parenthesis ("... (choices: ["a", "b"]).") as people write it.
_CHOICES_RE = re.compile(r"\(choices:\s*(.*?)\)\s*\.?\s*$", re.IGNORECASE | re.DOTALL)



class DocstringParsingException(ToolDefinitionError):
    """A tool function's docstring lacks what the schema needs (smolagents' name, kept for compatibility)."""

@dataclass
class ParsedDocstring:
    """What a tool needs from a docstring."""

    description: str = ""
    args: dict[str, str] = field(default_factory=dict)
    returns: str | None = None


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def _join(lines: list[str]) -> str:
    return " ".join(part.strip() for part in lines if part.strip())


def parse_docstring(doc: str | None) -> ParsedDocstring:
    """Split a Google-style docstring into description, argument descriptions and returns text."""
    if not doc:
        return ParsedDocstring()
    lines = inspect.cleandoc(doc).splitlines()
    # (header, [lines]) in order; header "" is the description before any section.
    sections: list[tuple[str, list[str]]] = [("", [])]
    for line in lines:
        match = _HEADER_RE.match(line.strip())
        header = match.group(1).strip().lower() if match and _indent(line) == 0 else None
        # Like smolagents, the description runs until Args/Returns/Raises: an "Example:" block before
        # them stays part of it (models read it). After that, any known header starts a new section.
        in_description = len(sections) == 1
        if header in _ALL_HEADERS and not (in_description and header in _DESCRIPTION_HEADERS):
            sections.append((header, []))
        else:
            sections[-1][1].append(line)

    parsed = ParsedDocstring(description="\n".join(sections[0][1]).strip())
    for header, body in sections[1:]:
        if header in _ARGS_HEADERS:
            for name, text in _parse_args_block(body).items():
                parsed.args.setdefault(name, text)
        elif header in _RETURNS_HEADERS and parsed.returns is None:
            text = _join(body)
            text = _RETURN_TYPE_RE.sub("", text, count=1)
            parsed.returns = text or None
    return parsed


def _parse_args_block(body: list[str]) -> dict[str, str]:
    """Entries start at the block's smallest indentation; deeper lines continue the current entry."""
    content = [line for line in body if line.strip()]
    if not content:
        return {}
    base = _indent(content[0])  # the first entry sets the indentation of entries
    entries: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in content:
        stripped = line.strip()
        match = _ARG_LINE_RE.match(stripped) if _indent(line) <= base else None
        if match:
            current = entries.setdefault(match.group(1), [])
            current.append(match.group(2))
        elif current is not None:
            current.append(stripped)
    return {name: _join(parts) for name, parts in entries.items()}


def split_choices(description: str) -> tuple[str, list[Any] | None]:
    """Take a trailing ``(choices: [...])`` off an argument description and return it as an enum list.

    Raises ValueError when the choices are not a list literal (the caller names tool and argument).
    """
    match = _CHOICES_RE.search(description)
    if not match:
        return description, None
    raw = match.group(1).strip()
    try:
        values = json.loads(raw)
    except json.JSONDecodeError:
        try:
            values = ast.literal_eval(raw)
        except (ValueError, SyntaxError):
            raise ValueError(f'\'(choices: {raw})\' is not a list literal such as ["a", "b"]') from None
    if not isinstance(values, list | tuple) or not values:
        raise ValueError(f'\'(choices: {raw})\' must be a non-empty list such as ["a", "b"]')
    values = [v.strip() if isinstance(v, str) else v for v in values]
    return description[: match.start()].strip(), list(values)
