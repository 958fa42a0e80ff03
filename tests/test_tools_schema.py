"""Schema extraction: the signature table, JSON schema conversion, docstring parsing, type coverage."""

from __future__ import annotations

import dataclasses
import json
from typing import Any, Literal, Optional

import pytest
from test_tools_signature_table import SIGNATURES, Address, Booking, Color, Point, Segment

from codeloop.tools import json_schema_for_type, schema_for_type, to_json_schema, tool, validate_value
from codeloop.tools.docstrings import parse_docstring, split_choices
from codeloop.tools.schema import python_type_text


def test_table_is_large_enough():
    assert len(SIGNATURES) >= 25
    assert len({row[0] for row in SIGNATURES}) == len(SIGNATURES)


@pytest.mark.parametrize("row", SIGNATURES, ids=[row[0] for row in SIGNATURES])
def test_signature_table(row):
    _, func, inputs, output_type, output_schema, _ = row
    made = tool(func)
    assert made.inputs == inputs
    assert made.output_type == output_type
    assert made.output_schema == output_schema
    assert made.name == func.__name__
    # every table schema also converts to a JSON schema that is valid JSON
    json.dumps(made.to_tool_schema())


def test_description_and_returns_from_docstring():
    row = {r[0]: r for r in SIGNATURES}
    made = tool(row["multiline_and_typed"][1])
    assert made.description == "Research a question.\n\nLooks in several places\nbefore answering."
    assert made.output_description == "A short report."
    assert tool(row["default"][1]).output_description == "The matching titles."


def test_parse_docstring_sections():
    doc = """Summary line.

    More text.

    Args:
        a: First
            continued.
        b (int, optional): Second.
        *args: Extra.

    Returns:
        list[int] | None: The values.

    Raises:
        ValueError: never.
    """
    parsed = parse_docstring(doc)
    assert parsed.description == "Summary line.\n\nMore text."
    assert parsed.args == {"a": "First continued.", "b": "Second.", "args": "Extra."}
    assert parsed.returns == "The values."
    assert parse_docstring("Returns:\n    The sum: a number.").returns == "The sum: a number."
    assert parse_docstring(None).description == ""


def test_split_choices():
    assert split_choices('Pick one (choices: ["a", "b"])') == ("Pick one", ["a", "b"])
    assert split_choices("Pick (choices: [1, 2])") == ("Pick", [1, 2])
    assert split_choices("Pick (choices: ['x', 'y'])") == ("Pick", ["x", "y"])
    assert split_choices('Unit (choices: ["c", "f"]).') == ("Unit", ["c", "f"])  # sentence-ending period
    assert split_choices("No choices here") == ("No choices here", None)
    with pytest.raises(ValueError, match="not a list literal"):
        split_choices("Pick (choices: a, b)")


def test_to_json_schema_nullable_forms():
    assert to_json_schema({"type": "integer", "nullable": True}) == {"type": ["integer", "null"]}
    assert to_json_schema({"type": ["integer", "string"], "nullable": True}) == {
        "type": ["integer", "string", "null"]
    }
    assert to_json_schema({"type": "string", "enum": ["a"], "nullable": True}) == {
        "type": ["string", "null"],
        "enum": ["a", None],
    }
    assert to_json_schema(
        {
            "anyOf": [{"type": "array", "items": {"type": "integer"}}, {"type": "integer", "enum": [1]}],
            "nullable": True,
        }
    ) == {
        "anyOf": [
            {"type": "array", "items": {"type": "integer"}},
            {"type": "integer", "enum": [1]},
            {"type": "null"},
        ]
    }
    assert to_json_schema({"type": "any", "description": "x"}) == {"description": "x"}
    assert to_json_schema({"type": "image"}) == {"type": "string"}
    nested = {
        "type": "object",
        "properties": {"a": {"type": "number", "nullable": True}},
        "additionalProperties": {"type": "any"},
    }
    assert to_json_schema(nested) == {
        "type": "object",
        "properties": {"a": {"type": ["number", "null"]}},
        "additionalProperties": {},
    }


def test_provider_schema_avoids_shapes_openai_rejects():
    # OpenAI rejects a property without "type" and an array without "items" (invalid_function_parameters).
    assert to_json_schema({"type": "any", "description": "x"}, provider=True) == {
        "type": "string",
        "description": "x",
    }
    assert to_json_schema({"type": "array"}, provider=True) == {"type": "array", "items": {"type": "string"}}
    assert to_json_schema({"type": "array", "items": {"type": "any"}}, provider=True) == {
        "type": "array",
        "items": {"type": "string"},
    }
    assert to_json_schema(
        {"type": "array", "prefixItems": [{"type": "integer"}, {"type": "string"}]}, provider=True
    ) == {
        "type": "array",
        "items": {"anyOf": [{"type": "integer"}, {"type": "string"}]},
        "minItems": 2,
        "maxItems": 2,
    }
    assert to_json_schema({"type": "array", "prefixItems": [{"type": "number"}] * 3}, provider=True) == {
        "type": "array",
        "items": {"type": "number"},
        "minItems": 3,
        "maxItems": 3,
    }
    # every table signature: no property without a type, no array without items
    for row in SIGNATURES:
        params = tool(row[1]).to_tool_schema()["function"]["parameters"]
        _assert_provider_safe(params, row[0])


def _assert_provider_safe(schema, where):
    if "anyOf" in schema:
        for branch in schema["anyOf"]:
            _assert_provider_safe(branch, where)
        return
    assert "type" in schema, where
    kinds = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
    assert "any" not in kinds and "image" not in kinds, where
    if "array" in kinds:
        assert "items" in schema and "prefixItems" not in schema, where
        _assert_provider_safe(schema["items"], where)
    for sub in (schema.get("properties") or {}).values():
        _assert_provider_safe(sub, where)
    if isinstance(schema.get("additionalProperties"), dict):
        _assert_provider_safe(schema["additionalProperties"], where)


def test_to_tool_schema_required_and_defaults():
    row = {r[0]: r for r in SIGNATURES}
    schema = tool(row["default"][1]).to_tool_schema()
    assert schema["type"] == "function"
    fn = schema["function"]
    assert fn["name"] == "f_default" and fn["description"] == "Search."
    params = fn["parameters"]
    assert params["type"] == "object"
    assert params["required"] == ["query"]
    assert params["properties"]["limit"] == {
        "type": ["integer", "null"],
        "description": "Max number of results.",
        "default": 10,
    }
    # nullable without a default: not required, admits null, no default key
    pipe = tool(row["pipe_none_no_default"][1]).to_tool_schema()["function"]["parameters"]
    assert pipe["required"] == []
    assert pipe["properties"]["value"] == {
        "type": ["string", "null"],
        "description": "A value that may be None.",
    }
    # structured argument: nested required list and nullable field
    dc = tool(row["dataclass"][1]).to_tool_schema()["function"]["parameters"]["properties"]["point"]
    assert dc["required"] == ["x"]
    assert dc["properties"]["label"] == {"type": ["string", "null"], "description": "Optional name."}


def test_json_schema_for_types():
    assert json_schema_for_type(int) == {"type": "integer"}
    assert json_schema_for_type(Optional[int]) == {"type": ["integer", "null"]}  # noqa: UP045
    assert json_schema_for_type(Address) == {
        "type": "object",
        "properties": {
            "street": {"type": "string", "description": "Street and number."},
            "city": {"type": "string", "description": "City name."},
        },
        "required": ["street", "city"],
    }
    booking = json_schema_for_type(Booking)
    assert booking["required"] == ["guest"]
    assert booking["properties"]["tags"] == {"type": "array", "items": {"type": "string"}}
    seg = json_schema_for_type(Segment)
    assert seg["properties"]["start"]["required"] == ["x"]
    assert json_schema_for_type(Color) == {"type": "string", "enum": ["red", "green"]}
    assert json_schema_for_type(Literal["a", 1]) == {"type": ["integer", "string"], "enum": ["a", 1]}


def test_recursive_dataclass_stops():
    @dataclasses.dataclass
    class Node:
        value: int
        children: list[Node]

    schema = schema_for_type(Node)
    assert schema["properties"]["children"] == {"type": "array", "items": {"type": "object"}}


def test_python_type_text():
    assert python_type_text({"type": "array", "items": {"type": "string"}}) == "list[str]"
    assert (
        python_type_text({"type": "object", "additionalProperties": {"type": "integer"}}) == "dict[str, int]"
    )
    assert (
        python_type_text({"type": "array", "prefixItems": [{"type": "integer"}, {"type": "string"}]})
        == "tuple[int, str]"
    )
    assert python_type_text({"type": "integer", "nullable": True}) == "int | None"
    assert python_type_text({"type": ["integer", "string"]}) == "int | str"
    assert python_type_text({"type": "string", "enum": ["a", "b"]}) == "Literal['a', 'b']"
    assert python_type_text({"type": "any"}) == "Any"


@pytest.mark.parametrize(
    ("value", "schema", "problem"),
    [
        (True, {"type": "integer"}, "expected integer, got bool"),
        ("3", {"type": "number"}, "expected number, got str"),
        (None, {"type": "string"}, "expected string, got None"),
        ([1, "x"], {"type": "array", "items": {"type": "integer"}}, "v[1]: expected integer"),
        ({"b": 1}, {"type": "object", "required": ["a"]}, "missing required field 'a'"),
        ({"a": "x"}, {"type": "object", "properties": {"a": {"type": "integer"}}}, "v.a: expected integer"),
        (
            {"k": "x"},
            {"type": "object", "additionalProperties": {"type": "integer"}},
            "v['k']: expected integer",
        ),
        (
            (1, 2, 3),
            {"type": "array", "prefixItems": [{"type": "integer"}, {"type": "integer"}]},
            "expected 2 items",
        ),
        ("c", {"type": "string", "enum": ["a", "b"]}, "'c' is not one of the allowed values: 'a', 'b'"),
        (1.5, {"anyOf": [{"type": "integer"}, {"type": "string"}]}, "expected int or str"),
        (None, {"type": ["integer", "string"]}, "expected integer or string"),
    ],
)
def test_validate_value_rejects(value, schema, problem):
    with pytest.raises(ValueError, match="^v") as info:
        validate_value(value, schema, "v")
    assert problem in str(info.value)


@pytest.mark.parametrize(
    ("value", "schema"),
    [
        (3, {"type": "number"}),
        (3.0, {"type": "number"}),
        (None, {"type": "integer", "nullable": True}),
        (None, {"type": ["integer", "null"]}),
        (object(), {"type": "any"}),
        (Point(1.0), {"type": "object"}),
        ([1, 2], {"type": "array", "items": {"type": "integer"}}),
        ((1, "a"), {"type": "array", "prefixItems": [{"type": "integer"}, {"type": "string"}]}),
        ({"x": 1.0}, json_schema_for_type(Point)),
        ("b", {"type": "string", "enum": ["a", "b"]}),
        (5, {}),
    ],
)
def test_validate_value_accepts(value, schema):
    validate_value(value, schema)


def test_numpy_numbers_fit_number_schemas():
    np = pytest.importorskip("numpy")
    validate_value(np.int64(3), {"type": "integer"})
    validate_value(np.float32(0.5), {"type": "number"})
    with pytest.raises(ValueError):
        validate_value(np.float32(0.5), {"type": "integer"})


def test_untyped_any_tool_prompt_types():
    @tool
    def mixed(
        a: list[int], b: dict[str, float], c: tuple[int, str], d: Literal["x", "y"] = "x"
    ) -> dict[str, Any]:
        """Mixed.

        Args:
            a: A.
            b: B.
            c: C.
            d: D.
        """
        return {}

    first_line = mixed.to_code_prompt().splitlines()[0]
    assert first_line == (
        "def mixed(a: list[int], b: dict[str, float], c: tuple[int, str], d: Literal['x', 'y'] = 'x') "
        "-> dict[str, Any]:"
    )


def test_example_before_args_stays_in_description():
    doc = """Search the web.

    Example:
        search("cats")

    Args:
        q: The query.
      limit: Dedented entry.

    Example:
        ignored after args
    """
    parsed = parse_docstring(doc)
    assert parsed.description == 'Search the web.\n\nExample:\n    search("cats")'
    assert parsed.args == {"q": "The query.", "limit": "Dedented entry."}
    assert parsed.returns is None


def test_pil_image_hint_maps_to_image_without_importing_pil():
    # smolagents 1.26 means to map PIL images to "image" but its check never matches (it gives "object");
    # codeloop recognises the class by module and name, so PIL need not be installed or imported.
    fake_image = type("Image", (), {"__module__": "PIL.Image"})
    assert schema_for_type(fake_image) == {"type": "image"}
    assert schema_for_type(list[fake_image]) == {"type": "array", "items": {"type": "image"}}
    assert python_type_text({"type": "image"}) == "Image"
