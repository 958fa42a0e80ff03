"""``VisitWebpageTool``: fetch a page and give its content to the model as Markdown.

Layer 2 (tools). Name, input and truncation note follow smolagents. Differences, on purpose:
httpx instead of requests, a built-in HTML to Markdown converter (``markdownify`` is not needed; pass
``html_converter=markdownify.markdownify`` for smolagents' exact output), links made absolute,
plain-text and JSON pages returned as they are, binary pages described instead of dumped, a cap on
downloaded bytes, and every failure returned as one clear sentence rather than raised.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import urlparse

from ..base import Tool
from ._http import BROWSER_USER_AGENT, check_client_options, describe_http_error, fetch

__all__ = ["VisitWebpageTool", "truncate_content"]

_TEXT_TYPES = ("text/", "application/json", "application/xml", "application/javascript", "+json", "+xml")


def truncate_content(content: str, max_length: int) -> str:
    """Cut ``content`` to ``max_length`` characters and say so at the end."""
    if len(content) <= max_length:
        return content
    return (
        content[:max_length] + f"\n..._This content has been truncated to stay below {max_length} characters "
        f"(the full page has {len(content)})_...\n"
    )


class VisitWebpageTool(Tool):
    """Reads a web page as Markdown.

    Args:
        max_output_length: Characters of Markdown returned at most (default 40,000); longer pages are
            cut with a note saying so.
        timeout: Seconds to wait for the page (default 20, as smolagents).
        max_bytes: Bytes downloaded at most (default 5 MB); the rest of a bigger page is not read.
        headers: Extra HTTP headers (a browser User-Agent is sent by default).
        html_converter: ``f(html) -> markdown`` to use instead of the built-in converter.
        client_options: Options for ``httpx.AsyncClient`` (``proxy``, ``verify``...).
    """

    name = "visit_webpage"
    description = (
        "Visits a webpage at the given url and reads its content as a markdown string. Use this to browse "
        "webpages."
    )
    inputs = {"url": {"type": "string", "description": "The url of the webpage to visit."}}
    output_type = "string"

    def __init__(
        self,
        max_output_length: int = 40000,
        *,
        timeout: float | None = 20.0,
        max_bytes: int | None = 5_000_000,
        headers: dict[str, str] | None = None,
        html_converter: Callable[[str], str] | None = None,
        client_options: dict[str, Any] | None = None,
    ):
        super().__init__()
        if max_output_length < 1:
            raise ValueError(f"max_output_length must be at least 1, not {max_output_length}")
        self.max_output_length = max_output_length
        self.timeout = timeout
        self.max_bytes = max_bytes
        self.headers = {"User-Agent": BROWSER_USER_AGENT, **(headers or {})}
        self.html_converter = html_converter
        self.client_options = check_client_options(client_options)

    def _truncate_content(self, content: str, max_length: int) -> str:  # smolagents' method name
        return truncate_content(content, max_length)

    async def forward(self, url: str) -> str:
        url = url.strip()
        scheme = urlparse(url).scheme.lower()
        if not scheme:
            url = "https://" + url.lstrip("/")
        elif scheme not in ("http", "https"):
            return f"Cannot visit {url}: only http:// and https:// pages can be read."
        try:
            page = await fetch(
                url,
                headers=self.headers,
                timeout=self.timeout,
                max_bytes=self.max_bytes,
                client_options=self.client_options,
            )
        except Exception as e:  # noqa: BLE001 - every failure becomes a sentence for the model
            return describe_http_error(e, url, self.timeout)
        try:
            # Converting a big page takes CPU time: keep it off the event loop.
            content = await asyncio.to_thread(lambda: self._to_text(page.content_type, page.text, page.url))
        except Exception as e:  # noqa: BLE001 - a converter bug must not end the run
            return f"An unexpected error occurred while reading {url}: {type(e).__name__}: {e}"
        if content is None:
            kind = page.content_type.split(";")[0].strip() or "unknown content"
            return (
                f"The page at {page.url} is {kind} ({len(page.content):,} bytes read), not text or HTML; "
                "visit_webpage can only read web pages and text files."
            )
        content = re.sub(r"\n{3,}", "\n\n", content.strip())
        if page.truncated:
            content += f"\n\n..._Only the first {self.max_bytes:,} bytes of this page were read_..."
        if not content:
            return f"The page at {page.url} has no readable text."
        return self._truncate_content(content, self.max_output_length)

    def _to_text(self, content_type: str, text: str, url: str) -> str | None:
        kind = content_type.split(";")[0].strip().lower()
        head = text[:1024].lstrip().lower()
        is_html = "html" in kind or (not kind and head.startswith(("<!doctype html", "<html")))
        if is_html or (kind in ("", "text/plain") and head.startswith(("<!doctype html", "<html"))):
            if self.html_converter is not None:
                return self.html_converter(text)
            from .markdown import html_to_markdown

            return html_to_markdown(text, base_url=url)
        if not kind or any(marker in kind for marker in _TEXT_TYPES):
            return text
        return None
