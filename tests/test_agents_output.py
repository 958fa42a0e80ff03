"""Typed outputs: the final answer is validated against output_type, with bounded retries."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypedDict

import pydantic
import pytest
from test_agents import code, make_agent

from codeloop.agents import LogLevel, OutputSpec, OutputValidationError
from codeloop.errors import AgentGenerationError
from codeloop.models.scripted import ScriptedModel


class City(pydantic.BaseModel):
    name: str
    population: int


@dataclass
class Point:
    x: int
    y: int


class Pair(TypedDict):
    left: str
    right: str


def test_pydantic_output_with_one_retry():
    agent = make_agent(
        [
            code("final_answer({'name': 'Paris'})"),
            code("final_answer({'name': 'Paris', 'population': 2100000})"),
        ],
        output_type=City,
    )
    result = agent.run("Which city?", return_full_result=True)
    assert isinstance(result.output, City) and result.output.population == 2_100_000
    err = str(agent.memory.steps[1].error)
    assert "population" in err and "schema" in err.lower()
    # the model was told the schema in the task
    assert "population" in agent.memory.steps[0].task


def test_json_string_answer_is_parsed():
    agent = make_agent([code('final_answer(\'{"x": 1, "y": 2}\')')], output_type=Point)
    assert agent.run("t") == Point(1, 2)


def test_typeddict_and_run_kwarg():
    agent = make_agent([code("final_answer({'left': 'a', 'right': 'b'})")])
    assert agent.run("t", output_type=Pair) == {"left": "a", "right": "b"}


def test_json_schema_output_without_pydantic_types():
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}
    agent = make_agent(
        [code("final_answer({'n': 'three'})"), code("final_answer({'n': 3})")], output_type=schema
    )
    assert agent.run("t") == {"n": 3}
    assert "integer" in str(agent.memory.steps[1].error)


def test_retries_are_bounded():
    agent = make_agent(
        ScriptedModel(lambda m: code("final_answer('nope')")), output_type=City, max_output_retries=1
    )
    with pytest.raises(AgentGenerationError, match="output_type after 2 attempts"):
        agent.run("t")


def test_output_spec_unit():
    spec = OutputSpec({"type": "array", "items": {"type": "number"}})
    assert spec.validate([1, 2.5]) == [1, 2.5]
    with pytest.raises(OutputValidationError, match=r"value\[1\]"):
        spec.validate([1, "x"])
    assert OutputSpec(int).validate("5") == 5
    assert OutputSpec(City).schema["required"] == ["name", "population"]
    assert LogLevel.OFF < LogLevel.ERROR
