"""OpenTelemetry spans of runs: the span tree and GenAI attributes (in-memory exporter), OTLP/HTTP export to
a receiver on 127.0.0.1 (CODELOOP_OTEL=1 in a subprocess), and nothing recorded once uninstrumented."""

from __future__ import annotations

import gzip
import http.server
import os
import subprocess
import sys
import textwrap
import threading

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode
from test_agents import code

from codeloop import telemetry
from codeloop.agents import CodeAgent, LogLevel, ToolCallingAgent
from codeloop.errors import AgentGenerationError
from codeloop.events import subscribers
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


@tool
def broken(key: str) -> str:
    """Always fails.

    Args:
        key: anything
    """
    raise RuntimeError("tool is down")


@pytest.fixture
def exporter():
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    telemetry.instrument(provider)
    exporter.tracer = provider.get_tracer("test")
    try:
        yield exporter
    finally:
        telemetry.uninstrument()
        assert not subscribers()


def model_for(server: OpenAICompatibleServer) -> OpenAIModel:
    return OpenAIModel(
        "loopback-model", api_base=server.base_url, api_key="test", max_retries=0, prices={"input": 1.0, "output": 2.0}
    )


def _by_name(spans):
    out = {}
    for span in spans:
        out.setdefault(span.name, []).append(span)
    return out


def test_code_agent_span_tree_with_tool_calls_from_the_worker(exporter):
    replies = [
        Reply(
            content=code("v = lookup('capital')\nw = lookup(key='x')\nprint(v, w)"),
            usage={"prompt_tokens": 50, "completion_tokens": 7},
        ),
        Reply(content=code("final_answer(v.upper())"), usage={"prompt_tokens": 80, "completion_tokens": 5}),
    ]
    with OpenAICompatibleServer(replies) as server:
        agent = CodeAgent(tools=[lookup], model=model_for(server), verbosity_level=LogLevel.OFF)
        assert agent.run("capital?") == "PARIS"
    spans = exporter.get_finished_spans()
    names = _by_name(spans)
    (run,) = names["invoke_agent CodeAgent"]
    steps = names["step 1"] + names["step 2"]
    chats = names["chat loopback-model"]
    tools = names["execute_tool lookup"]
    codes = names["execute_code"]
    assert len(chats) == 2 and len(tools) == 2 and len(codes) == 2
    assert run.parent is None
    assert all(s.parent.span_id == run.context.span_id for s in steps)
    step1 = names["step 1"][0]
    # Tool calls made by code in the isolated worker are children of their step, inside its time.
    for span in tools + [chats[0], codes[0]]:
        assert span.parent.span_id == step1.context.span_id
        assert step1.start_time <= span.start_time <= span.end_time <= step1.end_time
    assert codes[0].start_time <= tools[0].start_time <= tools[1].end_time <= codes[0].end_time
    assert {t.attributes["gen_ai.tool.call.arguments"] for t in tools} == {'"capital"', '{"key": "x"}'}
    assert tools[0].attributes["gen_ai.tool.call.result"] == "Paris"
    assert tools[0].attributes["gen_ai.operation.name"] == "execute_tool"
    chat = chats[0].attributes
    assert chat["gen_ai.operation.name"] == "chat"
    assert chat["gen_ai.request.model"] == "loopback-model"
    assert chat["gen_ai.usage.input_tokens"] == 50 and chat["gen_ai.usage.output_tokens"] == 7
    assert tuple(chat["gen_ai.response.finish_reasons"]) == ("stop",)
    assert "lookup('capital')" in codes[0].attributes["codeloop.code"]
    assert run.attributes["codeloop.run.state"] == "success"
    assert run.attributes["gen_ai.usage.input_tokens"] == 130
    assert run.attributes["codeloop.final_answer"] == "PARIS"
    assert run.attributes["codeloop.usage.cost_usd"] == pytest.approx((130 * 1.0 + 12 * 2.0) / 1e6)
    assert all(s.context.trace_id == run.context.trace_id for s in spans)


def test_tool_calling_agent_errors_and_user_parent_span(exporter):
    replies = [
        Reply(tool_calls=[{"name": "broken", "arguments": {"key": "a"}, "id": "t1"}]),
        Reply(tool_calls=[{"name": "final_answer", "arguments": {"answer": "done"}, "id": "t2"}]),
    ]
    with OpenAICompatibleServer(replies) as server:
        agent = ToolCallingAgent(tools=[broken], model=model_for(server), verbosity_level=LogLevel.OFF)
        with exporter.tracer.start_as_current_span("user request") as outer:
            assert agent.run("go") == "done"
    names = _by_name(exporter.get_finished_spans())
    (run,) = names["invoke_agent ToolCallingAgent"]
    assert run.parent.span_id == outer.get_span_context().span_id
    (bad,) = names["execute_tool broken"]
    assert bad.status.status_code is StatusCode.ERROR and "tool is down" in bad.status.description
    assert bad.attributes["gen_ai.tool.call.id"] == "t1"
    step1 = names["step 1"][0]
    assert step1.status.status_code is StatusCode.ERROR
    assert tuple(names["chat loopback-model"][0].attributes["gen_ai.response.finish_reasons"]) == (
        "tool_calls",
    )


def test_failed_run_closes_every_span_with_the_error(exporter):
    with OpenAICompatibleServer([Reply.error(500)]) as server:
        agent = CodeAgent(
            tools=[], model=model_for(server), executor_type="inprocess", verbosity_level=LogLevel.OFF
        )
        with pytest.raises(AgentGenerationError):
            agent.run("x")
    names = _by_name(exporter.get_finished_spans())
    (run,) = names["invoke_agent CodeAgent"]
    assert run.status.status_code is StatusCode.ERROR
    assert run.attributes["error.type"] == "AgentGenerationError"
    assert any(e.name == "exception" for e in run.events)
    assert names["step 1"][0].status.status_code is StatusCode.ERROR


def test_managed_agent_run_nests_under_the_manager(exporter):
    replies = [
        code("r = helper(task='find it')\nprint(r)"),  # manager
        code("final_answer('found')"),  # helper
        code("final_answer(r)"),  # manager
    ]
    with OpenAICompatibleServer(replies) as server:
        model = model_for(server)
        helper = CodeAgent(
            tools=[],
            model=model,
            name="helper",
            description="finds things",
            executor_type="inprocess",
            verbosity_level=LogLevel.OFF,
        )
        manager = CodeAgent(
            tools=[],
            model=model,
            managed_agents=[helper],
            executor_type="inprocess",
            verbosity_level=LogLevel.OFF,
        )
        assert "found" in manager.run("go")
    names = _by_name(exporter.get_finished_spans())
    (inner,) = names["invoke_agent helper"]
    (call,) = names["execute_tool helper"]
    assert inner.parent.span_id == call.context.span_id


def test_uninstrumented_runs_record_nothing():
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    telemetry.instrument(provider)
    telemetry.uninstrument()
    assert not telemetry.is_instrumented()
    agent = CodeAgent(
        tools=[], model=_scripted("final_answer(1)"), executor_type="inprocess", verbosity_level=LogLevel.OFF
    )
    assert agent.run("x") == 1
    assert exporter.get_finished_spans() == ()


def _scripted(src: str):
    from codeloop.testing import ScriptedModel

    return ScriptedModel([code(src)])


class _Receiver(http.server.BaseHTTPRequestHandler):
    bodies: list[bytes] = []

    def do_POST(self):  # noqa: N802
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if self.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        type(self).bodies.append((self.path, body))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


def test_codeloop_otel_env_exports_over_otlp_http_to_a_local_receiver(tmp_path):
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    _Receiver.bodies = []
    receiver = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    thread = threading.Thread(target=receiver.serve_forever, daemon=True)
    thread.start()
    script = tmp_path / "traced.py"
    script.write_text(
        textwrap.dedent("""
        import sys
        from codeloop import CodeAgent, OpenAIModel
        from codeloop.testing import OpenAICompatibleServer
        reply = "Thought: ok.\\n<code>\\nfinal_answer(6 * 7)\\n</code>"
        with OpenAICompatibleServer([reply]) as server:
            model = OpenAIModel("loopback-model", api_base=server.base_url, api_key="k")
            agent = CodeAgent(tools=[], model=model, executor_type="inprocess", verbosity_level=0)
            print(agent.run("answer"))
        from opentelemetry import trace
        trace.get_tracer_provider().shutdown()  # flushes the batch exporter
    """)
    )
    try:
        env = {
            **os.environ,
            "CODELOOP_OTEL": "1",
            "OTEL_SERVICE_NAME": "otel-test",
            "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{receiver.server_address[1]}",
        }
        done = subprocess.run(
            [sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=60
        )
    finally:
        receiver.shutdown()
        receiver.server_close()
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "42"
    assert _Receiver.bodies and all(path == "/v1/traces" for path, _ in _Receiver.bodies)
    names, services = set(), set()
    for _, body in _Receiver.bodies:
        request = ExportTraceServiceRequest.FromString(body)
        for resource_spans in request.resource_spans:
            for attr in resource_spans.resource.attributes:
                if attr.key == "service.name":
                    services.add(attr.value.string_value)
            for scope in resource_spans.scope_spans:
                names.update(span.name for span in scope.spans)
    assert services == {"otel-test"}
    assert {"invoke_agent CodeAgent", "step 1", "chat loopback-model", "execute_code"} <= names


def test_streamed_and_planning_steps_keep_children_inside_their_step(exporter):
    replies = [
        "1. compute it",  # initial plan
        code("final_answer(2 ** 5)"),
    ]
    with OpenAICompatibleServer(replies, chunk_size=3) as server:
        agent = CodeAgent(
            tools=[],
            model=model_for(server),
            executor_type="inprocess",
            verbosity_level=LogLevel.OFF,
            stream_outputs=True,
            planning_interval=3,
        )
        assert agent.run("power") == 32
    names = _by_name(exporter.get_finished_spans())
    (planning,) = names["step 1 planning"]
    assert "compute it" in planning.attributes["codeloop.plan"]
    (step,) = names["step 1"]
    (chat,) = names["chat loopback-model"]
    assert chat.parent.span_id == step.context.span_id
    assert step.start_time <= chat.start_time <= chat.end_time <= step.end_time
    assert planning.end_time <= step.start_time


def test_context_compaction_is_an_event_on_the_run_span(exporter):
    from codeloop.events import ContextCompacted, RunFinished, RunStarted
    from codeloop.messages import TokenUsage

    (recorder,) = subscribers()
    recorder(RunStarted(run_id="r1", task="t"))
    recorder(ContextCompacted(run_id="r1", step_number=3, tokens_before=9000, tokens_after=2500,
                              max_context_tokens=4000, folded_steps=[1, 2], usage=TokenUsage(300, 40)))
    recorder(RunFinished(run_id="r1", steps=3))
    (run,) = exporter.get_finished_spans()
    (event,) = run.events
    assert event.name == "context_compacted"
    assert event.attributes["codeloop.context.tokens_before"] == 9000
    assert event.attributes["codeloop.context.folded_steps"] == 2
    assert event.attributes["gen_ai.usage.input_tokens"] == 300


def test_a_stream_dropped_midway_still_ends_its_spans(exporter):
    import gc
    import time

    from codeloop.testing import ScriptedModel

    agent = CodeAgent(tools=[], model=ScriptedModel([code("x = 1"), code("final_answer(x)")]),
                      executor_type="inprocess", verbosity_level=LogLevel.OFF)
    stream = agent.stream("go")
    for event in stream:
        if event.type == "step_finished":
            break
    stream.close()
    del stream, event, agent
    for _ in range(50):  # the portal thread finishes closing the generator on its own time
        gc.collect()
        if exporter.get_finished_spans() and any(
            s.name.startswith("invoke_agent") for s in exporter.get_finished_spans()
        ):
            break
        time.sleep(0.1)
    names = _by_name(exporter.get_finished_spans())
    (run,) = names["invoke_agent CodeAgent"]
    assert run.attributes["codeloop.run.state"] == "closed"
    assert run.status.status_code is StatusCode.ERROR
    assert names["step 1"][0].end_time <= run.end_time
