"""Capability profiles: what a model accepts, chosen from its id by a data table instead of special cases.

A ``ModelProfile`` says whether the model takes ``stop``, native tools, ``response_format``, images,
streamed usage, which parameter caps output tokens, and so on. ``resolve_profile(model_id, override)``
starts from the defaults, applies every row of ``PROFILE_RULES`` whose pattern matches the model id (in
order, so later rows refine earlier ones), then what servers taught this process (``learn_profile``: a
server that refused a parameter for a model), then the user's override (a ``ModelProfile`` replaces the
result, a dict updates single fields). Add rows with ``register_profile`` rather than editing callers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, fields, replace
from typing import Any

__all__ = [
    "ModelProfile",
    "PROFILE_RULES",
    "resolve_profile",
    "register_profile",
    "learn_profile",
    "model_name",
]


@dataclass(frozen=True)
class ModelProfile:
    supports_stop: bool = True
    supports_tool_calls: bool = True
    supports_response_format: bool = True
    supports_images: bool = True
    supports_streaming_usage: bool = True  # stream_options={"include_usage": True}
    supports_temperature: bool = True
    max_tokens_param: str = "max_tokens"  # or "max_completion_tokens" for reasoning models
    system_role: str = "system"  # some reasoning models want "developer" or reject "system"
    flatten_messages_as_text: bool = False  # provider only accepts string content
    # Send OpenAI's prompt_cache_key; None: only to OpenAI's own API (other servers may reject it).
    supports_prompt_cache_key: bool | None = None

    def updated(self, changes: dict[str, Any]) -> ModelProfile:
        known = {f.name for f in fields(self)}
        unknown = set(changes) - known
        if unknown:
            raise ValueError(f"Unknown profile field(s) {sorted(unknown)}; known fields: {sorted(known)}.")
        return replace(self, **changes)


# (regex matched against the bare model name, lower-cased; fields to set). Later rows win.
PROFILE_RULES: list[tuple[str, dict[str, Any]]] = [
    # OpenAI reasoning models reject stop and temperature, and cap output with max_completion_tokens.
    (
        r"^(o1|o3|o4|gpt-5)([-.]|$)",
        {"supports_stop": False, "supports_temperature": False, "max_tokens_param": "max_completion_tokens"},
    ),
    # Which names reject stop follows smolagents' rule: every gpt-5 name (gpt-5.2, gpt-5-mini, ...) and
    # every grok model; o3-mini (and its dated snapshots) accepts it.
    (r"^gpt-5", {"supports_stop": False}),
    (r"^o3-mini(-\d{4}-\d{2}-\d{2})?$", {"supports_stop": True}),
    # The first small reasoning models had no tools, no structured output, no images, no system role.
    (
        r"^o1-(mini|preview)",
        {
            "supports_tool_calls": False,
            "supports_response_format": False,
            "supports_images": False,
            "system_role": "user",
        },
    ),
    # xAI's grok models reject stop (also under a provider's prefix: "xai.grok-4" on OCI).
    (r"^([a-z][\w-]*\.)?grok-", {"supports_stop": False}),
    # Anthropic's OpenAI-compatible endpoint documents response_format as ignored: do not rely on it.
    (r"^claude", {"supports_response_format": False}),
    # Open reasoning models as commonly served locally: no native tools, text only.
    (r"^(deepseek-r1|deepseek-reasoner)", {"supports_tool_calls": False, "supports_images": False}),
]


_PROVIDER_PREFIXES = (
    "openai",
    "azure",
    "anthropic",
    "hf",
    "huggingface",
    "ollama",
    "vllm",
    "llamacpp",
    "lmstudio",
)


def model_name(model_id: str | None) -> str:
    """The bare model name, lower-cased: "openai:gpt-4o" / "openai/gpt-4o" -> "gpt-4o" (tags kept)."""
    if not model_id:
        return ""
    name = model_id.strip().lower()
    head, sep, rest = name.partition(":")
    if sep and head in _PROVIDER_PREFIXES:
        name = rest
    return name.rsplit("/", 1)[-1]


# What servers refused at run time, per bare model name (see learn_profile); applied after PROFILE_RULES.
_LEARNED: dict[str, dict[str, Any]] = {}


def learn_profile(model_id: str | None, **changes: Any) -> bool:
    """Remember for this process that ``model_id`` needs ``changes`` (a server refused a parameter for it),
    so every model built for that id afterwards gets them. Returns True when this was news."""
    ModelProfile().updated(changes)
    learned = _LEARNED.setdefault(model_name(model_id), {})
    news = any(learned.get(k, object()) != v for k, v in changes.items())
    learned.update(changes)
    return news


def register_profile(pattern: str, **changes: Any) -> None:
    """Add a rule: models whose bare name matches ``pattern`` (regex) get ``changes``."""
    ModelProfile().updated(changes)  # validate field names now, not at first use
    PROFILE_RULES.append((pattern, changes))


def resolve_profile(
    model_id: str | None, override: ModelProfile | dict[str, Any] | None = None
) -> ModelProfile:
    if isinstance(override, ModelProfile):
        return override
    name = model_name(model_id)
    profile = ModelProfile()
    for pattern, changes in PROFILE_RULES:
        if re.search(pattern, name):
            profile = profile.updated(changes)
    if name in _LEARNED:
        profile = profile.updated(_LEARNED[name])
    if override:
        profile = profile.updated(dict(override))
    return profile


def supports_stop_parameter(model_id: str) -> bool:
    """Whether requests to ``model_id`` may carry ``stop`` (smolagents' helper, kept for compatibility;
    it reads codeloop's capability profiles)."""
    return resolve_profile(model_id.split("/")[-1], None).supports_stop
