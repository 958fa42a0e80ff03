"""Turn codeloop messages (``ChatMessage`` or smolagents-style dicts) into chat-completions messages.

Rules, chosen to match what smolagents sends so prompts behave the same after migration:

* roles ``tool-call`` -> ``assistant`` and ``tool-response`` -> ``user`` (the observation is plain text),
  unless the caller passes ``custom_role_conversions``;
* **native tool role**: an assistant message that carries ``tool_calls`` keeps them, and a tool-response
  message that carries a ``tool_call_id`` (dict key or attribute) becomes ``{"role": "tool", ...}``. This
  is only done when the id is there, because providers reject a ``tool`` message whose id does not answer
  a preceding assistant tool call; text-only memories (what smolagents agents produce) stay text;
* consecutive messages with the same role are merged (some providers reject two user turns in a row);
* image parts ``{"type": "image", "image": ...}`` become ``image_url`` parts with a data URL;
* ``flatten_messages_as_text=True`` joins text parts into one string (and drops images) for providers that
  only accept string content.
"""

from __future__ import annotations

import copy
import json
from typing import Any

from ..messages import ChatMessage, ChatMessageToolCall, MessageRole, encode_image_base64, image_to_data_url

__all__ = [
    "DEFAULT_ROLE_CONVERSIONS",
    "to_chat_messages",
    "tool_schema",
    "message_fields",
    "get_clean_message_list",
    "get_tool_json_schema",
    "tool_role_conversions",
]

DEFAULT_ROLE_CONVERSIONS: dict[str, str] = {
    MessageRole.TOOL_CALL.value: MessageRole.ASSISTANT.value,
    MessageRole.TOOL_RESPONSE.value: MessageRole.USER.value,
}


def message_fields(message: ChatMessage | dict[str, Any]) -> tuple[str, Any, Any, str | None]:
    """(role, content, tool_calls, tool_call_id) of a ChatMessage or a dict message, without copying."""
    if isinstance(message, dict):
        role = message.get("role")
        return (
            str(role.value if isinstance(role, MessageRole) else role),
            message.get("content"),
            message.get("tool_calls"),
            message.get("tool_call_id"),
        )
    role = message.role
    return (
        role.value if isinstance(role, MessageRole) else str(role),
        message.content,
        message.tool_calls,
        getattr(message, "tool_call_id", None),
    )


def _convert_part(part: Any, flatten: bool) -> dict[str, Any] | None:
    if isinstance(part, str):
        return {"type": "text", "text": part}
    kind = part.get("type")
    if kind == "image":
        if flatten:
            return None
        return {"type": "image_url", "image_url": {"url": image_to_data_url(part["image"])}}
    if kind == "image_url" and flatten:
        return None
    return part


def _convert_content(content: Any, flatten: bool) -> str | list[dict[str, Any]]:
    if content is None:
        return ""
    if isinstance(content, str):  # strings stay strings: every OpenAI-compatible server accepts them
        return content
    parts = [p for p in (_convert_part(p, flatten) for p in content) if p is not None]
    if flatten:
        return "\n".join(str(p.get("text", "")) for p in parts if p.get("type") == "text")
    return parts


def _content_of(message: Any, content: Any, flatten: bool) -> str | list[dict[str, Any]]:
    """Converted content, memoised on a ChatMessage while its content is the same object: an agent sends
    the same message objects at every step, so each is converted once per run (images encoded once),
    and its wire form is byte-identical from one request to the next, which prompt caches need."""
    if isinstance(message, dict):
        return _convert_content(content, flatten)
    memo = message.__dict__.get("_codeloop_wire")
    if memo is not None and memo[0] is content and memo[1] is flatten:
        return memo[2]
    converted = _convert_content(content, flatten)
    message.__dict__["_codeloop_wire"] = (content, flatten, converted)
    return converted


def _tool_call_to_openai(call: ChatMessageToolCall | dict[str, Any]) -> dict[str, Any]:
    if isinstance(call, dict):
        fn = call.get("function", {})
        name, args, call_id = fn.get("name"), fn.get("arguments"), call.get("id")
    else:
        name, args, call_id = call.function.name, call.function.arguments, call.id
    if not isinstance(args, str):
        args = json.dumps(args if args is not None else {}, default=str)
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": args}}


def _join(a: str | list[dict[str, Any]], b: str | list[dict[str, Any]]) -> str | list[dict[str, Any]]:
    if isinstance(a, str) and isinstance(b, str):
        return a + "\n" + b if a and b else a or b
    la = [{"type": "text", "text": a}] if isinstance(a, str) else a
    lb = [{"type": "text", "text": b}] if isinstance(b, str) else b
    return la + lb


def to_chat_messages(
    messages: list[ChatMessage | dict[str, Any]],
    role_conversions: dict[str, str] | None = None,
    flatten_messages_as_text: bool = False,
    system_role: str = "system",
) -> list[dict[str, Any]]:
    """Provider-ready chat-completions messages (new dicts; the input messages are never mutated)."""
    conversions = DEFAULT_ROLE_CONVERSIONS if role_conversions is None else role_conversions
    out: list[dict[str, Any]] = []
    for message in messages:
        role, content, tool_calls, tool_call_id = message_fields(message)
        if role not in MessageRole._value2member_map_ and role != "tool":
            raise ValueError(f"Unknown message role {role!r}; use one of {MessageRole.roles()}.")
        if tool_call_id and role in ("tool", MessageRole.TOOL_RESPONSE.value):
            text = _convert_content(content, flatten=True)
            out.append({"role": "tool", "tool_call_id": tool_call_id, "content": text})
            continue
        if tool_calls and role in (MessageRole.ASSISTANT.value, MessageRole.TOOL_CALL.value):
            converted = _convert_content(content, flatten=True) or None
            out.append(
                {
                    "role": "assistant",
                    "content": converted,
                    "tool_calls": [_tool_call_to_openai(c) for c in tool_calls],
                }
            )
            continue
        role = conversions.get(role, role)
        if role == "system" and system_role != "system":
            role = system_role
        converted = _content_of(message, content, bool(flatten_messages_as_text))
        previous = out[-1] if out else None
        if previous is not None and previous["role"] == role and "tool_calls" not in previous:
            previous["content"] = _join(previous["content"], converted)
        else:
            out.append({"role": role, "content": converted})
    return out


def tool_schema(tool: Any) -> dict[str, Any]:
    """The chat-completions ``tools`` entry for a tool (duck-typed: any object with name/description/inputs)."""
    if isinstance(tool, dict):
        return tool if "type" in tool else {"type": "function", "function": tool}
    to_schema = getattr(tool, "to_tool_schema", None)
    if callable(to_schema):
        return to_schema()
    properties: dict[str, Any] = {}
    required: list[str] = []
    for name, spec in (getattr(tool, "inputs", None) or {}).items():
        prop = {k: v for k, v in spec.items() if k != "nullable"}
        if prop.get("type") == "any":
            prop.pop("type")
        properties[name] = prop
        if not spec.get("nullable"):
            required.append(name)
    return {
        "type": "function",
        "function": {
            "name": tool.name,
            "description": getattr(tool, "description", "") or "",
            "parameters": {"type": "object", "properties": properties, "required": required},
        },
    }


tool_role_conversions: dict[str, str] = DEFAULT_ROLE_CONVERSIONS
"""smolagents' name for the default role conversions (kept for compatibility)."""


def get_clean_message_list(
    message_list: list[ChatMessage | dict[str, Any]],
    role_conversions: dict[str, str] | dict[MessageRole, MessageRole] | None = None,
    convert_images_to_image_urls: bool = False,
    flatten_messages_as_text: bool = False,
) -> list[dict[str, Any]]:
    """smolagents' message cleaner, kept for compatibility: same roles merged, roles converted, images encoded.

    codeloop's own path is ``to_chat_messages``; this keeps smolagents' output shape (content as a list of
    parts unless flattened, ``{"type": "image", "image": <base64>}`` parts unless converted to image URLs).
    """
    conversions = {str(getattr(k, "value", k)): str(getattr(v, "value", v)) for k, v in (role_conversions or {}).items()}
    out: list[dict[str, Any]] = []
    for message in message_list:
        role, content, _, _ = message_fields(message)
        if role not in MessageRole._value2member_map_:
            raise ValueError(f"Incorrect role {role}, only {MessageRole.roles()} are supported for now.")
        role = conversions.get(role, role)
        parts = [{"type": "text", "text": content}] if isinstance(content, str) else [dict(p) for p in content or []]
        for part in parts:
            if part.get("type") == "image":
                if flatten_messages_as_text:
                    raise ValueError("Cannot send images with flatten_messages_as_text=True")
                image = part.pop("image")
                if isinstance(image, str):  # already a (data) URL
                    url, encoded = image, image.partition(",")[2]
                else:
                    encoded = encode_image_base64(image)
                    url = "data:image/png;base64," + encoded
                if convert_images_to_image_urls:
                    part.update({"type": "image_url", "image_url": {"url": url}})
                else:
                    part["image"] = encoded
        previous = out[-1] if out else None
        if previous is not None and previous["role"] == role:
            if flatten_messages_as_text:
                previous["content"] += "\n" + (parts[0]["text"] if parts else "")
                continue
            for part in parts:
                last = previous["content"][-1] if previous["content"] else None
                if part.get("type") == "text" and last is not None and last.get("type") == "text":
                    last["text"] += "\n" + part["text"]
                else:
                    previous["content"].append(part)
        else:
            text = parts[0]["text"] if parts and flatten_messages_as_text else ""
            out.append({"role": role, "content": text if flatten_messages_as_text else parts})
    return out


def get_tool_json_schema(tool: Any) -> dict[str, Any]:
    """``tool_schema`` in smolagents' shape (kept for compatibility): nullable inputs keep
    ``"nullable": True`` in their property, as smolagents writes them."""
    schema = copy.deepcopy(tool_schema(tool))  # tool_schema may hand out a tool's cached schema
    properties = schema.get("function", {}).get("parameters", {}).get("properties", {})
    for name, spec in (getattr(tool, "inputs", None) or {}).items():
        if isinstance(spec, dict) and spec.get("nullable") and name in properties:
            properties[name] = {**properties[name], "nullable": True}
    return schema
