"""``SpeechToTextTool``: transcribes audio with a transformers speech-recognition pipeline.

Layer 2 (tools). smolagents' name and interface (``transcriber``, one ``audio`` input: a path, WAV bytes,
samples or an AgentAudio). The model (default: smolagents' Whisper checkpoint) loads on the first call,
through ``transformers.pipeline("automatic-speech-recognition")``; pass ``model=`` a local folder or a
Hub id. Needs transformers and torch (``pip install transformers torch``), imported only then.
"""

from __future__ import annotations

from typing import Any

from ..base import Tool

__all__ = ["SpeechToTextTool"]


class SpeechToTextTool(Tool):
    name = "transcriber"
    description = "This is a tool that transcribes an audio into text. It returns the transcribed text."
    inputs = {
        "audio": {
            "type": "audio",
            "description": "The audio to transcribe. Can be a local path, an url, or a tensor.",
        }
    }
    output_type = "string"
    default_checkpoint = "openai/whisper-large-v3-turbo"

    def __init__(self, model: Any = None, device: Any = None, **pipeline_kwargs: Any):
        super().__init__()
        self.model = model or self.default_checkpoint
        self.device = device
        self.pipeline_kwargs = pipeline_kwargs
        self._pipeline: Any = None

    def setup(self) -> None:
        try:
            from transformers import pipeline
        except ImportError as exc:
            raise ImportError("SpeechToTextTool needs transformers and torch: pip install transformers torch.") from exc
        self._pipeline = pipeline(
            "automatic-speech-recognition", model=self.model, device=self.device or "cpu", **self.pipeline_kwargs
        )
        self.is_initialized = True

    def forward(self, audio: Any) -> str:
        import numpy as np

        from ..agent_media import AgentAudio

        clip = AgentAudio(audio)
        samples = np.asarray(clip.to_raw(), dtype=np.float32)
        if samples.ndim > 1:  # the pipeline takes one channel
            samples = samples.mean(axis=1)
        result = self._pipeline({"raw": samples, "sampling_rate": clip.samplerate})
        return str(result["text"]).strip()
