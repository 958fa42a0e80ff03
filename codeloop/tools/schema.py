"""Python type hints -> tool input schemas and JSON schemas; validating values against them.

Layer 2 (tools). Imports only the data layer. pydantic is never imported: models are recognised by
duck typing (``model_fields`` and ``model_json_schema``), so it stays an optional dependency.

Two schema dialects live here:

* the **tool dialect** used in ``Tool.inputs`` and ``Tool.output_type``. It is smolagents' dialect, kept
  key for key so prompts and saved tools carry over: type names from ``AUTHORIZED_TYPES`` (including
  ``"any"``, ``"image"``, ``"audio"``), ``"nullable": True`` for values that may be None, and plain JSON
  schema keywords (``enum``, ``items``, ``prefixItems``, ``additionalProperties``, ``properties``,
  ``required``, ``anyOf``);
* standard **JSON schema**, which providers accept for native tool calling and typed outputs.
  ``to_json_schema`` converts the first into the second.

``validate_value`` understands both, so one checker serves tool calls and typed final answers.
"""

from __future__ import annotations

import collections.abc
import copy
import dataclasses
import enum
import json
import numbers
import types
import typing
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints

from ..errors import ToolValidationError
from .docstrings import parse_docstring

__all__ = [
    "AUTHORIZED_TYPES",
    "TypeHintError",
    "schema_for_type",
    "json_schema_for_type",
    "to_json_schema",
    "function_tool_schema",
    "python_type_text",
    "validate_value",
    "schema_errors",
    "is_structured_type",
]

AUTHORIZED_TYPES = [
    "string",
    "boolean",
    "integer",
    "number",
    "image",
    "audio",
    "array",
    "object",
    "any",
    "null",
]

_BASE_TYPES: dict[Any, str] = {
    str: "string",
    int: "integer",
    float: "number",
    bool: "boolean",
    list: "array",
    tuple: "array",
    dict: "object",
    Any: "any",
    type(None): "null",
    object: "object",
}
_SEQUENCE_ORIGINS = {list, collections.abc.Sequence, collections.abc.MutableSequence}
_MAPPING_ORIGINS = {dict, collections.abc.Mapping, collections.abc.MutableMapping}
# Keys that give a union member its shape; members with different shape keys can share one schema.
_SHAPE_KEYS = ("items", "prefixItems", "properties", "required", "additionalProperties")


class TypeHintError(ValueError):
    """A type hint has no schema. Callers wrap it in ToolDefinitionError naming the tool and field."""


# ---------------------------------------------------------------------------------------------------
# type hint -> tool dialect


def is_structured_type(tp: Any) -> bool:
    """True for dataclasses, TypedDicts and pydantic models: types that become object schemas."""
    return isinstance(tp, type) and (
        dataclasses.is_dataclass(tp) or typing.is_typeddict(tp) or _is_pydantic_model(tp)
    )


def _is_pydantic_model(tp: Any) -> bool:
    return (
        isinstance(tp, type)
        and hasattr(tp, "model_fields")
        and callable(getattr(tp, "model_json_schema", None))
    )


def _type_name(tp: Any) -> str:
    return getattr(tp, "__qualname__", None) or str(tp).replace("typing.", "")


def schema_for_type(tp: Any, _seen: tuple[Any, ...] = ()) -> dict[str, Any]:
    """Return the tool-dialect schema for one type hint (raises TypeHintError when there is none)."""
    origin = get_origin(tp)
    args = get_args(tp)
    if origin is typing.Annotated:
        return schema_for_type(args[0], _seen)
    if origin is Union or origin is types.UnionType:
        return _union_schema(args, _seen)
    if origin is Literal:
        return _literal_schema(args)
    if origin in _SEQUENCE_ORIGINS:
        return {"type": "array", "items": schema_for_type(args[0], _seen)} if args else {"type": "array"}
    if origin is tuple:
        if not args or args == ((),):
            return {"type": "array"}
        if len(args) == 2 and args[1] is Ellipsis:
            return {"type": "array", "items": schema_for_type(args[0], _seen)}
        if Ellipsis in args:
            raise TypeHintError(f"'{_type_name(tp)}' is not supported: use tuple[X, ...] or list[X]")
        return {"type": "array", "prefixItems": [schema_for_type(a, _seen) for a in args]}
    if origin in _MAPPING_ORIGINS:
        out: dict[str, Any] = {"type": "object"}
        if len(args) == 2:
            out["additionalProperties"] = schema_for_type(args[1], _seen)
        return out
    if origin is not None:
        hint = "; use list[...] instead" if origin in (set, frozenset, collections.abc.Set) else ""
        raise TypeHintError(f"type hint '{_type_name(tp)}' is not supported{hint}")
    return _plain_schema(tp, _seen)


def _plain_schema(tp: Any, seen: tuple[Any, ...]) -> dict[str, Any]:
    try:
        if tp in _BASE_TYPES:
            return {"type": _BASE_TYPES[tp]}
    except TypeError:  # unhashable hint objects
        pass
    if isinstance(tp, str | typing.ForwardRef):
        raise TypeHintError(f"type hint {tp!r} could not be resolved: import the type at module level")
    if isinstance(tp, typing.TypeVar):
        raise TypeHintError(f"type variable '{tp}' is not supported: use a concrete type or Any")
    if not isinstance(tp, type):
        raise TypeHintError(f"type hint '{tp!r}' is not supported")
    if tp in (set, frozenset):
        raise TypeHintError(f"type hint '{tp.__name__}' is not supported; use list[...] instead")
    if tp in _SEQUENCE_ORIGINS:
        return {"type": "array"}
    if tp in _MAPPING_ORIGINS:
        return {"type": "object"}
    if tp is type or tp.__module__ == "collections.abc":  # Callable, Iterator, Generator...
        raise TypeHintError(f"type hint '{_type_name(tp)}' is not supported: a tool input must be data")
    if tp.__module__ == "PIL.Image" and tp.__name__ == "Image":
        return {"type": "image"}
    if issubclass(tp, enum.Enum):
        values = [member.value for member in tp]
        out = _literal_schema(tuple(values))
        return out
    if tp in seen:  # a recursive structure: stop at a plain object
        return {"type": "object"}
    if is_structured_type(tp):
        return _object_schema(tp, seen + (tp,))
    # Any other class: an opaque object, as smolagents does, so code written for it keeps working.
    return {"type": "object"}


def _literal_schema(values: tuple[Any, ...]) -> dict[str, Any]:
    kinds = sorted({_BASE_TYPES.get(type(v), "any") for v in values if v is not None})
    out: dict[str, Any] = {"type": kinds[0] if len(kinds) == 1 else kinds}
    out["enum"] = [v for v in values if v is not None]
    if any(v is None for v in values):
        out["nullable"] = True
    return out


def _union_schema(args: tuple[Any, ...], seen: tuple[Any, ...]) -> dict[str, Any]:
    nullable = any(a is type(None) for a in args)
    members = [schema_for_type(a, seen) for a in args if a is not type(None)]
    if len(members) == 1:
        out = members[0]
    elif _mergeable(members):
        # One schema with a list of types: smolagents' form, which keeps a "type" key. Shape keywords of
        # different members apply only to their own JSON type, so they can sit side by side.
        out = {"type": sorted({m["type"] for m in members})}
        for m in members:
            out.update({k: v for k, v in m.items() if k != "type"})
    else:
        out = {"anyOf": members}
    if nullable:
        out["nullable"] = True
    return out


def _mergeable(members: list[dict[str, Any]]) -> bool:
    kinds = [m.get("type") for m in members]
    if not all(isinstance(k, str) for k in kinds) or len(set(kinds)) != len(kinds):
        return False
    return all(set(m) - {"type"} <= set(_SHAPE_KEYS) for m in members)


def _object_schema(tp: type, seen: tuple[Any, ...]) -> dict[str, Any]:
    """Dataclass, TypedDict or pydantic model -> object schema with properties and required."""
    docs = parse_docstring(
        tp.__doc__ if tp.__doc__ and not tp.__doc__.startswith(tp.__name__ + "(") else None
    )
    properties: dict[str, Any] = {}
    required: list[str] = []
    if _is_pydantic_model(tp):
        for name, info in tp.model_fields.items():
            key = info.alias or name
            prop = schema_for_type(info.annotation, seen)
            if info.description or docs.args.get(name):
                prop["description"] = info.description or docs.args[name]
            properties[key] = prop
            if info.is_required():
                required.append(key)
    else:
        try:
            hints = get_type_hints(tp, localns={tp.__name__: tp})  # self-references resolve
        except Exception as exc:  # unresolvable annotations in user code
            raise TypeHintError(f"could not read the fields of '{tp.__qualname__}': {exc}") from None
        if dataclasses.is_dataclass(tp):
            fields = {f.name: f for f in dataclasses.fields(tp)}
            names = list(fields)
            is_required = {
                n: f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
                for n, f in fields.items()
            }
            meta = {n: f.metadata.get("description") for n, f in fields.items()}
        else:
            names = list(hints)
            keys = getattr(tp, "__required_keys__", frozenset(names))
            is_required = {n: n in keys for n in names}
            meta = {}
        for name in names:
            prop = schema_for_type(hints[name], seen)
            description = meta.get(name) or docs.args.get(name)
            if description:
                prop["description"] = description
            properties[name] = prop
            if is_required[name]:
                required.append(name)
    out: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        out["required"] = required
    return out


# ---------------------------------------------------------------------------------------------------
# tool dialect -> JSON schema

_NON_JSON_TYPES = {"image": "string", "audio": "string"}


def to_json_schema(schema: dict[str, Any], *, provider: bool = False) -> dict[str, Any]:
    """Convert a tool-dialect schema to standard JSON schema.

    ``"image"``/``"audio"`` become strings (a path or URL); ``nullable`` becomes ``"null"`` in the type
    list (or a ``{"type": "null"}`` branch of ``anyOf``) and ``None`` joins an ``enum``.

    ``"any"`` drops the type constraint, which is valid JSON schema. With ``provider=True`` the result
    is shaped for function-calling APIs, which reject some valid schemas (OpenAI answers
    invalid_function_parameters for a property without "type" and for an array without "items"):
    ``"any"`` becomes ``"string"`` as in smolagents, an array without an item schema gets string items,
    and a fixed tuple (``prefixItems``) becomes ``items`` plus ``minItems``/``maxItems``.
    """
    out = {k: copy.deepcopy(v) for k, v in schema.items() if k != "nullable"}
    kind = out.get("type")
    if isinstance(kind, str):
        kinds = [kind]
    elif isinstance(kind, list):
        kinds = list(kind)
    else:
        kinds = []
    if "any" in kinds:
        out.pop("type", None)
        kinds = ["string"] if provider else []
    elif kinds:
        kinds = [_NON_JSON_TYPES.get(k, k) for k in kinds]
        kinds = list(dict.fromkeys(kinds))
    for key in ("items", "additionalProperties"):
        if isinstance(out.get(key), dict):
            out[key] = to_json_schema(out[key], provider=provider)
    if isinstance(out.get("prefixItems"), list):
        out["prefixItems"] = [to_json_schema(s, provider=provider) for s in out["prefixItems"]]
    if isinstance(out.get("properties"), dict):
        out["properties"] = {k: to_json_schema(v, provider=provider) for k, v in out["properties"].items()}
    if isinstance(out.get("anyOf"), list):
        out["anyOf"] = [to_json_schema(s, provider=provider) for s in out["anyOf"]]
    if provider and "array" in kinds:
        prefix = out.pop("prefixItems", None)
        if prefix and "items" not in out:
            unique = [json.loads(t) for t in dict.fromkeys(json.dumps(p, sort_keys=True) for p in prefix)]
            out["items"] = unique[0] if len(unique) == 1 else {"anyOf": unique}
            out["minItems"] = out["maxItems"] = len(prefix)
        out.setdefault("items", {"type": "string"})
    if schema.get("nullable"):
        if kinds and "null" not in kinds:
            kinds.append("null")
        elif "anyOf" in out and not any(s.get("type") == "null" for s in out["anyOf"]):
            out["anyOf"].append({"type": "null"})
        if "enum" in out and None not in out["enum"]:
            out["enum"].append(None)
    if kinds:
        out["type"] = kinds[0] if len(kinds) == 1 else kinds
    return out


def function_tool_schema(
    name: str, description: str, inputs: dict[str, Any], defaults: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The OpenAI function-tool schema of a tool's ``inputs`` (tool dialect): nullable inputs are
    optional and admit null; ``defaults`` (JSON values) are shown on their inputs."""
    properties: dict[str, Any] = {}
    required: list[str] = []
    for key, schema in inputs.items():
        prop = to_json_schema(schema, provider=True)
        if defaults and key in defaults:
            prop["default"] = defaults[key]
        properties[key] = prop
        if not schema.get("nullable"):
            required.append(key)
    parameters: dict[str, Any] = {"type": "object", "properties": properties, "required": required}
    return {
        "type": "function",
        "function": {"name": name, "description": description, "parameters": parameters},
    }


def json_schema_for_type(tp: Any) -> dict[str, Any]:
    """Standard JSON schema for a type (dataclass, TypedDict, pydantic model, or any supported hint)."""
    return to_json_schema(schema_for_type(tp))


# ---------------------------------------------------------------------------------------------------
# tool dialect -> Python annotation text (for code prompts)

_PY_NAMES = {
    "string": "str",
    "integer": "int",
    "number": "float",
    "boolean": "bool",
    "array": "list",
    "object": "dict",
    "any": "Any",
    "null": "None",
    "image": "Image",
    "audio": "Audio",
}


def python_type_text(schema: dict[str, Any]) -> str:
    """Render a schema as a Python annotation: {"type": "array", "items": {"type": "string"}} -> list[str]."""
    if "enum" in schema:
        text = "Literal[" + ", ".join(repr(v) for v in schema["enum"]) + "]"
    elif "anyOf" in schema:
        text = " | ".join(dict.fromkeys(python_type_text(s) for s in schema["anyOf"]))
    else:
        kind = schema.get("type", "any")
        kinds = kind if isinstance(kind, list) else [kind]
        text = " | ".join(_single_type_text(k, schema) for k in kinds)
    if schema.get("nullable") and not text.endswith("None") and text != "Any":
        text += " | None"
    return text


def _single_type_text(kind: str, schema: dict[str, Any]) -> str:
    if kind == "array":
        if isinstance(schema.get("prefixItems"), list):
            return "tuple[" + ", ".join(python_type_text(s) for s in schema["prefixItems"]) + "]"
        if isinstance(schema.get("items"), dict):
            return f"list[{python_type_text(schema['items'])}]"
    if kind == "object" and isinstance(schema.get("additionalProperties"), dict):
        return f"dict[str, {python_type_text(schema['additionalProperties'])}]"
    return _PY_NAMES.get(kind, kind)


# ---------------------------------------------------------------------------------------------------
# validating values


def _is_kind(value: Any, kind: str) -> bool:
    if kind == "any":
        return True
    if kind == "null":
        return value is None
    if kind == "string":
        return isinstance(value, str)
    if kind == "boolean":
        return isinstance(value, bool)
    if kind == "integer":  # numbers.Integral admits numpy integers; bool is excluded on purpose
        return isinstance(value, numbers.Integral) and not isinstance(value, bool)
    if kind == "number":
        return isinstance(value, numbers.Real) and not isinstance(value, bool)
    if kind == "array":
        return isinstance(value, list | tuple)
    if kind == "object":
        # smolagents treats any instance of a custom class as an object; keep that, but not primitives.
        return value is not None and not isinstance(value, str | bytes | bool | numbers.Number | list | tuple)
    if kind in ("image", "audio"):
        return value is not None
    return False


def _describe(value: Any) -> str:
    if value is None:
        return "None"
    if isinstance(value, bool):
        return "bool"
    return type(value).__name__


def schema_errors(value: Any, schema: dict[str, Any], path: str = "value") -> list[str]:
    """Every way ``value`` breaks ``schema`` (tool dialect or JSON schema), as 'path: problem' strings."""
    if not isinstance(schema, dict) or not schema:
        return []
    if value is None and schema.get("nullable"):
        return []
    if isinstance(value, enum.Enum):  # a member stands for its value (schemas of Enum types list values)
        value = value.value
    if "anyOf" in schema or "oneOf" in schema:
        branches = schema.get("anyOf") or schema.get("oneOf") or []
        if any(not schema_errors(value, b, path) for b in branches):
            return []
        wanted = " or ".join(python_type_text(b) for b in branches if isinstance(b, dict))
        return [f"{path}: expected {wanted}, got {_describe(value)}"]
    kind = schema.get("type")
    if kind is not None:
        kinds = kind if isinstance(kind, list) else [kind]
        if not any(_is_kind(value, k) for k in kinds):
            wanted = " or ".join(str(k) for k in kinds)
            if schema.get("nullable"):
                wanted += " or null"
            return [f"{path}: expected {wanted}, got {_describe(value)} {_short(value)}"]
    if "enum" in schema and value not in schema["enum"]:
        allowed = ", ".join(repr(v) for v in schema["enum"])
        return [f"{path}: {_short(value)[1:-1]} is not one of the allowed values: {allowed}"]
    errors: list[str] = []
    if isinstance(value, list | tuple):
        prefix = schema.get("prefixItems")
        if isinstance(prefix, list):
            if len(value) != len(prefix) and "items" not in schema:
                errors.append(f"{path}: expected {len(prefix)} items, got {len(value)}")
            for i, (item, sub) in enumerate(zip(value, prefix, strict=False)):
                errors += schema_errors(item, sub, f"{path}[{i}]")
        elif isinstance(schema.get("items"), dict):
            for i, item in enumerate(value):
                errors += schema_errors(item, schema["items"], f"{path}[{i}]")
    elif isinstance(value, dict):
        props = schema.get("properties") if isinstance(schema.get("properties"), dict) else {}
        for key in schema.get("required", []) or []:
            if key not in value:
                errors.append(f"{path}: missing required field '{key}'")
        extra = schema.get("additionalProperties")
        for key, item in value.items():
            if key in props:
                errors += schema_errors(item, props[key], f"{path}.{key}")
            elif isinstance(extra, dict):
                errors += schema_errors(item, extra, f"{path}[{key!r}]")
            elif extra is False:
                errors.append(f"{path}: unexpected field '{key}'")
    return errors


def _short(value: Any) -> str:
    text = repr(value)
    return f"({text[:60]}...)" if len(text) > 60 else f"({text})"


def validate_value(value: Any, schema: dict[str, Any], name: str = "value") -> None:
    """Raise ToolValidationError listing what in ``value`` does not fit ``schema``."""
    errors = schema_errors(value, schema, name)
    if errors:
        raise ToolValidationError("; ".join(errors))
