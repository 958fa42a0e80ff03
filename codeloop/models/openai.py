"""OpenAI chat completions, and every OpenAI-compatible server (vLLM, Ollama, llama.cpp, LM Studio, the
Hugging Face router, Anthropic's compatibility endpoint...), plus Azure OpenAI.

Built on the official ``openai`` SDK, imported lazily (when the first client is created) so importing
codeloop stays light. The SDK's own retries are switched off: ``retry.py`` is the only retry layer, so
``max_retries`` means what it says and every failure ends in one ``ModelRequestError``.

Async clients are created per event loop, because the SDK's connection pool is bound to the loop that
opened it; the sync wrappers all run on one private loop (see ``_sync.py``), so they reuse one client.
``_clients.py`` makes sure every client is closed properly: by ``close()`` / ``aclose()`` / ``with``, when
the model is collected, or when its loop shuts down; an unclosed client left to the garbage collector
makes later requests on the same loop hang (see there).

Requests time out after ``DEFAULT_TIMEOUT`` (120 s; connect 10 s) instead of the SDK's 600 s, and a
timeout or dropped connection is retried like any transient failure; ``client_kwargs={"timeout": ...}``
overrides it.
"""

from __future__ import annotations

import logging
import os
import weakref
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
from ._clients import LoopClients
from ._openai_post import create_chat
from .base import REMOVE_PARAMETER, Model, StopCutter, cut_at_stop
from .convert import to_chat_messages, tool_schema
from .cost import Price
from .profiles import ModelProfile, learn_profile
from .ratelimit import RateLimiter
from .retry import RetryPolicy, classify_error, refuses_parameter, retry_call, stream_with_retries
from .toolcall_parsing import parse_arguments, tool_calls_from_text

__all__ = ["OpenAIModel", "OpenAIServerModel", "AzureOpenAIModel", "AzureOpenAIServerModel"]

_MAX_STOP = 4  # the chat completions API accepts at most 4 stop sequences; extra ones are cut client-side
_NO_KEY_NEEDED = "not-needed"  # placeholder key for local servers that do not check one
DEFAULT_TIMEOUT = 120.0  # seconds per request (the SDK's own default is 600 s); client_kwargs["timeout"] wins
DEFAULT_CONNECT_TIMEOUT = 10.0
logger = logging.getLogger("codeloop.models")


def usage_from(raw_usage: Any) -> TokenUsage | None:
    """TokenUsage from an SDK ``CompletionUsage`` (or a dict); None when the provider sent none."""
    if raw_usage is None:
        return None
    get = raw_usage.get if isinstance(raw_usage, dict) else lambda k, d=None: getattr(raw_usage, k, d)
    return TokenUsage(
        input_tokens=int(get("prompt_tokens", 0) or 0),
        output_tokens=int(get("completion_tokens", 0) or 0),
        cached_input_tokens=_detail(get("prompt_tokens_details"), "cached_tokens"),
        reasoning_tokens=_detail(get("completion_tokens_details"), "reasoning_tokens"),
    )


def _detail(details: Any, key: str) -> int:
    value = details.get(key) if isinstance(details, dict) else getattr(details, key, 0)
    return int(value or 0)


class OpenAIModel(Model):
    """A model served over the OpenAI chat-completions API.

    Prompt caching: the agent's cache key goes out as ``prompt_cache_key`` to OpenAI's own API (to
    another server only with ``profile={"supports_prompt_cache_key": True}``).

    Args:
        model_id: the model name at the provider ("gpt-4o-mini", "llama3.1", ...).
        api_base: base URL of an OpenAI-compatible server (default: OpenAI). ``base_url`` is accepted too.
        api_key: API key (default: ``OPENAI_API_KEY``; a placeholder is used for a custom ``api_base``).
        organization / project: OpenAI organization and project ids.
        client_kwargs: extra arguments for the SDK client (``timeout``, ``default_headers``, ``http_client``...).
        custom_role_conversions: role mapping applied to messages (default tool-call -> assistant,
            tool-response -> user).
        flatten_messages_as_text: send content as plain strings.
        requests_per_minute: client-side rate limit.
        max_retries / max_wait / retry_policy: retry bounds (see ``retry.py``).
        profile / prices: capability profile and price overrides (see ``profiles.py`` and ``cost.py``).
        **kwargs: default completion parameters (temperature, max_tokens, seed, extra_body...).
    """

    accepts_cache_hints = True

    def __init__(
        self,
        model_id: str,
        api_base: str | None = None,
        api_key: str | None = None,
        organization: str | None = None,
        project: str | None = None,
        client_kwargs: dict[str, Any] | None = None,
        custom_role_conversions: dict[str, str] | None = None,
        flatten_messages_as_text: bool | None = None,
        requests_per_minute: float | None = None,
        max_retries: int = 4,
        max_wait: float = 60.0,
        retry_policy: RetryPolicy | None = None,
        profile: ModelProfile | dict[str, Any] | None = None,
        prices: Price | dict[str, Any] | tuple[float, ...] | None = None,
        **kwargs: Any,
    ):
        api_base = api_base or kwargs.pop("base_url", None)
        super().__init__(
            model_id=model_id,
            flatten_messages_as_text=flatten_messages_as_text,
            profile=profile,
            prices=prices,
            **kwargs,
        )
        self.api_base = api_base
        self.organization = organization
        self.project = project
        self.custom_role_conversions = custom_role_conversions
        self.client_kwargs = dict(client_kwargs or {})
        # Ours are the only retries: an SDK retry count given by the user becomes our own.
        sdk_retries = self.client_kwargs.pop("max_retries", None)
        if retry_policy is None:
            retry_policy = RetryPolicy(
                max_retries=max_retries if sdk_retries is None else sdk_retries, max_wait=max_wait
            )
        self.retry_policy = retry_policy
        self.rate_limiter = RateLimiter(requests_per_minute)
        self.api_key = self._resolve_api_key(api_key)
        self._async_clients = LoopClients()
        self._client: Any = None
        # Runs when the model is collected (or closed): clients are closed on their own loops, never left
        # to the garbage collector. It must not reference the model, only the client holders.
        self._sync_holder: list[Any] = []
        self._finalizer = weakref.finalize(self, _release, self._async_clients, self._sync_holder)
        self._finalizer.atexit = False

    # ---- clients -----------------------------------------------------------------------------------
    def _resolve_api_key(self, api_key: str | None) -> str | None:
        if api_key or os.environ.get("OPENAI_API_KEY"):
            return api_key or os.environ["OPENAI_API_KEY"]
        if self.api_base:
            return _NO_KEY_NEEDED
        raise ModelConfigurationError(
            f"No API key for {type(self).__name__}({self.model_id!r}): set OPENAI_API_KEY "
            "(export OPENAI_API_KEY=sk-...) or pass api_key=...; for a local OpenAI-compatible server pass "
            "api_base='http://localhost:11434/v1'."
        )

    def _timeout(self) -> Any:
        if "timeout" in self.client_kwargs:
            return self.client_kwargs["timeout"]
        return self._import_openai().Timeout(DEFAULT_TIMEOUT, connect=DEFAULT_CONNECT_TIMEOUT)

    def _sdk_kwargs(self) -> dict[str, Any]:
        kwargs: dict[str, Any] = {
            "api_key": self.api_key,
            "organization": self.organization,
            "project": self.project,
            **self.client_kwargs,
            "timeout": self._timeout(),
            "max_retries": 0,
        }
        if self.api_base:
            kwargs["base_url"] = self.api_base
        return kwargs

    def _import_openai(self) -> Any:
        try:
            import openai
        except ImportError as exc:  # pragma: no cover - openai is a core dependency
            raise ModelConfigurationError("The 'openai' package is required: pip install openai") from exc
        return openai

    def create_client(self) -> Any:
        """A sync SDK client (smolagents exposes ``model.client``); codeloop itself uses async clients."""
        return self._import_openai().OpenAI(**self._sdk_kwargs())

    def create_async_client(self) -> Any:
        return self._import_openai().AsyncOpenAI(**self._sdk_kwargs())

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = self.create_client()
            self._sync_holder.append(self._client)
        return self._client

    def _async_client(self) -> Any:
        return self._async_clients.get(self.create_async_client)

    def close(self) -> None:
        """Close the sync client and every per-loop async client (their connections too). Inside a running
        loop, that loop's client is closed in a task: ``await model.aclose()`` waits for it."""
        self._client = None
        _close_sync(self._sync_holder)
        self._async_clients.close()

    async def aclose(self) -> None:
        self._client = None
        _close_sync(self._sync_holder)
        await self._async_clients.aclose()

    # ---- requests ----------------------------------------------------------------------------------
    def prepare_request(
        self,
        messages: list[ChatMessage | dict[str, Any]],
        stop_sequences: list[str] | None = None,
        response_format: dict[str, Any] | None = None,
        tools_to_call_from: list[Any] | None = None,
        stream: bool = False,
        **kwargs: Any,
    ) -> tuple[dict[str, Any], list[str] | None]:
        """The chat-completions request body, and the stop sequences to apply client-side (or None)."""
        profile = self.profile
        # smolagents' priority: what the model was built with wins over per-call kwargs
        params: dict[str, Any] = {**kwargs, **self.kwargs}
        removed = {k for k, v in params.items() if v is REMOVE_PARAMETER}
        hints = params.pop("cache_hints", None)
        if hints is not None and hints.key and "prompt_cache_key" not in params and self._sends_cache_key():
            # Through extra_body: SDK versions older than the parameter would reject it as an argument.
            params["extra_body"] = {**(params.get("extra_body") or {}), "prompt_cache_key": hints.key}
        flatten = self.flatten_messages_as_text or not profile.supports_images
        request: dict[str, Any] = {
            "model": params.pop("model", None) or self.model_id,
            "messages": to_chat_messages(
                messages, self.custom_role_conversions, flatten, system_role=profile.system_role
            ),
        }
        client_stop: list[str] | None = None
        if stop_sequences:
            if profile.supports_stop:
                request["stop"] = list(stop_sequences[:_MAX_STOP])
                client_stop = list(stop_sequences) if len(stop_sequences) > _MAX_STOP else None
            else:
                client_stop = list(stop_sequences)
        if response_format is not None:
            if not profile.supports_response_format:
                raise ModelConfigurationError(
                    f"Model {self.model_id!r} is not known to support response_format (structured output). "
                    "If it does, pass profile={'supports_response_format': True}."
                )
            request["response_format"] = response_format
        tool_choice = params.pop("tool_choice", "required")
        if tools_to_call_from and profile.supports_tool_calls:
            request["tools"] = [tool_schema(t) for t in tools_to_call_from]
            if tool_choice is not None:
                request["tool_choice"] = tool_choice
        for name in ("max_tokens", "max_completion_tokens"):
            if name in params and name != profile.max_tokens_param:
                params[profile.max_tokens_param] = params.pop(name)
        if not profile.supports_temperature:
            params.pop("temperature", None)
            params.pop("top_p", None)
        if stream:
            request["stream"] = True
            if profile.supports_streaming_usage:
                request["stream_options"] = {"include_usage": True}
        request.update(params)
        for name in removed:
            request.pop(name, None)
        return request, client_stop

    def _sends_cache_key(self) -> bool:
        wanted = self.profile.supports_prompt_cache_key
        if wanted is None:
            return self.api_base is None or "api.openai.com" in self.api_base
        return wanted

    def _what(self) -> str:
        where = f" at {self.api_base}" if self.api_base else ""
        return f"Request to model {self.model_id!r}{where}"

    def _to_message(
        self,
        response: Any,
        client_stop: list[str] | None,
        stop_sequences: list[str] | None,
        tool_names: set[str] | None,
    ) -> ChatMessage:
        if not getattr(response, "choices", None):
            raise ModelRequestError(f"{self._what()} returned no choices: {str(response)[:300]}")
        raw_message = response.choices[0].message
        content = raw_message.content
        if stop_sequences and content:
            content = cut_at_stop(content, client_stop or stop_sequences)
        calls = None
        if raw_message.tool_calls:
            calls = [
                ChatMessageToolCall(
                    function=ChatMessageToolCallFunction(
                        name=c.function.name, arguments=parse_arguments(c.function.arguments)
                    ),
                    id=c.id,
                    type=c.type or "function",
                )
                for c in raw_message.tool_calls
                if getattr(c, "function", None) is not None  # "custom" tool calls carry no function
            ] or None
        elif tool_names and content:
            # Only calls of the offered tools count: JSON that merely has a "name" key is not a tool call.
            found = tool_calls_from_text(content, self.tool_name_key, self.tool_arguments_key)
            calls = [c for c in found if c.function.name in tool_names] or None
        usage = self._finish_usage(usage_from(getattr(response, "usage", None)))
        return ChatMessage(
            role=MessageRole.ASSISTANT, content=content, tool_calls=calls, raw=response, token_usage=usage
        )

    async def agenerate(
        self,
        messages: list[ChatMessage | dict[str, Any]],
        stop_sequences: list[str] | None = None,
        response_format: dict[str, Any] | None = None,
        tools_to_call_from: list[Any] | None = None,
        **kwargs: Any,
    ) -> ChatMessage:
        request, client_stop = self.prepare_request(
            messages, stop_sequences, response_format, tools_to_call_from, **kwargs
        )
        client = self._async_client()
        response = await retry_call(lambda: self._send(client, request), self.retry_policy, self._what(),
                                    self._classify, self.rate_limiter.acquire)
        names = {tool_schema(t)["function"]["name"] for t in tools_to_call_from or ()}
        return self._to_message(response, client_stop, stop_sequences, names)

    async def astream(
        self,
        messages: list[ChatMessage | dict[str, Any]],
        stop_sequences: list[str] | None = None,
        response_format: dict[str, Any] | None = None,
        tools_to_call_from: list[Any] | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatMessageStreamDelta]:
        """Stream deltas. A failure before the first delta is retried; after it, one ``ModelRequestError``
        is raised (the caller already showed part of the reply, so a silent restart would duplicate it)."""
        request, client_stop = self.prepare_request(
            messages, stop_sequences, response_format, tools_to_call_from, stream=True, **kwargs
        )
        client = self._async_client()

        async def attempt() -> AsyncIterator[ChatMessageStreamDelta]:
            stream = await self._send(client, request)
            stops = stop_sequences if "stop" not in request else client_stop
            cutter = StopCutter(stops) if stops else None
            try:
                async for delta in self._stream_deltas(stream, cutter):
                    yield delta
            finally:
                await stream.close()
            rest = cutter.flush() if cutter is not None else ""
            if rest:
                yield ChatMessageStreamDelta(content=rest)

        async for delta in stream_with_retries(attempt, self.retry_policy, self._what(), self._classify,
                                               self.rate_limiter.acquire):
            yield delta

    # Hooks a provider on another SDK overrides (the request loop, retries and client lifetime stay here).
    _classify = staticmethod(classify_error)

    async def _create(self, client: Any, request: dict[str, Any]) -> Any:
        """Send one request (a stream when ``request["stream"]``): as ``client.chat.completions.create``
        sends it, without its per-request type transform when that changes nothing (see ``_openai_post``)."""
        return await create_chat(client, request)

    async def _send(self, client: Any, request: dict[str, Any]) -> Any:
        """``_create``; when the server refuses ``stop`` (a 400 naming it), the request is sent once more
        without it, and when that works ``stop`` is taken out of ``request`` (retries and the caller's stop
        cutting see that) and left out of every later request to this model id, with one log line."""
        try:
            return await self._create(client, request)
        except Exception as exc:  # noqa: BLE001 - anything but a refused stop is re-raised as it was
            if "stop" not in request or not refuses_parameter(exc, self._classify(exc), "stop"):
                raise
        without_stop = {k: v for k, v in request.items() if k != "stop"}
        await self.rate_limiter.acquire()
        response = await self._create(client, without_stop)
        del request["stop"]
        self.profile = self.profile.updated({"supports_stop": False})
        if learn_profile(self.model_id, supports_stop=False):
            logger.warning(
                "%s: the server refused the 'stop' parameter, so requests to this model are sent without it "
                "from now on and stop sequences are cut client-side (pass profile={'supports_stop': False} "
                "to skip the refused first request).",
                self._what(),
            )
        return response

    async def _stream_deltas(
        self, stream: Any, cutter: StopCutter | None
    ) -> AsyncIterator[ChatMessageStreamDelta]:
        async for chunk in stream:
            for delta in self._chunk_deltas(chunk, cutter):
                yield delta

    def _chunk_deltas(self, chunk: Any, cutter: StopCutter | None) -> list[ChatMessageStreamDelta]:
        deltas: list[ChatMessageStreamDelta] = []
        choices = getattr(chunk, "choices", None) or ()
        if choices:
            delta = choices[0].delta
            text = getattr(delta, "content", None)
            if text and cutter is not None:
                text = cutter.feed(text)
            pieces = None
            if getattr(delta, "tool_calls", None):
                pieces = [
                    ChatMessageToolCallStreamDelta(
                        index=piece.index,
                        id=piece.id,
                        type=piece.type,
                        function=ChatMessageToolCallFunction(
                            name=(piece.function.name or "") if piece.function else "",
                            arguments=(piece.function.arguments or "") if piece.function else "",
                        ),
                    )
                    for piece in delta.tool_calls
                ]
            if text or pieces:
                deltas.append(ChatMessageStreamDelta(content=text or None, tool_calls=pieces))
        usage = usage_from(getattr(chunk, "usage", None))
        if usage is not None:
            deltas.append(ChatMessageStreamDelta(token_usage=self._finish_usage(usage)))
        return deltas


def _close_sync(holder: list[Any]) -> None:
    while holder:
        try:
            holder.pop().close()
        except Exception:  # noqa: BLE001 - closing is best effort
            pass


def _release(async_clients: LoopClients, sync_holder: list[Any]) -> None:
    """The model's finalizer (it may run in any thread, during garbage collection: never blocks)."""
    _close_sync(sync_holder)
    async_clients.release()


OpenAIServerModel = OpenAIModel  # smolagents name


class AzureOpenAIModel(OpenAIModel):
    """A deployment on Azure OpenAI. ``model_id`` is the deployment name.

    Args:
        azure_endpoint: ``https://<resource>.openai.azure.com`` (default: ``AZURE_OPENAI_ENDPOINT``).
        api_key: default ``AZURE_OPENAI_API_KEY``; or pass ``client_kwargs={"azure_ad_token_provider": ...}``.
        api_version: default ``OPENAI_API_VERSION``.
        Other arguments as for ``OpenAIModel``.
    """

    def __init__(
        self,
        model_id: str,
        azure_endpoint: str | None = None,
        api_key: str | None = None,
        api_version: str | None = None,
        client_kwargs: dict[str, Any] | None = None,
        custom_role_conversions: dict[str, str] | None = None,
        **kwargs: Any,
    ):
        self.azure_endpoint = azure_endpoint or os.environ.get("AZURE_OPENAI_ENDPOINT")
        self.api_version = api_version or os.environ.get("OPENAI_API_VERSION")
        missing = [
            name
            for name, value in (("azure_endpoint", self.azure_endpoint), ("api_version", self.api_version))
            if not value
        ]
        if missing:
            raise ModelConfigurationError(
                f"AzureOpenAIModel needs {' and '.join(missing)}: pass them, or set AZURE_OPENAI_ENDPOINT="
                "https://<resource>.openai.azure.com and OPENAI_API_VERSION=2024-10-21."
            )
        self._client_kwargs_in = client_kwargs or {}
        super().__init__(
            model_id,
            api_key=api_key,
            client_kwargs=client_kwargs,
            custom_role_conversions=custom_role_conversions,
            **kwargs,
        )

    def _resolve_api_key(self, api_key: str | None) -> str | None:
        if api_key or os.environ.get("AZURE_OPENAI_API_KEY"):
            return api_key or os.environ["AZURE_OPENAI_API_KEY"]
        if "azure_ad_token" in self._client_kwargs_in or "azure_ad_token_provider" in self._client_kwargs_in:
            return None
        raise ModelConfigurationError(
            f"No API key for AzureOpenAIModel({self.model_id!r}): set AZURE_OPENAI_API_KEY or pass api_key=..., "
            "or pass client_kwargs={'azure_ad_token_provider': ...} for Entra ID."
        )

    def _sdk_kwargs(self) -> dict[str, Any]:
        kwargs: dict[str, Any] = {
            "azure_endpoint": self.azure_endpoint,
            "api_version": self.api_version,
            "organization": self.organization,
            "project": self.project,
            **self.client_kwargs,
            "timeout": self._timeout(),
            "max_retries": 0,
        }
        if self.api_key is not None:
            kwargs["api_key"] = self.api_key
        return kwargs

    def create_client(self) -> Any:
        return self._import_openai().AzureOpenAI(**self._sdk_kwargs())

    def create_async_client(self) -> Any:
        return self._import_openai().AsyncAzureOpenAI(**self._sdk_kwargs())

    def _what(self) -> str:
        return f"Request to Azure OpenAI deployment {self.model_id!r} at {self.azure_endpoint}"


AzureOpenAIServerModel = AzureOpenAIModel  # smolagents name
