"""Keyed web search APIs: ``ApiWebSearchTool`` (Brave by default) and ``GoogleSearchTool`` (SerpAPI/Serper).

Layer 2 (tools). Names, inputs, constructor arguments and result layout follow smolagents; requests
go through httpx, endpoints are constructor arguments, and failures raise ``WebToolError`` with the
HTTP status instead of a bare exception.
"""

from __future__ import annotations

import os
from typing import Any

from ..base import Tool
from ._http import RateLimiter, WebToolError, check_client_options, fetch

__all__ = ["ApiWebSearchTool", "GoogleSearchTool"]

BRAVE_URL = "https://api.search.brave.com/res/v1/web/search"
SERPAPI_URL = "https://serpapi.com/search.json"
SERPER_URL = "https://google.serper.dev/search"


async def _get_json(
    url: str, what: str, *, params: dict[str, Any], headers: dict[str, str] | None, timeout: float | None,
    client_options: dict[str, Any],
) -> Any:  # fmt: skip
    import httpx

    try:
        page = await fetch(
            url, params=params, headers=headers, timeout=timeout, client_options=client_options
        )
    except httpx.HTTPStatusError as e:
        detail = e.response.text[:300]
        raise WebToolError(
            f"{what} failed: HTTP {e.response.status_code} {e.response.reason_phrase}: {detail}"
        ) from e
    except httpx.HTTPError as e:
        raise WebToolError(f"{what} failed: {type(e).__name__}: {e}") from e
    try:
        return page.json()
    except ValueError as e:
        raise WebToolError(f"{what} answered with something that is not JSON: {page.text[:200]!r}") from e


class ApiWebSearchTool(Tool):
    """Web search through a JSON search API; Brave Search by default (``BRAVE_API_KEY``).

    Args:
        endpoint: API URL (default Brave's web search).
        api_key: The key (default: the environment variable named by ``api_key_name``).
        api_key_name: Environment variable holding the key (default ``BRAVE_API_KEY``).
        headers: Request headers (default: Brave's ``X-Subscription-Token``).
        params: Extra query parameters (default ``{"count": 10}``).
        rate_limit: Queries per second at most (default 1.0); None disables it.
        timeout, client_options: As for the other web tools.

    Override ``extract_results(data)`` and ``format_markdown(results)`` for another API's JSON.
    """

    name = "web_search"
    description = (
        "Performs a web search for a query and returns a string of the top search results formatted as "
        "markdown with titles, URLs, and descriptions."
    )
    inputs = {"query": {"type": "string", "description": "The search query to perform."}}
    output_type = "string"

    def __init__(
        self,
        endpoint: str = "",
        api_key: str = "",
        api_key_name: str = "",
        headers: dict[str, str] | None = None,
        params: dict[str, Any] | None = None,
        rate_limit: float | None = 1.0,
        *,
        timeout: float | None = 20.0,
        client_options: dict[str, Any] | None = None,
    ):
        super().__init__()
        self.endpoint = endpoint or BRAVE_URL
        self.api_key_name = api_key_name or "BRAVE_API_KEY"
        self.api_key = api_key or os.getenv(self.api_key_name)
        self.headers = headers or {"X-Subscription-Token": self.api_key or ""}
        self.params = params or {"count": 10}
        self.rate_limit = rate_limit
        self._limiter = RateLimiter(rate_limit)
        self.timeout = timeout
        self.client_options = check_client_options(client_options)

    async def forward(self, query: str) -> str:
        if not self.api_key and headers_lack_key(self.headers):
            raise WebToolError(
                f"Missing API key: set the {self.api_key_name} environment variable or pass api_key=."
            )
        await self._limiter.wait()
        data = await _get_json(
            self.endpoint,
            "The web search",
            params={**self.params, "q": query},
            headers=self.headers,
            timeout=self.timeout,
            client_options=self.client_options,
        )
        return self.format_markdown(self.extract_results(data))

    def extract_results(self, data: dict[str, Any]) -> list[dict[str, str]]:
        return [
            {"title": r.get("title", ""), "url": r.get("url", ""), "description": r.get("description", "")}
            for r in data.get("web", {}).get("results", [])
        ]

    def format_markdown(self, results: list[dict[str, str]]) -> str:
        if not results:
            return "No results found."
        return "## Search Results\n\n" + "\n\n".join(
            f"{i}. [{r['title']}]({r['url']})\n{r['description']}" for i, r in enumerate(results, start=1)
        )


def headers_lack_key(headers: dict[str, str]) -> bool:
    return not any(value for value in headers.values())


class GoogleSearchTool(Tool):
    """Google results through SerpAPI (``SERPAPI_API_KEY``) or Serper (``SERPER_API_KEY``).

    Args:
        provider: ``"serpapi"`` (default) or ``"serper"``.
        api_key: The key (default: the provider's environment variable; missing raises ValueError).
        base_url: The provider's endpoint.
        timeout, client_options: As for the other web tools.
    """

    name = "web_search"
    description = (
        "Performs a google web search for your query then returns a string of the top search results."
    )
    inputs = {
        "query": {"type": "string", "description": "The search query to perform."},
        "filter_year": {
            "type": "integer",
            "description": "Optionally restrict results to a certain year",
            "nullable": True,
        },
    }
    output_type = "string"

    def __init__(
        self,
        provider: str = "serpapi",
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        timeout: float | None = 20.0,
        client_options: dict[str, Any] | None = None,
    ):
        super().__init__()
        if provider not in ("serpapi", "serper"):
            raise ValueError(f"Unknown provider {provider!r}: use 'serpapi' or 'serper'.")
        self.provider = provider
        self.organic_key = "organic_results" if provider == "serpapi" else "organic"
        env_name = "SERPAPI_API_KEY" if provider == "serpapi" else "SERPER_API_KEY"
        self.api_key = api_key or os.getenv(env_name)
        if not self.api_key:
            raise ValueError(f"Missing API key. Make sure you have '{env_name}' in your env variables.")
        self.base_url = base_url or (SERPAPI_URL if provider == "serpapi" else SERPER_URL)
        self.timeout = timeout
        self.client_options = check_client_options(client_options)

    async def forward(self, query: str, filter_year: int | None = None) -> str:
        params: dict[str, Any] = {"q": query, "api_key": self.api_key}
        if self.provider == "serpapi":
            params.update(engine="google", google_domain="google.com")
        if filter_year is not None:
            params["tbs"] = f"cdr:1,cd_min:01/01/{filter_year},cd_max:12/31/{filter_year}"
        data = await _get_json(
            self.base_url,
            "The Google search",
            params=params,
            headers=None,
            timeout=self.timeout,
            client_options=self.client_options,
        )
        year = f" with filter year={filter_year}" if filter_year is not None else ""
        pages = data.get(self.organic_key)
        if pages is None:
            remedy = "do not filter on year" if filter_year is not None else "use a less restrictive query"
            raise WebToolError(f"No results found for query: '{query}'{year}. Try again and {remedy}.")
        if not pages:
            return f"No results found for '{query}'{year}. Try with a more general query, or remove the year filter."
        snippets = []
        for i, page in enumerate(pages):
            extra = "".join(
                f"\n{label}{page[key]}" for key, label in (("date", "Date published: "), ("source", "Source: "))
                if key in page
            )  # fmt: skip
            snippet = f"\n{page['snippet']}" if "snippet" in page else ""
            snippets.append(f"{i}. [{page.get('title', '')}]({page.get('link', '')}){extra}\n{snippet}")
        return "## Search Results\n" + "\n\n".join(snippets)
