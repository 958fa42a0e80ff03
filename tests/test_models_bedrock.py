"""AmazonBedrockModel through real boto3 (Converse JSON, ConverseStream event-stream framing) on 127.0.0.1."""

from __future__ import annotations

import base64
import contextlib
import functools
import http.server
import threading

import pytest

from codeloop.errors import ModelConfigurationError, ModelRequestError
from codeloop.messages import agglomerate_stream_deltas
from codeloop.models import AmazonBedrockModel, Model
from codeloop.models.retry import RetryPolicy
from codeloop.testing import Reply
from codeloop.testing.bedrock_server import BedrockReply, BedrockServer

MODEL = "anthropic.claude-3-5-sonnet-20240620-v1:0"
FAST = RetryPolicy(max_retries=3, initial_delay=0.01, max_delay=0.05, max_wait=5)
USER = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}]


class WeatherTool:
    name = "get_weather"
    description = "Weather for a city."
    inputs = {"city": {"type": "string", "description": "City name"}}
    output_type = "string"


@pytest.fixture(autouse=True)
def aws_env(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDLOOPBACK")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")  # never ask the instance metadata address
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_DEFAULT_REGION", "AWS_REGION"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")


@pytest.fixture
def server():
    with BedrockServer(models=[MODEL], api_key="AKIDLOOPBACK") as srv:
        yield srv


def make(server, **kwargs):
    kwargs.setdefault("retry_policy", FAST)
    return AmazonBedrockModel(MODEL, client_kwargs={"region_name": "us-east-1", "endpoint_url": server.url}, **kwargs)


async def test_converse_request_tools_and_usage(server):
    calls = [{"name": "get_weather", "arguments": {"city": "Paris"}, "id": "t1"},
             {"name": "get_weather", "arguments": {"city": "Rome"}, "id": "t2"}]
    server.add({"content": "Checking.", "tool_calls": calls,
                "usage": {"inputTokens": 12, "outputTokens": 4, "cacheReadInputTokens": 30}}, "Both sunny.")
    model = make(server, max_tokens=300, temperature=0.3, top_k=20)
    reply = await model.agenerate(USER, tools_to_call_from=[WeatherTool()], stop_sequences=["END"])
    assert reply.content == "Checking."
    assert [(c.id, c.function.arguments) for c in reply.tool_calls] == [("t1", {"city": "Paris"}), ("t2", {"city": "Rome"})]
    assert (reply.token_usage.input_tokens, reply.token_usage.cached_input_tokens) == (42, 30)
    sent = server.converse_requests[-1]
    assert sent["path"] == f"/model/{MODEL}/converse"
    assert sent["headers"]["authorization"].startswith("AWS4-HMAC-SHA256 Credential=AKIDLOOPBACK/")
    body = sent["json"]
    assert body["system"] == [{"text": "Be brief."}]
    assert body["inferenceConfig"] == {"maxTokens": 300, "temperature": 0.3, "stopSequences": ["END"]}
    assert body["additionalModelRequestFields"] == {"top_k": 20}
    assert body["toolConfig"]["toolChoice"] == {"any": {}}
    assert body["toolConfig"]["tools"][0]["toolSpec"]["inputSchema"]["json"]["required"] == ["city"]
    history = [*USER, reply, {"role": "tool", "tool_call_id": "t1", "content": "sunny"},
               {"role": "tool", "tool_call_id": "t2", "content": "warm"}]
    assert (await model.agenerate(history)).content == "Both sunny."
    turns = server.converse_requests[-1]["json"]["messages"]
    assert [list(b) for b in turns[1]["content"]] == [["text"], ["toolUse"], ["toolUse"]]
    assert [b["toolResult"]["toolUseId"] for b in turns[2]["content"]] == ["t1", "t2"]
    model.close()


async def test_converse_stream_event_framing(server):
    server.add({"content": "streamed words here", "chunk_size": 4,
                "tool_calls": [{"name": "get_weather", "arguments": {"city": "Oslo"}, "id": "t9"}],
                "usage": {"inputTokens": 5, "outputTokens": 6}})
    model = make(server)
    deltas = [d async for d in model.astream(USER, tools_to_call_from=[WeatherTool()])]
    assert server.converse_requests[-1]["path"].endswith("/converse-stream")
    assert sum(1 for d in deltas if d.content) >= 4
    message = model.parse_tool_calls(agglomerate_stream_deltas(deltas))
    assert message.content == "streamed words here"
    assert (message.tool_calls[0].id, message.tool_calls[0].function.arguments) == ("t9", {"city": "Oslo"})
    assert (message.token_usage.input_tokens, message.token_usage.output_tokens) == (5, 6)


async def test_stop_sequences_images_and_response_format(server):
    server.add("one STOP two", "gamma STOP delta", '{"a": 1}', "a picture")
    assert (await make(server).agenerate(USER, stop_sequences=["STOP"])).content == "one "
    cut = make(server, profile={"supports_stop": False})
    text = "".join([d.content or "" async for d in cut.astream(USER, stop_sequences=["STOP"])])
    assert text == "gamma " and "inferenceConfig" not in server.converse_requests[-1]["json"]
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}}
    fmt = {"type": "json_schema", "json_schema": {"name": "answer", "schema": schema}}
    assert (await make(server).agenerate(USER, response_format=fmt)).content == '{"a": 1}'
    structure = server.converse_requests[-1]["json"]["outputConfig"]["textFormat"]["structure"]["jsonSchema"]
    assert structure["name"] == "answer" and structure["schema"] == '{"type": "object", "properties": {"a": {"type": "integer"}}}'
    png = b"\x89PNG\r\n\x1a\n"
    await make(server).agenerate([{"role": "user", "content": [{"type": "image", "image": png}]}])
    image = server.converse_requests[-1]["json"]["messages"][0]["content"][0]["image"]
    assert image == {"format": "png", "source": {"bytes": base64.b64encode(png).decode()}}


async def test_images_from_pil_paths_urls_and_s3(server, tmp_path):
    from PIL import Image

    server.add("seen")
    jpeg = tmp_path / "cat.jpg"
    Image.new("RGB", (4, 4), "red").save(jpeg, format="JPEG")
    gif = Image.new("RGB", (3, 3), "blue")
    with _file_server(tmp_path) as base:  # an http server on 127.0.0.1 that serves the image
        url = f"{base}/cat.jpg"
        parts = [{"type": "image", "image": str(jpeg)}, {"type": "image", "image": jpeg.as_uri()},
                 {"type": "image", "image": url}, {"type": "image", "image": gif},
                 {"type": "image", "image": "s3://bucket/photos/dog.webp"}]
        await make(server).agenerate([{"role": "user", "content": [{"type": "text", "text": "look"}, *parts]}])
    blocks = server.converse_requests[-1]["json"]["messages"][0]["content"]
    assert blocks[0] == {"text": "look"}
    for block in blocks[1:4]:  # a path, a file:// URL and an http URL, each read into bytes: the JPEG itself
        assert block["image"] == {"format": "jpeg", "source": {"bytes": base64.b64encode(jpeg.read_bytes()).decode()}}
    assert blocks[4]["image"]["format"] == "png"  # a PIL image, encoded as PNG
    assert blocks[5]["image"] == {"format": "webp", "source": {"s3Location": {"uri": "s3://bucket/photos/dog.webp"}}}
    with pytest.raises(ModelConfigurationError, match="Cannot read the image"):
        await make(server).agenerate([{"role": "user", "content": [{"type": "image", "image": "/no/such.png"}]}])


@contextlib.contextmanager
def _file_server(folder):
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    handler = functools.partial(Quiet, directory=str(folder))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)


async def test_retries_throttling_unavailable_and_dropped_stream(server):
    server.add(BedrockReply.error(429), BedrockReply.error(503), BedrockReply.error(500), "ok")
    assert (await make(server).agenerate(USER)).content == "ok"
    assert len(server.converse_requests) == 4
    server.add(Reply.drop(after_chunks=0), "second")
    assert "".join([d.content or "" async for d in make(server).astream(USER)]) == "second"
    server.add(Reply.drop(after_chunks=3, content="a long reply cut midway", chunk_size=3))
    with pytest.raises(ModelRequestError, match="stream broke"):
        async for _ in make(server).astream(USER):
            pass
    server.add(*[BedrockReply.error(429)] * 4)
    with pytest.raises(ModelRequestError, match="ThrottlingException") as info:
        await make(server).agenerate(USER)
    assert info.value.attempts == 4 and info.value.status_code == 429


async def test_bad_credentials_missing_model_no_credentials(server, monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDWRONG")
    with pytest.raises(ModelRequestError, match="UnrecognizedClientException.*AWS credentials") as info:
        await make(server).agenerate(USER)
    assert info.value.attempts == 1
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDLOOPBACK")
    with pytest.raises(ModelRequestError, match="ResourceNotFoundException"):
        await AmazonBedrockModel("no-such-model", client_kwargs={"region_name": "us-east-1",
                                                                 "endpoint_url": server.url}).agenerate(USER)
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    with pytest.raises(ModelConfigurationError, match="no AWS credentials"):
        make(server).generate(USER)


def test_missing_extra_and_dict_round_trip(server, monkeypatch):
    model = make(server, max_tokens=64)
    data = model.to_dict()
    assert data == {"class": "AmazonBedrockModel", "model_id": MODEL, "max_tokens": 64,
                    "client_kwargs": {"region_name": "us-east-1", "endpoint_url": server.url}}
    server.add("restored")
    assert Model.from_dict(data).generate(USER).content == "restored"
    import sys

    monkeypatch.setitem(sys.modules, "boto3", None)
    with pytest.raises(ModelConfigurationError, match=r"codeloop\[bedrock\]"):
        make(server).generate(USER)
