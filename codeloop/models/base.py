"""The ``Model`` interface every provider implements: async first, with sync wrappers.

A provider implements ``agenerate`` (and, when it can stream, ``astream``). Everything else is shared:

* ``generate`` / ``generate_stream`` / ``__call__`` run the async methods through ``_sync`` so they also work
  inside a running event loop;
* ``parse_tool_calls`` fills ``tool_calls`` from JSON written in the text;
* stop sequences are applied client-side (``cut_at_stop`` / ``StopCutter``) for models whose capability
  profile says they reject ``stop``;
* token usage gets a cost from the price table (``cost.py``).

Messages may be ``ChatMessage`` objects or smolagents-style dicts; see ``convert.py`` for the rules.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

from .._sync import iterate_sync, run_in_code_thread, run_sync
from ..errors import AgentParsingError
from ..messages import (
    ChatMessage,
    ChatMessageStreamDelta,
    MessageRole,
    TokenUsage,
    agglomerate_stream_deltas,
)
from .cost import Price, with_cost
from .profiles import ModelProfile, resolve_profile
from .toolcall_parsing import parse_arguments, tool_calls_from_text

__all__ = [
    "Model",
    "ApiModel",
    "cut_at_stop",
    "StopCutter",
    "REMOVE_PARAMETER",
    "remove_content_after_stop_sequences",
    "call_generate",
]


class _RemoveParameter:
    """The type of ``REMOVE_PARAMETER``."""

    def __repr__(self) -> str:
        return "REMOVE_PARAMETER"


REMOVE_PARAMETER = _RemoveParameter()
"""Pass as a model constructor kwarg (``OpenAIModel(..., stop=REMOVE_PARAMETER)``) to drop that parameter
from every request, as in smolagents."""


async def call_generate(fn: Callable[..., Any], messages: Any, **kwargs: Any) -> Any:
    """Call a user's ``generate`` (sync or async, smolagents style) with the keyword arguments it declares.

    A smolagents-style ``def generate(self, messages, stop_sequences=None)`` gets only ``stop_sequences``;
    one with ``**kwargs`` gets everything. Sync functions run in a code thread so the loop never blocks.
    """
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):  # builtins and some C callables have no signature: pass everything
        params = {}
    if params and not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        kwargs = {k: v for k, v in kwargs.items() if k in params}
    if inspect.iscoroutinefunction(fn):
        return await fn(messages, **kwargs)
    result = await run_in_code_thread(fn, messages, **kwargs)
    return await result if inspect.isawaitable(result) else result


def cut_at_stop(text: str | None, stop_sequences: list[str] | None) -> str | None:
    """``text`` up to (excluding) the earliest occurrence of any stop sequence."""
    if not text or not stop_sequences:
        return text
    cut = min((i for i in (text.find(s) for s in stop_sequences if s) if i >= 0), default=-1)
    return text if cut < 0 else text[:cut]


def remove_content_after_stop_sequences(content: str | None, stop_sequences: list[str] | None) -> str | None:
    """smolagents' name for ``cut_at_stop`` (kept for compatibility)."""
    return cut_at_stop(content, stop_sequences)


class StopCutter:
    """Applies stop sequences to streamed text: holds back just enough text to see a stop split across chunks.

    ``feed(chunk)`` returns the text that is safe to emit now; ``stopped`` turns True once a stop sequence
    was seen (everything after it is dropped); ``flush()`` returns what was held back at the end.
    """

    def __init__(self, stop_sequences: list[str]):
        self.stops = [s for s in stop_sequences if s]
        self.hold = max((len(s) for s in self.stops), default=1) - 1
        self.buffer = ""
        self.stopped = False

    def feed(self, chunk: str) -> str:
        if self.stopped or not chunk:
            return ""
        self.buffer += chunk
        cut = cut_at_stop(self.buffer, self.stops)
        if cut is not None and len(cut) < len(self.buffer):
            self.stopped = True
            self.buffer = ""
            return cut
        if len(self.buffer) <= self.hold:
            return ""
        emit, self.buffer = (
            self.buffer[: len(self.buffer) - self.hold],
            self.buffer[len(self.buffer) - self.hold :],
        )
        return emit

    def flush(self) -> str:
        rest, self.buffer = ("" if self.stopped else self.buffer), ""
        return rest


class Model:
    """Base class of all models. Subclasses implement ``agenerate`` (and optionally ``astream``).

    A subclass that sets ``accepts_cache_hints = True`` gets ``cache_hints=CacheHints(...)`` from the
    agent with each request (see ``caching.py``).

    Args:
        model_id: the provider's model identifier; also selects the capability profile and price.
        flatten_messages_as_text: send message content as plain strings (no parts, no images).
        tool_name_key / tool_arguments_key: keys used when parsing tool calls written as JSON text.
        profile: a ``ModelProfile`` or a dict of fields overriding the profile chosen from ``model_id``.
        prices: a ``Price`` (or dict/tuple) in USD per million tokens, overriding the price table.
        **kwargs: default completion parameters sent with every request (temperature, max_tokens...).
    """

    accepts_cache_hints = False
    note_unknown_price = True  # warn once when no price is known for model_id (test doubles turn it off)

    def __init__(
        self,
        model_id: str | None = None,
        flatten_messages_as_text: bool | None = None,
        tool_name_key: str = "name",
        tool_arguments_key: str = "arguments",
        profile: ModelProfile | dict[str, Any] | None = None,
        prices: Price | dict[str, Any] | tuple[float, ...] | None = None,
        **kwargs: Any,
    ):
        self.model_id = model_id
        self.profile = resolve_profile(model_id, profile)
        self._profile_source = (model_id, profile)  # which id the profile was resolved for
        self.flatten_messages_as_text = (
            self.profile.flatten_messages_as_text
            if flatten_messages_as_text is None
            else flatten_messages_as_text
        )
        self.tool_name_key = tool_name_key
        self.tool_arguments_key = tool_arguments_key
        self.prices = prices
        self.kwargs = kwargs
        self.last_input_token_count: int | None = None
        self.last_output_token_count: int | None = None

    # ---- what providers implement -------------------------------------------------------------------
    async def agenerate(
        self,
        messages: list[ChatMessage | dict[str, Any]],
        stop_sequences: list[str] | None = None,
        response_format: dict[str, Any] | None = None,
        tools_to_call_from: list[Any] | None = None,
        **kwargs: Any,
    ) -> ChatMessage:
        """Generate one reply. Providers override this; a smolagents-style subclass that only overrides
        the sync ``generate`` (or ``__call__``) still works: it is run in a worker thread."""
        cls = type(self)
        if cls.generate is not Model.generate or cls.__call__ is not Model.__call__:
            own = self.generate if cls.generate is not Model.generate else self.__call__
            return await call_generate(
                own,
                messages,
                stop_sequences=stop_sequences,
                response_format=response_format,
                tools_to_call_from=tools_to_call_from,
                **kwargs,
            )
        raise NotImplementedError(f"{cls.__name__} implements neither agenerate() nor generate().")

    async def astream(
        self,
        messages: list[ChatMessage | dict[str, Any]],
        stop_sequences: list[str] | None = None,
        response_format: dict[str, Any] | None = None,
        tools_to_call_from: list[Any] | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatMessageStreamDelta]:
        """Stream the reply. The default iterates a subclass's own sync ``generate_stream`` in a worker
        thread, else makes one ``agenerate`` call and yields it as a single delta."""
        if type(self).generate_stream is not Model.generate_stream:
            iterator = iter(
                self.generate_stream(messages, stop_sequences, response_format, tools_to_call_from, **kwargs)
            )
            done = object()
            while (delta := await run_in_code_thread(next, iterator, done)) is not done:
                yield delta  # type: ignore[misc]
            return
        message = await self.agenerate(
            messages, stop_sequences, response_format, tools_to_call_from, **kwargs
        )
        yield message_to_delta(message)

    # ---- sync wrappers ---------------------------------------------------------------------------------
    def generate(
        self,
        messages: list[ChatMessage | dict[str, Any]],
        stop_sequences: list[str] | None = None,
        response_format: dict[str, Any] | None = None,
        tools_to_call_from: list[Any] | None = None,
        **kwargs: Any,
    ) -> ChatMessage:
        """Sync ``agenerate``; safe to call with or without a running event loop."""
        return run_sync(
            self.agenerate(messages, stop_sequences, response_format, tools_to_call_from, **kwargs)
        )

    def generate_stream(
        self,
        messages: list[ChatMessage | dict[str, Any]],
        stop_sequences: list[str] | None = None,
        response_format: dict[str, Any] | None = None,
        tools_to_call_from: list[Any] | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatMessageStreamDelta]:
        """Sync ``astream``; safe to call with or without a running event loop."""
        return iterate_sync(
            self.astream(messages, stop_sequences, response_format, tools_to_call_from, **kwargs)
        )

    def __call__(self, *args: Any, **kwargs: Any) -> ChatMessage:
        return self.generate(*args, **kwargs)

    # ---- resources -----------------------------------------------------------------------------------
    def close(self) -> None:
        """Release what the model holds (HTTP clients and their connections). No-op by default.
        The model stays usable: it opens new clients when called again."""

    async def aclose(self) -> None:
        """Async ``close``: waits for connections to be closed on the running loop."""
        self.close()

    def __enter__(self) -> Model:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    async def __aenter__(self) -> Model:
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.aclose()

    # ---- shared helpers ------------------------------------------------------------------------------
    @property
    def supports_stop_parameter(self) -> bool:
        """smolagents' property: whether requests may carry ``stop`` (from the capability profile, which
        follows ``model_id`` when it is changed after construction)."""
        profiled_id, override = self.__dict__.get("_profile_source", (self.model_id, None))
        if profiled_id == self.model_id:
            return self.profile.supports_stop
        return resolve_profile(self.model_id, override).supports_stop

    def _prepare_completion_kwargs(
        self,
        messages: list[ChatMessage | dict[str, Any]],
        stop_sequences: list[str] | None = None,
        response_format: dict[str, Any] | None = None,
        tools_to_call_from: list[Any] | None = None,
        custom_role_conversions: dict[str, str] | None = None,
        convert_images_to_image_urls: bool = False,
        tool_choice: str | dict[str, Any] | None = "required",
        **kwargs: Any,
    ) -> dict[str, Any]:
        """smolagents' request builder for subclass authors, kept for compatibility.

        Priority as in smolagents: the model's constructor kwargs win over per-call kwargs, which win over
        the named parameters; a constructor kwarg set to ``REMOVE_PARAMETER`` drops that key.
        """
        from .convert import get_clean_message_list, tool_role_conversions, tool_schema

        flatten = kwargs.pop("flatten_messages_as_text", self.flatten_messages_as_text)
        completion: dict[str, Any] = {
            "messages": get_clean_message_list(
                messages,
                role_conversions=custom_role_conversions or tool_role_conversions,
                convert_images_to_image_urls=convert_images_to_image_urls,
                flatten_messages_as_text=bool(flatten),
            )
        }
        if stop_sequences is not None and self.supports_stop_parameter:
            completion["stop"] = stop_sequences
        if response_format is not None:
            completion["response_format"] = response_format
        if tools_to_call_from:
            completion["tools"] = [tool_schema(t) for t in tools_to_call_from]
            if tool_choice is not None:
                completion["tool_choice"] = tool_choice
        completion.update(kwargs)
        for name, value in self.kwargs.items():
            if value is REMOVE_PARAMETER:
                completion.pop(name, None)
            else:
                completion[name] = value
        return completion

    def parse_tool_calls(self, message: ChatMessage) -> ChatMessage:
        """Fill ``message.tool_calls`` from JSON in its text when the model gave no native ones.

        Arguments given as JSON strings are decoded into dicts. Raises ``AgentParsingError`` when the
        message holds no tool call at all. Returns the same (updated) message.
        """
        message.role = MessageRole.ASSISTANT
        if not message.tool_calls:
            calls = tool_calls_from_text(message.text, self.tool_name_key, self.tool_arguments_key)
            if not calls:
                raise AgentParsingError(
                    "The model did not call a tool: no native tool call and no JSON like "
                    f'{{"{self.tool_name_key}": "tool_name", "{self.tool_arguments_key}": {{...}}}} '
                    f"in its reply: {message.text[:500]!r}"
                )
            message.tool_calls = calls
        for call in message.tool_calls:
            call.function.arguments = parse_arguments(call.function.arguments)
        return message

    def _finish_usage(self, usage: TokenUsage | None) -> TokenUsage | None:
        """Attach cost and remember the last counts (smolagents exposes last_*_token_count)."""
        if usage is not None:
            with_cost(usage, self.model_id, self.prices, note=self.note_unknown_price)
            self.last_input_token_count = usage.input_tokens
            self.last_output_token_count = usage.output_tokens
        return usage

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"class": type(self).__name__, "model_id": self.model_id, **self.kwargs}
        for attr in ("api_base", "organization", "project", "azure_endpoint", "api_version"):
            value = getattr(self, attr, None)
            if value is not None:
                data[attr] = value
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Model:
        """Rebuild a model from ``to_dict()``; ``Model.from_dict`` picks the class named in ``data["class"]``.
        Secrets are never in the dict: keys come from the environment (or pass ``api_key`` in ``data``)."""
        params = {k: v for k, v in data.items() if k != "class"}
        name = data.get("class")
        if cls is Model and name and name != "Model":
            from . import __getattr__ as _model_class

            try:
                target = _model_class(name)
            except AttributeError:
                raise ValueError(f"Unknown model class {name!r} in the saved model.") from None
            return target(**params)
        return cls(**params)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(model_id={self.model_id!r})"


def message_to_delta(message: ChatMessage) -> ChatMessageStreamDelta:
    """A whole message as one stream delta (tool calls as complete pieces)."""
    from ..messages import ChatMessageToolCallFunction, ChatMessageToolCallStreamDelta

    calls = None
    if message.tool_calls:
        calls = [
            ChatMessageToolCallStreamDelta(
                index=i,
                id=c.id,
                type=c.type,
                function=ChatMessageToolCallFunction(name=c.function.name, arguments=c.function.arguments),
            )
            for i, c in enumerate(message.tool_calls)
        ]
    return ChatMessageStreamDelta(
        content=message.text or None, tool_calls=calls, token_usage=message.token_usage
    )


async def collect_stream(stream: AsyncIterator[ChatMessageStreamDelta]) -> ChatMessage:
    """Drain an async delta stream into one message (helper for callers that stream but want the whole)."""
    return agglomerate_stream_deltas([d async for d in stream])


class ApiModel(Model):
    """smolagents' base class for API models, kept for compatibility: a ``Model`` with a ``client``.

    Subclasses implement ``create_client()`` (called once at construction unless ``client=`` is given)
    and ``generate``/``agenerate``. codeloop's own providers retry and rate-limit in their own modules.
    """

    def __init__(
        self,
        model_id: str | None = None,
        custom_role_conversions: dict[str, str] | None = None,
        client: Any | None = None,
        requests_per_minute: float | None = None,
        retry: bool = True,
        **kwargs: Any,
    ):
        super().__init__(model_id=model_id, **kwargs)
        self.custom_role_conversions = custom_role_conversions or {}
        self.requests_per_minute = requests_per_minute
        self.retry = retry
        self.client = client if client is not None else self.create_client()

    def create_client(self) -> Any:
        raise NotImplementedError(f"{type(self).__name__} must implement create_client() or be given client=")
