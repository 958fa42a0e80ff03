"""``WikipediaSearchTool``: an article's summary or full text from the MediaWiki API.

Layer 2 (tools). Name, input, constructor arguments and answer layout follow smolagents; it calls the
MediaWiki action API over httpx instead of needing the ``wikipedia-api`` package. When no page has the
exact title, it searches and names the closest titles so the model can retry with one of them.
"""

from __future__ import annotations

from typing import Any

from ..base import Tool
from ._http import check_client_options, describe_http_error, fetch

__all__ = ["WikipediaSearchTool"]


class WikipediaSearchTool(Tool):
    """Searches Wikipedia and returns the summary or full text of an article, with its URL.

    Args:
        user_agent: Identifies your project to Wikimedia (their policy asks for one, with a contact).
        language: Wikipedia edition, e.g. ``"en"``, ``"fr"`` (default ``"en"``).
        content_type: ``"summary"`` (the lead section) or ``"text"`` (the whole article, default).
        extract_format: ``"WIKI"`` (plain text, default) or ``"HTML"``.
        api_url: The MediaWiki API endpoint (default ``https://{language}.wikipedia.org/w/api.php``).
        timeout: Seconds to wait (default 20).
        client_options: Options for ``httpx.AsyncClient``.
    """

    name = "wikipedia_search"
    description = (
        "Searches Wikipedia and returns a summary or full text of the given topic, along with the page URL."
    )
    inputs = {"query": {"type": "string", "description": "The topic to search on Wikipedia."}}
    output_type = "string"

    def __init__(
        self,
        user_agent: str = "codeloop-agent (set user_agent to identify your project)",
        language: str = "en",
        content_type: str = "text",
        extract_format: str = "WIKI",
        *,
        api_url: str | None = None,
        timeout: float | None = 20.0,
        client_options: dict[str, Any] | None = None,
    ):
        super().__init__()
        if not user_agent:
            raise ValueError("User-agent is required. Provide a meaningful identifier for your project.")
        if content_type not in ("summary", "text"):
            raise ValueError(f"Invalid content_type {content_type!r}. Choose between 'summary' or 'text'.")
        if extract_format not in ("WIKI", "HTML"):
            raise ValueError(f"Invalid extract_format {extract_format!r}. Choose between 'WIKI' or 'HTML'.")
        self.user_agent = user_agent
        self.language = language
        self.content_type = content_type
        self.extract_format = extract_format
        self.api_url = api_url or f"https://{language}.wikipedia.org/w/api.php"
        self.timeout = timeout
        self.client_options = check_client_options(client_options)

    async def _query(self, params: dict[str, Any]) -> dict[str, Any]:
        page = await fetch(
            self.api_url,
            params={"format": "json", "formatversion": "2", **params},
            headers={"User-Agent": self.user_agent},
            timeout=self.timeout,
            client_options=self.client_options,
        )
        return page.json()

    async def forward(self, query: str) -> str:
        params: dict[str, Any] = {
            "action": "query",
            "prop": "extracts|info",
            "inprop": "url",
            "redirects": "1",
            "titles": query,
        }
        if self.extract_format == "WIKI":
            params["explaintext"] = "1"
        if self.content_type == "summary":
            params["exintro"] = "1"
        try:
            data = await self._query(params)
            pages = data.get("query", {}).get("pages", [])
            page = pages[0] if pages else {}
            if not page or page.get("missing") or page.get("invalid"):
                return await self._not_found(query)
        except Exception as e:  # noqa: BLE001 - a failed lookup is an answer the model can act on
            return "Wikipedia lookup failed. " + describe_http_error(e, self.api_url, self.timeout)
        title = page.get("title", query)
        url = page.get("fullurl") or f"https://{self.language}.wikipedia.org/wiki/{title.replace(' ', '_')}"
        text = (page.get("extract") or "").strip()
        return f"✅ **Wikipedia Page:** {title}\n\n**Content:** {text}\n\n🔗 **Read more:** {url}"

    async def _not_found(self, query: str) -> str:
        message = f"No Wikipedia page found for '{query}'. Try a different query."
        try:
            data = await self._query({"action": "query", "list": "search", "srsearch": query, "srlimit": "5"})
        except Exception:  # noqa: BLE001 - suggestions are a bonus
            return message
        titles = [hit.get("title") for hit in data.get("query", {}).get("search", []) if hit.get("title")]
        if titles:
            message += " Closest article titles: " + "; ".join(titles) + "."
        return message
