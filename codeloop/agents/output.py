"""Typed final answers: ``output_type=`` a pydantic model, a dataclass, a TypedDict, any type pydantic knows,
or a JSON schema dict.

Layer 5 (agents). The agent tells the model the expected JSON schema in the task, and checks the value
passed to ``final_answer``; a mismatch goes back to the model as the step's error (an observation) and
the run continues, up to ``max_output_retries`` times. pydantic is imported only when a typed output is
used; a JSON schema dict works without it.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

__all__ = ["OutputSpec", "OutputValidationError"]


class OutputValidationError(ValueError):
    """The final answer does not match the output type."""


_JSON_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "object": (dict,),
    "array": (list, tuple),
    "null": (type(None),),
}


def _check_schema(value: Any, schema: dict[str, Any], path: str = "value") -> list[str]:
    """A small JSON-schema checker (type, enum, const, properties, required, items, anyOf/oneOf)."""
    errors: list[str] = []
    for key in ("anyOf", "oneOf"):
        if key in schema:
            options = [_check_schema(value, sub, path) for sub in schema[key]]
            if all(options):
                errors.append(f"{path}: matches none of the allowed alternatives ({options[0][0]})")
            return errors
    kind = schema.get("type")
    if kind is not None:
        kinds = kind if isinstance(kind, list) else [kind]
        ok = False
        for k in kinds:
            types = _JSON_TYPES.get(k, (object,))
            if isinstance(value, types) and not (k in ("integer", "number") and isinstance(value, bool)):
                ok = True
        if not ok:
            return [f"{path}: expected {' or '.join(kinds)}, got {type(value).__name__} {value!r:.80}"]
    if "enum" in schema and value not in schema["enum"]:
        errors.append(f"{path}: {value!r:.80} is not one of {schema['enum']}")
    if "const" in schema and value != schema["const"]:
        errors.append(f"{path}: must be {schema['const']!r}")
    if isinstance(value, dict):
        for name in schema.get("required", []):
            if name not in value:
                errors.append(f"{path}: missing required field {name!r}")
        props = schema.get("properties", {})
        for name, sub in props.items():
            if name in value:
                errors.extend(_check_schema(value[name], sub, f"{path}.{name}"))
        if schema.get("additionalProperties") is False:
            extra = sorted(set(value) - set(props))
            if extra:
                errors.append(f"{path}: unexpected fields {extra}")
    if isinstance(value, list | tuple) and isinstance(schema.get("items"), dict):
        for i, item in enumerate(value):
            errors.extend(_check_schema(item, schema["items"], f"{path}[{i}]"))
    return errors


def _is_typeddict(tp: Any) -> bool:
    return (
        isinstance(tp, type)
        and issubclass(tp, dict)
        and hasattr(tp, "__annotations__")
        and hasattr(tp, "__total__")
    )


def _is_pydantic_model(tp: Any) -> bool:
    return isinstance(tp, type) and hasattr(tp, "model_validate") and hasattr(tp, "model_json_schema")


class OutputSpec:
    """How to describe and check one output type."""

    def __init__(self, output_type: Any):
        self.output_type = output_type
        self.is_schema = isinstance(output_type, dict)
        self._adapter: Any = None
        self._schema: dict[str, Any] | None = dict(output_type) if self.is_schema else None

    @property
    def schema(self) -> dict[str, Any]:
        if self._schema is None:
            self._schema = self._schema_for_type()
        return self._schema

    def _schema_for_type(self) -> dict[str, Any]:
        tp = self.output_type
        if _is_pydantic_model(tp):
            return tp.model_json_schema()
        try:
            from ..tools.schema import json_schema_for_type  # type: ignore[import-not-found]

            return json_schema_for_type(tp)
        except Exception:  # tools layer missing, or a type it does not cover: ask pydantic
            pass
        return self._type_adapter().json_schema()

    def _type_adapter(self) -> Any:
        if self._adapter is None:
            try:
                from pydantic import TypeAdapter
            except ImportError:
                raise ImportError(
                    f"output_type={self.output_type!r} needs pydantic: pip install 'codeloop[pydantic]', "
                    "or pass a JSON schema dict instead."
                ) from None
            self._adapter = TypeAdapter(self.output_type)
        return self._adapter

    def instructions(self) -> str:
        """Text appended to the task so the model knows what to return."""
        return (
            "Your final answer must be a value matching this JSON schema (pass a dict/list or a JSON string "
            f"to final_answer):\n{json.dumps(self.schema, indent=1)}"
        )

    def validate(self, value: Any) -> Any:
        """The typed value for ``value``; raises OutputValidationError with a message for the model."""
        tp = self.output_type
        plain_class = not self.is_schema and isinstance(tp, type) and not _is_typeddict(tp)
        if plain_class and isinstance(value, tp):
            return value
        if isinstance(value, str) and not (self.schema.get("type") == "string"):
            try:
                value = json.loads(value)
            except json.JSONDecodeError:
                pass
        if self.is_schema:
            errors = _check_schema(value, self.schema)
            if errors:
                raise OutputValidationError("; ".join(errors[:10]))
            return value
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            value = dataclasses.asdict(value)
        adapter = None
        if not _is_pydantic_model(tp):
            try:
                adapter = self._type_adapter()
            except ImportError:
                if not (_is_typeddict(tp) or dataclasses.is_dataclass(tp)):
                    raise
            except Exception:  # pydantic refuses the type (e.g. typing.TypedDict before 3.12)
                pass
            if adapter is None:  # check against the JSON schema, then build the value ourselves
                errors = _check_schema(value, self.schema)
                if errors:
                    raise OutputValidationError("; ".join(errors[:10]))
                return tp(**value) if dataclasses.is_dataclass(tp) else value
        try:
            if adapter is None:
                return tp.model_validate(value)
            return adapter.validate_python(value)
        except Exception as e:  # pydantic.ValidationError, without importing pydantic at module level
            raise OutputValidationError(_pydantic_message(e)) from e

    def feedback(self, error: Exception) -> str:
        return (
            f"The final answer does not match the required output type: {error}\n"
            f"Call final_answer again with a value matching this JSON schema:\n{json.dumps(self.schema)}"
        )


def _pydantic_message(error: Exception) -> str:
    errors = getattr(error, "errors", None)
    if callable(errors):
        try:
            parts = [
                f"{'.'.join(str(p) for p in e.get('loc', ())) or 'value'}: {e.get('msg')}" for e in errors()
            ]
            return "; ".join(parts[:10])
        except Exception:
            pass
    return str(error)
