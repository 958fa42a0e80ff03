"""vLLM's offline engine, in process (extra ``codeloop[vllm]``; vLLM needs CUDA on Linux).

``VLLMModel`` keeps smolagents' parameters: ``model_id``, ``model_kwargs`` (for ``vllm.LLM``:
``tensor_parallel_size``, ``max_model_len``, ``gpu_memory_utilization``...), ``apply_chat_template_kwargs``
and sampling ``**kwargs`` (``temperature``, ``max_tokens``, ``top_p``...; greedy and 2048 new tokens by
default). The prompt is the engine tokenizer's chat template (tools passed to it); stop sequences and
``response_format`` (a JSON schema, through vLLM's structured outputs) are enforced by the engine; tool
calls are read from the text. Images (PIL, bytes, data/http/file URLs, paths) go to a multimodal model as
vLLM's multi-modal inputs (``{"prompt": ..., "multi_modal_data": {"image": [...]}}``), the chat template
marking where each one goes; a text model rejects them with a clear error. The engine has no streaming API
here, so ``astream`` yields the reply as one delta. Generation runs in a worker thread, one at a time per model. To stream, or to share one GPU
between processes, run ``vllm serve`` and use ``OpenAIModel(api_base="http://localhost:8000/v1")``.
"""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

from ..errors import ModelConfigurationError
from ..messages import ChatMessage, TokenUsage
from .base import cut_at_stop
from .local import LocalModel

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


class VLLMModel(LocalModel):
    """A model run in this process by vLLM's ``LLM`` engine (see the module docstring)."""

    text_only_hint = ("remove the image parts from the messages, or load a multimodal model (vLLM's "
                      "model_config.is_multimodal_model).")

    def __init__(
        self,
        model_id: str,
        model_kwargs: dict[str, Any] | None = None,
        apply_chat_template_kwargs: dict[str, Any] | None = None,
        custom_role_conversions: dict[str, str] | None = None,
        **kwargs: Any,
    ):
        kwargs.setdefault("profile", {"supports_images": False})
        super().__init__(model_id, apply_chat_template_kwargs, custom_role_conversions, **kwargs)
        self.model_kwargs = dict(model_kwargs or {})
        self._vllm = _import_vllm()
        self.model = self._vllm.LLM(model=model_id, **self.model_kwargs)
        self.tokenizer = self.model.get_tokenizer()
        config = getattr(getattr(self.model, "llm_engine", None), "model_config", None)
        self.multimodal = bool(getattr(config, "is_multimodal_model", False))
        if self.multimodal:
            self.profile = dataclasses.replace(self.profile, supports_images=True)

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

    def _prompt(self, messages: list[Any], tools: list[Any] | None) -> str | dict[str, Any]:
        chat, images = self.chat_and_images(messages, vision=self.multimodal)
        prompt = self.tokenizer.apply_chat_template(
            chat, tools=self.tool_schemas(tools), add_generation_prompt=True, tokenize=False,
            **self.apply_chat_template_kwargs,
        )
        return {"prompt": prompt, "multi_modal_data": {"image": images}} if images else prompt

    def _run(self, prompt: str | dict[str, Any], sampling: Any) -> Any:
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
        prompt = self._prompt(messages, tools_to_call_from)
        sampling = self._sampling(stop_sequences, response_format, kwargs)
        out = (await asyncio.to_thread(self._run, prompt, sampling))[0]
        completion = out.outputs[0]
        usage = TokenUsage(input_tokens=len(out.prompt_token_ids), output_tokens=len(completion.token_ids))
        return self.reply(cut_at_stop(completion.text, stop_sequences) or "", tools_to_call_from, usage, raw=out)

    def to_dict(self) -> dict[str, Any]:
        data = super().to_dict()
        if self.model_kwargs:
            data["model_kwargs"] = self.model_kwargs
        return data
