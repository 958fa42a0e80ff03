"""Stand-in for the ``vllm`` package at the SDK boundary (vLLM needs CUDA; this machine has none).

It reproduces the part of vLLM's offline Python API that ``VLLMModel`` uses, with vLLM's shapes:
``LLM(model=..., **engine_args)``, ``LLM.get_tokenizer()``, ``LLM.generate(prompt, sampling_params=...,
use_tqdm=...)`` returning ``RequestOutput`` objects (``prompt_token_ids``, ``outputs[0].text`` /
``token_ids`` / ``finish_reason``), and ``SamplingParams`` with ``n``, ``temperature``, ``max_tokens``,
``stop`` and ``structured_outputs``. Generation is done by ``transformers`` on the same local folder, with
vLLM's semantics: the stop string ends generation and is not part of the text. Every engine and call is
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


class LLM:
    def __init__(self, model: str, **engine_args: Any):
        import transformers

        CALLS.append({"engine": model, "engine_args": engine_args})
        self._tokenizer = transformers.AutoTokenizer.from_pretrained(model)
        self._model = transformers.AutoModelForCausalLM.from_pretrained(model)

    def get_tokenizer(self) -> Any:
        return self._tokenizer

    def generate(self, prompts: str | list[str], sampling_params: SamplingParams | None = None,
                 use_tqdm: bool = True) -> list[RequestOutput]:
        import torch

        params = sampling_params or SamplingParams()
        CALLS.append({"prompts": prompts, "sampling_params": params})
        results = []
        for prompt in [prompts] if isinstance(prompts, str) else prompts:
            ids = self._tokenizer(prompt, return_tensors="pt", add_special_tokens=False)
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
