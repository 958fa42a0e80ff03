"""The closing "answer now" reply after max_steps: a structured reply gives the answer it carries."""

from __future__ import annotations

import json

import pytest

from codeloop.agents import CodeAgent, LogLevel, ToolCallingAgent
from codeloop.agents.final_reply import answer_from_final_reply
from codeloop.models import OpenAIModel
from codeloop.testing import OpenAICompatibleServer, Reply


def _action(code: str, thought: str = "I answer now.") -> str:
    return json.dumps({"thought": thought, "code": code}, indent=2)


@pytest.mark.parametrize(
    ("reply", "answer"),
    [
        (_action("final_answer(391)"), 391),
        (_action("final_answer(answer='Paris')") + "\nCalling tools:\n[...]", "Paris"),
        ("```json\n" + _action("<code>\nfinal_answer([1, 2.5])\n</code>") + "\n```", [1, 2.5]),
        (json.dumps({"name": "final_answer", "arguments": {"answer": {"k": 1}}}), {"k": 1}),
        (json.dumps({"name": "final_answer", "arguments": json.dumps({"answer": "yes"})}), "yes"),
    ],
)
def test_structured_replies_give_their_answer(reply, answer):
    assert answer_from_final_reply(reply) == answer


@pytest.mark.parametrize(
    "reply",
    [
        "The answer is 391.",
        _action("print(17 * 23)"),  # an action without an answer: returned as it is, never executed
        _action("final_answer(17 * 23)"),  # not a literal: nothing is evaluated
        _action("x = 1\nfinal_answer(x)"),
        json.dumps({"answer": 3, "thought": "a JSON answer of the user's own shape stays as it is"}),
        json.dumps({"name": "lookup", "arguments": {"key": "capital"}}),
        '{"thought": "cut off", "code": "final_ans',
        "[1, 2, 3]",
    ],
)
def test_other_replies_are_unchanged(reply):
    assert answer_from_final_reply(reply) == reply


def _model(server: OpenAICompatibleServer) -> OpenAIModel:
    return OpenAIModel("loopback-model", api_base=server.base_url, api_key="test", max_retries=0)


def test_structured_code_agent_answer_now_reply_is_parsed_over_http():
    step = Reply(content=_action("print('still working')"))
    closing = Reply(content=_action("final_answer('forty-two')", thought="Out of steps; the answer."))
    with OpenAICompatibleServer([step, closing]) as server:
        agent = CodeAgent(tools=[], model=_model(server), use_structured_outputs_internally=True,
                          max_steps=1, executor_type="inprocess", verbosity_level=LogLevel.OFF)
        result = agent.run("What is the answer?", return_full_result=True)
        requests = server.chat_requests
    assert result.state == "max_steps_error"
    assert result.output == "forty-two"
    assert agent.memory.steps[-1].action_output == "forty-two"
    # the closing request is smolagents' final-answer prompt, without a response format
    assert len(requests) == 2 and "response_format" not in requests[-1]["json"]
    assert "response_format" in requests[0]["json"]


def test_provide_final_answer_and_tool_calling_agent_parse_too():
    call = json.dumps({"name": "final_answer", "arguments": {"answer": "Paris"}})
    replies = [Reply(content=call), Reply(content="Let me think."), Reply(content=call)]
    with OpenAICompatibleServer(replies) as server:
        agent = CodeAgent(tools=[], model=_model(server), use_structured_outputs_internally=True,
                          executor_type="inprocess", verbosity_level=LogLevel.OFF)
        assert agent.provide_final_answer("Capital of France?").content == "Paris"
        tool_agent = ToolCallingAgent(tools=[], model=_model(server), max_steps=1, verbosity_level=LogLevel.OFF)
        result = tool_agent.run("Capital of France?", return_full_result=True)  # step 1 calls no tool
        assert result.state == "max_steps_error" and result.output == "Paris"


def test_plain_answer_now_reply_is_kept():
    with OpenAICompatibleServer([Reply(content=_action("print(1)")), Reply(content="Probably 42.")]) as server:
        agent = CodeAgent(tools=[], model=_model(server), use_structured_outputs_internally=True,
                          max_steps=1, executor_type="inprocess", verbosity_level=LogLevel.OFF)
        assert agent.run("What is the answer?") == "Probably 42."
