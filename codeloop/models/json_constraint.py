"""``response_format`` for models run in this process: decoding constrained to a JSON schema.

Layer 1 (models). ``JsonConstraint`` compiles the schema of a ``response_format``
(``{"type": "json_schema", "json_schema": {"schema": ...}}`` or ``{"type": "json_object"}``) into a grammar
with ``llguidance`` (the ``structured`` extra; a Rust library that works offline on the model's own
tokenizer), then, at each step, says which tokens may come next and takes the token that came. The
providers apply that mask to the logits: ``TransformersModel`` as a logits processor, ``MLXModel`` as an
mlx-lm logits processor. Once the JSON is complete only end-of-sequence is allowed, so the reply is the JSON.

``bounded_format`` gives unbounded strings a ``maxLength`` that fits the token budget, so that a reply cut
by ``max_tokens`` cannot end mid-JSON (also used by ``LlamaCppModel``, whose server compiles the grammar).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Sequence
from typing import Any

from ..errors import ModelConfigurationError

__all__ = ["JsonConstraint", "bounded_format", "schema_of"]

_JSON_OVERHEAD_TOKENS = 24  # braces, keys and quotes of a small JSON object, in tokens (generous)


def schema_of(response_format: dict[str, Any]) -> dict[str, Any]:
    """The JSON schema a ``response_format`` asks for (any object for ``json_object``)."""
    kind = response_format.get("type")
    if kind == "json_object":
        return {"type": "object"}
    schema = (response_format.get("json_schema") or {}).get("schema")
    if kind != "json_schema" or not isinstance(schema, dict):
        raise ModelConfigurationError(
            "response_format must be {'type': 'json_schema', 'json_schema': {'name': ..., 'schema': {...}}} or "
            f"{{'type': 'json_object'}}; got {json.dumps(response_format)[:200]}"
        )
    return schema


def bounded_format(response_format: dict[str, Any], max_tokens: int) -> dict[str, Any]:
    """``response_format`` whose unbounded strings get a ``maxLength`` that fits ``max_tokens``.

    A grammar-constrained reply cut by ``max_tokens`` is invalid JSON, which is not the model's mistake;
    bounding the strings makes the grammar close the JSON in time. One character is counted as up to two
    tokens (escapes, non-ASCII text), so the bound holds for ordinary text and code.
    """
    schema = (response_format.get("json_schema") or {}).get("schema")
    if not isinstance(schema, dict):
        return response_format
    bounded = copy.deepcopy(response_format)
    free = list(_free_strings(bounded["json_schema"]["schema"]))
    if not free:
        return response_format
    budget = max(8, (max_tokens - _JSON_OVERHEAD_TOKENS) // (2 * len(free)))
    for string_schema in free:
        string_schema["maxLength"] = budget
    return bounded


def _free_strings(schema: Any) -> Any:
    """The string schemas without ``maxLength`` in object properties and alternatives of ``schema``."""
    if not isinstance(schema, dict):
        return
    if schema.get("type") == "string" and "maxLength" not in schema and "enum" not in schema:
        yield schema
    for prop in (schema.get("properties") or {}).values():
        yield from _free_strings(prop)
    for key in ("anyOf", "oneOf"):
        for option in schema.get(key) or ():
            yield from _free_strings(option)


def _llguidance() -> Any:
    try:
        import llguidance
        import llguidance.hf
    except ImportError as exc:
        raise ModelConfigurationError(
            "response_format on a local model needs llguidance (constrained decoding): "
            "pip install 'codeloop[structured]'"
        ) from exc
    return llguidance


class JsonConstraint:
    """The grammar state of one generation (see the module docstring).

    ``hf_tokenizer`` is a fast Hugging Face tokenizer; ``vocab_size`` the width of the model's logits;
    ``cache`` a dict the caller keeps per model, where the converted tokenizer (about a second to build for a
    large vocabulary) is kept.
    """

    def __init__(self, hf_tokenizer: Any, response_format: dict[str, Any], vocab_size: int,
                 cache: dict[str, Any] | None = None):
        import numpy as np

        llg = _llguidance()
        cache = cache if cache is not None else {}
        if cache.get("ll_tokenizer") is None:
            try:
                cache["ll_tokenizer"] = llg.hf.from_tokenizer(hf_tokenizer, n_vocab=vocab_size)
            except ValueError as exc:
                raise ModelConfigurationError(f"response_format needs a fast tokenizer here: {exc}") from exc
        self._tokenizer = cache["ll_tokenizer"]
        grammar = llg.LLMatcher.grammar_from_json_schema(schema_of(response_format),
                                                         defaults={"whitespace_flexible": False})
        self._matcher = llg.LLMatcher(self._tokenizer, grammar)
        if self._matcher.is_error():
            raise ModelConfigurationError(f"response_format's schema cannot be enforced: {self._matcher.get_error()}")
        self._np = np
        self.vocab_size = vocab_size
        self.eos = hf_tokenizer.eos_token_id
        self._consumed = 0

    def advance(self, generated: Sequence[int]) -> None:
        """Feed the tokens generated since the last call (``generated`` is the whole reply so far)."""
        for token in generated[self._consumed:]:
            if not self._matcher.is_stopped():
                self._matcher.consume_token(int(token))
        self._consumed = len(generated)

    def allowed(self) -> Any:
        """A boolean numpy array of ``vocab_size``: the tokens the grammar allows next."""
        np = self._np
        if self._matcher.is_stopped():
            mask = np.zeros(self.vocab_size, dtype=bool)
        else:
            bits = np.frombuffer(self._matcher.compute_bitmask(), dtype=np.uint8)
            mask = np.unpackbits(bits, bitorder="little")[: self.vocab_size].astype(bool)
            if len(mask) < self.vocab_size:
                mask = np.concatenate([mask, np.zeros(self.vocab_size - len(mask), dtype=bool)])
        if not mask.any() and self.eos is not None and self.eos < self.vocab_size:
            mask[self.eos] = True  # the JSON is complete: end the reply
        return mask
