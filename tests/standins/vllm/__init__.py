"""Stand-in for the ``vllm`` package at the SDK boundary (vLLM needs CUDA; this machine has none).

It reproduces the part of vLLM's offline Python API that ``VLLMModel`` uses, with vLLM's shapes:
``LLM(model=..., **engine_args)``, ``LLM.get_tokenizer()``, ``LLM.generate(prompt, sampling_params=...,
use_tqdm=...)`` returning ``RequestOutput`` objects (``prompt_token_ids``, ``outputs[0].text`` /
``token_ids`` / ``finish_reason``), and ``SamplingParams`` with ``n``, ``temperature``, ``max_tokens``,
``stop`` and ``structured_outputs``; multi-modal inputs (a prompt ``{"prompt": ..., "multi_modal_data":
{"image": PIL image or list}}``, one image placeholder per image in the prompt, else vLLM's error) and
``llm_engine.model_config.is_multimodal_model``. Generation is done by ``transformers`` on the same local
folder, with vLLM's semantics: the stop string ends generation and is not part of the text. Every engine and call is
recorded in ``CALLS`` for the tests.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .sampling_params import SamplingParams

CALLS: list[dict[str, Any]] = []


@dataclass
class CompletionOutput:
    index: int
    text: str
    token_ids: list[int]
    finish_reason: str


@dataclass
class RequestOutput:
    prompt: str
    prompt_token_ids: list[int]
    outputs: list[CompletionOutput] = field(default_factory=list)


@dataclass
class ModelConfig:
    is_multimodal_model: bool


@dataclass
class LLMEngine:
    model_config: ModelConfig


class LLM:
    def __init__(self, model: str, **engine_args: Any):
        import transformers

        CALLS.append({"engine": model, "engine_args": engine_args})
        config = transformers.AutoConfig.from_pretrained(model)
        multimodal = type(config) in transformers.AutoModelForImageTextToText._model_mapping
        self.llm_engine = LLMEngine(ModelConfig(is_multimodal_model=multimodal))
        self._processor = transformers.AutoProcessor.from_pretrained(model) if multimodal else None
        self._tokenizer = transformers.AutoTokenizer.from_pretrained(model)
        auto = transformers.AutoModelForImageTextToText if multimodal else transformers.AutoModelForCausalLM
        self._model = auto.from_pretrained(model)

    def get_tokenizer(self) -> Any:
        return self._tokenizer

    def _inputs(self, prompt: str | dict[str, Any]) -> tuple[str, Any]:
        if isinstance(prompt, str):
            return prompt, self._tokenizer(prompt, return_tensors="pt", add_special_tokens=False)
        text, images = prompt["prompt"], (prompt.get("multi_modal_data") or {}).get("image")
        images = images if isinstance(images, list) else [images] if images is not None else []
        if images and self._processor is None:
            raise ValueError("This model does not support multi-modal inputs.")
        placeholders = text.count(self._processor.image_token) if self._processor else 0
        if placeholders != len(images):
            raise ValueError(f"Found {placeholders} image placeholders in the prompt for {len(images)} images.")
        return text, self._processor(text=[text], images=images or None, return_tensors="pt")

    def generate(self, prompts: str | dict[str, Any] | list[Any], sampling_params: SamplingParams | None = None,
                 use_tqdm: bool = True) -> list[RequestOutput]:
        import torch

        params = sampling_params or SamplingParams()
        CALLS.append({"prompts": prompts, "sampling_params": params})
        results = []
        for item in prompts if isinstance(prompts, list) else [prompts]:
            prompt, ids = self._inputs(item)
            CALLS[-1].setdefault("pixel_values", []).append(ids.get("pixel_values"))
            with torch.inference_mode():
                out = self._model.generate(**ids, max_new_tokens=params.max_tokens, do_sample=params.temperature > 0,
                                           stop_strings=params.stop or None, tokenizer=self._tokenizer,
                                           pad_token_id=self._tokenizer.pad_token_id)
            new = out[0][ids["input_ids"].shape[-1]:].tolist()
            text = self._tokenizer.decode(new, skip_special_tokens=True)
            finish = "length" if len(new) >= params.max_tokens else "stop"
            for stop in params.stop or ():
                if stop in text:
                    text, finish = text[: text.index(stop)], "stop"
            results.append(RequestOutput(prompt, ids["input_ids"][0].tolist(),
                                         [CompletionOutput(0, text, new, finish)]))
        return results
