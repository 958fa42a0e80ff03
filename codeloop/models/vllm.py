"""vLLM's offline engine, in process (extra ``codeloop[vllm]``; vLLM needs CUDA on Linux).

``VLLMModel`` keeps smolagents' parameters: ``model_id``, ``model_kwargs`` (for ``vllm.LLM``:
``tensor_parallel_size``, ``max_model_len``, ``gpu_memory_utilization``...), ``apply_chat_template_kwargs``
and sampling ``**kwargs`` (``temperature``, ``max_tokens``, ``top_p``...; greedy and 2048 new tokens by
default). The prompt is the engine tokenizer's chat template (tools passed to it); stop sequences and
``response_format`` (a JSON schema, through vLLM's structured outputs) are enforced by the engine; tool
calls are read from the text. The engine has no streaming API here, so ``astream`` yields the reply as one
delta. Generation runs in a worker thread, one at a time per model. To stream, or to share one GPU
between processes, run ``vllm serve`` and use ``OpenAIModel(api_base="http://localhost:8000/v1")``.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from ..errors import ModelConfigurationError
from ..messages import ChatMessage, MessageRole, TokenUsage
from .base import Model, cut_at_stop
from .convert import to_chat_messages, tool_schema
from .toolcall_parsing import tool_calls_from_text

__all__ = ["VLLMModel"]


def _import_vllm() -> Any:
    try:
        import vllm
    except ImportError as exc:
        raise ModelConfigurationError(
            "VLLMModel needs 'vllm', which runs on Linux with an NVIDIA GPU: pip install 'codeloop[vllm]'. "
            "Without one, serve the model elsewhere (`vllm serve <model>`) and use "
            "OpenAIModel(model_id, api_base='http://host:8000/v1')."
        ) from exc
    return vllm


class VLLMModel(Model):
    """A model run in this process by vLLM's ``LLM`` engine (see the module docstring)."""

    note_unknown_price = False  # local compute: no per-token price to look up

    def __init__(
        self,
        model_id: str,
        model_kwargs: dict[str, Any] | None = None,
        apply_chat_template_kwargs: dict[str, Any] | None = None,
        custom_role_conversions: dict[str, str] | None = None,
        **kwargs: Any,
    ):
        profile = kwargs.pop("profile", None) or {"supports_images": False}
        super().__init__(model_id=model_id, profile=profile, **kwargs)
        self.model_kwargs = dict(model_kwargs or {})
        self.apply_chat_template_kwargs = dict(apply_chat_template_kwargs or {})
        self.custom_role_conversions = custom_role_conversions
        self._vllm = _import_vllm()
        self._lock = threading.Lock()
        self.model = self._vllm.LLM(model=model_id, **self.model_kwargs)
        self.tokenizer = self.model.get_tokenizer()

    def _sampling(self, stop_sequences: list[str] | None, response_format: dict[str, Any] | None,
                  kwargs: dict[str, Any]) -> Any:
        params = {**self.kwargs, **kwargs}
        params.pop("tool_choice", None)
        sampling: dict[str, Any] = {"n": 1, "temperature": 0.0, "max_tokens": 2048, **params}
        if stop_sequences:
            sampling["stop"] = list(stop_sequences)
        if response_format is not None:
            schema = (response_format.get("json_schema") or {}).get("schema")
            if response_format.get("type") == "json_schema" and not schema:
                raise ModelConfigurationError("response_format json_schema needs a 'schema'.")
            from vllm import sampling_params as sp

            choice = {"json": schema} if schema else {"json_object": True}
            if hasattr(sp, "StructuredOutputsParams"):  # vLLM >= 0.10.2
                sampling["structured_outputs"] = sp.StructuredOutputsParams(**choice)
            else:
                sampling["guided_decoding"] = sp.GuidedDecodingParams(**choice)
        return self._vllm.SamplingParams(**sampling)

    def _prompt(self, messages: list[Any], tools: list[Any] | None) -> str:
        chat = to_chat_messages(messages, self.custom_role_conversions, flatten_messages_as_text=True)
        schemas = [tool_schema(t) for t in tools] if tools else None
        return self.tokenizer.apply_chat_template(
            chat, tools=schemas, add_generation_prompt=True, tokenize=False, **self.apply_chat_template_kwargs
        )

    def _run(self, prompt: str, sampling: Any) -> Any:
        with self._lock:
            return self.model.generate(prompt, sampling_params=sampling, use_tqdm=False)

    async def agenerate(
        self,
        messages: list[Any],
        stop_sequences: list[str] | None = None,
        response_format: dict[str, Any] | None = None,
        tools_to_call_from: list[Any] | None = None,
        **kwargs: Any,
    ) -> ChatMessage:
        for message in messages:
            content = message.get("content") if isinstance(message, dict) else message.content
            if isinstance(content, list) and any(p.get("type") in ("image", "image_url") for p in content):
                raise ModelConfigurationError("VLLMModel sends text only: remove the image parts (or serve a "
                                              "vision model with `vllm serve` and use OpenAIModel).")
        prompt = self._prompt(messages, tools_to_call_from)
        sampling = self._sampling(stop_sequences, response_format, kwargs)
        out = (await asyncio.to_thread(self._run, prompt, sampling))[0]
        completion = out.outputs[0]
        text = cut_at_stop(completion.text, stop_sequences) or ""
        usage = TokenUsage(input_tokens=len(out.prompt_token_ids), output_tokens=len(completion.token_ids))
        calls = None
        if tools_to_call_from:
            names = {tool_schema(t)["function"]["name"] for t in tools_to_call_from}
            found = tool_calls_from_text(text, self.tool_name_key, self.tool_arguments_key)
            calls = [c for c in found if c.function.name in names] or None
        return ChatMessage(role=MessageRole.ASSISTANT, content=text, tool_calls=calls, raw=out,
                           token_usage=self._finish_usage(usage))

    def to_dict(self) -> dict[str, Any]:
        data = super().to_dict()
        if self.model_kwargs:
            data["model_kwargs"] = self.model_kwargs
        return data
