"""``SafeSerializer``: smolagents' value serializer, kept for compatibility, over codeloop's safe codec.

Layer 3 (executors). smolagents uses ``SafeSerializer`` to move values between a host and a remote
sandbox as text. codeloop's worker does the same with ``worker/codec.py`` (tagged JSON, no pickle from the
sandbox); this class gives that codec smolagents' interface: ``dumps(obj) -> "safe:<json>"`` and
``loads(text)``. Deliberate difference: codeloop never unpickles. ``allow_pickle=True`` is accepted, but a
value the codec cannot express raises ``SerializationError`` and ``pickle:`` data is refused.
"""

from __future__ import annotations

import json
from typing import Any

from .worker.codec import CodecError, decode, encode

__all__ = ["SafeSerializer", "SerializationError"]


class SerializationError(Exception):
    """A value cannot be serialized safely, or the text is not safe serialized data."""


class SafeSerializer:
    """Text serialization of Python values with no code execution on load (smolagents' interface)."""

    SAFE_PREFIX = "safe:"

    @staticmethod
    def to_json_safe(obj: Any) -> Any:
        """JSON-compatible data for ``obj``; raises ``SerializationError`` for an unsupported value."""
        try:
            return encode(obj)
        except CodecError as exc:
            raise SerializationError(f"Cannot safely serialize object of type {type(obj).__name__}: {exc}") from None

    @staticmethod
    def from_json_safe(data: Any) -> Any:
        try:
            return decode(data, allow_pickle=False)
        except CodecError as exc:
            raise SerializationError(f"Invalid safe serialized data: {exc}") from None

    @staticmethod
    def dumps(obj: Any, allow_pickle: bool = False) -> str:
        """``"safe:" + JSON``. ``allow_pickle`` is accepted for compatibility; codeloop never pickles."""
        data = SafeSerializer.to_json_safe(obj)
        try:
            return SafeSerializer.SAFE_PREFIX + json.dumps(data, allow_nan=True)
        except (TypeError, ValueError) as exc:
            raise SerializationError(f"Cannot serialize object of type {type(obj).__name__}: {exc}") from None

    @staticmethod
    def loads(data: str, allow_pickle: bool = False) -> Any:
        """The value ``dumps`` wrote. Anything else (pickle data included) raises ``SerializationError``."""
        if not isinstance(data, str) or not data.startswith(SafeSerializer.SAFE_PREFIX):
            raise SerializationError(
                "Pickle data rejected: the text is not safe serialized data (codeloop never unpickles, even "
                "with allow_pickle=True)."
            )
        try:
            payload = json.loads(data[len(SafeSerializer.SAFE_PREFIX) :])
        except ValueError as exc:
            raise SerializationError(f"Invalid safe serialized data: {exc}") from None
        return SafeSerializer.from_json_safe(payload)
