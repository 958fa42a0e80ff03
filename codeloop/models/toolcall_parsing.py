"""Find tool calls written as JSON in a model's text, for models without (or not using) native tool calls.

Models write JSON in many shapes; all of these are understood:

* fenced (```json ... ```) or bare, with prose before and after;
* ``{"name": ..., "arguments": {...}}`` and the common variants (``tool_name``/``tool``/``function`` for
  the name, ``arguments``/``parameters``/``args``/``tool_arguments``/``input`` for the arguments), a
  ``{"function": {...}}`` wrapper, ``{"tool_calls": [...]}`` or a plain list of calls;
* slightly broken JSON: trailing commas, Python literals (single quotes, True/False/None).

Arguments given as a JSON string are decoded into a dict when they are valid JSON.
"""

from __future__ import annotations

import ast
import json
import re
import uuid
from typing import Any

from ..messages import ChatMessageToolCall, ChatMessageToolCallFunction

__all__ = ["extract_json_values", "tool_calls_from_text", "parse_arguments", "loads_lenient"]

_FENCE = re.compile(r"```[ \t]*[A-Za-z_+-]*[ \t]*\n?(.*?)```", re.DOTALL)
_TRAILING_COMMA = re.compile(r",(\s*[}\]])")
_NAME_KEYS = ("name", "tool_name", "tool", "function_name")
_ARG_KEYS = ("arguments", "parameters", "args", "tool_arguments", "input", "tool_input")


def _strip_trailing_commas(text: str) -> str:
    """Remove commas before a closing bracket, outside of strings."""
    out: list[str] = []
    in_string = escaped = False
    quote = ""
    for i, ch in enumerate(text):
        if in_string:
            out.append(ch)
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == quote:
                in_string = False
            continue
        if ch in "\"'":
            in_string, quote = True, ch
        elif ch == ",":
            rest = text[i + 1 :].lstrip()
            if rest[:1] in ("}", "]"):
                continue
        out.append(ch)
    return "".join(out)


def loads_lenient(text: str) -> Any:
    """json.loads, then with trailing commas removed, then as a Python literal. Raises ValueError."""
    try:
        return json.loads(text)
    except ValueError:
        pass
    cleaned = _strip_trailing_commas(text)
    try:
        return json.loads(cleaned)
    except ValueError:
        pass
    try:
        return ast.literal_eval(cleaned)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        pass
    pythonish = re.sub(
        r"\btrue\b", "True", re.sub(r"\bfalse\b", "False", re.sub(r"\bnull\b", "None", cleaned))
    )
    try:
        return ast.literal_eval(pythonish)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        raise ValueError(f"Not valid JSON: {text[:200]!r}") from None


def _balanced_end(text: str, start: int) -> int | None:
    """Index just past the bracket that closes the one at ``start`` (string-aware), or None."""
    opening = text[start]
    closing = "}" if opening == "{" else "]"
    depth = 0
    in_string = escaped = False
    quote = ""
    for i in range(start, len(text)):
        ch = text[i]
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == quote:
                in_string = False
        elif ch in "\"'":
            in_string, quote = True, ch
        elif ch in "{[":
            depth += 1
        elif ch in "}]":
            depth -= 1
            if depth == 0:
                return i + 1 if ch == closing else None
    return None


def extract_json_values(text: str) -> list[Any]:
    """Every JSON object/array found in ``text``: fenced blocks first, else top-level bracketed spans."""
    values: list[Any] = []
    for block in _FENCE.findall(text):
        try:
            values.append(loads_lenient(block.strip()))
        except ValueError:
            values.extend(_scan(block))
    return values or _scan(text)


def _scan(text: str) -> list[Any]:
    values: list[Any] = []
    i = 0
    while i < len(text):
        if text[i] in "{[":
            end = _balanced_end(text, i)
            if end is not None:
                try:
                    values.append(loads_lenient(text[i:end]))
                    i = end
                    continue
                except ValueError:
                    pass
        i += 1
    return values


def parse_arguments(arguments: Any) -> Any:
    """Decode arguments given as a JSON string; anything else (or invalid JSON) is returned unchanged."""
    if isinstance(arguments, str):
        stripped = arguments.strip()
        if stripped[:1] in ("{", "["):
            try:
                return loads_lenient(stripped)
            except ValueError:
                return arguments
    return arguments


def _as_call(value: Any, name_key: str, args_key: str) -> ChatMessageToolCall | None:
    if not isinstance(value, dict):
        return None
    if isinstance(value.get("function"), dict):
        inner = value["function"]
        call = _as_call(inner, name_key, args_key)
        if call is not None and isinstance(value.get("id"), str):
            call.id = value["id"]
        return call
    name_keys = (name_key, *[k for k in _NAME_KEYS if k != name_key])
    name = next((value[k] for k in name_keys if isinstance(value.get(k), str)), None)
    if name is None:
        return None
    arg_keys = (args_key, *[k for k in _ARG_KEYS if k != args_key])
    args = next((value[k] for k in arg_keys if k in value), {})
    call_id = value.get("id") if isinstance(value.get("id"), str) else f"call_{uuid.uuid4().hex[:12]}"
    return ChatMessageToolCall(
        function=ChatMessageToolCallFunction(name=name, arguments=parse_arguments(args)), id=call_id
    )


def tool_calls_from_text(
    text: str, name_key: str = "name", arguments_key: str = "arguments"
) -> list[ChatMessageToolCall]:
    """The tool calls written in ``text`` (empty list when there are none)."""
    calls: list[ChatMessageToolCall] = []
    for value in extract_json_values(text or ""):
        items = value.get("tool_calls") if isinstance(value, dict) and "tool_calls" in value else value
        for item in items if isinstance(items, list) else [items]:
            call = _as_call(item, name_key, arguments_key)
            if call is not None:
                calls.append(call)
    return calls


def parse_json_if_needed(arguments: str | dict[str, Any]) -> Any:
    """Decode ``arguments`` when it is JSON text of any kind; else return it as is (smolagents' helper,
    kept for compatibility; codeloop's own ``parse_arguments`` only decodes objects and arrays)."""
    if isinstance(arguments, str):
        try:
            return json.loads(arguments)
        except ValueError:
            return arguments
    return arguments


def get_tool_call_from_text(text: str, tool_name_key: str, tool_arguments_key: str) -> ChatMessageToolCall:
    """smolagents' single-call parser, kept for compatibility: the first tool call written in ``text``.

    Raises ``ValueError`` naming the missing key when the JSON lacks ``tool_name_key``.
    """
    values = [v for v in extract_json_values(text or "") if isinstance(v, dict)]
    if not values:
        raise ValueError(f"The text holds no JSON object with a tool call: {text[:300]!r}")
    value = values[0]
    if tool_name_key not in value:
        raise ValueError(
            f"Tool call needs to have a key '{tool_name_key}'. Got keys: {list(value.keys())} instead"
        )
    args = parse_arguments(value.get(tool_arguments_key))
    return ChatMessageToolCall(
        id=str(uuid.uuid4()),
        type="function",
        function=ChatMessageToolCallFunction(name=value[tool_name_key], arguments=args),
    )


def parse_json_blob(json_blob: str) -> tuple[dict[str, Any], str]:
    """The first JSON object in ``json_blob`` and the text before it (smolagents' helper, kept for
    compatibility). Raises ``ValueError`` when there is none."""
    start = json_blob.find("{")
    if start < 0:
        raise ValueError("The model output does not contain any JSON blob.")
    end = _balanced_end(json_blob, start)
    if end is None:
        raise ValueError(f"The JSON blob you used is invalid: it is not closed: {json_blob[start:][:300]!r}")
    try:
        value = loads_lenient(json_blob[start:end])
    except ValueError as exc:
        raise ValueError(f"The JSON blob you used is invalid: {exc}") from None
    return value, json_blob[:start]
