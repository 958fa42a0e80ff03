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
clear error instead of dropping them. ``response_format`` is not supported (no constrained decoding here).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from typing import Any

from ..errors import ModelConfigurationError
from ..messages import ChatMessage, ChatMessageStreamDelta, MessageRole, TokenUsage
from .base import Model, StopCutter, cut_at_stop
from .convert import to_chat_messages, tool_schema
from .toolcall_parsing import tool_calls_from_text

__all__ = ["TransformersModel"]

_DONE = object()


def _has_images(chat: list[dict[str, Any]]) -> bool:
    return any(
        isinstance(m.get("content"), list) and any(p.get("type") in ("image", "image_url") for p in m["content"])
        for m in chat
    )


class TransformersModel(Model):
    """A causal language model run locally by ``transformers`` (see the module docstring)."""

    note_unknown_price = False  # local compute: no per-token price to look up

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
        if not model_id:
            raise ModelConfigurationError("TransformersModel needs model_id: a Hub id or a local model folder.")
        profile = kwargs.pop("profile", None) or {"supports_response_format": False, "supports_images": False}
        super().__init__(model_id=model_id, profile=profile, **kwargs)
        self.device_map = device_map
        self.torch_dtype = torch_dtype
        self.trust_remote_code = trust_remote_code
        self.model_kwargs = dict(model_kwargs or {})
        self.max_new_tokens = max_tokens if max_tokens is not None else max_new_tokens
        self.apply_chat_template_kwargs = dict(apply_chat_template_kwargs or {})
        self.custom_role_conversions = custom_role_conversions
        self._lock = threading.Lock()
        self.tokenizer, self.model = self._load()

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
        chat = to_chat_messages(messages, self.custom_role_conversions, flatten_messages_as_text=False)
        if _has_images(chat):
            raise ModelConfigurationError(
                f"TransformersModel({self.model_id!r}) is a text model: remove the image parts from the messages."
            )
        for message in chat:
            if isinstance(message.get("content"), list):
                message["content"] = "\n".join(p.get("text", "") for p in message["content"])
        if getattr(self.tokenizer, "chat_template", None) is None:
            raise ModelConfigurationError(
                f"The tokenizer of {self.model_id!r} has no chat template: pass "
                "apply_chat_template_kwargs={'chat_template': '...'} or use an instruction-tuned model."
            )
        schemas = [tool_schema(t) for t in tools] if tools else None
        return self.tokenizer.apply_chat_template(
            chat,
            tools=schemas,
            add_generation_prompt=True,
            return_tensors="pt",
            return_dict=True,
            **self.apply_chat_template_kwargs,
        ).to(self.model.device)

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

    def _check(self, response_format: dict[str, Any] | None) -> None:
        if response_format is not None:
            raise ModelConfigurationError(
                "TransformersModel does not support response_format (no constrained decoding); ask for JSON "
                "in the prompt, or serve the model with vLLM / llama.cpp, which do."
            )

    def _message(self, text: str, tools: list[Any] | None, usage: TokenUsage) -> ChatMessage:
        calls = None
        if tools:
            names = {tool_schema(t)["function"]["name"] for t in tools}
            found = tool_calls_from_text(text, self.tool_name_key, self.tool_arguments_key)
            calls = [c for c in found if c.function.name in names] or None
        return ChatMessage(role=MessageRole.ASSISTANT, content=text, tool_calls=calls,
                           token_usage=self._finish_usage(usage))

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
        self._check(response_format)
        inputs = self._encode(messages, tools_to_call_from)
        text, usage = await asyncio.to_thread(self._run, self._generate_kwargs(inputs, stop_sequences, kwargs))
        return self._message(cut_at_stop(text, stop_sequences) or "", tools_to_call_from, usage)

    async def astream(
        self,
        messages: list[Any],
        stop_sequences: list[str] | None = None,
        response_format: dict[str, Any] | None = None,
        tools_to_call_from: list[Any] | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatMessageStreamDelta]:
        from transformers import TextIteratorStreamer

        self._check(response_format)
        inputs = self._encode(messages, tools_to_call_from)
        streamer = TextIteratorStreamer(self.tokenizer, skip_prompt=True, skip_special_tokens=True, timeout=600)
        generate = {**self._generate_kwargs(inputs, stop_sequences, kwargs), "streamer": streamer}
        result: dict[str, Any] = {}

        def run() -> None:
            try:
                result["out"] = self._run(generate)
            except BaseException as exc:  # noqa: BLE001 - re-raised in the caller
                result["error"] = exc
                streamer.end()

        worker = threading.Thread(target=run, name="codeloop-transformers-generate", daemon=True)
        worker.start()
        cutter = StopCutter(stop_sequences) if stop_sequences else None
        pieces = iter(streamer)
        while (piece := await asyncio.to_thread(next, pieces, _DONE)) is not _DONE:
            text = cutter.feed(piece) if cutter else piece
            if text:
                yield ChatMessageStreamDelta(content=text)
        await asyncio.to_thread(worker.join)
        if "error" in result:
            raise result["error"]
        rest = cutter.flush() if cutter else ""
        if rest:
            yield ChatMessageStreamDelta(content=rest)
        yield ChatMessageStreamDelta(token_usage=self._finish_usage(result["out"][1]))

    def to_dict(self) -> dict[str, Any]:
        data = super().to_dict()
        for name in ("device_map", "trust_remote_code", "max_new_tokens"):
            data[name] = getattr(self, name)
        if self.torch_dtype is not None:
            data["torch_dtype"] = str(self.torch_dtype).removeprefix("torch.")
        return data
