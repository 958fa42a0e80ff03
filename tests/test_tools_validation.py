"""Every definition error (ToolDefinitionError) and call error (ToolValidationError) names tool and field."""

from __future__ import annotations

import collections.abc
from typing import Any, Literal, TypeVar

import pytest

from codeloop.errors import ToolDefinitionError, ToolValidationError
from codeloop.tools import Tool, tool
from codeloop.tools.validation import validate_tool_attributes

# --------------------------------------------------------------------------- @tool definition errors


def test_missing_docstring():
    def no_doc(a: int) -> int:
        return a

    with pytest.raises(ToolDefinitionError, match="Tool 'no_doc': the function has no docstring"):
        tool(no_doc)


def test_missing_argument_description():
    def partial(a: int, b: int) -> int:
        """Add.

        Args:
            a: First.
        """
        return a + b

    with pytest.raises(ToolDefinitionError) as info:
        tool(partial)
    assert "Tool 'partial'" in str(info.value) and "argument 'b'" in str(info.value)


def test_missing_type_hint():
    def untyped(a, b: int) -> int:
        """Add.

        Args:
            a: First.
            b: Second.
        """
        return b

    with pytest.raises(ToolDefinitionError, match="Tool 'untyped': argument 'a' has no type hint"):
        tool(untyped)


def test_missing_return_hint():
    def noret(a: int):
        """Id.

        Args:
            a: A.
        """
        return a

    with pytest.raises(ToolDefinitionError, match="Tool 'noret': Tool return type not found: the function has no return type hint"):
        tool(noret)


T = TypeVar("T")


@pytest.mark.parametrize(
    ("hint", "words"),
    [
        (set[int], "use list[...] instead"),
        (collections.abc.Callable[[int], int], "is not supported"),
        (collections.abc.Iterator[int], "is not supported"),
        (T, "type variable"),
        (tuple[int, ..., str], "is not supported"),
    ],
)
def test_unsupported_type(hint, words):
    def func(value) -> int:
        """F.

        Args:
            value: V.
        """
        return 1

    func.__annotations__ = {"value": hint, "return": int}
    with pytest.raises(ToolDefinitionError) as info:
        tool(func)
    message = str(info.value)
    assert "Tool 'func'" in message and "argument 'value'" in message and words in message


def test_unsupported_return_type():
    def func(a: int) -> set[int]:
        """F.

        Args:
            a: A.
        """
        return {a}

    with pytest.raises(ToolDefinitionError, match="Tool 'func': return type"):
        tool(func)


def test_var_args_rejected():
    def func(*items: int) -> int:
        """F.

        Args:
            items: I.
        """
        return 0

    with pytest.raises(ToolDefinitionError, match="Tool 'func': argument 'items' is \\*args"):
        tool(func)


def test_bad_choices():
    def func(a: str) -> str:
        """F.

        Args:
            a: A (choices: tea, coffee)
        """
        return a

    with pytest.raises(ToolDefinitionError, match="Tool 'func': argument 'a'"):
        tool(func)


@pytest.mark.parametrize("bad_name", ["my-tool", "class", "1tool", ""])
def test_bad_tool_name(bad_name):
    def func(a: int) -> int:
        """F.

        Args:
            a: A.
        """
        return a

    with pytest.raises(
        ToolDefinitionError, match="must be a valid Python identifier and not a reserved keyword, found"
    ) as info:
        tool(name=bad_name)(func) if bad_name else _named_tool("", func)
    assert repr(bad_name) in str(info.value)


def _named_tool(name, func):
    class Named(Tool):
        description = "d"
        inputs = {"a": {"type": "integer", "description": "A."}}
        output_type = "integer"

        def forward(self, a):
            return a

    Named.name = name
    return Named()


# --------------------------------------------------------------------------- subclass definition errors


def test_subclass_signature_mismatch_warns_at_class_creation_and_raises_at_instantiation():
    # as in smolagents, a module may define an invalid class (only validate_tool_attributes sees it); the
    # class statement warns, and the class cannot be instantiated
    with pytest.warns(UserWarning, match="Mismatch cannot be used"):

        class Mismatch(Tool):
            name = "mismatch"
            description = "d"
            inputs = {"a": {"type": "string", "description": "A."}}
            output_type = "string"

            def forward(self, b: str) -> str:
                return b

    with pytest.raises(ToolDefinitionError) as info:
        Mismatch()
    message = str(info.value)
    assert "Tool 'mismatch'" in message and "['a']" in message and "['b']" in message
    with pytest.raises(ToolDefinitionError, match="Tool 'mismatch'"):
        validate_tool_attributes(Mismatch)


def test_subclass_optional_arg_must_be_nullable():
    with pytest.warns(UserWarning, match="Tool 'opt': argument 'a' is optional"):

        class Opt(Tool):
            name = "opt"
            description = "d"
            inputs = {"a": {"type": "string", "description": "A."}}
            output_type = "string"

            def forward(self, a: str = "x") -> str:
                return a

    with pytest.raises(ToolDefinitionError, match="Tool 'opt': argument 'a' is optional"):
        Opt()


def test_subclass_nullable_needs_default_or_optional_hint():
    with pytest.warns(UserWarning, match="Tool 'nul': input 'a' is nullable"):

        class Nul(Tool):
            name = "nul"
            description = "d"
            inputs = {"a": {"type": "string", "description": "A.", "nullable": True}}
            output_type = "string"

            def forward(self, a: str) -> str:
                return a

    with pytest.raises(ToolDefinitionError, match="Tool 'nul': input 'a' is nullable"):
        Nul()


def test_subclass_nullable_ok_with_optional_hint():
    class Fine(Tool):
        name = "fine"
        description = "d"
        inputs = {"a": {"type": "string", "description": "A.", "nullable": True}}
        output_type = "string"

        def forward(self, a: str | None) -> str:
            return str(a)

    assert Fine()() == "None"


@pytest.mark.parametrize(
    ("attrs", "words"),
    [
        (
            {"inputs": {"a": {"type": "text", "description": "A."}}},
            "input 'a' has type 'text', which is not allowed",
        ),
        ({"inputs": {"a": {"type": ["string", "blob"], "description": "A."}}}, "input 'a' has type 'blob'"),
        ({"inputs": {"a": {"type": 3, "description": "A."}}}, "input 'a' has type 3"),
        ({"inputs": {"a": {"description": "A."}}}, "input 'a' has no 'type' key"),
        ({"inputs": {"a": {"type": "string"}}}, "input 'a' needs a 'description'"),
        ({"inputs": {"a": "string"}}, "input 'a' must be a dict"),
        ({"output_type": "str"}, "output_type 'str' is not allowed"),
        ({"output_schema": "not a dict"}, "attribute 'output_schema' must be a dict"),
        ({"description": None}, "must set the attribute 'description'"),
        ({"inputs": ["a"]}, "attribute 'inputs' must be a dict"),
    ],
)
def test_subclass_attribute_errors_at_instantiation(attrs, words):
    class Dynamic(Tool):
        def __init__(self):
            super().__init__()
            self.name = "dyn"
            self.description = "d"
            self.inputs = {"a": {"type": "string", "description": "A."}}
            self.output_type = "string"
            for key, value in attrs.items():
                setattr(self, key, value)

        def forward(self, a):
            return a

    with pytest.raises(ToolDefinitionError, match=words) as info:
        Dynamic()
    assert "'dyn'" in str(info.value) or "'Dynamic'" in str(info.value)


def test_skip_forward_signature_validation():
    class Generic(Tool):
        name = "generic"
        description = "d"
        inputs = {"a": {"type": "string", "description": "A."}}
        output_type = "string"
        skip_forward_signature_validation = True

        def forward(self, *args, **kwargs):
            return repr((args, kwargs))

    assert Generic()("x") == "(('x',), {})"


def test_validate_arguments_without_args_checks_definition():
    @tool
    def ok(a: int) -> int:
        """Ok.

        Args:
            a: A.
        """
        return a

    assert ok.validate_arguments() is None
    ok.output_type = "bogus"
    with pytest.raises(ToolDefinitionError, match="Tool 'ok': output_type 'bogus'"):
        ok.validate_arguments()


# --------------------------------------------------------------------------- call errors


@tool
def book(city: str, nights: int, budget: float = 100.0, kind: Literal["hotel", "hostel"] = "hotel") -> str:
    """Book a stay.

    Args:
        city: Where.
        nights: How long.
        budget: Max price per night.
        kind: What sort of place.
    """
    return f"{city}:{nights}:{budget}:{kind}"


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"city": "Oslo", "nights": "2"}, "invalid argument nights: expected integer, got str"),
        ({"city": "Oslo", "nights": True}, "invalid argument nights: expected integer, got bool"),
        ({"city": 5, "nights": 2}, "invalid argument city: expected string, got int"),
        (
            {"city": "Oslo", "nights": 2, "budget": "cheap"},
            "invalid argument budget: expected number or null",
        ),
        ({"city": "Oslo"}, "missing the required argument 'nights'"),
        ({"city": "Oslo", "nights": 2, "pets": 1}, "unknown argument 'pets'"),
        ({"city": "Oslo", "nights": 2, "kind": "tent"}, "invalid argument kind: 'tent' is not one of"),
        ({"city": None, "nights": 2}, "invalid argument city: expected string, got None"),
    ],
)
def test_call_errors_name_tool_and_field(kwargs, words):
    with pytest.raises(ToolValidationError, match="Tool 'book'") as info:
        book(**kwargs)
    assert words in str(info.value)
    with pytest.raises(ToolValidationError, match="Tool 'book'"):
        book.validate_arguments(kwargs)


def test_call_accepts_valid_values():
    assert book("Oslo", 2) == "Oslo:2:100.0:hotel"
    assert book(city="Oslo", nights=2, budget=50) == "Oslo:2:50:hotel"  # int accepted as number
    assert book({"city": "Rome", "nights": 1, "kind": "hostel"}) == "Rome:1:100.0:hostel"
    assert book.validate_arguments({"city": "Rome", "nights": 1}) == {"city": "Rome", "nights": 1}


def test_too_many_positional_and_duplicate():
    with pytest.raises(ToolValidationError, match="Tool 'book' takes at most 4 positional arguments"):
        book("a", 1, 2.0, "hotel", "extra")
    with pytest.raises(ToolValidationError, match="Tool 'book' got two values for argument 'city'"):
        book("a", city="b", nights=1)


def test_array_and_object_items_checked():
    @tool
    def total(values: list[int], weights: dict[str, float]) -> float:
        """Total.

        Args:
            values: V.
            weights: W.
        """
        return 0.0

    with pytest.raises(
        ToolValidationError, match=r"Tool 'total': invalid argument values\[1\]: expected integer"
    ):
        total([1, "2"], {})
    with pytest.raises(ToolValidationError, match=r"weights\['a'\]: expected number"):
        total([1], {"a": "x"})
    assert total([1], {"a": 1}) == 0.0


def test_nullable_accepts_none_and_any_accepts_all():
    @tool
    def maybe(x: int | None, y: Any) -> str:
        """M.

        Args:
            x: X.
            y: Y.
        """
        return f"{x}:{type(y).__name__}"

    assert maybe(None, object()) == "None:object"
    assert maybe(y=1) == "None:int"  # nullable without default may be omitted: filled with None


def test_non_dict_arguments():
    assert book.validate_arguments is not None
    with pytest.raises(ToolValidationError, match="Tool 'book' takes arguments city, nights"):
        book.validate_arguments("Oslo")

    @tool
    def shout(text: str) -> str:
        """S.

        Args:
            text: T.
        """
        return text.upper()

    assert shout.validate_arguments("hi") == {"text": "hi"}


def test_validation_can_be_turned_off():
    class Loose(Tool):
        name = "loose"
        description = "d"
        inputs = {"a": {"type": "string", "description": "A."}}
        output_type = "string"
        validate_call_arguments = False

        def forward(self, a):
            return repr(a)

    assert Loose()(5) == "5"


def test_unresolvable_forward_annotation_is_judged_by_text():
    class Lenient(Tool):
        name = "lenient"
        description = "d"
        inputs = {"a": {"type": "object", "description": "A.", "nullable": True}}
        output_type = "string"

        def forward(self, a: UndefinedThing | None) -> str:  # noqa: F821 - never resolved on purpose
            return repr(a)

    assert Lenient()() == "None"
