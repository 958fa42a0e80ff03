"""Build a tiny LLaVA vision-language model folder offline, for tests of local models with images.

``build_tiny_llava(folder)`` trains a byte-level BPE tokenizer with ``tokenizers`` (with an ``<image>``
token), gives the processor a chat template that writes ``<image>`` where a message has an image part,
and saves a ``LlavaForConditionalGeneration`` with random weights (a two-layer CLIP vision tower on 28x28
images, a two-layer Llama) with its ``LlavaProcessor`` (CLIP image processor + tokenizer) to ``folder``:
the files ``AutoProcessor`` and ``AutoModelForImageTextToText`` load, as for a downloaded model. The weights
are stored under the names LLaVA checkpoints on the Hub use (``vision_tower.vision_model.*``), which
transformers and mlx-vlm both load; transformers 5 itself saves the vision tower without ``vision_model``. Its replies
are random text; tests check what reaches the model. Needs ``torch``, ``transformers`` and ``tokenizers``;
nothing is downloaded. A folder already built is reused.
"""

from __future__ import annotations

from pathlib import Path

from .tiny_llm import train_tokenizer

__all__ = ["build_tiny_llava", "VLM_CHAT_TEMPLATE", "IMAGE_SIZE"]

IMAGE_SIZE = 28  # pixels a side; 14-pixel patches give 4 image tokens per image
VLM_CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n"
    "{% if m['content'] is string %}{{ m['content'] }}{% else %}{% for p in m['content'] %}"
    "{% if p['type'] == 'image' %}<image>{% elif p['type'] == 'text' %}{{ p['text'] }}{% endif %}"
    "{% endfor %}{% endif %}<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
_SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<image>"]
_CORPUS = ["What is in this picture?", "A red square on a white page.", "Describe the image, please.",
           "It shows a blue circle.", "hello there, how are you today?"]


def build_tiny_llava(folder: str | Path, seed: int = 0) -> Path:
    """Save a tiny random LLaVA model and its processor to ``folder`` (see the module docstring)."""
    import torch
    from transformers import (
        CLIPVisionConfig,
        LlamaConfig,
        LlavaConfig,
        LlavaForConditionalGeneration,
        LlavaProcessor,
    )

    folder = Path(folder)
    stamp = folder / "codeloop-tiny-vlm.txt"
    if stamp.exists() and stamp.read_text() == str(seed):
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    tokenizer = train_tokenizer(_CORPUS, 320, _SPECIAL)
    tokenizer.add_special_tokens({"additional_special_tokens": ["<image>"]})
    try:  # transformers >= 5 without torchvision: the PIL backend (the same preprocessing)
        from transformers import CLIPImageProcessorPil as ImageProcessor
    except ImportError:
        from transformers import CLIPImageProcessor as ImageProcessor
    image_processor = ImageProcessor(size={"shortest_edge": IMAGE_SIZE},
                                     crop_size={"height": IMAGE_SIZE, "width": IMAGE_SIZE})
    processor = LlavaProcessor(image_processor=image_processor, tokenizer=tokenizer, patch_size=14,
                               vision_feature_select_strategy="default", num_additional_image_tokens=1,
                               chat_template=VLM_CHAT_TEMPLATE)
    image_token = tokenizer.convert_tokens_to_ids("<image>")
    vision = CLIPVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                              image_size=IMAGE_SIZE, patch_size=14, projection_dim=32)
    text = LlamaConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                       num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
                       eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id, bos_token_id=None)
    config = LlavaConfig(vision_config=vision, text_config=text, image_token_index=image_token,
                         image_seq_length=(IMAGE_SIZE // 14) ** 2, vision_feature_select_strategy="default",
                         vision_feature_layer=-1)
    model = LlavaForConditionalGeneration(config).eval()
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.save_pretrained(folder)
    _hub_layout(folder / "model.safetensors")
    processor.save_pretrained(folder)
    stamp.write_text(str(seed))
    return folder


def _hub_layout(weights: Path) -> None:
    """Renames the vision tower's tensors as in Hub LLaVA checkpoints (``vision_tower.vision_model.*``)."""
    from safetensors.torch import load_file, save_file

    tensors = load_file(weights)
    prefix = "vision_tower."
    renamed = {
        (prefix + "vision_model." + name[len(prefix):]
         if name.startswith(prefix) and not name.startswith(prefix + "vision_model.") else name): tensor
        for name, tensor in tensors.items()
    }
    save_file(renamed, weights, metadata={"format": "pt"})
