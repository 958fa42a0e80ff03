"""Amazon Bedrock on the official ``boto3`` SDK: the Converse and ConverseStream APIs (extra
``codeloop[bedrock]``).

``AmazonBedrockModel`` (alias ``AmazonBedrockServerModel``) keeps smolagents' parameters: ``model_id`` (a
model or inference-profile id), ``client`` (a ready ``bedrock-runtime`` client), ``client_kwargs`` (for
``boto3.client``: ``region_name``, ``endpoint_url``...), ``custom_role_conversions``, and ``**kwargs`` in
Converse's own terms (``inferenceConfig``, ``additionalModelRequestFields``, ``guardrailConfig``...) or as
the usual names (``max_tokens``, ``temperature``, ``top_p`` go to ``inferenceConfig``; anything else to
``additionalModelRequestFields``, e.g. ``thinking`` or ``top_k``).

boto3 is synchronous: each call runs in a worker thread, the event stream is read in one too. botocore's
own retries are switched off; ``retry.py`` retries the service's throttling / unavailable / internal errors
(botocore ``ClientError`` codes) and dropped connections. Credentials come from boto3's usual chain; none
found gives one ``ModelConfigurationError`` before any request. Reasoning blocks of a reply that calls
tools are kept and sent back with that turn, as the API requires for Claude's extended thinking. Images may
be PIL images, bytes, data/http(s)/file URLs or paths (sent as bytes, format read from them) or ``s3://``
URIs (sent as an S3 location).
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections import OrderedDict
from collections.abc import AsyncIterator
from typing import Any

from ..errors import ModelConfigurationError, ModelRequestError
from ..messages import (
    ChatMessage,
    ChatMessageStreamDelta,
    ChatMessageToolCall,
    ChatMessageToolCallFunction,
    ChatMessageToolCallStreamDelta,
    MessageRole,
    TokenUsage,
)
from .base import Model, StopCutter, cut_at_stop
from .convert import to_chat_messages, tool_schema
from .images import image_bytes, image_format, image_url_of
from .ratelimit import RateLimiter
from .retry import ErrorInfo, RetryPolicy, classify_error, retry_call, stream_with_retries
from .toolcall_parsing import parse_arguments

__all__ = ["AmazonBedrockModel", "AmazonBedrockServerModel", "classify_bedrock_error"]

_RETRY_CODES = frozenset({"ThrottlingException", "ServiceUnavailableException", "InternalServerException",
                          "ModelNotReadyException", "ModelTimeoutException", "ModelStreamErrorException"})
_TRANSIENT_BOTO = frozenset({"HTTPClientError", "EndpointConnectionError", "ConnectionClosedError",
                             "ReadTimeoutError", "ConnectTimeoutError", "ResponseStreamingError"})
_INFERENCE = {"max_tokens": "maxTokens", "max_completion_tokens": "maxTokens", "temperature": "temperature",
              "top_p": "topP"}
_CONVERSE_PARAMS = frozenset({"inferenceConfig", "toolConfig", "guardrailConfig", "additionalModelRequestFields",
                              "promptVariables", "additionalModelResponseFieldPaths", "requestMetadata",
                              "performanceConfig", "serviceTier", "outputConfig"})
_DONE = object()


def classify_bedrock_error(exc: BaseException) -> ErrorInfo:
    """Retry rules for botocore errors: the service's error code and HTTP status, then connection errors."""
    response = getattr(exc, "response", None)
    if isinstance(response, dict) and "Error" in response:
        error = response["Error"]
        code = str(error.get("Code", ""))
        status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        retryable = code[:1].upper() + code[1:] in _RETRY_CODES or (
            isinstance(status, int) and (status == 429 or status >= 500))
        hint = " Check the AWS credentials (AWS_ACCESS_KEY_ID / AWS_PROFILE) and region." if code in (
            "UnrecognizedClientException", "InvalidSignatureException", "ExpiredTokenException") else ""
        return ErrorInfo(True, retryable, status if isinstance(status, int) else None, None,
                         f"{code} (HTTP {status}): {error.get('Message', '')}{hint}")
    if {cls.__name__ for cls in type(exc).__mro__} & _TRANSIENT_BOTO:
        return ErrorInfo(True, True, None, None, f"{type(exc).__name__}: {exc}")
    return classify_error(exc)


def _image(url: str) -> dict[str, Any]:
    """A Converse image block: S3 URIs by reference, anything else (data/http(s)/file URL, path) as bytes."""
    if url.startswith("s3://"):
        suffix = url.rsplit(".", 1)[-1].lower()
        fmt = {"jpg": "jpeg"}.get(suffix, suffix) if suffix in ("png", "jpg", "jpeg", "gif", "webp") else "png"
        return {"image": {"format": fmt, "source": {"s3Location": {"uri": url}}}}
    data = image_bytes(url)
    return {"image": {"format": image_format(data), "source": {"bytes": data}}}


def _blocks(content: Any) -> list[dict[str, Any]]:
    if not content:
        return []
    if isinstance(content, str):
        return [{"text": content}]
    out: list[dict[str, Any]] = []
    for part in content:
        if part.get("type") == "text":
            if part.get("text"):
                out.append({"text": part["text"]})
        elif part.get("type") == "image_url":
            out.append(_image(image_url_of(part)))
        elif "type" not in part:  # already a Converse block
            out.append(part)
    return out


class AmazonBedrockModel(Model):
    """A model on Amazon Bedrock through the Converse API (see the module docstring for the arguments)."""

    def __init__(
        self,
        model_id: str,
        client: Any = None,
        client_kwargs: dict[str, Any] | None = None,
        custom_role_conversions: dict[str, str] | None = None,
        prompt_caching: bool = False,
        requests_per_minute: float | None = None,
        max_retries: int = 4,
        max_wait: float = 60.0,
        retry_policy: RetryPolicy | None = None,
        **kwargs: Any,
    ):
        super().__init__(model_id=model_id, **kwargs)
        self.client_kwargs = dict(client_kwargs or {})
        self.custom_role_conversions = custom_role_conversions
        self.prompt_caching = prompt_caching
        self.retry_policy = retry_policy or RetryPolicy(max_retries=max_retries, max_wait=max_wait)
        self.rate_limiter = RateLimiter(requests_per_minute)
        self._client = client
        self._lock = threading.Lock()
        self._reasoning: OrderedDict[str, list[dict[str, Any]]] = OrderedDict()

    # ---- client --------------------------------------------------------------------------------------
    @property
    def client(self) -> Any:
        with self._lock:
            if self._client is None:
                self._client = self.create_client()
            return self._client

    def create_client(self) -> Any:
        try:
            import boto3
            from botocore.config import Config
            from botocore.exceptions import NoRegionError
        except ImportError as exc:
            raise ModelConfigurationError(
                "AmazonBedrockModel needs 'boto3': pip install 'codeloop[bedrock]'") from exc
        kwargs = dict(self.client_kwargs)
        config = Config(retries={"total_max_attempts": 1}, connect_timeout=10, read_timeout=120)
        kwargs["config"] = config.merge(kwargs["config"]) if "config" in kwargs else config
        session_keys = ("aws_access_key_id", "aws_secret_access_key", "aws_session_token", "profile_name")
        session = boto3.Session(**{k: kwargs.pop(k) for k in session_keys if k in kwargs})
        if session.get_credentials() is None:
            raise ModelConfigurationError(
                f"AmazonBedrockModel({self.model_id!r}) found no AWS credentials: export AWS_ACCESS_KEY_ID and "
                "AWS_SECRET_ACCESS_KEY (or AWS_PROFILE), or pass client_kwargs={'aws_access_key_id': ...}."
            )
        try:
            return session.client("bedrock-runtime", **kwargs)
        except NoRegionError:
            raise ModelConfigurationError(
                f"AmazonBedrockModel({self.model_id!r}) needs an AWS region: export AWS_REGION=us-east-1 or pass "
                "client_kwargs={'region_name': 'us-east-1'}."
            ) from None

    def close(self) -> None:
        with self._lock:
            client, self._client = self._client, None
        if client is not None and hasattr(client, "close"):
            client.close()

    def _what(self) -> str:
        return f"Bedrock request to model {self.model_id!r}"

    # ---- request -------------------------------------------------------------------------------------
    def _messages(self, messages: list[Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        system: list[dict[str, Any]] = []
        out: list[dict[str, Any]] = []

        def append(role: str, blocks: list[dict[str, Any]]) -> None:
            if blocks and out and out[-1]["role"] == role:
                out[-1]["content"].extend(blocks)
            elif blocks:
                out.append({"role": role, "content": blocks})

        flatten = self.flatten_messages_as_text or not self.profile.supports_images
        for message in to_chat_messages(messages, self.custom_role_conversions, flatten):
            role = message["role"]
            if role in ("system", "developer"):
                system.extend(_blocks(message["content"]))
            elif role == "tool":
                append("user", [{"toolResult": {"toolUseId": message["tool_call_id"],
                                                "content": [{"text": message["content"] or "(no output)"}]}}])
            elif role == "assistant" and message.get("tool_calls"):
                calls = message["tool_calls"]
                uses = [{"toolUse": {"toolUseId": c["id"], "name": c["function"]["name"],
                                     "input": parse_arguments(c["function"]["arguments"]) or {}}} for c in calls]
                reasoning = list(self._reasoning.get(calls[0]["id"], ()))
                append("assistant", [*reasoning, *_blocks(message["content"]), *uses])
            else:
                append("assistant" if role == "assistant" else "user", _blocks(message["content"]))
        if self.prompt_caching:
            if system:
                system.append({"cachePoint": {"type": "default"}})
            if out:
                out[-1]["content"].append({"cachePoint": {"type": "default"}})
        return system, out

    def prepare_request(
        self,
        messages: list[Any],
        stop_sequences: list[str] | None = None,
        response_format: dict[str, Any] | None = None,
        tools_to_call_from: list[Any] | None = None,
        **kwargs: Any,
    ) -> tuple[dict[str, Any], list[str] | None]:
        params = {**self.kwargs, **kwargs}
        system, converted = self._messages(messages)
        request: dict[str, Any] = {"modelId": params.pop("model", None) or self.model_id, "messages": converted}
        if system:
            request["system"] = system
        inference = dict(params.pop("inferenceConfig", None) or {})
        additional = dict(params.pop("additionalModelRequestFields", None) or {})
        tool_choice = params.pop("tool_choice", "required")
        for name in list(params):
            if name in _CONVERSE_PARAMS:
                request[name] = params.pop(name)
            elif name in _INFERENCE:
                inference[_INFERENCE[name]] = params.pop(name)
            else:
                additional[name] = params.pop(name)
        client_stop: list[str] | None = None
        if stop_sequences:
            if self.profile.supports_stop:
                inference["stopSequences"] = list(stop_sequences)
            else:
                client_stop = list(stop_sequences)
        if inference:
            request["inferenceConfig"] = inference
        if additional:
            request["additionalModelRequestFields"] = additional
        if response_format is not None:
            spec = response_format.get("json_schema") or {}
            if not spec.get("schema"):
                raise ModelConfigurationError(
                    "AmazonBedrockModel supports response_format={'type': 'json_schema', 'json_schema': "
                    "{'name': ..., 'schema': {...}}} only.")
            request["outputConfig"] = {"textFormat": {"type": "json_schema", "structure": {"jsonSchema": {
                "schema": json.dumps(spec["schema"]), "name": spec.get("name") or "response"}}}}
        if tools_to_call_from and self.profile.supports_tool_calls:
            tools = []
            for tool in tools_to_call_from:
                fn = tool_schema(tool)["function"]
                tools.append({"toolSpec": {"name": fn["name"], "description": fn.get("description") or fn["name"],
                                           "inputSchema": {"json": fn.get("parameters") or {"type": "object"}}}})
            config: dict[str, Any] = {"tools": tools}
            if isinstance(tool_choice, dict):
                config["toolChoice"] = {"tool": {"name": (tool_choice.get("function") or tool_choice)["name"]}}
            elif tool_choice in ("required", "auto"):
                config["toolChoice"] = {"any": {}} if tool_choice == "required" else {"auto": {}}
            request["toolConfig"] = config
        return request, client_stop

    # ---- replies ---------------------------------------------------------------------------------------
    def _remember(self, reasoning: list[dict[str, Any]], tool_ids: list[str]) -> None:
        if reasoning and tool_ids:
            self._reasoning[tool_ids[0]] = reasoning
            while len(self._reasoning) > 512:
                self._reasoning.popitem(last=False)

    def _usage(self, raw: dict[str, Any] | None) -> TokenUsage | None:
        if not raw:
            return None
        read, written = raw.get("cacheReadInputTokens", 0) or 0, raw.get("cacheWriteInputTokens", 0) or 0
        return self._finish_usage(TokenUsage(input_tokens=int(raw.get("inputTokens", 0)) + read + written,
                                             output_tokens=int(raw.get("outputTokens", 0)),
                                             cached_input_tokens=int(read), cache_write_tokens=int(written)))

    def _to_message(self, response: dict[str, Any], client_stop: list[str] | None) -> ChatMessage:
        message = (response.get("output") or {}).get("message")
        if message is None:
            raise ModelRequestError(f"{self._what()} returned no message: {str(response)[:300]}")
        texts, calls, reasoning = [], [], []
        for block in message.get("content") or ():
            if "text" in block:
                texts.append(block["text"])
            elif "toolUse" in block:
                use = block["toolUse"]
                calls.append(ChatMessageToolCall(
                    function=ChatMessageToolCallFunction(name=use["name"], arguments=use.get("input") or {}),
                    id=use["toolUseId"], type="function"))
            elif "reasoningContent" in block:
                reasoning.append(block)
        self._remember(reasoning, [c.id for c in calls])
        content = cut_at_stop("".join(texts) or None, client_stop)
        return ChatMessage(role=MessageRole.ASSISTANT, content=content, tool_calls=calls or None, raw=response,
                           token_usage=self._usage(response.get("usage")))

    async def agenerate(
        self,
        messages: list[Any],
        stop_sequences: list[str] | None = None,
        response_format: dict[str, Any] | None = None,
        tools_to_call_from: list[Any] | None = None,
        **kwargs: Any,
    ) -> ChatMessage:
        request, client_stop = self.prepare_request(
            messages, stop_sequences, response_format, tools_to_call_from, **kwargs)
        client = self.client
        response = await retry_call(lambda: asyncio.to_thread(client.converse, **request), self.retry_policy,
                                    self._what(), classify_bedrock_error, self.rate_limiter.acquire)
        return self._to_message(response, client_stop)

    async def astream(
        self,
        messages: list[Any],
        stop_sequences: list[str] | None = None,
        response_format: dict[str, Any] | None = None,
        tools_to_call_from: list[Any] | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatMessageStreamDelta]:
        """Stream deltas; a failure before the first delta is retried, after it one ``ModelRequestError``."""
        request, client_stop = self.prepare_request(
            messages, stop_sequences, response_format, tools_to_call_from, **kwargs)
        client = self.client

        async def attempt() -> AsyncIterator[ChatMessageStreamDelta]:
            cutter = StopCutter(client_stop) if client_stop else None
            response = await asyncio.to_thread(client.converse_stream, **request)
            stream = response["stream"]
            try:
                async for delta in self._deltas(iter(stream), cutter):
                    yield delta
            finally:
                stream.close()
            rest = cutter.flush() if cutter else ""
            if rest:
                yield ChatMessageStreamDelta(content=rest)

        async for delta in stream_with_retries(attempt, self.retry_policy, self._what(), classify_bedrock_error,
                                               self.rate_limiter.acquire):
            yield delta

    async def _deltas(self, events: Any, cutter: StopCutter | None) -> AsyncIterator[ChatMessageStreamDelta]:
        tool_index: dict[int, int] = {}
        tool_ids: list[str] = []
        reasoning: dict[int, dict[str, Any]] = {}
        while (event := await asyncio.to_thread(next, events, _DONE)) is not _DONE:
            if "contentBlockStart" in event:
                start = event["contentBlockStart"]
                use = (start.get("start") or {}).get("toolUse")
                if use:
                    tool_index[start["contentBlockIndex"]] = len(tool_index)
                    tool_ids.append(use["toolUseId"])
                    yield ChatMessageStreamDelta(tool_calls=[ChatMessageToolCallStreamDelta(
                        index=tool_index[start["contentBlockIndex"]], id=use["toolUseId"], type="function",
                        function=ChatMessageToolCallFunction(name=use["name"], arguments=""))])
            elif "contentBlockDelta" in event:
                body = event["contentBlockDelta"]
                delta, index = body["delta"], body["contentBlockIndex"]
                if "text" in delta:
                    text = cutter.feed(delta["text"]) if cutter else delta["text"]
                    if text:
                        yield ChatMessageStreamDelta(content=text)
                elif "toolUse" in delta and index in tool_index:
                    yield ChatMessageStreamDelta(tool_calls=[ChatMessageToolCallStreamDelta(
                        index=tool_index[index],
                        function=ChatMessageToolCallFunction(name="", arguments=delta["toolUse"].get("input", "")))])
                elif "reasoningContent" in delta:
                    part = reasoning.setdefault(index, {"reasoningText": {"text": ""}})["reasoningText"]
                    piece = delta["reasoningContent"]
                    part["text"] += piece.get("text", "")
                    if "signature" in piece:
                        part["signature"] = piece["signature"]
            elif "metadata" in event:
                usage = self._usage(event["metadata"].get("usage"))
                if usage is not None:
                    yield ChatMessageStreamDelta(token_usage=usage)
        self._remember([{"reasoningContent": reasoning[i]} for i in sorted(reasoning)], tool_ids)

    def to_dict(self) -> dict[str, Any]:
        data = super().to_dict()
        safe = {k: v for k, v in self.client_kwargs.items() if k in ("region_name", "endpoint_url")}
        if safe:
            data["client_kwargs"] = safe
        return data


AmazonBedrockServerModel = AmazonBedrockModel  # smolagents name
