"""Local models on Apple's MLX through ``mlx-lm`` (extra ``codeloop[mlx]``; on Linux the CPU build
``mlx[cpu]`` is installed with it), and vision-language models through ``mlx-vlm`` (``codeloop[mlx-vlm]``).

``MLXModel`` keeps smolagents' parameters: ``model_id`` (a Hub id or a local folder in the Hugging Face
layout), ``trust_remote_code``, ``load_kwargs`` (for ``mlx_lm.load`` / ``mlx_vlm.load``),
``apply_chat_template_kwargs`` and generation ``**kwargs`` (``max_tokens``, ``temperature``/``temp``,
``top_p``...).

The prompt is the chat template (tools passed to it); tool calls are read from the generated text.
Generation runs ``stream_generate`` in a worker thread, one at a time per model; stop sequences end it as
soon as the text contains one and are cut from the reply. ``response_format`` constrains decoding to its
JSON schema through a logits processor (``json_constraint.py``, the ``structured`` extra).

Images: smolagents' MLXModel is text only (mlx-lm runs language models). Here a model whose config has a
``vision_config`` loads through mlx-vlm when it is installed (``mlx_vision.py``), and image parts (PIL,
bytes, paths, data/http URLs) reach it as pixel values; without mlx-vlm such a model loads through mlx-lm
as before (when mlx-lm runs it) and image parts get a clear error naming the extra.
"""

from __future__ import annotations

import asyncio
import dataclasses
import importlib
from collections.abc import AsyncIterator, Iterator
from typing import Any

from ..errors import ModelConfigurationError
from ..messages import ChatMessage, ChatMessageStreamDelta, TokenUsage
from .base import cut_at_stop
from .json_constraint import JsonConstraint, bounded_format
from .local import LocalModel
from .mlx_vision import INSTALL as VLM_INSTALL
from .mlx_vision import VisionRunner, import_mlx_vlm, is_vision_model

__all__ = ["MLXModel"]


class MLXModel(LocalModel):
    """A language or vision-language model run locally by ``mlx-lm`` / ``mlx-vlm`` (see the module docstring)."""

    text_only_hint = ("remove the image parts from the messages, or load a vision-language model (a config.json "
                      f"with a vision_config) with mlx-vlm installed: {VLM_INSTALL}.")

    def __init__(
        self,
        model_id: str | None = None,
        trust_remote_code: bool = False,
        load_kwargs: dict[str, Any] | None = None,
        apply_chat_template_kwargs: dict[str, Any] | None = None,
        custom_role_conversions: dict[str, str] | None = None,
        **kwargs: Any,
    ):
        super().__init__(model_id, apply_chat_template_kwargs, custom_role_conversions, **kwargs)
        self.trust_remote_code = trust_remote_code
        self.load_kwargs = dict(load_kwargs or {})
        self._constraint_cache: dict[str, Any] = {}
        self.vision: VisionRunner | None = None  # set for a vision-language model loaded by mlx-vlm
        mlx_vlm = import_mlx_vlm() if is_vision_model(model_id) else None
        if mlx_vlm is not None:
            self.vision = VisionRunner(mlx_vlm, model_id, trust_remote_code, self.load_kwargs)
            self.engine, self.model, self.tokenizer = mlx_vlm, self.vision.model, self.vision.tokenizer
            self.profile = dataclasses.replace(self.profile, supports_images=True)
            return
        self.engine = self.mlx_lm = self._import()
        try:
            self.model, self.tokenizer = self.mlx_lm.load(
                model_id, tokenizer_config={"trust_remote_code": trust_remote_code}, **self.load_kwargs
            )
        except (OSError, ValueError, FileNotFoundError) as exc:
            vlm = (f" It is a vision-language model: {VLM_INSTALL} to run it with mlx-vlm."
                   if is_vision_model(model_id) else "")
            raise ModelConfigurationError(
                f"MLXModel cannot load {model_id!r}: {exc}. Pass a local folder (config.json, safetensors "
                f"weights, tokenizer files) or a Hub id of an MLX-compatible model.{vlm}"
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

    def _prompt(self, messages: list[Any], tools: list[Any] | None) -> list[int] | dict[str, Any]:
        """Token ids for mlx-lm; for mlx-vlm, its prepared inputs (ids, pixel values, mask...)."""
        chat, images = self.chat_and_images(messages, vision=self.vision is not None)
        if self.vision is not None:
            return self.vision.encode(chat, images, self.tool_schemas(tools), self.apply_chat_template_kwargs)
        prompt = self.tokenizer.apply_chat_template(
            chat, tools=self.tool_schemas(tools), add_generation_prompt=True, tokenize=True,
            **self.apply_chat_template_kwargs,
        )
        return list(prompt["input_ids"] if isinstance(prompt, dict) or hasattr(prompt, "keys") else prompt)

    def _options(self, response_format: dict[str, Any] | None, kwargs: dict[str, Any]) -> dict[str, Any]:
        params = {**self.kwargs, **kwargs}
        params.pop("tool_choice", None)
        options: dict[str, Any] = {
            "max_tokens": params.pop("max_tokens", None) or params.pop("max_new_tokens", None) or 4096
        }
        temp = params.pop("temperature", params.pop("temp", 0.0))
        top_p = params.pop("top_p", 0.0)
        sample_utils = importlib.import_module(f"{self.engine.__name__}.sample_utils")
        options["sampler"] = sample_utils.make_sampler(temp=temp, top_p=top_p)
        if response_format is not None:
            options["logits_processors"] = [
                *params.pop("logits_processors", []), self._json_processor(response_format, options)
            ]
        options.update(params)
        return options

    def _json_processor(self, response_format: dict[str, Any], options: dict[str, Any]) -> Any:
        """A logits processor that keeps only the tokens the schema allows next."""
        import mlx.core as mx

        response_format = bounded_format(response_format, int(options["max_tokens"]))
        if self.vision is not None:
            tokenizer = self.tokenizer
            vocab = int(getattr(getattr(self.model.config, "text_config", None), "vocab_size", 0) or len(tokenizer))
        else:
            tokenizer = self.tokenizer._tokenizer
            vocab = int(getattr(getattr(self.model, "args", None), "vocab_size", 0) or len(tokenizer))
        constraint = JsonConstraint(tokenizer, response_format, vocab, self._constraint_cache)
        calls = 0

        def keep_allowed(tokens: Any, logits: Any) -> Any:
            # called once per new token; the tokens end with those generated so far (how much of the prompt
            # comes before them differs between mlx-lm and mlx-vlm and with chunked prefill)
            nonlocal calls
            constraint.advance(tokens[tokens.size - calls:].tolist() if calls else [])
            calls += 1
            allowed = mx.array(constraint.allowed()[: logits.shape[-1]])
            return mx.where(allowed, logits, mx.array(-float("inf"), dtype=logits.dtype))

        return keep_allowed

    def _pieces(self, prompt: list[int] | dict[str, Any], options: dict[str, Any], stops: list[str] | None,
                usage: TokenUsage) -> Iterator[str]:
        """Text pieces from stream_generate; stops once the text holds a stop sequence (run in a thread)."""
        text = ""
        with self._lock:
            if isinstance(prompt, dict):
                responses = self.vision.stream(prompt, options)  # type: ignore[union-attr]
            else:
                responses = self.mlx_lm.stream_generate(self.model, self.tokenizer, prompt=prompt, **options)
            for response in responses:
                usage.input_tokens = int(response.prompt_tokens)
                usage.output_tokens = int(response.generation_tokens)
                text += response.text
                yield response.text
                if stops and any(s in text for s in stops):
                    break

    async def agenerate(
        self,
        messages: list[Any],
        stop_sequences: list[str] | None = None,
        response_format: dict[str, Any] | None = None,
        tools_to_call_from: list[Any] | None = None,
        **kwargs: Any,
    ) -> ChatMessage:
        prompt, usage = self._prompt(messages, tools_to_call_from), TokenUsage()
        options = self._options(response_format, kwargs)
        text = await asyncio.to_thread(lambda: "".join(self._pieces(prompt, options, stop_sequences, usage)))
        return self.reply(cut_at_stop(text, stop_sequences) or "", tools_to_call_from, usage)

    async def astream(
        self,
        messages: list[Any],
        stop_sequences: list[str] | None = None,
        response_format: dict[str, Any] | None = None,
        tools_to_call_from: list[Any] | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatMessageStreamDelta]:
        prompt, usage = self._prompt(messages, tools_to_call_from), TokenUsage()
        options = self._options(response_format, kwargs)
        # mlx streams are per thread: stream_pieces runs the whole generation in one
        async for delta in self.stream_pieces(lambda: self._pieces(prompt, options, stop_sequences, usage),
                                              stop_sequences, usage):
            yield delta

    def to_dict(self) -> dict[str, Any]:
        data = super().to_dict()
        if self.trust_remote_code:
            data["trust_remote_code"] = True
        if self.load_kwargs:
            data["load_kwargs"] = self.load_kwargs
        return data
