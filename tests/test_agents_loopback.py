"""Agents end to end against the loopback OpenAI-compatible server (real HTTP on 127.0.0.1)."""

from __future__ import annotations

import asyncio

from test_agents import code

from codeloop.agents import CodeAgent, LogLevel, ToolCallingAgent
from codeloop.events import ModelDelta
from codeloop.models import OpenAIModel
from codeloop.testing import OpenAICompatibleServer, Reply
from codeloop.tools import tool


@tool
def lookup(key: str) -> str:
    """Look a key up.

    Args:
        key: what to look up
    """
    return {"capital": "Paris"}.get(key, "unknown")


def model_for(server: OpenAICompatibleServer) -> OpenAIModel:
    return OpenAIModel("loopback-model", api_base=server.base_url, api_key="test", max_retries=2, max_wait=5)


def test_code_agent_over_http_with_streaming_and_retry():
    replies = [
        Reply.error(429, retry_after=0),  # retried by the model layer
        code("v = lookup('capital')\nprint(v)"),
        code("final_answer(v.upper())"),
    ]
    with OpenAICompatibleServer(replies) as server:
        agent = CodeAgent(
            tools=[lookup],
            model=model_for(server),
            executor_type="inprocess",
            verbosity_level=LogLevel.OFF,
            stream_outputs=True,
        )
        events = list(agent.stream("capital?"))
        requests = server.chat_requests
    assert events[-1].type == "run_finished" and events[-1].output == "PARIS"
    assert any(isinstance(e, ModelDelta) for e in events)
    assert len(requests) == 3
    sent = requests[-1]["json"]["messages"]
    assert any("Paris" in str(m["content"]) for m in sent)
    assert events[-1].usage.input_tokens > 0


def test_tool_calling_agent_over_http_native_tool_calls():
    replies = [
        Reply(tool_calls=[{"name": "lookup", "arguments": {"key": "capital"}, "id": "t1"}]),
        Reply(tool_calls=[{"name": "final_answer", "arguments": {"answer": "Paris it is"}, "id": "t2"}]),
    ]
    with OpenAICompatibleServer(replies) as server:
        agent = ToolCallingAgent(tools=[lookup], model=model_for(server), verbosity_level=LogLevel.OFF)
        assert agent.run("capital?") == "Paris it is"
        first = server.chat_requests[0]["json"]
    assert {t["function"]["name"] for t in first["tools"]} == {"lookup", "final_answer"}
    assert "Paris" in agent.memory.steps[1].observations


def test_concurrent_runs_over_http():
    def handler(request):
        messages = request["messages"]
        task = next(str(m["content"]) for m in messages if "number" in str(m["content"]))
        n = int(task.split("number ")[1].split()[0].strip("'\"]}.,\\n"))
        done = any(m["role"] in ("tool", "user") and "Observation" in str(m["content"]) for m in messages)
        return code(f"final_answer({n} + 1)") if done else code(f"print({n})")

    async def main(server):
        agent = CodeAgent(
            tools=[], model=model_for(server), executor_type="inprocess", verbosity_level=LogLevel.OFF
        )
        return await asyncio.gather(*(agent.arun(f"number {i} please") for i in range(20)))

    with OpenAICompatibleServer(handler=handler) as server:
        assert asyncio.run(main(server)) == [i + 1 for i in range(20)]
