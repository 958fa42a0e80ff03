"""Local models on Hugging Face ``transformers`` (extra ``codeloop[transformers]``).

``TransformersModel`` keeps smolagents' parameters: ``model_id`` (a Hub id or a local folder),
``device_map``, ``torch_dtype`` (``"auto"``, ``"bfloat16"``... or a ``torch.dtype``), ``trust_remote_code``,
``model_kwargs`` (more ``from_pretrained`` arguments), ``max_new_tokens``, ``apply_chat_template_kwargs``
and generation ``**kwargs`` (``temperature``, ``do_sample``...).

The prompt is the tokenizer's chat template (tools are passed to it, so templates that describe tools do);
tool calls are read from the generated text (``{"name": ..., "arguments": ...}``), as the model writes
them. Stop sequences stop generation (``stop_strings``) and are cut from the text. ``astream`` runs
``generate`` with a ``TextIteratorStreamer`` in a worker thread. Generation is serialized per model (one
``generate`` at a time; torch runs it on its own threads). Text-only models reject image parts with a
clear error instead of dropping them.

Vision-language models load as smolagents loads them: ``AutoModelForImageTextToText`` with its
``AutoProcessor`` when the config is one (else ``AutoModelForCausalLM`` with ``AutoTokenizer``); the
processor's chat template marks each image and the processor turns the images (PIL, bytes, data/http/file
URLs, paths) into the model's ``pixel_values``. ``response_format`` constrains decoding to its JSON schema
with a logits processor (``json_constraint.py``, the ``structured`` extra).
"""

from __future__ import annotations

import asyncio
import dataclasses
import threading
from collections.abc import AsyncIterator, Iterator
from typing import Any

from ..errors import ModelConfigurationError
from ..messages import ChatMessage, ChatMessageStreamDelta, TokenUsage
from .base import cut_at_stop
from .json_constraint import JsonConstraint, bounded_format
from .local import LocalModel

__all__ = ["TransformersModel"]


def _constraint_processor(constraint: JsonConstraint, prompt_len: int) -> Any:
    """A transformers logits processor that keeps only the tokens ``constraint`` allows."""
    import torch
    from transformers import LogitsProcessor

    class _JsonLogits(LogitsProcessor):
        def __call__(self, input_ids: Any, scores: Any) -> Any:
            constraint.advance(input_ids[0, prompt_len:].tolist())
            allowed = torch.from_numpy(constraint.allowed()).to(scores.device)
            return scores.masked_fill(~allowed[: scores.shape[-1]], float("-inf"))

    return _JsonLogits()


class TransformersModel(LocalModel):
    """A causal or vision-language model run locally by ``transformers`` (see the module docstring)."""

    def __init__(
        self,
        model_id: str | None = None,
        device_map: str | None = None,
        torch_dtype: Any = None,
        trust_remote_code: bool = False,
        model_kwargs: dict[str, Any] | None = None,
        max_new_tokens: int = 4096,
        max_tokens: int | None = None,
        apply_chat_template_kwargs: dict[str, Any] | None = None,
        custom_role_conversions: dict[str, str] | None = None,
        **kwargs: Any,
    ):
        super().__init__(model_id, apply_chat_template_kwargs, custom_role_conversions, **kwargs)
        self.device_map = device_map
        self.torch_dtype = torch_dtype
        self.trust_remote_code = trust_remote_code
        self.model_kwargs = dict(model_kwargs or {})
        self.max_new_tokens = max_tokens if max_tokens is not None else max_new_tokens
        self.processor: Any = None  # set for a vision-language model
        self._constraint_cache: dict[str, Any] = {}
        self.tokenizer, self.model = self._load()
        if self.processor is not None:
            self.profile = dataclasses.replace(self.profile, supports_images=True)

    def _load(self) -> tuple[Any, Any]:
        try:
            import torch
            import transformers
        except ImportError as exc:
            raise ModelConfigurationError(
                "TransformersModel needs 'transformers' and 'torch': pip install 'codeloop[transformers]'"
            ) from exc
        dtype = self.torch_dtype
        if isinstance(dtype, str) and dtype != "auto":
            dtype = getattr(torch, dtype)
        load: dict[str, Any] = {"trust_remote_code": self.trust_remote_code, **self.model_kwargs}
        if self.device_map is not None:
            load["device_map"] = self.device_map
        if dtype is not None:
            load["dtype"] = dtype
        try:
            config = transformers.AutoConfig.from_pretrained(self.model_id, trust_remote_code=self.trust_remote_code)
            if type(config) in transformers.AutoModelForImageTextToText._model_mapping:
                self.processor = transformers.AutoProcessor.from_pretrained(
                    self.model_id, trust_remote_code=self.trust_remote_code
                )
                tokenizer = self.processor.tokenizer
                model = transformers.AutoModelForImageTextToText.from_pretrained(self.model_id, **load)
            else:
                tokenizer = transformers.AutoTokenizer.from_pretrained(
                    self.model_id, trust_remote_code=self.trust_remote_code
                )
                model = transformers.AutoModelForCausalLM.from_pretrained(self.model_id, **load)
        except (OSError, ValueError) as exc:
            raise ModelConfigurationError(
                f"TransformersModel cannot load {self.model_id!r}: {exc}. Pass a local folder with config.json, "
                "weights and tokenizer files, or a Hub id (downloaded unless HF_HUB_OFFLINE=1)."
            ) from exc
        if self.device_map is None and self.model_kwargs.get("device") is None:
            model.to("cpu")
        model.eval()
        return tokenizer, model

    # ---- prompt ------------------------------------------------------------------------------------------
    def _encode(self, messages: list[Any], tools: list[Any] | None) -> Any:
        chat, images = self.chat_and_images(messages, vision=self.processor is not None)
        templater = self.processor if self.processor is not None else self.tokenizer
        if getattr(templater, "chat_template", None) is None:
            raise ModelConfigurationError(
                f"The tokenizer of {self.model_id!r} has no chat template: pass "
                "apply_chat_template_kwargs={'chat_template': '...'} or use an instruction-tuned model."
            )
        options = {"tools": self.tool_schemas(tools), "add_generation_prompt": True, **self.apply_chat_template_kwargs}
        if self.processor is None:
            encoded = self.tokenizer.apply_chat_template(chat, return_tensors="pt", return_dict=True, **options)
        else:
            prompt = self.processor.apply_chat_template(chat, tokenize=False, **options)
            encoded = self.processor(text=[prompt], images=images or None, return_tensors="pt")
            return encoded.to(self.model.device, dtype=self.model.dtype)  # pixel_values in the model's dtype
        return encoded.to(self.model.device)

    def _generate_kwargs(self, inputs: Any, stop_sequences: list[str] | None, kwargs: dict[str, Any]) -> dict[str, Any]:
        params = {**self.kwargs, **kwargs}
        params.pop("tool_choice", None)
        max_new = params.pop("max_new_tokens", None) or params.pop("max_tokens", None) or self.max_new_tokens
        generate = {**inputs, "max_new_tokens": max_new, **params}
        if stop_sequences:
            generate["stop_strings"] = list(stop_sequences)
            generate["tokenizer"] = self.tokenizer
        if "do_sample" not in generate and "temperature" not in generate:
            generate["do_sample"] = False
        if self.tokenizer.pad_token_id is None:
            generate["pad_token_id"] = self.tokenizer.eos_token_id
        return generate

    def _constrain(self, generate: dict[str, Any], response_format: dict[str, Any] | None) -> None:
        """Adds the logits processor that keeps the reply inside ``response_format``'s JSON schema."""
        if response_format is None:
            return
        response_format = bounded_format(response_format, int(generate["max_new_tokens"]))
        vocab = int(self.model.get_output_embeddings().weight.shape[0])
        constraint = JsonConstraint(self.tokenizer, response_format, vocab, self._constraint_cache)
        processor = _constraint_processor(constraint, int(generate["input_ids"].shape[-1]))
        generate["logits_processor"] = [*generate.get("logits_processor", []), processor]

    # ---- generation --------------------------------------------------------------------------------------
    def _run(self, generate: dict[str, Any]) -> tuple[str, TokenUsage]:
        import torch

        with self._lock, torch.inference_mode():
            output = self.model.generate(**generate)
        prompt_len = generate["input_ids"].shape[-1]
        new = output[0][prompt_len:]
        text = self.tokenizer.decode(new, skip_special_tokens=True)
        return text, TokenUsage(input_tokens=int(prompt_len), output_tokens=int(new.shape[-1]))

    async def agenerate(
        self,
        messages: list[Any],
        stop_sequences: list[str] | None = None,
        response_format: dict[str, Any] | None = None,
        tools_to_call_from: list[Any] | None = None,
        **kwargs: Any,
    ) -> ChatMessage:
        generate = self._generate_kwargs(self._encode(messages, tools_to_call_from), stop_sequences, kwargs)
        self._constrain(generate, response_format)
        text, usage = await asyncio.to_thread(self._run, generate)
        return self.reply(cut_at_stop(text, stop_sequences) or "", tools_to_call_from, usage)

    async def astream(
        self,
        messages: list[Any],
        stop_sequences: list[str] | None = None,
        response_format: dict[str, Any] | None = None,
        tools_to_call_from: list[Any] | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatMessageStreamDelta]:
        from transformers import TextIteratorStreamer

        generate = self._generate_kwargs(self._encode(messages, tools_to_call_from), stop_sequences, kwargs)
        self._constrain(generate, response_format)
        streamer = TextIteratorStreamer(self.tokenizer, skip_prompt=True, skip_special_tokens=True, timeout=600)
        generate["streamer"] = streamer
        usage = TokenUsage()

        def produce() -> Iterator[str]:
            result: dict[str, Any] = {}

            def run() -> None:
                try:
                    result["out"] = self._run(generate)
                except BaseException as exc:  # noqa: BLE001 - re-raised below
                    result["error"] = exc
                    streamer.end()

            worker = threading.Thread(target=run, name="codeloop-transformers-generate", daemon=True)
            worker.start()
            yield from streamer
            worker.join()
            if "error" in result:
                raise result["error"]
            usage.input_tokens, usage.output_tokens = result["out"][1].input_tokens, result["out"][1].output_tokens

        async for delta in self.stream_pieces(produce, stop_sequences, usage):
            yield delta

    def to_dict(self) -> dict[str, Any]:
        data = super().to_dict()
        for name in ("device_map", "trust_remote_code", "max_new_tokens"):
            data[name] = getattr(self, name)
        if self.torch_dtype is not None:
            data["torch_dtype"] = str(self.torch_dtype).removeprefix("torch.")
        return data
