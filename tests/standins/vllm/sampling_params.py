"""Stand-in for ``vllm.sampling_params`` (see the package docstring)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass
class StructuredOutputsParams:
    json: Any = None
    json_object: bool | None = None


@dataclass
class SamplingParams:
    n: int = 1
    temperature: float = 1.0
    top_p: float = 1.0
    max_tokens: int = 16
    stop: list[str] | None = None
    structured_outputs: StructuredOutputsParams | None = None
