"""``@tool``: turn a typed, documented function (sync or async) into a Tool.

Layer 2 (tools). The schema comes from the type hints (``schema.schema_for_type``) and the Google-style
docstring (``docstrings.parse_docstring``): the text before ``Args:`` is the description, each argument
needs an entry, a trailing ``(choices: [...])`` becomes an ``enum``, ``Returns:`` becomes the output
description. Arguments with a default are ``nullable``, as in smolagents.

Unlike smolagents, the tool also turns validated JSON values back into the declared types before the
function runs: a dict for a dataclass or pydantic parameter becomes an instance, a list for a tuple
becomes a tuple, a value for an Enum becomes the member.
"""

from __future__ import annotations

import dataclasses
import enum
import inspect
import sys
import textwrap
import types
import typing
from collections.abc import Callable
from typing import Any, get_args, get_origin, overload

from ..errors import ToolDefinitionError
from .base import Tool
from .docstrings import DocstringParsingException, parse_docstring, split_choices
from .schema import TypeHintError, is_structured_type, json_schema_for_type, python_type_text, schema_for_type
from .validation import check_definition

__all__ = ["FunctionTool", "tool", "function_schema"]


def _unwrap_optional(tp: Any) -> Any:
    """Annotated[T, ...] -> T and T | None -> T (other unions stay as they are)."""
    while get_origin(tp) is typing.Annotated:
        tp = get_args(tp)[0]
    if get_origin(tp) in (typing.Union, types.UnionType):
        rest = [a for a in get_args(tp) if a is not type(None)]
        if len(rest) == 1:
            return _unwrap_optional(rest[0])
    return tp


def _annotated_description(tp: Any) -> str | None:
    if get_origin(tp) is typing.Annotated:
        for meta in get_args(tp)[1:]:
            if isinstance(meta, str):
                return meta
            text = getattr(meta, "description", None)  # pydantic.Field(description=...)
            if isinstance(text, str):
                return text
    return None


def function_schema(
    func: Callable[..., Any],
    *,
    name: str | None = None,
    description: str | None = None,
    localns: dict[str, Any] | None = None,
    require_return_hint: bool = True,
) -> dict[str, Any]:
    """Everything a Tool needs from a function: name, description, inputs, output_type, output_schema...

    ``require_return_hint=False`` (``get_json_schema``) reads a function without one as returning null."""
    tool_name = name or getattr(func, "__name__", "tool")
    doc = inspect.getdoc(func)
    try:
        signature = inspect.signature(func)
    except (TypeError, ValueError) as exc:
        raise ToolDefinitionError(
            f"Tool '{tool_name}': cannot read the function signature ({exc})."
        ) from None
    if not doc and description is None and signature.parameters:
        raise DocstringParsingException(
            f"Tool '{tool_name}': the function has no docstring. Add one with a description and an 'Args:' "
            f"section that describes every argument (Google style)."
        )
    parsed = parse_docstring(doc)
    try:
        hints = typing.get_type_hints(func, localns=localns, include_extras=True)
    except Exception as exc:
        raise ToolDefinitionError(f"Tool '{tool_name}': cannot resolve the type hints ({exc}).") from None

    inputs: dict[str, dict[str, Any]] = {}
    for pname, param in signature.parameters.items():
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            raise ToolDefinitionError(
                f"Tool '{tool_name}': argument '{pname}' is *args or **kwargs; a tool needs named, typed arguments."
            )
        if pname not in hints:
            raise ToolDefinitionError(
                f"Tool '{tool_name}': argument '{pname}' has no type hint; add one (for example '{pname}: str')."
            )
        try:
            schema = schema_for_type(hints[pname])
        except TypeHintError as exc:
            raise ToolDefinitionError(f"Tool '{tool_name}': argument '{pname}': {exc}.") from None
        text = parsed.args.get(pname) or _annotated_description(hints[pname])
        if text is None:
            raise DocstringParsingException(
                f"Tool '{tool_name}': the docstring has no description for the argument '{pname}'. Add it under "
                f"'Args:' as '{pname}: what it is'."
            )
        try:
            text, choices = split_choices(text)
        except ValueError as exc:
            raise ToolDefinitionError(f"Tool '{tool_name}': argument '{pname}': {exc}.") from None
        if choices is not None:
            schema["enum"] = choices
        schema["description"] = text
        if param.default is not inspect.Parameter.empty:
            schema["nullable"] = True
        inputs[pname] = schema

    spec: dict[str, Any] = {
        "name": tool_name,
        "description": description if description is not None else parsed.description,
        "inputs": inputs,
        "output_schema": None,
        "output_description": parsed.returns,
        "return_annotation": None,
    }
    if "return" not in hints:
        if inputs and require_return_hint:
            raise ToolDefinitionError(
                f"Tool '{tool_name}': Tool return type not found: the function has no return type hint; add one "
                f"(for example '-> str', or '-> Any' when the result can be anything)."
            )
        spec["output_type"] = "null"
        return spec
    returned = hints["return"]
    try:
        out = schema_for_type(returned)
    except TypeHintError as exc:
        raise ToolDefinitionError(f"Tool '{tool_name}': return type: {exc}.") from None
    spec["output_type"] = out["type"] if isinstance(out.get("type"), str) else "any"
    spec["return_annotation"] = python_type_text(out)
    core = _unwrap_optional(returned)
    if is_structured_type(core):
        spec["output_schema"] = json_schema_for_type(core)
        spec["return_annotation"] = "dict" if typing.is_typeddict(core) else core.__name__
    return spec


class FunctionTool(Tool):
    """A Tool made from a function by ``@tool``; ``forward`` is the function itself (sync or async)."""

    # name, description and inputs come from each instance's function (checked when @tool builds it), so
    # the class itself has nothing for validate_tool_attributes to check
    _defined_per_instance = True

    def __init__(
        self,
        func: Callable[..., Any],
        *,
        name: str | None = None,
        description: str | None = None,
        localns: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        spec = function_schema(func, name=name, description=description, localns=localns)
        self.name = spec["name"]
        self.description = spec["description"]
        self.inputs = spec["inputs"]
        self.output_type = spec["output_type"]
        self.output_schema = spec["output_schema"]
        self.output_description = spec["output_description"]
        self._return_annotation = spec["return_annotation"]
        self.forward = func
        self.__wrapped__ = func
        self.__doc__ = func.__doc__
        self.__name__ = self.name
        self.is_initialized = True
        hints = typing.get_type_hints(func, localns=localns)
        self._coercers = {k: c for k in self.inputs if (c := _coercer(hints.get(k))) is not None}

    def _check_definition(self) -> None:
        # inputs were derived from the signature itself: only name, types and descriptions need checking
        check_definition(self, None, owner=self.name)

    def _coerce_arguments(self, arguments: dict[str, Any]) -> dict[str, Any]:
        if not self._coercers:
            return arguments
        return {
            k: (self._coercers[k](v) if k in self._coercers and v is not None else v)
            for k, v in arguments.items()
        }

    def _check_self_contained(self) -> None:
        from .self_contained import check_function_self_contained

        check_function_self_contained(self.forward, self.name)

    def _source_code(self) -> str | None:
        try:
            return textwrap.dedent(inspect.getsource(self.forward))
        except (OSError, TypeError):
            return None


def _coercer(tp: Any, _seen: tuple[Any, ...] = ()) -> Callable[[Any], Any] | None:
    """A function that turns a JSON value into ``tp`` when that differs from the JSON form, else None."""
    tp = _unwrap_optional(tp)
    if tp is None or tp in _seen:
        return None
    origin = get_origin(tp)
    if origin in (list, tuple):
        args = [a for a in get_args(tp) if a is not Ellipsis]
        inner = _coercer(args[0], _seen) if len(args) == 1 else None
        make = tuple if origin is tuple else list
        if inner is None and origin is list:
            return None
        return lambda v: (
            make(inner(x) if inner and x is not None else x for x in v) if isinstance(v, list | tuple) else v
        )
    if not isinstance(tp, type):
        return None
    if issubclass(tp, enum.Enum):
        return lambda v: v if isinstance(v, tp) else tp(v)
    if hasattr(tp, "model_validate") and hasattr(tp, "model_fields"):
        return lambda v: tp.model_validate(v) if isinstance(v, dict) else v
    if dataclasses.is_dataclass(tp):
        try:
            hints = typing.get_type_hints(tp)
        except Exception:
            hints = {}
        fields = {
            f.name: _coercer(hints.get(f.name), _seen + (tp,)) for f in dataclasses.fields(tp) if f.init
        }

        def build(value: Any) -> Any:
            if not isinstance(value, dict):
                return value
            return tp(
                **{k: (fields[k](v) if fields.get(k) and v is not None else v) for k, v in value.items()}
            )

        return build
    return None


@overload
def tool(func: Callable[..., Any], /) -> FunctionTool: ...
@overload
def tool(
    *, name: str | None = None, description: str | None = None, idempotent: bool = False
) -> Callable[[Callable[..., Any]], FunctionTool]: ...


def tool(
    func: Callable[..., Any] | None = None,
    /,
    *,
    name: str | None = None,
    description: str | None = None,
    idempotent: bool = False,
) -> Any:
    """Make a Tool from a function with type hints and a Google-style docstring.

    Use as ``@tool`` or ``@tool(name=..., description=...)``. ``async def`` functions work: ``acall``
    awaits them and the sync ``__call__`` runs them to completion. ``idempotent=True`` says a second
    call with the same arguments does no extra harm (a resumed run may repeat one cut off by a crash).
    """
    # The caller's local names resolve hints of classes defined inside a function when annotations are
    # strings (``from __future__ import annotations``).
    if func is None:

        def decorate(f: Callable[..., Any]) -> FunctionTool:
            made = FunctionTool(f, name=name, description=description, localns=_caller_locals())
            made.idempotent = idempotent
            return made

        return decorate
    return FunctionTool(func, name=name, description=description, localns=_caller_locals())


def _caller_locals() -> dict[str, Any] | None:
    frame = sys._getframe(2)
    return dict(frame.f_locals) if frame is not None and frame.f_locals is not frame.f_globals else None


def get_json_schema(func: Callable[..., Any]) -> dict[str, Any]:
    """smolagents' function-schema helper, kept for compatibility: ``{"type": "function", "function": ...}``
    built from the type hints and Google-style docstring (codeloop's own path is ``function_schema``)."""
    spec = function_schema(func, require_return_hint=False)  # smolagents' helper allows no return hint
    properties = {name: dict(schema) for name, schema in spec["inputs"].items()}
    required = [name for name, schema in spec["inputs"].items() if not schema.get("nullable")]
    function: dict[str, Any] = {
        "name": spec["name"],
        "description": spec["description"],
        "parameters": {"type": "object", "properties": properties, "required": required},
    }
    ret: dict[str, Any] = {"type": spec.get("output_type") or "null"}
    if spec.get("output_description"):
        ret["description"] = spec["output_description"]
    function["return"] = ret
    return {"type": "function", "function": function}
