"""Checks on tool definitions (ToolDefinitionError) and on the arguments of a call (ToolValidationError).

Layer 2 (tools). Every message names the tool and the field at fault and says what to change, because
a definition error is read by a developer and a call error is read by a model that must retry.
"""

from __future__ import annotations

import inspect
import keyword
import types
import typing
from collections.abc import Callable, Mapping
from typing import Any, get_args, get_origin

from ..errors import ToolDefinitionError, ToolValidationError
from .schema import AUTHORIZED_TYPES, python_type_text, schema_errors

__all__ = ["is_valid_name", "check_definition", "check_call_arguments", "optional_in_signature"]


def is_valid_name(name: Any) -> bool:
    """A tool name must be usable as a Python function name in generated code."""
    return isinstance(name, str) and name.isidentifier() and not keyword.iskeyword(name)


def _check_type_entry(tool: str, field: str, schema: Any, where: str) -> None:
    if not isinstance(schema, dict):
        raise ToolDefinitionError(
            f"Tool '{tool}': {where} '{field}' must be a dict with 'type' and 'description'."
        )
    if "anyOf" in schema and "type" not in schema:
        branches = schema["anyOf"]
        if not isinstance(branches, list) or not branches:
            raise ToolDefinitionError(f"Tool '{tool}': {where} '{field}' has an empty or invalid 'anyOf'.")
        for branch in branches:
            _check_type_entry(tool, field, branch, where)
        return
    if "type" not in schema:
        raise ToolDefinitionError(
            f"Tool '{tool}': {where} '{field}' has no 'type' key; set one of {AUTHORIZED_TYPES}."
        )
    kind = schema["type"]
    kinds = kind if isinstance(kind, list) else [kind]
    if not kinds or not all(isinstance(k, str) for k in kinds):
        raise ToolDefinitionError(
            f"Tool '{tool}': {where} '{field}' has type {kind!r}: the type must be a string or list of strings "
            f"(when type is a list, all elements must be strings) from {AUTHORIZED_TYPES}."
        )
    bad = [k for k in kinds if k not in AUTHORIZED_TYPES]
    if bad:
        raise ToolDefinitionError(
            f"Tool '{tool}': {where} '{field}' has type {bad[0]!r}, which is not allowed; the type must be one of "
            f"{AUTHORIZED_TYPES}."
        )
    if "enum" in schema and not isinstance(schema["enum"], list):
        raise ToolDefinitionError(f"Tool '{tool}': {where} '{field}' has an 'enum' that is not a list.")


def optional_in_signature(param: inspect.Parameter, hint: Any) -> bool:
    """A parameter may be left out or be None: it has a default, or its hint admits None."""
    if param.default is not inspect.Parameter.empty:
        return True
    origin = get_origin(hint)
    if origin is typing.Annotated:
        return optional_in_signature(param, get_args(hint)[0])
    if origin is typing.Union or origin is types.UnionType or origin is typing.Literal:
        return any(a is type(None) or a is None for a in get_args(hint))
    return hint is type(None)


def check_definition(tool: Any, forward: Callable[..., Any] | None, *, owner: str) -> None:
    """Validate name, description, inputs, output_type, output_schema and the forward signature.

    ``tool`` is a Tool instance or class; ``owner`` names it when the name itself is missing or bad.
    """
    maybe_name = getattr(tool, "name", None)
    owner = maybe_name if isinstance(maybe_name, str) and maybe_name else owner
    for attr, expected in (("name", str), ("description", str), ("inputs", dict), ("output_type", str)):
        value = getattr(tool, attr, None)
        if value is None:
            raise ToolDefinitionError(
                f"Tool '{owner}' must set the attribute '{attr}' ({expected.__name__}): You must set an attribute "
                f"{attr}."
            )
        if not isinstance(value, expected):
            raise ToolDefinitionError(
                f"Tool '{owner}': attribute '{attr}' must be a {expected.__name__}, got {type(value).__name__}."
            )
    name = tool.name
    if not is_valid_name(name):
        suggestion = "".join(c if c.isalnum() or c == "_" else "_" for c in name) or "my_tool"
        if keyword.iskeyword(suggestion) or not suggestion.isidentifier():
            suggestion = f"{suggestion}_tool" if suggestion.isidentifier() else f"tool_{suggestion}"
        raise ToolDefinitionError(
            f"Class attribute 'name' must be a valid Python identifier and not a reserved keyword, found {name!r}: "
            f"the agent calls tools as functions, so rename the tool (for example {suggestion!r})."
        )
    output_schema = getattr(tool, "output_schema", None)
    if output_schema is not None and not isinstance(output_schema, dict):
        raise ToolDefinitionError(
            f"Tool '{name}': attribute 'output_schema' must be a dict (a JSON schema) or None, "
            f"got {type(output_schema).__name__}."
        )
    for field, schema in tool.inputs.items():
        if not is_valid_name(field):
            raise ToolDefinitionError(
                f"Tool '{name}': input name {field!r} is not a valid Python identifier."
            )
        _check_type_entry(name, field, schema, "input")
        if not isinstance(schema.get("description"), str):
            raise ToolDefinitionError(
                f"Tool '{name}': input '{field}' needs a 'description' string that tells the model what to pass."
            )
    if tool.output_type not in AUTHORIZED_TYPES:
        raise ToolDefinitionError(
            f"Tool '{name}': output_type {tool.output_type!r} is not allowed; use one of {AUTHORIZED_TYPES}."
        )
    if forward is None or getattr(tool, "skip_forward_signature_validation", False):
        return
    _check_forward(tool, forward)


def _check_forward(tool: Any, forward: Callable[..., Any]) -> None:
    name = tool.name
    try:
        signature = inspect.signature(forward)
    except (TypeError, ValueError):
        return
    params = {k: p for k, p in signature.parameters.items() if k != "self"}
    actual, expected = set(params), set(tool.inputs)
    if actual != expected:
        details = []
        if expected - actual:
            details.append(f"missing from forward(): {sorted(expected - actual)}")
        if actual - expected:
            details.append(f"not declared in inputs: {sorted(actual - expected)}")
        raise ToolDefinitionError(
            f"Tool '{name}': forward() parameters {sorted(actual)} do not match the keys of 'inputs' "
            f"{sorted(expected)} ({'; '.join(details)}). forward must take self and then exactly the inputs."
        )
    try:
        hints = typing.get_type_hints(forward)
    except Exception:  # unresolvable annotations: skip the nullable comparison, as smolagents does
        hints = {}
    for field, param in params.items():
        hint = hints.get(field, param.annotation)
        if isinstance(hint, str):  # unresolved string annotation: judge by its text
            optional = param.default is not inspect.Parameter.empty or "None" in hint or "Optional" in hint
        else:
            optional = optional_in_signature(param, hint)
        nullable = bool(tool.inputs[field].get("nullable"))
        if optional and not nullable:
            raise ToolDefinitionError(
                f"Tool '{name}': argument '{field}' is optional in forward() but not Nullable in 'inputs' (it has a "
                f"default or admits None): its entry in 'inputs' must have \"nullable\": True."
            )
        if nullable and not optional:
            raise ToolDefinitionError(
                f"Tool '{name}': input '{field}' is nullable, so forward() must give '{field}' a default "
                f"(for example = None) or a type hint that admits None (Nullable mismatch)."
            )


def check_call_arguments(
    tool_name: str,
    inputs: Mapping[str, dict[str, Any]],
    arguments: Any,
    *,
    has_default: set[str] | frozenset[str] = frozenset(),
) -> dict[str, Any]:
    """Check call arguments against ``inputs``; return them as a dict, with None for omitted nullables.

    A nullable input that forward() gives no default is filled with None, because nullable inputs are
    not in the JSON schema's required list and a model may leave them out.
    """
    if not isinstance(arguments, Mapping):
        if len(inputs) == 1:
            arguments = {next(iter(inputs)): arguments}
        else:
            raise ToolValidationError(
                f"Tool '{tool_name}' takes arguments {', '.join(inputs) or '(none)'}: pass them by name as a "
                f"dict, not a single {type(arguments).__name__}."
            )
    unknown = [key for key in arguments if key not in inputs]
    if unknown:
        accepted = ", ".join(inputs) or "no arguments"
        raise ToolValidationError(
            f"Tool '{tool_name}' got an unknown argument '{unknown[0]}'; it accepts: {accepted}."
        )
    result = dict(arguments)
    for key, schema in inputs.items():
        if key in result:
            continue
        if schema.get("nullable"):
            if key not in has_default:
                result[key] = None
            continue
        raise ToolValidationError(
            f"Tool '{tool_name}' is missing the required argument '{key}' "
            f"({python_type_text(schema)}: {schema.get('description', '')})."
        )
    for key, value in result.items():
        errors = schema_errors(value, inputs[key], key)
        if errors:
            raise ToolValidationError(f"Tool '{tool_name}': invalid argument {'; '.join(errors)}.")
    return result


def validate_tool_arguments(tool: Any, arguments: Any) -> None:
    """Check ``arguments`` against ``tool.inputs`` (smolagents' name, kept for compatibility).

    Raises ``ToolValidationError`` (a ``ValueError``) naming the argument at fault, with smolagents'
    wording for a missing argument or a None given to an input that is not nullable.
    """
    if isinstance(arguments, Mapping):
        for key in arguments:
            if key not in tool.inputs:
                raise ToolValidationError(
                    f"Argument {key} is not in the tool's input schema: tool '{tool.name}' got an unknown "
                    f"argument '{key}'; it accepts: {', '.join(tool.inputs) or 'no arguments'}."
                )
        for key, schema in tool.inputs.items():
            if schema.get("nullable"):
                continue
            if key not in arguments:
                raise ToolValidationError(f"Argument {key} is required (tool '{tool.name}').")
            if arguments[key] is None and schema.get("type") not in ("any", "null"):
                raise ToolValidationError(
                    f"Argument {key} has type 'null' but should be '{schema.get('type')}' (tool '{tool.name}')."
                )
    check_call_arguments(tool.name, tool.inputs, arguments)


def validate_tool_attributes(cls: type, check_imports: bool = True) -> None:
    """Check a ``Tool`` subclass (smolagents' name): its definition, and that its source can be saved and
    shared on its own (codeloop.tools.self_contained; not for codeloop's built-in tools).

    Raises ``ToolDefinitionError`` (a ``ValueError``) listing what is at fault.
    """
    from .self_contained import check_self_contained, is_builtin_tool

    if vars(cls).get("_defined_per_instance"):  # FunctionTool, the class of every @tool
        return
    check_definition(cls, getattr(cls, "forward", None), owner=cls.__name__)
    if not is_builtin_tool(cls):
        check_self_contained(cls, check_imports=check_imports)
