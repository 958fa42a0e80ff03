"""Offline token counts for requests: a calibrated estimate, per model.

No tokenizer files can be fetched here (tiktoken downloads its own), and each provider tokenizes
differently, so a request's input tokens are estimated as its characters divided by a per-model ratio,
plus a fixed cost per message and per image. The ratio starts at 4 characters a token and is calibrated
from what the provider reports: after every call the agent tells the counter how many characters it
sent and how many input tokens the provider counted (``observe``), and the ratio moves toward the
measured one. Estimates round up, so a limit checked against them errs on the safe side.

Characters are memoised on each message object (the agent's memory sends the same objects again at
every step), so counting a request costs a dictionary lookup per message.
"""

from __future__ import annotations

import math
from typing import Any

from .profiles import model_name

__all__ = ["TokenCounter", "counter_for", "message_chars"]

IMAGE_TOKENS = 800  # a typical high-detail image tile set; images are rare in compacted prompts
_SLOT = "_codeloop_chars"


def _content_chars(content: Any) -> tuple[int, int]:
    if isinstance(content, str):
        return len(content), 0
    chars = images = 0
    for part in content or ():
        if isinstance(part, dict):
            if part.get("type") in ("image", "image_url"):
                images += 1
            else:
                chars += len(str(part.get("text", "")))
    return chars, images


def message_chars(message: Any) -> tuple[int, int]:
    """(characters, images) of one message, memoised on the message while its content is unchanged."""
    if isinstance(message, dict):
        return _content_chars(message.get("content"))
    content = message.content
    cached = message.__dict__.get(_SLOT)
    if cached is not None and cached[0] is content:
        return cached[1]
    counted = _content_chars(content)
    if message.tool_calls:
        counted = (
            counted[0] + sum(len(str(c.function.arguments)) + 20 for c in message.tool_calls),
            counted[1],
        )
    message.__dict__[_SLOT] = (content, counted)
    return counted


class TokenCounter:
    """Estimates input tokens for one model; ``observe`` calibrates it from provider usage."""

    def __init__(self, chars_per_token: float = 4.0, per_message: int = 0, smoothing: float = 0.5):
        self.chars_per_token = chars_per_token
        self.per_message = per_message
        self.smoothing = smoothing
        self.observations = 0

    def tokens(self, chars: int, images: int = 0, messages: int = 0) -> int:
        return math.ceil(chars / self.chars_per_token) + images * IMAGE_TOKENS + messages * self.per_message

    def count_chars(self, messages: list[Any]) -> tuple[int, int]:
        chars = images = 0
        for message in messages:
            # message_chars, inlined for the common case (a message counted before): this runs per step
            cached = message.__dict__.get(_SLOT) if not isinstance(message, dict) else None
            if cached is not None and cached[0] is message.content:
                c, i = cached[1]
            else:
                c, i = message_chars(message)
            chars += c
            images += i
        return chars, images

    def count(self, messages: list[Any]) -> int:
        chars, images = self.count_chars(messages)
        return self.tokens(chars, images, len(messages))

    def observe(self, chars: int, images: int, messages: int, reported_input_tokens: int) -> None:
        """The provider counted ``reported_input_tokens`` for a request of ``chars`` characters."""
        text_tokens = reported_input_tokens - images * IMAGE_TOKENS - messages * self.per_message
        if chars < 200 or text_tokens <= 0:
            return  # too small to say anything about the ratio
        measured = chars / text_tokens
        if not 0.5 <= measured <= 12:
            return  # a provider that reports nonsense (or counts something else) must not skew it
        weight = 1.0 if self.observations == 0 else self.smoothing
        self.chars_per_token += weight * (measured - self.chars_per_token)
        self.observations += 1


_counters: dict[str, TokenCounter] = {}


def counter_for(model: Any) -> TokenCounter:
    """The shared counter for a model (by its bare model id; a model may also carry its own
    ``token_counter``)."""
    own = getattr(model, "token_counter", None)
    if isinstance(own, TokenCounter):
        return own
    key = model_name(getattr(model, "model_id", None)) or type(model).__name__
    counter = _counters.get(key)
    if counter is None:
        counter = _counters[key] = TokenCounter()
    return counter
