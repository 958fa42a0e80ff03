"""MLXModel's vision-language path: models with a ``vision_config`` run on ``mlx-vlm`` (extra
``codeloop[mlx-vlm]``), so an agent's image parts reach the model.

Layer 1 (models), used only by ``mlx.py``. ``mlx_vlm.load`` loads the weights and the model's processor;
``mlx_vlm.prompt_utils.apply_chat_template`` writes the prompt with each model family's image markers;
the processor is then called here, once per request, on that prompt and the images (PIL), and the
tensors it returns go to ``mlx_vlm.stream_generate`` as prepared inputs. Why not let ``stream_generate``
run the processor itself: mlx-vlm 0.7.10 calls it with the tokenizer options ``padding`` and
``padding_side``, and its own LLaVA processor hands those to the image processor, which transformers 5
rejects (``ImagesKwargs.__init__() got an unexpected keyword argument 'padding'``). One prompt needs no
padding, so none is asked for.

mlx-vlm, on importing a model family, makes ``transformers.AutoProcessor.from_pretrained`` return its own
processor for that family, in the whole process.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..errors import ModelConfigurationError

__all__ = ["VisionRunner", "import_mlx_vlm", "is_vision_model"]

INSTALL = "pip install 'codeloop[mlx-vlm]'"


def is_vision_model(model_id: str) -> bool:
    """Whether the model's config.json describes a vision-language model (a ``vision_config``); False when
    there is no config to read (the text loader then says what is wrong)."""
    path = Path(model_id) / "config.json"
    try:
        if not path.exists():
            from huggingface_hub import hf_hub_download

            path = Path(hf_hub_download(model_id, "config.json"))
        config = json.loads(path.read_text(encoding="utf-8"))
    except Exception:  # noqa: BLE001 - no readable config: not known to be a vision model
        return False
    return isinstance(config, dict) and bool(config.get("vision_config"))


def import_mlx_vlm() -> Any:
    """The ``mlx_vlm`` module, or None when the extra is not installed."""
    try:
        import mlx_vlm
    except ImportError:
        return None
    return mlx_vlm


class VisionRunner:
    """A vision-language model and its processor, loaded by mlx-vlm (see the module docstring)."""

    def __init__(self, mlx_vlm: Any, model_id: str, trust_remote_code: bool, load_kwargs: dict[str, Any]):
        self.mlx_vlm = mlx_vlm
        try:
            self.model, self.processor = mlx_vlm.load(model_id, trust_remote_code=trust_remote_code, **load_kwargs)
        except (OSError, ValueError) as exc:
            raise ModelConfigurationError(
                f"MLXModel cannot load the vision-language model {model_id!r} with mlx-vlm: {exc}. Pass a local "
                "folder (config.json, safetensors weights, processor and tokenizer files) or a Hub id of a model "
                "mlx-vlm supports."
            ) from exc
        self.tokenizer = getattr(self.processor, "tokenizer", self.processor)

    def encode(self, chat: list[dict[str, Any]], images: list[Any], tools: list[dict[str, Any]] | None,
               template_kwargs: dict[str, Any]) -> dict[str, Any]:
        """The prepared inputs of ``stream_generate``: ``input_ids``, ``pixel_values``, ``mask`` and any
        other tensors the processor makes (image sizes, grids...)."""
        import mlx.core as mx
        from mlx_vlm.prompt_utils import apply_chat_template

        options = {"tools": tools} if tools else {}
        prompt = apply_chat_template(self.processor, self.model.config, chat, num_images=len(images),
                                     **options, **template_kwargs)
        encoded = self.processor(text=[prompt], images=images or None, return_tensors="mlx")
        inputs = {key: value if value is None or isinstance(value, mx.array) else mx.array(value)
                  for key, value in dict(encoded).items()}
        inputs["mask"] = inputs.pop("attention_mask", None)
        if "images" in inputs:  # processors that name their pixels differently
            inputs["pixel_values"] = inputs.pop("images")
        return {"prompt": prompt, **inputs}

    def stream(self, inputs: dict[str, Any], options: dict[str, Any]) -> Iterator[Any]:
        """mlx-vlm's responses (``text``, ``prompt_tokens``, ``generation_tokens``) for prepared inputs."""
        inputs = dict(inputs)
        prompt = inputs.pop("prompt")
        return self.mlx_vlm.stream_generate(self.model, self.processor, prompt, **inputs, **options)
