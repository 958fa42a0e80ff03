"""Local models on Apple's MLX through ``mlx-lm`` (extra ``codeloop[mlx]``; on Linux the CPU build
``mlx[cpu]`` is installed with it).

``MLXModel`` keeps smolagents' parameters: ``model_id`` (a Hub id or a local folder in the Hugging Face
layout), ``trust_remote_code``, ``load_kwargs`` (for ``mlx_lm.load``), ``apply_chat_template_kwargs`` and
generation ``**kwargs`` (``max_tokens``, ``temperature``/``temp``, ``top_p``...).

The prompt is the tokenizer's chat template (tools passed to it); tool calls are read from the generated
text. Generation runs ``mlx_lm.stream_generate`` in a worker thread, one at a time per model; stop
sequences end it as soon as the text contains one and are cut from the reply. Text only: image parts and
``response_format`` give a clear error.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Iterator
from typing import Any

from ..errors import ModelConfigurationError
from ..messages import ChatMessage, ChatMessageStreamDelta, MessageRole, TokenUsage
from .base import Model, StopCutter, cut_at_stop
from .convert import to_chat_messages, tool_schema
from .toolcall_parsing import tool_calls_from_text

__all__ = ["MLXModel"]

_DONE = object()


class MLXModel(Model):
    """A language model run locally by ``mlx-lm`` (see the module docstring)."""

    note_unknown_price = False  # local compute: no per-token price to look up

    def __init__(
        self,
        model_id: str | None = None,
        trust_remote_code: bool = False,
        load_kwargs: dict[str, Any] | None = None,
        apply_chat_template_kwargs: dict[str, Any] | None = None,
        custom_role_conversions: dict[str, str] | None = None,
        **kwargs: Any,
    ):
        if not model_id:
            raise ModelConfigurationError("MLXModel needs model_id: a Hub id or a local model folder.")
        profile = kwargs.pop("profile", None) or {"supports_response_format": False, "supports_images": False}
        super().__init__(model_id=model_id, profile=profile, **kwargs)
        self.trust_remote_code = trust_remote_code
        self.load_kwargs = dict(load_kwargs or {})
        self.apply_chat_template_kwargs = dict(apply_chat_template_kwargs or {})
        self.custom_role_conversions = custom_role_conversions
        self._lock = threading.Lock()
        self.mlx_lm = self._import()
        try:
            self.model, self.tokenizer = self.mlx_lm.load(
                model_id, tokenizer_config={"trust_remote_code": trust_remote_code}, **self.load_kwargs
            )
        except (OSError, ValueError, FileNotFoundError) as exc:
            raise ModelConfigurationError(
                f"MLXModel cannot load {model_id!r}: {exc}. Pass a local folder (config.json, safetensors "
                "weights, tokenizer files) or a Hub id of an MLX-compatible model."
            ) from exc

    @staticmethod
    def _import() -> Any:
        try:
            import mlx_lm
        except ImportError as exc:
            raise ModelConfigurationError(
                "MLXModel needs 'mlx-lm': pip install 'codeloop[mlx]' (on Linux this installs mlx[cpu])"
            ) from exc
        return mlx_lm

    def _prompt(self, messages: list[Any], tools: list[Any] | None) -> list[int]:
        chat = to_chat_messages(messages, self.custom_role_conversions, flatten_messages_as_text=False)
        for message in chat:
            content = message.get("content")
            if isinstance(content, list):
                if any(p.get("type") in ("image", "image_url") for p in content):
                    raise ModelConfigurationError(
                        f"MLXModel({self.model_id!r}) is a text model: remove the image parts from the messages."
                    )
                message["content"] = "\n".join(p.get("text", "") for p in content)
        schemas = [tool_schema(t) for t in tools] if tools else None
        prompt = self.tokenizer.apply_chat_template(
            chat, tools=schemas, add_generation_prompt=True, tokenize=True, **self.apply_chat_template_kwargs
        )
        return list(prompt["input_ids"] if isinstance(prompt, dict) or hasattr(prompt, "keys") else prompt)

    def _options(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        params = {**self.kwargs, **kwargs}
        params.pop("tool_choice", None)
        options: dict[str, Any] = {
            "max_tokens": params.pop("max_tokens", None) or params.pop("max_new_tokens", None) or 4096
        }
        temp = params.pop("temperature", params.pop("temp", 0.0))
        top_p = params.pop("top_p", 0.0)
        from mlx_lm.sample_utils import make_sampler

        options["sampler"] = make_sampler(temp=temp, top_p=top_p)
        options.update(params)
        return options

    def _pieces(self, prompt: list[int], options: dict[str, Any], stops: list[str] | None,
                usage: TokenUsage) -> Iterator[str]:
        """Text pieces from stream_generate; stops once the text holds a stop sequence (run in a thread)."""
        text = ""
        with self._lock:
            for response in self.mlx_lm.stream_generate(self.model, self.tokenizer, prompt=prompt, **options):
                usage.input_tokens = int(response.prompt_tokens)
                usage.output_tokens = int(response.generation_tokens)
                text += response.text
                yield response.text
                if stops and any(s in text for s in stops):
                    break

    def _check(self, response_format: dict[str, Any] | None) -> None:
        if response_format is not None:
            raise ModelConfigurationError("MLXModel does not support response_format (no constrained decoding).")

    def _calls(self, text: str, tools: list[Any] | None) -> Any:
        if not tools:
            return None
        names = {tool_schema(t)["function"]["name"] for t in tools}
        found = tool_calls_from_text(text, self.tool_name_key, self.tool_arguments_key)
        return [c for c in found if c.function.name in names] or None

    async def agenerate(
        self,
        messages: list[Any],
        stop_sequences: list[str] | None = None,
        response_format: dict[str, Any] | None = None,
        tools_to_call_from: list[Any] | None = None,
        **kwargs: Any,
    ) -> ChatMessage:
        self._check(response_format)
        prompt, options, usage = self._prompt(messages, tools_to_call_from), self._options(kwargs), TokenUsage()
        text = await asyncio.to_thread(lambda: "".join(self._pieces(prompt, options, stop_sequences, usage)))
        text = cut_at_stop(text, stop_sequences) or ""
        return ChatMessage(role=MessageRole.ASSISTANT, content=text, tool_calls=self._calls(text, tools_to_call_from),
                           token_usage=self._finish_usage(usage))

    async def astream(
        self,
        messages: list[Any],
        stop_sequences: list[str] | None = None,
        response_format: dict[str, Any] | None = None,
        tools_to_call_from: list[Any] | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatMessageStreamDelta]:
        self._check(response_format)
        prompt, options, usage = self._prompt(messages, tools_to_call_from), self._options(kwargs), TokenUsage()
        pieces = self._pieces(prompt, options, stop_sequences, usage)
        cutter = StopCutter(stop_sequences) if stop_sequences else None
        # One thread runs the whole generation: mlx streams are per thread.
        queue: asyncio.Queue[Any] = asyncio.Queue()
        loop = asyncio.get_running_loop()

        def run() -> None:
            try:
                for piece in pieces:
                    loop.call_soon_threadsafe(queue.put_nowait, piece)
                loop.call_soon_threadsafe(queue.put_nowait, _DONE)
            except BaseException as exc:  # noqa: BLE001 - re-raised in the caller
                loop.call_soon_threadsafe(queue.put_nowait, exc)

        worker = asyncio.ensure_future(asyncio.to_thread(run))
        while (piece := await queue.get()) is not _DONE:
            if isinstance(piece, BaseException):
                raise piece
            text = cutter.feed(piece) if cutter else piece
            if text:
                yield ChatMessageStreamDelta(content=text)
        await worker
        rest = cutter.flush() if cutter else ""
        if rest:
            yield ChatMessageStreamDelta(content=rest)
        yield ChatMessageStreamDelta(token_usage=self._finish_usage(usage))

    def to_dict(self) -> dict[str, Any]:
        data = super().to_dict()
        if self.trust_remote_code:
            data["trust_remote_code"] = True
        if self.load_kwargs:
            data["load_kwargs"] = self.load_kwargs
        return data
