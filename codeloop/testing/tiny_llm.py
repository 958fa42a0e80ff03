"""Build a tiny Llama model folder offline, for tests of local-model providers (transformers, mlx-lm).

``build_tiny_llama(folder, replies)`` trains a byte-level BPE tokenizer with ``tokenizers`` on a small
corpus, gives it a chat template (ChatML with a tool list, like common instruction models), creates a
two-layer ``LlamaForCausalLM`` with random weights, then trains it for a few seconds so that, with greedy
decoding, it answers each ``(user text, reply)`` pair in ``replies`` with that reply. It saves everything
(``config.json``, ``model.safetensors``, tokenizer files with the template) to ``folder``, which the
providers load exactly as they load a downloaded model. A folder already built from the same recipe is
reused. Needs ``torch``, ``transformers`` and
``tokenizers`` (test extras); nothing is downloaded.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

__all__ = ["build_tiny_llama", "train_tokenizer", "CHAT_TEMPLATE"]

CHAT_TEMPLATE = (
    "{% if tools %}<|im_start|>system\nTools: {% for t in tools %}{{ t['function']['name'] }} "
    "{% endfor %}<|im_end|>\n{% endif %}"
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] if m['content'] is string else '' }}"
    "<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
_SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]


def _prompt(user: str, tools: list[str] | None) -> str:
    head = f"<|im_start|>system\nTools: {''.join(n + ' ' for n in tools)}<|im_end|>\n" if tools else ""
    return f"{head}<|im_start|>user\n{user}<|im_end|>\n<|im_start|>assistant\n"


def train_tokenizer(texts: list[str], vocab_size: int, special: list[str]) -> Any:
    """A byte-level BPE ``PreTrainedTokenizerFast`` trained on ``texts`` (eos ``<|im_end|>``, pad
    ``<|endoftext|>``, both among ``special``); any byte sequence stays encodable."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=special,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    bpe.train_from_iterator(texts * 4, trainer)
    return PreTrainedTokenizerFast(tokenizer_object=bpe, bos_token=None, eos_token="<|im_end|>",
                                   pad_token="<|endoftext|>", unk_token=None)


def build_tiny_llama(
    folder: str | Path,
    replies: list[tuple[str, str]] | list[tuple[str, str, list[str]]],
    steps: int = 60,
    seed: int = 0,
) -> Path:
    """Save a tiny trained Llama to ``folder`` (see the module docstring); returns the folder.

    ``replies`` items are ``(user, reply)`` or ``(user, reply, tool_names)`` when the prompt lists tools.
    """
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    folder = Path(folder)
    stamp = folder / "codeloop-tiny.json"
    recipe = json.dumps({"replies": [list(r) for r in replies], "steps": steps, "seed": seed})
    if stamp.exists() and stamp.read_text() == recipe:
        return folder  # built by an earlier test with the same recipe
    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    samples = [(r[0], r[1], list(r[2]) if len(r) > 2 else None) for r in replies]  # type: ignore[misc]
    texts = [_prompt(user, tools) + reply + "<|im_end|>" for user, reply, tools in samples]

    tokenizer = train_tokenizer(texts, 400, _SPECIAL)
    tokenizer.chat_template = CHAT_TEMPLATE

    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
                         eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
                         bos_token_id=None, tie_word_embeddings=False)
    model = LlamaForCausalLM(config)
    rows = [tokenizer(t, add_special_tokens=False)["input_ids"] for t in texts]
    starts = [len(tokenizer(_prompt(u, tl), add_special_tokens=False)["input_ids"]) for u, _, tl in samples]
    width = max(len(r) for r in rows)
    pad = tokenizer.pad_token_id
    input_ids = torch.tensor([r + [pad] * (width - len(r)) for r in rows])
    attention = torch.tensor([[1] * len(r) + [0] * (width - len(r)) for r in rows])
    labels = input_ids.clone()
    for i, (row, start) in enumerate(zip(rows, starts, strict=True)):
        labels[i, :start] = -100  # learn the replies, not the prompts
        labels[i, len(row):] = -100
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    model.train()
    for _ in range(steps):  # one padded batch of all samples per step
        optimizer.zero_grad()
        model(input_ids=input_ids, attention_mask=attention, labels=labels).loss.backward()
        optimizer.step()
    model.eval()
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    stamp.write_text(recipe)
    return folder
