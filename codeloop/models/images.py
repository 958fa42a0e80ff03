"""Images in messages, resolved to bytes for providers that need the image itself, not a URL.

Layer 1 (models). A message's image part reaches a provider as an ``image_url`` (see ``convert.py``):
a ``data:`` URL (from a PIL image or bytes), an ``http(s)://`` URL, a ``file://`` URL or a local path.
Providers whose API takes only bytes (Bedrock Converse, local models) call ``image_bytes``; the format comes
from the bytes themselves, since a data URL built from bytes does not know their type.
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from ..errors import ModelConfigurationError

__all__ = ["image_bytes", "image_format", "image_url_of", "load_pil_image"]

_MAGIC = ((b"\x89PNG\r\n\x1a\n", "png"), (b"\xff\xd8\xff", "jpeg"), (b"GIF87a", "gif"), (b"GIF89a", "gif"))
_DOWNLOAD_TIMEOUT_S = 30.0


def image_format(data: bytes, fallback: str = "png") -> str:
    """``png``, ``jpeg``, ``gif`` or ``webp`` from the first bytes; ``fallback`` for anything else."""
    for magic, name in _MAGIC:
        if data.startswith(magic):
            return name
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    return fallback


def image_url_of(part: dict[str, Any]) -> str:
    """The URL of an OpenAI-style ``image_url`` part (a dict with ``url``, or the string itself)."""
    value = part["image_url"]
    return value["url"] if isinstance(value, dict) else value


def image_bytes(source: str) -> bytes:
    """The bytes of an image given as a data URL, an http(s) URL, a ``file://`` URL or a local path."""
    if source.startswith("data:"):
        head, _, data = source.partition(",")
        return base64.b64decode(data) if head.endswith(";base64") else unquote(data).encode("latin-1")
    scheme = urlsplit(source).scheme
    if scheme in ("http", "https"):
        import httpx

        try:
            response = httpx.get(source, timeout=_DOWNLOAD_TIMEOUT_S, follow_redirects=True)
            response.raise_for_status()
        except httpx.HTTPError as exc:
            raise ModelConfigurationError(f"Cannot download the image {source[:80]!r}: {exc}") from exc
        return response.content
    path = Path(unquote(urlsplit(source).path)) if scheme == "file" else Path(source)
    if scheme not in ("", "file") or not path.is_file():
        raise ModelConfigurationError(
            f"Cannot read the image {source[:80]!r}: pass a PIL image, bytes, a data URL, an http(s) URL or the "
            "path of an image file."
        )
    return path.read_bytes()


def load_pil_image(source: Any) -> Any:
    """A PIL image from a PIL image, bytes, or anything ``image_bytes`` reads (needs ``pillow``)."""
    if hasattr(source, "convert") and hasattr(source, "size"):
        return source
    import io

    try:
        from PIL import Image
    except ImportError as exc:
        raise ModelConfigurationError("Images for local models need pillow: pip install pillow") from exc
    data = bytes(source) if isinstance(source, bytes | bytearray) else image_bytes(source)
    image = Image.open(io.BytesIO(data))
    image.load()
    return image.convert("RGB")
