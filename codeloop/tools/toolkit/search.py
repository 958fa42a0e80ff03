"""Keyless web search: ``DuckDuckGoSearchTool`` and ``WebSearchTool`` (DuckDuckGo, Bing RSS or Exa).

Layer 2 (tools). Names, inputs and result format follow smolagents (``web_search``; a ``## Search
Results`` Markdown list of ``[title](link)`` plus snippet). Differences, all on purpose:

- ``DuckDuckGoSearchTool`` reads DuckDuckGo's HTML endpoint over httpx instead of needing the ``ddgs``
  package, so it works with codeloop's core dependencies (``ddgs`` is not used even when installed:
  one code path, one behaviour).
- Every endpoint is a constructor argument, and ``client_options`` go to ``httpx.AsyncClient``.
- A bot check or a refused request gives a clear ``WebToolError`` instead of an empty result.
- ``forward`` is ``async``: concurrent searches from one agent step do not hold threads.
"""

from __future__ import annotations

import inspect
import os
from html.parser import HTMLParser
from typing import Any
from urllib.parse import parse_qs, urljoin, urlparse

from ..base import Tool
from ._http import (
    BROWSER_USER_AGENT,
    RateLimiter,
    WebToolConfigError,
    WebToolError,
    check_client_options,
    fetch,
    seconds,
)

__all__ = [
    "DuckDuckGoSearchTool",
    "WebSearchTool",
    "parse_duckduckgo_html",
    "parse_duckduckgo_lite",
    "format_search_results",
]

DUCKDUCKGO_HTML_URL = "https://html.duckduckgo.com/html/"
DUCKDUCKGO_LITE_URL = "https://lite.duckduckgo.com/lite/"
BING_URL = "https://www.bing.com/search"
EXA_URL = "https://api.exa.ai/search"

NO_RESULTS = "No results found! Try a less restrictive/shorter query."
_AD_CLASSES = frozenset({"result--ad", "result-sponsored", "result--ad--small"})


def format_search_results(results: list[dict[str, str]], numbered: bool = False) -> str:
    """smolagents' layout: ``## Search Results`` then ``[title](link)`` and the snippet per result."""
    entries = []
    for i, result in enumerate(results, start=1):
        prefix = f"{i}. " if numbered else ""
        entries.append(
            f"{prefix}[{result['title']}]({result['link']})\n{result.get('description', '')}".rstrip()
        )
    return "## Search Results\n\n" + "\n\n".join(entries)


def _real_link(href: str, base: str) -> str:
    """DuckDuckGo wraps result links in a redirect (``/l/?uddg=<target>``); return the target."""
    href = href.strip()
    if href.startswith("//"):
        href = "https:" + href
    elif not urlparse(href).scheme:
        href = urljoin(base, href)
    parsed = urlparse(href)
    if parsed.path.rstrip("/").endswith("/l") or parsed.path == "/l/":
        target = parse_qs(parsed.query).get("uddg")
        if target:
            return target[0]
    return href


def _is_ad_link(link: str) -> bool:
    parsed = urlparse(link)
    return parsed.netloc.endswith("duckduckgo.com") and parsed.path.startswith("/y.js")


class _ResultParser(HTMLParser):
    """Collects result fields by CSS class; a new title starts a new result.

    ``fields`` maps a class name to the field its element's text fills; the title element's href
    is the link. Rows or blocks carrying an ad class mark the results in them as ads, which are dropped.
    """

    def __init__(self, fields: dict[str, str], containers: frozenset[str], base_url: str) -> None:
        super().__init__(convert_charrefs=True)
        self.fields = fields
        self.containers = containers
        self.base_url = base_url
        self.results: list[dict[str, str]] = []
        self.current: dict[str, Any] = {}
        self.capture: tuple[str, str, int] | None = None  # (field, tag, nesting depth of that tag)
        self.texts: list[str] = []
        self.in_ad = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        classes = set((dict(attrs).get("class") or "").split())
        if self.capture is not None:
            field, ctag, depth = self.capture
            if tag == ctag:
                self.capture = (field, ctag, depth + 1)
            return
        if tag == "tr" or classes & self.containers:
            self.in_ad = bool(classes & _AD_CLASSES)
        for cls in classes:
            field = self.fields.get(cls)
            if field is None:
                continue
            if field == "title":
                self._flush()
                self.current["ad"] = self.in_ad
                href = dict(attrs).get("href")
                if href:
                    self.current["href"] = href
            self.capture = (field, tag, 0)
            self.texts = []
            return

    def handle_endtag(self, tag: str) -> None:
        if self.capture is None:
            return
        field, ctag, depth = self.capture
        if tag != ctag:
            return
        if depth:
            self.capture = (field, ctag, depth - 1)
            return
        text = " ".join("".join(self.texts).split())
        if text and field not in self.current:
            self.current[field] = text
        self.capture = None

    def handle_data(self, data: str) -> None:
        if self.capture is not None:
            self.texts.append(data)

    def _flush(self) -> None:
        current, self.current = self.current, {}
        if "title" not in current:
            return
        if "href" in current:
            link = _real_link(current["href"], self.base_url)
        elif current.get("display_url"):
            shown = current["display_url"]
            link = shown if "://" in shown else "https://" + shown
        else:
            return
        if current.get("ad") or _is_ad_link(link):
            return
        self.results.append(
            {"title": current["title"], "link": link, "description": current.get("snippet", "")}
        )

    def parse(self, html: str) -> list[dict[str, str]]:
        self.feed(html)
        self.close()
        self._flush()
        return self.results


def parse_duckduckgo_html(html: str, base_url: str = DUCKDUCKGO_HTML_URL) -> list[dict[str, str]]:
    """Results of DuckDuckGo's HTML page as dicts with title, link (unwrapped) and description."""
    fields = {"result__a": "title", "result__snippet": "snippet", "result__url": "display_url"}
    return _ResultParser(fields, frozenset({"result"}), base_url).parse(html)


def parse_duckduckgo_lite(html: str, base_url: str = DUCKDUCKGO_LITE_URL) -> list[dict[str, str]]:
    """Results of DuckDuckGo's lite page (a table with result-link, result-snippet and link-text cells)."""
    fields = {"result-link": "title", "result-snippet": "snippet", "link-text": "display_url"}
    return _ResultParser(fields, frozenset(), base_url).parse(html)


def _looks_blocked(status: int, html: str) -> bool:
    lowered = html.lower()
    return status == 202 or "anomaly-modal" in lowered or "bots use duckduckgo" in lowered


async def _search_duckduckgo(
    url: str,
    query: str,
    *,
    lite: bool,
    headers: dict[str, str],
    timeout: float | None,
    client_options: dict[str, Any],
) -> list[dict[str, str]]:
    import httpx

    try:
        page = await fetch(
            url,
            method="POST",
            data={"q": query, "b": "", "kl": ""} if not lite else {"q": query},
            headers=headers,
            timeout=timeout,
            client_options=client_options,
            raise_for_status=False,
        )
    except httpx.TimeoutException as e:
        raise WebToolError(f"DuckDuckGo did not answer within {seconds(timeout)}; try again later.") from e
    except httpx.HTTPError as e:
        raise WebToolError(f"Could not reach DuckDuckGo at {url}: {type(e).__name__}: {e}") from e
    text = page.text
    # Parse by what came back, not by the URL asked for: mirrors and test servers have other addresses.
    first, second = (
        (parse_duckduckgo_lite, parse_duckduckgo_html)
        if lite
        else (parse_duckduckgo_html, parse_duckduckgo_lite)
    )
    results = first(text, page.url) or second(text, page.url)
    if results:
        return results
    if _looks_blocked(page.status_code, text):
        raise WebToolError(
            "DuckDuckGo refused the search (it answered with a bot check, usually after many requests). "
            "Wait a minute and try again, lower the request rate, or use another search tool."
        )
    if page.status_code >= 400:
        raise WebToolError(f"DuckDuckGo answered HTTP {page.status_code} {page.reason}; try again later.")
    return []


class DuckDuckGoSearchTool(Tool):
    """Web search through DuckDuckGo's HTML endpoint, no API key needed.

    Args:
        max_results: How many results to return at most (default 10).
        rate_limit: Queries per second at most (default 1.0); None disables the limit.
        base_url: The endpoint (default ``https://html.duckduckgo.com/html/``).
        timeout: Seconds to wait for DuckDuckGo (default 20).
        headers: Extra HTTP headers (a browser User-Agent is sent by default).
        **kwargs: Options for ``httpx.AsyncClient`` (``proxy``, ``verify``...), like smolagents passes
            its kwargs to the ``DDGS`` client.
    """

    name = "web_search"
    description = (
        "Performs a duckduckgo web search based on your query (think a Google search) then returns the top "
        "search results."
    )
    inputs = {"query": {"type": "string", "description": "The search query to perform."}}
    output_type = "string"

    def __init__(
        self,
        max_results: int = 10,
        rate_limit: float | None = 1.0,
        *,
        base_url: str = DUCKDUCKGO_HTML_URL,
        timeout: float | None = 20.0,
        headers: dict[str, str] | None = None,
        **kwargs: Any,
    ):
        super().__init__()
        if max_results < 1:
            raise ValueError(f"max_results must be at least 1, not {max_results}")
        self.max_results = max_results
        self.rate_limit = rate_limit
        self._limiter = RateLimiter(rate_limit)
        self.base_url = base_url
        self.timeout = timeout
        self.headers = {"User-Agent": BROWSER_USER_AGENT, **(headers or {})}
        self.client_options = check_client_options(kwargs)

    async def forward(self, query: str) -> str:
        await self._limiter.wait()
        results = await _search_duckduckgo(
            self.base_url,
            query,
            lite="lite." in urlparse(self.base_url).netloc,
            headers=self.headers,
            timeout=self.timeout,
            client_options=self.client_options,
        )
        if not results:
            raise WebToolError(NO_RESULTS)
        return format_search_results(results[: self.max_results])


class WebSearchTool(Tool):
    """Web search without the ``ddgs`` package: DuckDuckGo's lite page, Bing's RSS feed, or Exa's API.

    Args:
        max_results: How many results to return at most (default 10).
        engine: ``"duckduckgo"`` (default), ``"bing"`` or ``"exa"`` (needs ``EXA_API_KEY`` or ``api_key``).
        base_url: The engine's endpoint; defaults to the engine's public address.
        timeout: Seconds to wait for the engine (default 20).
        headers: Extra HTTP headers.
        api_key: Exa's key (default: the ``EXA_API_KEY`` environment variable, read when searching).
        rate_limit: Queries per second at most (default None: no limit, as in smolagents).
        client_options: Options for ``httpx.AsyncClient`` (``proxy``, ``verify``...).

    Subclasses may override ``search(query)`` (sync or async, returning dicts with title, link and
    description) and ``parse_results(results)``, as in smolagents.
    """

    name = "web_search"
    description = (
        "Performs a web search for a query and returns a string of the top search results formatted as "
        "markdown with titles, links, and descriptions."
    )
    inputs = {"query": {"type": "string", "description": "The search query to perform."}}
    output_type = "string"

    ENGINES = ("duckduckgo", "bing", "exa")

    def __init__(
        self,
        max_results: int = 10,
        engine: str = "duckduckgo",
        *,
        base_url: str | None = None,
        timeout: float | None = 20.0,
        headers: dict[str, str] | None = None,
        api_key: str | None = None,
        rate_limit: float | None = None,
        client_options: dict[str, Any] | None = None,
    ):
        super().__init__()
        if engine not in self.ENGINES:
            raise ValueError(f"Unsupported engine: {engine!r}; choose one of {', '.join(self.ENGINES)}.")
        if max_results < 1:
            raise ValueError(f"max_results must be at least 1, not {max_results}")
        self.max_results = max_results
        self.engine = engine
        self.base_url = (
            base_url or {"duckduckgo": DUCKDUCKGO_LITE_URL, "bing": BING_URL, "exa": EXA_URL}[engine]
        )
        self.timeout = timeout
        self.headers = {"User-Agent": BROWSER_USER_AGENT, **(headers or {})}
        self.api_key = api_key
        self._limiter = RateLimiter(rate_limit)
        self.client_options = check_client_options(client_options)

    async def forward(self, query: str) -> str:
        await self._limiter.wait()
        results = self.search(query)
        if inspect.isawaitable(results):
            results = await results
        if not results:
            raise WebToolError(NO_RESULTS)
        return self.parse_results(list(results)[: self.max_results])

    def parse_results(self, results: list[dict[str, str]]) -> str:
        return format_search_results(results)

    async def search(self, query: str) -> list[dict[str, str]]:
        if self.engine == "bing":
            return await self.search_bing(query)
        if self.engine == "exa":
            return await self.search_exa(query)
        return await self.search_duckduckgo(query)

    async def search_duckduckgo(self, query: str) -> list[dict[str, str]]:
        lite = "html.duckduckgo" not in self.base_url
        return await _search_duckduckgo(
            self.base_url,
            query,
            lite=lite,
            headers=self.headers,
            timeout=self.timeout,
            client_options=self.client_options,
        )

    async def search_bing(self, query: str) -> list[dict[str, str]]:
        import xml.etree.ElementTree as ET

        page = await self._get(self.base_url, params={"q": query, "format": "rss"})
        try:
            root = ET.fromstring(page.content)
        except ET.ParseError as e:
            root, error = None, f" ({e})"
        else:
            error = ""
        if root is None or root.tag != "rss":
            raise WebToolError(
                f"Bing did not answer with an RSS feed{error}; it may be refusing automated requests."
            )
        return [
            {
                "title": (item.findtext("title") or "").strip(),
                "link": (item.findtext("link") or "").strip(),
                "description": (item.findtext("description") or "").strip(),
            }
            for item in root.iter("item")
        ][: self.max_results]

    async def search_exa(self, query: str) -> list[dict[str, str]]:
        api_key = self.api_key or os.getenv("EXA_API_KEY")
        if not api_key:
            raise WebToolConfigError(
                "Missing API key: set the EXA_API_KEY environment variable or pass api_key= to WebSearchTool."
            )
        page = await self._get(
            self.base_url,
            method="POST",
            headers={"x-api-key": api_key, "x-exa-integration": "codeloop"},
            json_body={"query": query, "numResults": self.max_results, "contents": {"highlights": True}},
        )
        try:
            data = page.json()
        except ValueError as e:
            raise WebToolError(f"Exa answered with something that is not JSON: {page.text[:200]!r}") from e
        return [
            {
                "title": item.get("title") or "",
                "link": item.get("url", ""),
                "description": " ".join(item.get("highlights") or []),
            }
            for item in data.get("results", [])
            if item.get("url")
        ]

    async def _get(self, url: str, *, method: str = "GET", headers: dict[str, str] | None = None, **kw: Any):
        import httpx

        try:
            return await fetch(
                url,
                method=method,
                headers={**self.headers, **(headers or {})},
                timeout=self.timeout,
                client_options=self.client_options,
                **kw,
            )
        except httpx.TimeoutException as e:
            raise WebToolError(f"The {self.engine} search timed out after {seconds(self.timeout)}.") from e
        except httpx.HTTPStatusError as e:
            raise WebToolError(
                f"The {self.engine} search failed: HTTP {e.response.status_code} {e.response.reason_phrase}."
            ) from e
        except httpx.HTTPError as e:
            raise WebToolError(f"The {self.engine} search failed: {type(e).__name__}: {e}") from e
