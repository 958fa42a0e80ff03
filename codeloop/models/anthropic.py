"""Anthropic's Messages API on the official ``anthropic`` SDK (extra ``codeloop[anthropic]``).

What differs from chat completions, and how it is handled here:

* system messages become the top-level ``system`` blocks; tool calls are ``tool_use`` blocks in the
  assistant turn and their results ``tool_result`` blocks in the next user turn (all results of parallel
  calls in one turn, as the API requires); turns of the same role are merged;
* images become ``image`` blocks (base64 from data URLs, ``url`` sources otherwise);
* prompt caching: ``add_cache_breakpoints`` marks the system prompt and the last message with
  ``cache_control`` so each step reads the previous steps from the cache (``prompt_caching=False`` to stop);
* extended thinking (``thinking={"type": "enabled", "budget_tokens": N}``): the thinking blocks of a reply
  that calls tools are kept in memory by the model (keyed by the tool-use ids) and sent back, unchanged and
  before the ``tool_use`` blocks, when that turn is replayed, as the API requires;
* ``response_format`` (a JSON schema) is sent as ``output_config.format``;
* ``max_tokens`` is required by the API: 4096 unless given;
* usage: ``input_tokens`` counts cache reads and writes too; ``cached_input_tokens`` is the cache reads,
  ``cache_write_tokens`` the writes, ``reasoning_tokens`` the thinking tokens when the API reports them;
* the agent's cache hints (``cache_hints``: where its stable prefix segments end) choose the breakpoints
  when given.

The request loop, retries (429 with ``retry-after``, 5xx, 529 overloaded, dropped connections) and client
lifetime are ``OpenAIModel``'s; this module supplies the client, the request and the reply conversion.
"""

from __future__ import annotations

import os
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
from ._sdk_params import fit_to_sdk
from .base import StopCutter, cut_at_stop
from .convert import to_chat_messages, tool_schema
from .openai import OpenAIModel
from .toolcall_parsing import parse_arguments

__all__ = ["AnthropicModel", "add_cache_breakpoints", "to_anthropic_messages"]

DEFAULT_MAX_TOKENS = 4096
_THINKING_MEMORY = 512  # assistant turns whose thinking blocks are kept for replay
_EPHEMERAL = {"type": "ephemeral"}
_MAX_BREAKPOINTS = 4  # the API's limit per request


def _image_block(url: str) -> dict[str, Any]:
    if url.startswith("data:"):
        head, _, data = url.partition(",")
        media_type = head[5:].split(";")[0] or "image/png"
        return {"type": "image", "source": {"type": "base64", "media_type": media_type, "data": data}}
    return {"type": "image", "source": {"type": "url", "url": url}}


def _blocks(content: Any) -> list[dict[str, Any]]:
    """Anthropic content blocks from chat-completions content (empty text dropped: the API rejects it)."""
    if content is None:
        return []
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    out: list[dict[str, Any]] = []
    for part in content:
        kind = part.get("type")
        if kind == "text":
            if part.get("text"):
                out.append({"type": "text", "text": part["text"]})
        elif kind == "image_url":
            url = part["image_url"]["url"] if isinstance(part["image_url"], dict) else part["image_url"]
            out.append(_image_block(url))
        else:  # already an Anthropic block (document, image, ...)
            out.append(part)
    return out


def to_anthropic_messages(
    messages: list[Any],
    role_conversions: dict[str, str] | None = None,
    flatten: bool = False,
    thinking_for: Any = None,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """``(system_blocks, messages)`` for the Messages API. ``thinking_for(tool_use_ids)`` returns the
    thinking blocks to put back in front of an assistant turn's ``tool_use`` blocks."""
    system: list[dict[str, Any]] = []
    out: list[dict[str, Any]] = []

    def append(role: str, blocks: list[dict[str, Any]]) -> None:
        if not blocks:
            return
        if out and out[-1]["role"] == role:
            out[-1]["content"].extend(blocks)
        else:
            out.append({"role": role, "content": blocks})

    for message in to_chat_messages(messages, role_conversions, flatten):
        role = message["role"]
        if role in ("system", "developer"):
            system.extend(_blocks(message["content"]))
        elif role == "tool":
            text = message["content"] or "(no output)"
            append("user", [{"type": "tool_result", "tool_use_id": message["tool_call_id"], "content": text}])
        elif role == "assistant" and message.get("tool_calls"):
            calls = message["tool_calls"]
            thinking = thinking_for([c["id"] for c in calls]) if thinking_for else []
            uses = [
                {
                    "type": "tool_use",
                    "id": c["id"],
                    "name": c["function"]["name"],
                    "input": parse_arguments(c["function"]["arguments"]) or {},
                }
                for c in calls
            ]
            append("assistant", [*thinking, *_blocks(message["content"]), *uses])
        else:
            append("assistant" if role == "assistant" else "user", _blocks(message["content"]))
    return system, out


def add_cache_breakpoints(
    system: list[dict[str, Any]],
    messages: list[dict[str, Any]],
    at: list[tuple[int, int]] | None = None,
) -> None:
    """Mark the prompt-cache breakpoints (in place): the end of the system prompt, which never changes during
    a run, and the blocks ``at`` (``(message index, block index)`` in ``messages``; default: the last block
    of the last message, so the next step reads this whole prefix from the cache). At most the API's four
    breakpoints, the latest ones kept; blocks that already carry ``cache_control`` keep theirs."""
    marks: list[dict[str, Any]] = [system[-1]] if system else []
    if at is None:
        at = [(len(messages) - 1, len(messages[-1]["content"]) - 1)] if messages and messages[-1]["content"] else []
    for i, j in at:
        block = messages[i]["content"][j]
        if block.get("type") not in ("thinking", "redacted_thinking") and all(block is not m for m in marks):
            marks.append(block)  # (thinking blocks cannot carry cache_control)
    head = marks[:1] if system else []
    rest = marks[len(head):]
    for block in head + rest[max(0, len(rest) - (_MAX_BREAKPOINTS - len(head))):]:
        block.setdefault("cache_control", dict(_EPHEMERAL))


def _hinted_positions(
    messages: list[Any], breakpoints: tuple[int, ...], convert: Any
) -> list[tuple[int, int]]:
    """Where the agent's cache hints (indices into ``messages``) land in the converted request: the last
    block of the converted prefix that ends with each hinted message (turns merge, so indices shift)."""
    positions = []
    for index in sorted(set(breakpoints)):
        if 0 <= index < len(messages):
            _, prefix = convert(messages[: index + 1])
            if prefix and prefix[-1]["content"]:
                positions.append((len(prefix) - 1, len(prefix[-1]["content"]) - 1))
    return positions


def _tool(tool: Any) -> dict[str, Any]:
    fn = tool_schema(tool)["function"]
    return {
        "name": fn["name"],
        "description": fn.get("description", ""),
        "input_schema": fn.get("parameters") or {"type": "object", "properties": {}},
    }


def _tool_choice(choice: Any, parallel: bool | None) -> dict[str, Any] | None:
    if choice is None:
        return None
    if isinstance(choice, dict):
        name = (choice.get("function") or {}).get("name") or choice.get("name")
        result = {"type": "tool", "name": name} if name else dict(choice)
    else:
        result = {"required": {"type": "any"}, "auto": {"type": "auto"}, "none": {"type": "none"}}.get(
            choice, {"type": "tool", "name": choice}
        )
    if parallel is False and result["type"] != "none":
        result["disable_parallel_tool_use"] = True
    return result


def usage_from(raw: Any) -> TokenUsage | None:
    if raw is None:
        return None
    read = getattr(raw, "cache_read_input_tokens", None) or 0
    written = getattr(raw, "cache_creation_input_tokens", None) or 0
    details = getattr(raw, "output_tokens_details", None)
    return TokenUsage(
        input_tokens=int((getattr(raw, "input_tokens", None) or 0) + read + written),
        output_tokens=int(getattr(raw, "output_tokens", None) or 0),
        cached_input_tokens=int(read),
        cache_write_tokens=int(written),
        reasoning_tokens=int(getattr(details, "thinking_tokens", None) or 0),
    )


class AnthropicModel(OpenAIModel):
    """A Claude model through the Anthropic Messages API.

    Args:
        model_id: e.g. ``"claude-sonnet-4-5"``.
        api_key: default ``ANTHROPIC_API_KEY``.
        api_base: another endpoint (a proxy, a test server); default Anthropic's.
        prompt_caching: mark cache breakpoints on the system prompt and the last message (default True).
        client_kwargs: extra ``anthropic.AsyncAnthropic`` arguments (``default_headers``, ``timeout``...).
        Other arguments as for ``OpenAIModel``; ``**kwargs`` are Messages parameters sent with every request
        (``max_tokens``, ``temperature``, ``thinking``, ``tool_choice``, ``parallel_tool_calls``...).
    """

    def __init__(
        self,
        model_id: str = "claude-sonnet-4-5",
        api_key: str | None = None,
        api_base: str | None = None,
        prompt_caching: bool = True,
        client_kwargs: dict[str, Any] | None = None,
        profile: Any = None,
        **kwargs: Any,
    ):
        self.prompt_caching = prompt_caching
        self._thinking: OrderedDict[str, list[dict[str, Any]]] = OrderedDict()
        # The native API has structured output, unlike the OpenAI-compatible endpoint the profile table is for.
        profile = {"supports_response_format": True} if profile is None else profile
        super().__init__(model_id, api_base=api_base, api_key=api_key, client_kwargs=client_kwargs,
                         profile=profile, **kwargs)

    # ---- client ----------------------------------------------------------------------------------------
    def _resolve_api_key(self, api_key: str | None) -> str | None:
        key = api_key or os.environ.get("ANTHROPIC_API_KEY")
        if not key:
            raise ModelConfigurationError(
                f"No API key for AnthropicModel({self.model_id!r}): set ANTHROPIC_API_KEY "
                "(export ANTHROPIC_API_KEY=sk-ant-...) or pass api_key=..."
            )
        return key

    def _import_anthropic(self) -> Any:
        try:
            import anthropic
        except ImportError as exc:
            raise ModelConfigurationError(
                "AnthropicModel needs the 'anthropic' package: pip install 'codeloop[anthropic]'"
            ) from exc
        return anthropic

    def _sdk_kwargs(self) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"api_key": self.api_key, "timeout": 120.0, **self.client_kwargs,
                                  "max_retries": 0}
        if self.api_base:
            kwargs["base_url"] = self.api_base
        return kwargs

    def create_client(self) -> Any:
        return self._import_anthropic().Anthropic(**self._sdk_kwargs())

    def create_async_client(self) -> Any:
        return self._import_anthropic().AsyncAnthropic(**self._sdk_kwargs())

    def _what(self) -> str:
        where = f" at {self.api_base}" if self.api_base else ""
        return f"Anthropic request to model {self.model_id!r}{where}"

    # ---- thinking memory -------------------------------------------------------------------------------
    def _remember_thinking(self, blocks: list[dict[str, Any]], tool_use_ids: list[str]) -> None:
        if blocks and tool_use_ids:
            self._thinking[tool_use_ids[0]] = blocks
            while len(self._thinking) > _THINKING_MEMORY:
                self._thinking.popitem(last=False)

    def _thinking_for(self, tool_use_ids: list[str]) -> list[dict[str, Any]]:
        return list(self._thinking.get(tool_use_ids[0], ())) if tool_use_ids else []

    # ---- request -----------------------------------------------------------------------------------------
    def prepare_request(
        self,
        messages: list[Any],
        stop_sequences: list[str] | None = None,
        response_format: dict[str, Any] | None = None,
        tools_to_call_from: list[Any] | None = None,
        stream: bool = False,
        **kwargs: Any,
    ) -> tuple[dict[str, Any], list[str] | None]:
        params: dict[str, Any] = {**self.kwargs, **kwargs}
        flatten = self.flatten_messages_as_text or not self.profile.supports_images
        hints = params.pop("cache_hints", None)

        def convert(items: list[Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
            return to_anthropic_messages(items, self.custom_role_conversions, flatten, self._thinking_for)

        system, converted = convert(messages)
        if self.prompt_caching:
            at = None
            if hints is not None and hints.breakpoints:  # the agent says where its stable segments end
                at = _hinted_positions(messages, hints.breakpoints, convert)
            add_cache_breakpoints(system, converted, at)
        request: dict[str, Any] = {"model": params.pop("model", None) or self.model_id, "messages": converted}
        if system:
            request["system"] = system
        thinking = params.get("thinking") or {}
        budget = int(thinking.get("budget_tokens", 0) or 0)
        request["max_tokens"] = params.pop("max_tokens", None) or params.pop("max_completion_tokens", None) or (
            max(DEFAULT_MAX_TOKENS, budget + DEFAULT_MAX_TOKENS) if budget else DEFAULT_MAX_TOKENS
        )
        client_stop: list[str] | None = None
        if stop_sequences:
            if self.profile.supports_stop:
                request["stop_sequences"] = list(stop_sequences)
            else:
                client_stop = list(stop_sequences)
        if response_format is not None:
            schema = response_format.get("json_schema", {}).get("schema") or response_format.get("schema")
            if not schema:
                raise ModelConfigurationError(
                    "AnthropicModel supports response_format={'type': 'json_schema', 'json_schema': "
                    "{'name': ..., 'schema': {...}}} only (the API needs a JSON schema)."
                )
            request["output_config"] = {"format": {"type": "json_schema", "schema": schema}}
        tool_choice = params.pop("tool_choice", "required")
        parallel = params.pop("parallel_tool_calls", None)
        if tools_to_call_from and self.profile.supports_tool_calls:
            request["tools"] = [_tool(t) for t in tools_to_call_from]
            choice = _tool_choice(tool_choice, parallel)
            if thinking.get("type") == "enabled" and choice and choice["type"] in ("any", "tool"):
                choice = {**choice, "type": "auto"}  # the API rejects forced tool use with thinking on
                choice.pop("name", None)
            if choice is not None:
                request["tool_choice"] = choice
        if not self.profile.supports_temperature:
            params.pop("temperature", None)
            params.pop("top_p", None)
        params.pop("stream_options", None)
        if stream:
            request["stream"] = True
        request.update(params)
        return request, client_stop

    async def _create(self, client: Any, request: dict[str, Any]) -> Any:
        return await client.messages.create(**fit_to_sdk(client.messages.create, request))

    # ---- replies -----------------------------------------------------------------------------------------
    def _to_message(
        self,
        response: Any,
        client_stop: list[str] | None,
        stop_sequences: list[str] | None,
        tool_names: set[str] | None,
    ) -> ChatMessage:
        blocks = getattr(response, "content", None)
        if blocks is None:
            raise ModelRequestError(f"{self._what()} returned no content: {str(response)[:300]}")
        texts, calls, thinking = [], [], []
        for block in blocks:
            if block.type == "text":
                texts.append(block.text)
            elif block.type == "tool_use":
                calls.append(
                    ChatMessageToolCall(
                        function=ChatMessageToolCallFunction(name=block.name, arguments=dict(block.input or {})),
                        id=block.id,
                        type="function",
                    )
                )
            elif block.type in ("thinking", "redacted_thinking"):
                thinking.append(block.model_dump(exclude_none=True))
        self._remember_thinking(thinking, [c.id for c in calls])
        content = "".join(texts) or None
        if client_stop and content:
            content = cut_at_stop(content, client_stop)
        usage = self._finish_usage(usage_from(getattr(response, "usage", None)))
        return ChatMessage(
            role=MessageRole.ASSISTANT, content=content, tool_calls=calls or None, raw=response, token_usage=usage
        )

    async def _stream_deltas(
        self, stream: Any, cutter: StopCutter | None
    ) -> AsyncIterator[ChatMessageStreamDelta]:
        usage: TokenUsage | None = None
        tool_index: dict[int, int] = {}  # content-block index -> tool-call index
        blocks: dict[int, dict[str, Any]] = {}  # thinking blocks being streamed
        thinking: list[dict[str, Any]] = []
        tool_ids: list[str] = []
        async for event in stream:
            kind = event.type
            if kind == "message_start":
                usage = usage_from(event.message.usage)
            elif kind == "content_block_start":
                block = event.content_block
                if block.type == "tool_use":
                    tool_index[event.index] = len(tool_index)
                    tool_ids.append(block.id)
                    yield ChatMessageStreamDelta(tool_calls=[ChatMessageToolCallStreamDelta(
                        index=tool_index[event.index], id=block.id, type="function",
                        function=ChatMessageToolCallFunction(name=block.name, arguments=""),
                    )])
                elif block.type in ("thinking", "redacted_thinking"):
                    blocks[event.index] = block.model_dump(exclude_none=True)
                elif block.type == "text" and block.text:
                    text = cutter.feed(block.text) if cutter else block.text
                    if text:
                        yield ChatMessageStreamDelta(content=text)
            elif kind == "content_block_delta":
                delta = event.delta
                if delta.type == "text_delta":
                    text = cutter.feed(delta.text) if cutter else delta.text
                    if text:
                        yield ChatMessageStreamDelta(content=text)
                elif delta.type == "input_json_delta" and event.index in tool_index:
                    yield ChatMessageStreamDelta(tool_calls=[ChatMessageToolCallStreamDelta(
                        index=tool_index[event.index],
                        function=ChatMessageToolCallFunction(name="", arguments=delta.partial_json),
                    )])
                elif delta.type == "thinking_delta" and event.index in blocks:
                    blocks[event.index]["thinking"] = blocks[event.index].get("thinking", "") + delta.thinking
                elif delta.type == "signature_delta" and event.index in blocks:
                    blocks[event.index]["signature"] = delta.signature
            elif kind == "content_block_stop" and event.index in blocks:
                thinking.append(blocks.pop(event.index))
            elif kind == "message_delta":
                out = int(getattr(event.usage, "output_tokens", 0) or 0)
                usage = (usage or TokenUsage())
                usage.output_tokens = out
        self._remember_thinking(thinking, tool_ids)
        if usage is not None:
            yield ChatMessageStreamDelta(token_usage=self._finish_usage(usage))

    def to_dict(self) -> dict[str, Any]:
        data = super().to_dict()
        if not self.prompt_caching:
            data["prompt_caching"] = False
        return data
