"""The signature table: functions and the exact tool schema each must give.

Data only (no codeloop import) so that benchmarks/schema_extraction.py and a smolagents comparison
script can load it too. Each row: (id, function, expected inputs, expected output_type,
expected output_schema or None, how smolagents 1.26.0 compares: "same", "raises" or "differs: why").
"""

from __future__ import annotations

import dataclasses
import enum
from typing import Annotated, Any, Literal, Optional, TypedDict

import pydantic


def f_str(text: str) -> str:
    """Echo text.

    Args:
        text: The text to echo.
    """
    return text


def f_scalars(count: int, ratio: float, flag: bool) -> float:
    """Combine scalars.

    Args:
        count: How many.
        ratio: A ratio.
        flag: A switch.
    """
    return count * ratio


def f_default(query: str, limit: int = 10) -> list[str]:
    """Search.

    Args:
        query: What to look for.
        limit: Max number of results.

    Returns:
        The matching titles.
    """
    return []


def f_optional_none(name: Optional[str] = None) -> str:  # noqa: UP045 - Optional on purpose
    """Greet.

    Args:
        name: Who to greet.
    """
    return name or ""


def f_pipe_none_no_default(value: str | None) -> bool:
    """Check a value.

    Args:
        value: A value that may be None.
    """
    return value is None


def f_list_str(items: list[str]) -> int:
    """Count items.

    Args:
        items: The items.
    """
    return len(items)


def f_bare_containers(items: list, mapping: dict) -> dict:
    """Bare containers.

    Args:
        items: Anything in a list.
        mapping: Anything in a dict.
    """
    return {}


def f_dict_values(scores: dict[str, int]) -> int:
    """Sum scores.

    Args:
        scores: Score per name.
    """
    return 0


def f_tuple_fixed(point: tuple[int, str]) -> str:
    """Format a pair.

    Args:
        point: A number and a label.
    """
    return ""


def f_tuple_variadic(values: tuple[float, ...]) -> float:
    """Sum values.

    Args:
        values: Numbers.
    """
    return 0.0


def f_literal(mode: Literal["fast", "deep"]) -> str:
    """Pick a mode.

    Args:
        mode: The mode.
    """
    return mode


def f_literal_mixed(level: Literal[1, 2, "max"]) -> str:
    """Pick a level.

    Args:
        level: The level.
    """
    return str(level)


def f_literal_none(unit: Literal["c", "f", None]) -> str:
    """Pick a unit.

    Args:
        unit: The unit, or None for the default.
    """
    return ""


def f_choices(beverage: str) -> str:
    """Drink.

    Args:
        beverage: The beverage to drink (choices: ["tea", "coffee"])
    """
    return beverage


def f_any(payload: Any) -> Any:
    """Pass anything.

    Args:
        payload: Any value.
    """
    return payload


def f_union_simple(key: int | str) -> str:
    """Look up a key.

    Args:
        key: A numeric id or a name.
    """
    return str(key)


def f_union_shaped(ids: list[int] | str) -> int:
    """Count ids.

    Args:
        ids: A list of ids or one comma-separated string.
    """
    return 0


def f_nested_lists(matrix: list[list[float]], index: dict[str, list[int]]) -> float:
    """Matrix work.

    Args:
        matrix: Rows of numbers.
        index: Positions per name.
    """
    return 0.0


class Address(TypedDict):
    """A postal address.

    Attributes:
        street: Street and number.
        city: City name.
    """

    street: str
    city: str


def f_typeddict(address: Address) -> str:
    """Format an address.

    Args:
        address: The address.
    """
    return ""


@dataclasses.dataclass
class Point:
    x: float
    y: float = 0.0
    label: str | None = dataclasses.field(default=None, metadata={"description": "Optional name."})


def f_dataclass(point: Point) -> float:
    """Norm of a point.

    Args:
        point: The point.
    """
    return 0.0


@dataclasses.dataclass
class Segment:
    start: Point
    end: Point


def f_nested_dataclass(segment: Segment) -> float:
    """Length of a segment.

    Args:
        segment: Two points.
    """
    return 0.0


class Color(enum.Enum):
    RED = "red"
    GREEN = "green"


def f_enum(color: Color) -> str:
    """Paint.

    Args:
        color: The color.
    """
    return ""


def f_return_optional(text: str) -> int | None:
    """Find a number.

    Args:
        text: Where to look.

    Returns:
        The first number, or None.
    """
    return None


def f_return_union(text: str) -> int | str:
    """Parse.

    Args:
        text: Input.
    """
    return text


def f_return_dataclass(x: float) -> Point:
    """Make a point.

    Args:
        x: The x coordinate.

    Returns:
        The point on the x axis.
    """
    return Point(x)


def f_no_args():
    """Do nothing."""


def f_return_none(path: str) -> None:
    """Delete a file.

    Args:
        path: The file.
    """


async def f_async(url: str, timeout: float = 5.0) -> str:
    """Fetch a page.

    Args:
        url: The address.
        timeout: Seconds to wait.
    """
    return url


def f_annotated(count: Annotated[int, "How many times."]) -> str:
    """Repeat.

    Args:
        count: Number of repeats.
    """
    return ""


def f_multiline_and_typed(query: str, depth: int = 2) -> str:
    """Research a question.

    Looks in several places
    before answering.

    Args:
        query (str): The question, in plain words;
            it may span several lines.
        depth (int, optional): How many hops to follow.
            Note: more is slower.

    Returns:
        str: A short report.
    """
    return ""


class Opaque:
    """Some class a tool passes around."""


def f_custom_class(handle: Opaque) -> Any:
    """Use a handle.

    Args:
        handle: The handle.
    """
    return handle


def f_optional_literal(order: Optional[Literal["asc", "desc"]] = None) -> list[int]:  # noqa: UP045
    """Sort.

    Args:
        order: Sort order.
    """
    return []


class Booking(pydantic.BaseModel):
    guest: str = pydantic.Field(description="Guest name.")
    nights: int = 1
    tags: list[str] = []


def f_pydantic(booking: Booking) -> str:
    """Book a room.

    Args:
        booking: The booking request.
    """
    return booking.guest


SIGNATURES: list[tuple[str, Any, dict[str, Any], str, dict[str, Any] | None, str]] = [
    ("str", f_str, {"text": {"type": "string", "description": "The text to echo."}}, "string", None, "same"),
    (
        "scalars",
        f_scalars,
        {
            "count": {"type": "integer", "description": "How many."},
            "ratio": {"type": "number", "description": "A ratio."},
            "flag": {"type": "boolean", "description": "A switch."},
        },
        "number",
        None,
        "same",
    ),
    (
        "default",
        f_default,
        {
            "query": {"type": "string", "description": "What to look for."},
            "limit": {"type": "integer", "description": "Max number of results.", "nullable": True},
        },
        "array",
        None,
        "same",
    ),
    (
        "optional_none",
        f_optional_none,
        {"name": {"type": "string", "nullable": True, "description": "Who to greet."}},
        "string",
        None,
        "same",
    ),
    (
        "pipe_none_no_default",
        f_pipe_none_no_default,
        {"value": {"type": "string", "nullable": True, "description": "A value that may be None."}},
        "boolean",
        None,
        "same",
    ),
    (
        "list_str",
        f_list_str,
        {"items": {"type": "array", "items": {"type": "string"}, "description": "The items."}},
        "integer",
        None,
        "same",
    ),
    (
        "bare_containers",
        f_bare_containers,
        {
            "items": {"type": "array", "description": "Anything in a list."},
            "mapping": {"type": "object", "description": "Anything in a dict."},
        },
        "object",
        None,
        "same",
    ),
    (
        "dict_values",
        f_dict_values,
        {
            "scores": {
                "type": "object",
                "additionalProperties": {"type": "integer"},
                "description": "Score per name.",
            }
        },
        "integer",
        None,
        "same",
    ),
    (
        "tuple_fixed",
        f_tuple_fixed,
        {
            "point": {
                "type": "array",
                "prefixItems": [{"type": "integer"}, {"type": "string"}],
                "description": "A number and a label.",
            }
        },
        "string",
        None,
        "same",
    ),
    (
        "tuple_variadic",
        f_tuple_variadic,
        {"values": {"type": "array", "items": {"type": "number"}, "description": "Numbers."}},
        "number",
        None,
        "raises: smolagents rejects tuple[X, ...]",
    ),
    (
        "literal",
        f_literal,
        {"mode": {"type": "string", "enum": ["fast", "deep"], "description": "The mode."}},
        "string",
        None,
        "same",
    ),
    (
        "literal_mixed",
        f_literal_mixed,
        {"level": {"type": ["integer", "string"], "enum": [1, 2, "max"], "description": "The level."}},
        "string",
        None,
        "same",
    ),
    (
        "literal_none",
        f_literal_none,
        {
            "unit": {
                "type": "string",
                "enum": ["c", "f"],
                "nullable": True,
                "description": "The unit, or None for the default.",
            }
        },
        "string",
        None,
        "same",
    ),
    (
        "choices",
        f_choices,
        {"beverage": {"type": "string", "enum": ["tea", "coffee"], "description": "The beverage to drink"}},
        "string",
        None,
        "same",
    ),
    ("any", f_any, {"payload": {"type": "any", "description": "Any value."}}, "any", None, "same"),
    (
        "union_simple",
        f_union_simple,
        {"key": {"type": ["integer", "string"], "description": "A numeric id or a name."}},
        "string",
        None,
        "same",
    ),
    (
        "union_shaped",
        f_union_shaped,
        {
            "ids": {
                "type": ["array", "string"],
                "items": {"type": "integer"},
                "description": "A list of ids or one comma-separated string.",
            }
        },
        "integer",
        None,
        "differs: smolagents drops 'items' of the list member",
    ),
    (
        "nested_lists",
        f_nested_lists,
        {
            "matrix": {
                "type": "array",
                "items": {"type": "array", "items": {"type": "number"}},
                "description": "Rows of numbers.",
            },
            "index": {
                "type": "object",
                "additionalProperties": {"type": "array", "items": {"type": "integer"}},
                "description": "Positions per name.",
            },
        },
        "number",
        None,
        "same",
    ),
    (
        "typeddict",
        f_typeddict,
        {
            "address": {
                "type": "object",
                "properties": {
                    "street": {"type": "string", "description": "Street and number."},
                    "city": {"type": "string", "description": "City name."},
                },
                "required": ["street", "city"],
                "description": "The address.",
            }
        },
        "string",
        None,
        "differs: smolagents gives a bare object, without properties",
    ),
    (
        "dataclass",
        f_dataclass,
        {
            "point": {
                "type": "object",
                "properties": {
                    "x": {"type": "number"},
                    "y": {"type": "number"},
                    "label": {"type": "string", "nullable": True, "description": "Optional name."},
                },
                "required": ["x"],
                "description": "The point.",
            }
        },
        "number",
        None,
        "differs: smolagents gives a bare object, without properties",
    ),
    (
        "nested_dataclass",
        f_nested_dataclass,
        {
            "segment": {
                "type": "object",
                "properties": {
                    "start": {
                        "type": "object",
                        "properties": {
                            "x": {"type": "number"},
                            "y": {"type": "number"},
                            "label": {"type": "string", "nullable": True, "description": "Optional name."},
                        },
                        "required": ["x"],
                    },
                    "end": {
                        "type": "object",
                        "properties": {
                            "x": {"type": "number"},
                            "y": {"type": "number"},
                            "label": {"type": "string", "nullable": True, "description": "Optional name."},
                        },
                        "required": ["x"],
                    },
                },
                "required": ["start", "end"],
                "description": "Two points.",
            }
        },
        "number",
        None,
        "differs: smolagents gives a bare object, without properties",
    ),
    (
        "enum",
        f_enum,
        {"color": {"type": "string", "enum": ["red", "green"], "description": "The color."}},
        "string",
        None,
        "differs: smolagents gives a bare object, not an enum of values",
    ),
    (
        "return_optional",
        f_return_optional,
        {"text": {"type": "string", "description": "Where to look."}},
        "integer",
        None,
        "same",
    ),
    (
        "return_union",
        f_return_union,
        {"text": {"type": "string", "description": "Input."}},
        "any",
        None,
        "same",
    ),
    (
        "return_dataclass",
        f_return_dataclass,
        {"x": {"type": "number", "description": "The x coordinate."}},
        "object",
        {
            "type": "object",
            "properties": {
                "x": {"type": "number"},
                "y": {"type": "number"},
                "label": {"type": ["string", "null"], "description": "Optional name."},
            },
            "required": ["x"],
        },
        "differs: smolagents sets no output_schema",
    ),
    ("no_args", f_no_args, {}, "null", None, "same"),
    (
        "return_none",
        f_return_none,
        {"path": {"type": "string", "description": "The file."}},
        "null",
        None,
        "same",
    ),
    (
        "async",
        f_async,
        {
            "url": {"type": "string", "description": "The address."},
            "timeout": {"type": "number", "description": "Seconds to wait.", "nullable": True},
        },
        "string",
        None,
        "raises: smolagents cannot make a tool from an async function",
    ),
    (
        "annotated",
        f_annotated,
        {"count": {"type": "integer", "description": "Number of repeats."}},
        "string",
        None,
        "same",
    ),
    (
        "multiline_and_typed",
        f_multiline_and_typed,
        {
            "query": {
                "type": "string",
                "description": "The question, in plain words; it may span several lines.",
            },
            "depth": {
                "type": "integer",
                "description": "How many hops to follow. Note: more is slower.",
                "nullable": True,
            },
        },
        "string",
        None,
        "differs: smolagents cuts the description at an indented 'Note:' line",
    ),
    (
        "custom_class",
        f_custom_class,
        {"handle": {"type": "object", "description": "The handle."}},
        "any",
        None,
        "same",
    ),
    (
        "optional_literal",
        f_optional_literal,
        {
            "order": {
                "type": "string",
                "enum": ["asc", "desc"],
                "nullable": True,
                "description": "Sort order.",
            }
        },
        "array",
        None,
        "same",
    ),
    (
        "pydantic",
        f_pydantic,
        {
            "booking": {
                "type": "object",
                "properties": {
                    "guest": {"type": "string", "description": "Guest name."},
                    "nights": {"type": "integer"},
                    "tags": {"type": "array", "items": {"type": "string"}},
                },
                "required": ["guest"],
                "description": "The booking request.",
            }
        },
        "string",
        None,
        "differs: smolagents gives a bare object, without properties",
    ),
]
