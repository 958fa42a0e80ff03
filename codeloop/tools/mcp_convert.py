"""Turn MCP tool definitions and call results into codeloop tool schemas and Python values.

Layer 2 (tools). Pure functions on plain dicts and the ``mcp`` SDK's result objects (read by attribute,
so this module imports nothing from the SDK): ``$ref`` resolution, ``anyOf``/nullable folding and
enums for inputs, the output schema, and content blocks to text, dicts, AgentImage and AgentAudio.
"""

from __future__ import annotations

import base64
import json
from typing import Any

__all__ = ["resolve_refs", "inputs_from_schema", "output_from_schema", "convert_result", "MCPToolError"]

_KEEP = ("type", "description", "enum", "items", "properties", "required", "additionalProperties",
         "anyOf", "prefixItems", "minimum", "maximum", "format", "pattern", "minItems", "maxItems")
_MAX_DEPTH = 12


class MCPToolError(RuntimeError):
    """An MCP server answered a tool call with an error; the message is the server's own text."""


def resolve_refs(schema: Any, root: dict[str, Any] | None = None, depth: int = 0) -> Any:
    """Inline local ``$ref``s (``#/$defs/X``, ``#/definitions/X``); a cycle deeper than 12 becomes an object."""
    root = schema if root is None else root
    if isinstance(schema, list):
        return [resolve_refs(item, root, depth) for item in schema]
    if not isinstance(schema, dict):
        return schema
    if "$ref" in schema:
        if depth >= _MAX_DEPTH:
            return {"type": "object", "description": schema.get("description", "")}
        target = _lookup(root, schema["$ref"])
        merged = {**target, **{k: v for k, v in schema.items() if k != "$ref"}}
        return resolve_refs(merged, root, depth + 1)
    return {
        k: resolve_refs(v, root, depth)
        for k, v in schema.items()
        if k not in ("$defs", "definitions")
    }


def _lookup(root: dict[str, Any], ref: str) -> dict[str, Any]:
    if not ref.startswith("#/"):
        raise ValueError(f"MCP schema uses a non-local $ref {ref!r}; only '#/...' references are supported.")
    node: Any = root
    for part in ref[2:].split("/"):
        node = node.get(part.replace("~1", "/").replace("~0", "~")) if isinstance(node, dict) else None
    if not isinstance(node, dict):
        raise ValueError(f"MCP schema $ref {ref!r} points at nothing.")
    return node


def _fold(schema: dict[str, Any]) -> dict[str, Any]:
    """One property schema in the tool dialect: nullable instead of null branches, 'any' for no type."""
    out = {k: v for k, v in schema.items() if k in _KEEP}
    nullable = False
    kind = out.get("type")
    if isinstance(kind, list):
        rest = [k for k in kind if k != "null"]
        nullable = len(rest) < len(kind)
        out["type"] = rest[0] if len(rest) == 1 else (rest or "null")
    branches = schema.get("anyOf") or schema.get("oneOf")
    if isinstance(branches, list) and "type" not in out:
        out.pop("anyOf", None)
        non_null = [b for b in branches if not (isinstance(b, dict) and b.get("type") == "null")]
        nullable = nullable or len(non_null) < len(branches)
        if len(non_null) == 1:
            inner = _fold(non_null[0])
            nullable = nullable or bool(inner.pop("nullable", False))
            out = {**inner, **{k: v for k, v in out.items() if k != "type"}}
        elif non_null:
            out["anyOf"] = [_fold(b) for b in non_null]
    if "type" not in out and "anyOf" not in out:
        out["type"] = "object" if "properties" in out else ("string" if "enum" in out and all(
            isinstance(v, str) for v in out["enum"]) else "any")
    if isinstance(out.get("items"), dict):
        out["items"] = _fold(out["items"])
    if isinstance(out.get("properties"), dict):
        out["properties"] = {k: _fold(v) if isinstance(v, dict) else v for k, v in out["properties"].items()}
    if nullable:
        out["nullable"] = True
    return out


def inputs_from_schema(input_schema: dict[str, Any] | None) -> tuple[dict[str, dict[str, Any]], frozenset[str]]:
    """``inputs`` for a Tool and the names of the optional ones (not in ``required``)."""
    schema = resolve_refs(input_schema or {})
    required = set(schema.get("required") or [])
    inputs: dict[str, dict[str, Any]] = {}
    for name, prop in (schema.get("properties") or {}).items():
        prop = prop if isinstance(prop, dict) else {}
        entry = _fold(prop)
        if not entry.get("description"):
            entry["description"] = prop.get("title") or f"The '{name}' argument."
        if name not in required:
            entry["nullable"] = True
            if "default" in prop:
                entry["description"] += f" (default: {json.dumps(prop['default'], default=str)})"
        inputs[name] = entry
    return inputs, frozenset(inputs) - required


def output_from_schema(output_schema: dict[str, Any] | None) -> tuple[str, dict[str, Any] | None, bool]:
    """(output_type, output_schema, unwrap): MCP servers built with the Python SDK wrap a scalar return
    value as ``{"result": value}`` (schema titled ``<name>Output``); such results are unwrapped."""
    if not output_schema:
        return "any", None, False
    schema = resolve_refs(output_schema)
    props = schema.get("properties") or {}
    if (
        set(props) == {"result"}
        and schema.get("required") == ["result"]
        and str(schema.get("title", "")).endswith("Output")
    ):
        inner = _fold(props["result"])
        kind = inner.get("type")
        return (kind if isinstance(kind, str) and kind != "null" else "any"), None, True
    return "object", schema, False


def convert_result(result: Any, *, structured: bool, unwrap: bool) -> Any:
    """A ``CallToolResult`` as the value the agent sees; an error result raises MCPToolError."""
    if getattr(result, "is_error", False):
        text = "\n".join(_text(block) for block in result.content) or "(no message)"
        raise MCPToolError(text)
    data = getattr(result, "structured_content", None)
    if structured and data is not None:
        if unwrap and isinstance(data, dict) and "result" in data:
            return data["result"]
        return data
    values = [_block(block) for block in result.content]
    if not values:
        return None
    return values[0] if len(values) == 1 else values


def _text(block: Any) -> str:
    value = _block(block)
    return value if isinstance(value, str) else repr(value)


def _block(block: Any) -> Any:
    kind = getattr(block, "type", None)
    if kind == "text":
        return block.text
    if kind == "image":
        from .agent_media import AgentImage

        return AgentImage(base64.b64decode(block.data))
    if kind == "audio":
        from .agent_media import AgentAudio

        return AgentAudio(base64.b64decode(block.data))
    if kind == "resource":
        res = block.resource
        return res.text if hasattr(res, "text") else base64.b64decode(res.blob)
    if kind == "resource_link":
        return str(block.uri)
    return repr(block)
