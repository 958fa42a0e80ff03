"""HTTP plumbing shared by the web tools: one request helper, a rate limiter, clear error texts.

Layer 2 (tools). httpx is imported inside the functions, so importing the toolkit costs nothing. Every
tool takes its endpoints as constructor arguments and hands ``client_options`` (proxy, verify, ...)
straight to ``httpx.AsyncClient``, which is how tests point them at a loopback server.
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass
from typing import Any

from ..._ratelimit import SlotLimiter
from ...errors import CodeloopError

__all__ = [
    "WebToolError",
    "Fetched",
    "RateLimiter",
    "fetch",
    "describe_http_error",
    "seconds",
    "BROWSER_USER_AGENT",
]

# Search pages answer plain browsers; an unusual agent string gets a bot check more often.
BROWSER_USER_AGENT = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"

_CLIENT_OPTIONS = frozenset(
    {"proxy", "verify", "cert", "trust_env", "http2", "transport", "mounts", "cookies", "auth", "limits"}
)


class WebToolError(CodeloopError, RuntimeError):
    """A web tool could not give an answer (no results, refused request, bad reply).

    The message says what happened and what to try; agents show it to the model as it is.
    """


class WebToolConfigError(WebToolError, ValueError):
    """A web tool is missing a setting (an API key); a ValueError too, as smolagents raises."""


@dataclass
class Fetched:
    """A finished response, cut to the tool's byte limit."""

    url: str
    status_code: int
    reason: str
    content_type: str
    content: bytes
    encoding: str | None
    truncated: bool = False

    @property
    def text(self) -> str:
        return self.content.decode(self.encoding or _sniff_charset(self.content), errors="replace")

    def json(self) -> Any:
        import json

        return json.loads(self.text)


_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?([A-Za-z0-9_.:-]+)""", re.IGNORECASE)


def _sniff_charset(content: bytes) -> str:
    """The charset an HTML page declares in a <meta> tag when the server did not send one; else UTF-8."""
    found = _META_CHARSET.search(content[:4096])
    if found:
        name = found.group(1).decode("ascii")
        try:
            return codecs.lookup(name).name
        except LookupError:
            pass
    return "utf-8"


def check_client_options(options: dict[str, Any] | None) -> dict[str, Any]:
    """Keep only options httpx.AsyncClient understands; a typo fails at construction, not mid-run."""
    options = dict(options or {})
    unknown = sorted(set(options) - _CLIENT_OPTIONS)
    if unknown:
        raise TypeError(
            f"Unknown HTTP client option(s) {unknown}; allowed: {sorted(_CLIENT_OPTIONS)} "
            "(they are passed to httpx.AsyncClient)."
        )
    return options


async def fetch(
    url: str,
    *,
    method: str = "GET",
    params: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
    json_body: Any = None,
    data: dict[str, Any] | None = None,
    timeout: float | None = 20.0,
    max_bytes: int | None = None,
    client_options: dict[str, Any] | None = None,
    raise_for_status: bool = True,
) -> Fetched:
    """One HTTP request with redirects followed; reads at most ``max_bytes`` of the body.

    Raises httpx's exceptions (``TimeoutException``, ``HTTPStatusError``, ``HTTPError``); callers turn
    them into messages with :func:`describe_http_error`.
    """
    import httpx

    async with httpx.AsyncClient(
        follow_redirects=True, timeout=timeout, **check_client_options(client_options)
    ) as client:
        request = client.build_request(method, url, params=params, headers=headers, json=json_body, data=data)
        response = await client.send(request, stream=True)
        try:
            if raise_for_status and response.status_code >= 400:
                await response.aread()
                response.raise_for_status()
            chunks: list[bytes] = []
            size = 0
            truncated = False
            async for chunk in response.aiter_bytes():
                chunks.append(chunk)
                size += len(chunk)
                if max_bytes is not None and size > max_bytes:
                    truncated = True
                    break
            content = b"".join(chunks)
            if truncated and max_bytes is not None:
                content = content[:max_bytes]
        finally:
            await response.aclose()
    return Fetched(
        url=str(response.url),
        status_code=response.status_code,
        reason=response.reason_phrase,
        content_type=response.headers.get("content-type", ""),
        content=content,
        encoding=response.charset_encoding,
        truncated=truncated,
    )


def seconds(timeout: float | None) -> str:
    """``20 seconds``; safe when no timeout was set."""
    return f"{timeout:g} seconds" if timeout else "its time limit"


def describe_http_error(exc: BaseException, url: str, timeout: float | None) -> str:
    """A one-line explanation of a failed request that tells the model what to do next."""
    import httpx

    if isinstance(exc, httpx.TimeoutException):
        after = f" after {seconds(timeout)}" if timeout else ""
        return f"The request to {url} timed out{after}. Please try again later or check the URL."
    if isinstance(exc, httpx.HTTPStatusError):
        response = exc.response
        hint = {
            401: "the page needs a login",
            403: "the site refused access",
            404: "the page does not exist; check the URL",
            429: "too many requests; wait before trying again",
        }.get(response.status_code, "the server answered with an error")
        return f"Error fetching {url}: HTTP {response.status_code} {response.reason_phrase} ({hint})."
    if isinstance(exc, httpx.InvalidURL | httpx.UnsupportedProtocol):
        return f"Error fetching {url}: invalid URL ({exc}). Give a full http:// or https:// address."
    if isinstance(exc, httpx.ConnectError):
        return f"Error fetching {url}: could not connect ({exc or 'connection failed'}). Check the address."
    if isinstance(exc, httpx.HTTPError):
        return f"Error fetching {url}: {type(exc).__name__}: {exc}"
    return f"An unexpected error occurred while fetching {url}: {type(exc).__name__}: {exc}"


class RateLimiter(SlotLimiter):
    """At most ``rate`` requests per second for one tool, across threads and event loops."""

    def __init__(self, rate: float | None):
        if rate is not None and rate <= 0:
            raise ValueError(
                f"rate_limit must be a positive number of requests per second or None, not {rate}"
            )
        self.rate = rate
        super().__init__(1.0 / rate if rate else 0.0)

    wait = SlotLimiter.acquire
