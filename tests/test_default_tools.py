"""The default toolkit: web search, visit_webpage, Wikipedia, python_interpreter, TOOL_MAPPING.

Every web test talks to a stdlib HTTP server on 127.0.0.1 that serves canned DuckDuckGo-like pages,
RSS, JSON APIs and web pages; nothing here reaches the internet.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, quote, urlparse

import pytest

from codeloop.agents.default_tools import BUILTIN_TOOLS, TOOL_MAPPING, get_default_tools
from codeloop.errors import InterpreterError
from codeloop.executors.interpreter_tool import PythonInterpreterTool
from codeloop.tools import (
    ApiWebSearchTool,
    DuckDuckGoSearchTool,
    FinalAnswerTool,
    GoogleSearchTool,
    Tool,
    UserInputTool,
    VisitWebpageTool,
    WebSearchTool,
    WebToolError,
    WikipediaSearchTool,
)
from codeloop.tools.toolkit._http import RateLimiter
from codeloop.tools.toolkit.markdown import html_to_markdown
from codeloop.tools.toolkit.search import parse_duckduckgo_html, parse_duckduckgo_lite

# ---------------------------------------------------------------------------------------------- canned pages


def ddg_html_page(results: list[tuple[str, str, str]], ad: bool = True) -> str:
    """A page shaped like html.duckduckgo.com/html/: redirect-wrapped links, an ad first."""
    blocks = []
    if ad:
        blocks.append(
            '<div class="result results_links results_links_deep result--ad">'
            '<h2 class="result__title"><a class="result__a" rel="nofollow" '
            'href="https://duckduckgo.com/y.js?ad_domain=shop.example&amp;u3=x">Buy <b>now</b></a></h2>'
            '<a class="result__snippet" href="#">Sponsored text</a></div>'
        )
    for title, link, snippet in results:
        wrapped = f"//duckduckgo.com/l/?uddg={quote(link, safe='')}&amp;rut=abc123"
        blocks.append(
            '<div class="result results_links results_links_deep web-result ">'
            '<div class="links_main links_deep result__body">'
            f'<h2 class="result__title"><a rel="nofollow" class="result__a" href="{wrapped}">{title}</a></h2>'
            '<div class="result__extras"><div class="result__extras__url">'
            f'<a class="result__url" href="{wrapped}">{urlparse(link).netloc}</a></div></div>'
            f'<a class="result__snippet" href="{wrapped}">{snippet}</a>'
            '<div class="clear"></div></div></div>'
        )
    return f"<html><body><div id='links' class='results'>{''.join(blocks)}</div></body></html>"


def ddg_lite_page(results: list[tuple[str, str, str]]) -> str:
    rows = [
        "<tr class='result-sponsored'><td>1.</td><td><a rel='nofollow' href='https://duckduckgo.com/y.js?x=1' "
        "class='result-link'>Sponsored thing</a></td></tr>"
        "<tr class='result-sponsored'><td></td><td class='result-snippet'>ad text</td></tr>"
    ]
    for i, (title, link, snippet) in enumerate(results, start=1):
        rows.append(
            f"<tr><td valign='top'>{i}.&nbsp;</td><td><a rel='nofollow' href='{link}' class='result-link'>"
            f"{title}</a></td></tr>"
            f"<tr><td>&nbsp;</td><td class='result-snippet'>{snippet}</td></tr>"
            f"<tr><td>&nbsp;</td><td><span class='link-text'>{urlparse(link).netloc}</span></td></tr>"
            "<tr><td>&nbsp;</td><td>&nbsp;</td></tr>"
        )
    return f"<html><body><table border='0'>{''.join(rows)}</table></body></html>"


PYTHON_RESULTS = [
    ("Welcome to <b>Python</b>.org", "https://www.python.org/", "The official home of the <b>Python</b> language"),
    ("Python (programming language)", "https://en.wikipedia.org/wiki/Python_(programming_language)", "A "
     "high-level, general-purpose programming language."),
    ("Learn Python &amp; more", "https://docs.python.org/3/tutorial/?a=1&b=2", "The Python Tutorial"),
]  # fmt: skip

ARTICLE = """<!DOCTYPE html><html><head><title>Test Article</title>
<style>.x{color:red}</style><script>alert("hidden")</script></head>
<body><nav><a href="/">Home</a></nav>
<h1>Main   heading</h1>
<p>Intro with <strong>bold</strong>, <em>italic</em> and a <a href="/docs/page2.html">relative link</a>.</p>
<h2>List</h2><ul><li>alpha</li><li>beta<ul><li>nested</li></ul></li></ul>
<ol><li>one</li><li>two</li></ol>
<pre><code>x = 1
if x:
    print(x)</code></pre>
<table><tr><th>Key</th><th>Value</th></tr><tr><td>a</td><td>1</td></tr></table>
<noscript>enable js</noscript>
</body></html>"""

WIKI_PAGES = {
    "Python (programming language)": {
        "summary": "Python is a high-level programming language.",
        "text": "Python is a high-level programming language.\n\n== History ==\nPython was conceived in 1989.",
    }
}


class Handler(BaseHTTPRequestHandler):
    server: Any

    def log_message(self, *args: Any) -> None:  # keep test output clean
        pass

    def _send(self, status: int, body: str | bytes, content_type: str = "text/html; charset=utf-8", **hdr):
        data = body.encode() if isinstance(body, str) else body
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for key, value in hdr.items():
            self.send_header(key.replace("_", "-"), value)
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode()
        self._route(body)

    def do_GET(self) -> None:
        self._route("")

    def _route(self, body: str) -> None:
        url = urlparse(self.path)
        query = parse_qs(url.query)
        form = parse_qs(body) if body and not body.startswith("{") else {}
        self.server.requests.append(
            {"method": self.command, "path": url.path, "query": query, "form": form, "body": body,
             "headers": dict(self.headers)}
        )  # fmt: skip
        q = (form.get("q") or query.get("q") or [""])[0]
        path = url.path
        if path in ("/html/", "/lite/"):
            if q == "nothing":
                return self._send(200, "<html><body><div class='no-results'>No results.</div></body></html>")
            if q == "blocked":
                return self._send(
                    202, "<html><body><div class='anomaly-modal'>bots use DuckDuckGo too</div></body>"
                )
            if q == "broken":
                return self._send(500, "oops")
            results = PYTHON_RESULTS
            if q == "many":
                results = [(f"Result {i}", f"https://site{i}.example/", f"snippet {i}") for i in range(15)]
            page = ddg_html_page(results) if path == "/html/" else ddg_lite_page(results)
            return self._send(200, page)
        if path == "/bing":
            items = "".join(
                f"<item><title>Bing {i}</title><link>https://b{i}.example/</link>"
                f"<description>about {q} {i}</description></item>"
                for i in range(4)
            )
            return self._send(200, f"<rss><channel>{items}</channel></rss>", "application/rss+xml")
        if path == "/exa":
            data = json.loads(body)
            results = [
                {"title": f"Exa {i}", "url": f"https://e{i}.example/", "highlights": ["h1", "h2"]}
                for i in range(data["numResults"])
            ]
            return self._send(200, json.dumps({"results": results}), "application/json")
        if path == "/brave":
            if self.headers.get("X-Subscription-Token") != "brave-key":
                return self._send(401, '{"error": "bad token"}', "application/json")
            web = {"results": [{"title": "Brave 1", "url": "https://br.example/", "description": "d1"}]}
            return self._send(200, json.dumps({"web": web}), "application/json")
        if path == "/serp":
            if query.get("api_key") != ["serp-key"]:
                return self._send(401, '{"error": "Invalid API key"}', "application/json")
            organic = [
                {
                    "title": "G1",
                    "link": "https://g1.example/",
                    "snippet": "s1",
                    "date": "2020",
                    "source": "src",
                }
            ]
            data = {"organic_results": organic} if q != "empty" else {"organic_results": []}
            if q == "missing":
                data = {}
            return self._send(200, json.dumps(data), "application/json")
        if path == "/w/api.php":
            return self._wiki(query)
        if path in ("/page.html", "/docs/article.html"):
            return self._send(200, ARTICLE)
        if path == "/big.html":
            words = " ".join(f"word{i}" for i in range(3000))
            return self._send(200, f"<html><body><p>{words}</p></body></html>")
        if path == "/plain.txt":
            return self._send(200, "just text\n\n\n\n\nafter gaps", "text/plain; charset=utf-8")
        if path == "/data.json":
            return self._send(200, '{"a": 1}', "application/json")
        if path == "/image.png":
            return self._send(200, b"\x89PNG\r\n\x1a\n" + bytes(200), "image/png")
        if path == "/latin1.html":
            return self._send(200, "<p>caf\xe9</p>".encode("latin-1"), "text/html; charset=iso-8859-1")
        if path == "/meta-charset.html":  # no charset in the header, one in a <meta> tag
            body = '<html><head><meta charset="windows-1252"></head><p>na\xefve \x93quotes\x94</p>'
            return self._send(200, body.encode("latin-1"), "text/html")
        if path == "/redirect":
            self.send_response(302)
            self.send_header("Location", "/docs/article.html")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return None
        if path == "/slow":
            time.sleep(1.5)
            return self._send(200, "<p>late</p>")
        if path == "/forbidden":
            return self._send(403, "no")
        return self._send(404, "<h1>Not found</h1>")

    def _wiki(self, query: dict[str, list[str]]) -> None:
        if query.get("list") == ["search"]:
            hits = [{"title": t} for t in WIKI_PAGES]
            return self._send(200, json.dumps({"query": {"search": hits}}), "application/json")
        title = query["titles"][0]
        if title == "Python":  # a redirect the API resolves
            title = "Python (programming language)"
        if title not in WIKI_PAGES:
            page = {"title": title, "missing": True}
        else:
            kind = "summary" if "exintro" in query else "text"
            text = WIKI_PAGES[title][kind]
            if "explaintext" not in query:
                text = f"<p>{text}</p>"
            page = {
                "title": title,
                "extract": text,
                "fullurl": f"https://en.wikipedia.org/wiki/{quote(title)}",
            }
        return self._send(200, json.dumps({"query": {"pages": [page]}}), "application/json")


@pytest.fixture(scope="module")
def server():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    httpd.requests = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    httpd.url = f"http://127.0.0.1:{httpd.server_address[1]}"  # type: ignore[attr-defined]
    yield httpd
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch):
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)


# ---------------------------------------------------------------------------------------------- mapping


def test_tool_mapping_matches_smolagents_names_and_classes():
    assert list(TOOL_MAPPING) == ["python_interpreter", "web_search", "visit_webpage"]
    assert TOOL_MAPPING["web_search"] is DuckDuckGoSearchTool
    for name, cls in TOOL_MAPPING.items():
        tool = cls()  # no network, no key, no extra package needed to build one
        assert isinstance(tool, Tool) and tool.name == name and tool.output_type == "string"
    assert BUILTIN_TOOLS["wikipedia_search"] is WikipediaSearchTool
    assert BUILTIN_TOOLS["user_input"] is UserInputTool and BUILTIN_TOOLS["final_answer"] is FinalAnswerTool


def test_inputs_and_schemas_follow_smolagents():
    assert WebSearchTool().inputs == {
        "query": {"type": "string", "description": "The search query to perform."}
    }
    assert VisitWebpageTool().inputs["url"]["type"] == "string"
    assert WikipediaSearchTool.name == "wikipedia_search"
    google = GoogleSearchTool(api_key="k")
    schema = google.to_tool_schema()["function"]["parameters"]
    assert schema["required"] == ["query"]
    assert "def web_search(query: str, filter_year: int | None = None) -> str:" in google.to_code_prompt()


def test_get_default_tools_builds_named_tools_and_rejects_unknown_names():
    assert [t.name for t in get_default_tools()] == list(TOOL_MAPPING)
    tools = get_default_tools("visit_webpage, wikipedia_search user_input")
    assert [type(t) for t in tools] == [VisitWebpageTool, WikipediaSearchTool, UserInputTool]
    # two names for one tool name give one tool
    assert len(get_default_tools(["web_search", "duckduckgo_search"])) == 1
    with pytest.raises(ValueError) as info:
        get_default_tools(["web_search", "google_search"])
    message = str(info.value)
    assert "'google_search'" in message and "visit_webpage" in message and "wikipedia_search" in message


def test_import_stays_light():
    import subprocess
    import sys

    code = (
        "import sys, codeloop.tools; "
        "heavy = ('httpx', 'codeloop.executors', 'codeloop.tools.toolkit'); "
        "print(sorted(m for m in heavy if m in sys.modules)); "
        "codeloop.tools.WebSearchTool; codeloop.tools.VisitWebpageTool; "
        "print(sorted(m for m in heavy if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split("\n")[:2] == ["[]", "['codeloop.tools.toolkit']"]


def test_default_tools_module_path_like_smolagents():
    from codeloop import default_tools

    assert default_tools.TOOL_MAPPING is TOOL_MAPPING
    assert default_tools.PythonInterpreterTool is PythonInterpreterTool
    assert default_tools.VisitWebpageTool is VisitWebpageTool


# ---------------------------------------------------------------------------------------------- DuckDuckGo


def test_parse_duckduckgo_html_unwraps_links_and_drops_ads():
    results = parse_duckduckgo_html(ddg_html_page(PYTHON_RESULTS))
    assert [r["link"] for r in results] == [link for _, link, _ in PYTHON_RESULTS]
    assert results[0]["title"] == "Welcome to Python.org"
    assert results[0]["description"] == "The official home of the Python language"
    assert results[2]["title"] == "Learn Python & more"


def test_parse_duckduckgo_lite():
    results = parse_duckduckgo_lite(ddg_lite_page(PYTHON_RESULTS))
    assert len(results) == 3
    assert results[1] == {
        "title": "Python (programming language)",
        "link": "https://en.wikipedia.org/wiki/Python_(programming_language)",
        "description": "A high-level, general-purpose programming language.",
    }


def test_duckduckgo_tool_formats_markdown(server):
    tool = DuckDuckGoSearchTool(base_url=server.url + "/html/", rate_limit=None)
    out = tool("python")
    assert out.startswith("## Search Results\n\n[Welcome to Python.org](https://www.python.org/)\n")
    assert "The official home of the Python language" in out
    assert "Buy now" not in out and "y.js" not in out
    assert out.count("](") == 3
    request = server.requests[-1]
    assert request["method"] == "POST" and request["form"]["q"] == ["python"]
    assert "Mozilla" in request["headers"]["User-Agent"]


def test_duckduckgo_max_results(server):
    out = DuckDuckGoSearchTool(max_results=4, base_url=server.url + "/html/", rate_limit=None)("many")
    assert out.count("](https://site") == 4
    assert "Result 3" in out and "Result 4" not in out


def test_duckduckgo_no_results_blocked_and_server_error(server):
    tool = DuckDuckGoSearchTool(base_url=server.url + "/html/", rate_limit=None)
    with pytest.raises(WebToolError, match="No results found"):
        tool("nothing")
    with pytest.raises(WebToolError, match="bot check"):
        tool("blocked")
    with pytest.raises(WebToolError, match="HTTP 500"):
        tool("broken")


def test_search_timeouts_are_clear(server):
    with pytest.raises(WebToolError, match="did not answer within 0.3 seconds"):
        DuckDuckGoSearchTool(base_url=server.url + "/slow", rate_limit=None, timeout=0.3)("python")
    with pytest.raises(WebToolError, match="bing search timed out after 0.3 seconds"):
        WebSearchTool(engine="bing", base_url=server.url + "/slow", timeout=0.3)("python")


def test_duckduckgo_unreachable_is_clear():
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    tool = DuckDuckGoSearchTool(base_url=f"http://127.0.0.1:{port}/html/", rate_limit=None)
    with pytest.raises(WebToolError, match="Could not reach DuckDuckGo"):
        tool("python")


def test_duckduckgo_rejects_unknown_client_options():
    with pytest.raises(TypeError, match="proxies"):
        DuckDuckGoSearchTool(proxies="http://x")
    assert DuckDuckGoSearchTool(proxy="http://127.0.0.1:9").client_options == {"proxy": "http://127.0.0.1:9"}


async def test_search_acall_inside_event_loop(server):
    tool = DuckDuckGoSearchTool(max_results=2, base_url=server.url + "/html/", rate_limit=None)
    outs = await asyncio.gather(tool.acall("python"), tool.acall(query="many"))
    assert outs[0].count("](") == 2 and "site1.example" in outs[1]
    # the sync call also works from inside a running loop
    assert tool("python") == outs[0]


def test_rate_limiter_spaces_calls():
    limiter = RateLimiter(20.0)  # one call per 50 ms

    async def three():
        start = time.monotonic()
        await asyncio.gather(limiter.wait(), limiter.wait(), limiter.wait())
        return time.monotonic() - start

    assert asyncio.run(three()) >= 0.09
    assert asyncio.run(_timed(RateLimiter(None))) < 0.05
    with pytest.raises(ValueError, match="rate_limit"):
        RateLimiter(0)


async def _timed(limiter: RateLimiter) -> float:
    start = time.monotonic()
    for _ in range(5):
        await limiter.wait()
    return time.monotonic() - start


# ---------------------------------------------------------------------------------------------- WebSearchTool


def test_web_search_duckduckgo_lite(server):
    tool = WebSearchTool(max_results=2, base_url=server.url + "/lite/")
    out = tool("python")
    assert out.startswith("## Search Results\n\n[Welcome to Python.org](https://www.python.org/)")
    assert out.count("](") == 2 and "Sponsored" not in out
    with pytest.raises(WebToolError, match="No results found"):
        tool("nothing")
    # the page layout decides the parser, whatever the address
    assert WebSearchTool(max_results=2, base_url=server.url + "/html/")("python") == out
    assert (
        DuckDuckGoSearchTool(base_url=server.url + "/lite/", rate_limit=None, max_results=2)("python") == out
    )


def test_web_search_bing_rss(server):
    out = WebSearchTool(max_results=3, engine="bing", base_url=server.url + "/bing")("llamas")
    assert "[Bing 0](https://b0.example/)\nabout llamas 0" in out
    assert out.count("](") == 3
    assert server.requests[-1]["query"]["format"] == ["rss"]


def test_web_search_exa(server, monkeypatch):
    monkeypatch.delenv("EXA_API_KEY", raising=False)
    tool = WebSearchTool(max_results=2, engine="exa", base_url=server.url + "/exa")
    with pytest.raises(WebToolError, match="EXA_API_KEY"):
        tool("x")
    monkeypatch.setenv("EXA_API_KEY", "exa-key")
    out = tool("x")
    assert "[Exa 1](https://e1.example/)\nh1 h2" in out and out.count("](") == 2
    assert server.requests[-1]["headers"]["x-api-key"] == "exa-key"


def test_web_search_engine_errors(server):
    with pytest.raises(ValueError, match="Unsupported engine"):
        WebSearchTool(engine="altavista")
    tool = WebSearchTool(engine="bing", base_url=server.url + "/forbidden")
    with pytest.raises(WebToolError, match="HTTP 403"):
        tool("x")
    with pytest.raises(WebToolError, match="RSS"):
        WebSearchTool(engine="bing", base_url=server.url + "/page.html")("x")


def test_web_search_subclass_with_sync_search():
    class Canned(WebSearchTool):
        def search(self, query):
            return [{"title": query.upper(), "link": "https://c.example/", "description": "d"}] * 12

    out = Canned(max_results=5)("hi")
    assert out.count("[HI](https://c.example/)") == 5


# ---------------------------------------------------------------------------------------------- API searches


def test_api_web_search_brave(server, monkeypatch):
    monkeypatch.delenv("BRAVE_API_KEY", raising=False)
    with pytest.raises(WebToolError, match="BRAVE_API_KEY"):
        ApiWebSearchTool(endpoint=server.url + "/brave", rate_limit=None)("q")
    tool = ApiWebSearchTool(endpoint=server.url + "/brave", api_key="brave-key", rate_limit=None)
    assert tool("q") == "## Search Results\n\n1. [Brave 1](https://br.example/)\nd1"
    assert server.requests[-1]["query"] == {"count": ["10"], "q": ["q"]}
    bad = ApiWebSearchTool(endpoint=server.url + "/brave", api_key="wrong", rate_limit=None)
    with pytest.raises(WebToolError, match="HTTP 401"):
        bad("q")


def test_google_search(server, monkeypatch):
    monkeypatch.delenv("SERPAPI_API_KEY", raising=False)
    with pytest.raises(ValueError, match="SERPAPI_API_KEY"):
        GoogleSearchTool()
    tool = GoogleSearchTool(api_key="serp-key", base_url=server.url + "/serp")
    out = tool("q", filter_year=2020)
    assert out.startswith(
        "## Search Results\n0. [G1](https://g1.example/)\nDate published: 2020\nSource: src"
    )
    assert server.requests[-1]["query"]["tbs"] == ["cdr:1,cd_min:01/01/2020,cd_max:12/31/2020"]
    assert "No results found for 'empty'" in tool("empty")
    with pytest.raises(WebToolError, match="less restrictive"):
        tool("missing")


# ---------------------------------------------------------------------------------------------- markdown


def test_html_to_markdown_structure():
    md = html_to_markdown(ARTICLE, base_url="https://site.example/docs/article.html")
    assert md.startswith("Test Article\n\n[Home](https://site.example/)")
    assert "# Main heading" in md and "## List" in md
    assert "Intro with **bold**, *italic* and a [relative link](https://site.example/docs/page2.html)." in md
    assert "- alpha\n- beta\n  - nested" in md
    assert "1. one\n2. two" in md
    assert "```\nx = 1\nif x:\n    print(x)\n```" in md
    assert "| Key | Value |\n| --- | --- |\n| a | 1 |" in md
    for hidden in ("alert", "color:red", "enable js"):
        assert hidden not in md
    assert "\n\n\n" not in md


def test_html_to_markdown_is_forgiving():
    md = html_to_markdown("<ul><li>a<li>b</ul><p>x <b> y </b>z</p></div></span><td>stray")
    assert md.startswith("- a\n- b\n\nx **y** z")
    assert "stray" in md
    assert (
        html_to_markdown("<a href='javascript:void(0)'>click</a> <img src='data:xx' alt='pic'>")
        == "click pic"
    )


# ---------------------------------------------------------------------------------------------- visit_webpage


def test_visit_webpage_converts_html(server):
    out = VisitWebpageTool()(server.url + "/page.html")
    assert "# Main heading" in out
    assert f"[relative link]({server.url}/docs/page2.html)" in out
    assert "alert" not in out


def test_visit_webpage_follows_redirects_and_resolves_against_final_url(server):
    out = VisitWebpageTool()(server.url + "/redirect")
    assert f"[relative link]({server.url}/docs/page2.html)" in out


def test_visit_webpage_truncates_with_note(server):
    out = VisitWebpageTool(max_output_length=1000)(server.url + "/big.html")
    body, _, note = out.partition("\n..._")
    assert len(body) == 1000 and body.startswith("word0 word1")
    assert "truncated to stay below 1000 characters" in note
    full = VisitWebpageTool()(server.url + "/big.html")
    assert "truncated" not in full and full.endswith("word2999")
    assert f"(the full page has {len(full)})" in note


def test_visit_webpage_byte_cap(server):
    out = VisitWebpageTool(max_bytes=500)(server.url + "/big.html")
    assert "Only the first 500 bytes" in out and "word2999" not in out


def test_visit_webpage_text_json_binary_and_charset(server):
    tool = VisitWebpageTool()
    assert tool(server.url + "/plain.txt") == "just text\n\nafter gaps"
    assert tool(server.url + "/data.json") == '{"a": 1}'
    out = tool(server.url + "/image.png")
    assert "image/png" in out and "not text" in out and "PNG" not in out
    assert tool(server.url + "/latin1.html") == "café"
    assert tool(server.url + "/meta-charset.html") == "naïve \u201cquotes\u201d"


def test_visit_webpage_errors_are_strings(server):
    tool = VisitWebpageTool(timeout=0.3)
    out = tool(server.url + "/missing")
    assert (
        out.startswith(f"Error fetching {server.url}/missing: HTTP 404 Not Found") and "does not exist" in out
    )
    assert "HTTP 403" in tool(server.url + "/forbidden")
    started = time.monotonic()
    out = tool(server.url + "/slow")
    assert (
        out
        == f"The request to {server.url}/slow timed out after 0.3 seconds. Please try again later or check the URL."
    )
    assert time.monotonic() - started < 1.4
    assert "only http:// and https://" in tool("ftp://example.com/file")
    assert "could not connect" in tool("http://127.0.0.1:1/")


def test_visit_webpage_custom_converter(server):
    tool = VisitWebpageTool(html_converter=lambda html: "CONVERTED " + str(len(html)))
    assert tool(server.url + "/page.html") == f"CONVERTED {len(ARTICLE)}"


# ---------------------------------------------------------------------------------------------- wikipedia


def test_wikipedia_text_and_summary(server):
    api = server.url + "/w/api.php"
    out = WikipediaSearchTool(api_url=api)("Python")
    assert out.startswith("✅ **Wikipedia Page:** Python (programming language)\n\n**Content:** Python is")
    assert "== History ==" in out
    assert out.endswith(
        "🔗 **Read more:** https://en.wikipedia.org/wiki/Python%20%28programming%20language%29"
    )
    summary = WikipediaSearchTool(api_url=api, content_type="summary")("Python (programming language)")
    assert "History" not in summary and "high-level" in summary
    request = server.requests[-1]
    assert request["query"]["exintro"] == ["1"] and request["query"]["redirects"] == ["1"]
    assert request["headers"]["User-Agent"].startswith("codeloop")
    html = WikipediaSearchTool(api_url=api, extract_format="HTML")("Python")
    assert "<p>Python is" in html


def test_wikipedia_missing_page_suggests_titles(server):
    out = WikipediaSearchTool(api_url=server.url + "/w/api.php")("Pyton langage")
    assert out.startswith("No Wikipedia page found for 'Pyton langage'. Try a different query.")
    assert "Closest article titles: Python (programming language)." in out


def test_wikipedia_errors(server):
    assert "HTTP 404" in WikipediaSearchTool(api_url=server.url + "/nowhere")("x")
    with pytest.raises(ValueError, match="content_type"):
        WikipediaSearchTool(content_type="full")
    with pytest.raises(ValueError, match="extract_format"):
        WikipediaSearchTool(extract_format="PDF")
    with pytest.raises(ValueError, match="User-agent"):
        WikipediaSearchTool(user_agent="")


# ---------------------------------------------------------------------------------------------- python_interpreter


def test_python_interpreter_runs_code_inprocess():
    tool = PythonInterpreterTool(executor_type="inprocess")
    assert tool("import math\nprint('hi', 2)\nmath.sqrt(16) + 1") == "Stdout:\nhi 2\n\nOutput: 5.0"
    # a fresh namespace per call, as in smolagents
    tool("secret = 41")
    with pytest.raises(InterpreterError, match="secret"):
        tool("secret + 1")


def test_python_interpreter_reports_errors_with_line_and_stdout():
    tool = PythonInterpreterTool(executor_type="inprocess")
    with pytest.raises(InterpreterError) as info:
        tool("print('before')\nx = 1\ny = x / 0")
    message = str(info.value)
    assert "line 3" in message and "ZeroDivisionError" in message
    assert message.endswith("Stdout before the error:\nbefore\n")
    assert info.value.exc_type == "ZeroDivisionError" and info.value.logs == "before\n"


def test_python_interpreter_authorized_imports():
    tool = PythonInterpreterTool(executor_type="inprocess")
    with pytest.raises(InterpreterError, match="subprocess"):
        tool("import subprocess")
    assert "'math'" in tool.inputs["code"]["description"]
    assert "'csv'" not in tool.inputs["code"]["description"]
    allowed = PythonInterpreterTool(authorized_imports=["csv"], executor_type="inprocess")
    assert "'csv'" in allowed.inputs["code"]["description"]
    assert allowed("import csv\ncsv.QUOTE_ALL") == "Stdout:\n\nOutput: 1"
    anything = PythonInterpreterTool(authorized_imports=["*"], executor_type="inprocess")
    assert "any python library" in anything.inputs["code"]["description"]
    with pytest.raises(ValueError, match="executor_type"):
        PythonInterpreterTool(executor_type="docker-ish")


def test_python_interpreter_timeout():
    tool = PythonInterpreterTool(executor_type="inprocess", timeout_seconds=0.5)
    started = time.monotonic()
    with pytest.raises(InterpreterError):
        tool("while True:\n    pass")
    assert time.monotonic() - started < 5


def test_python_interpreter_default_isolated_worker():
    tool = PythonInterpreterTool()
    assert tool.executor_type == "local"
    assert tool("print(sum(range(10)))\n'done'") == "Stdout:\n45\n\nOutput: done"
    with pytest.raises(InterpreterError, match="NameError"):
        tool("undefined_name")


async def test_python_interpreter_acall():
    tool = PythonInterpreterTool(executor_type="inprocess")
    results = await asyncio.gather(*(tool.acall(f"{i} * 2") for i in range(3)))
    assert results == [f"Stdout:\n\nOutput: {i * 2}" for i in range(3)]


# ---------------------------------------------------------------------------------------------- users of the toolkit


def test_add_base_tools_in_agents():
    from codeloop.agents import CodeAgent, ToolCallingAgent
    from codeloop.models.scripted import ScriptedModel

    calling = ToolCallingAgent(tools=[], model=ScriptedModel(["x"]), add_base_tools=True)
    assert {"python_interpreter", "web_search", "visit_webpage", "final_answer"} <= set(calling.tools)
    assert isinstance(calling.tools["web_search"], DuckDuckGoSearchTool)
    code = CodeAgent(tools=[], model=ScriptedModel(["x"]), add_base_tools=True)
    assert "python_interpreter" not in code.tools and "visit_webpage" in code.tools


def test_cli_resolves_toolkit_names():
    from codeloop.cli import resolve_tools

    tools = resolve_tools(["web_search", "visit_webpage", "wikipedia_search", "python_interpreter"])
    assert [type(t) for t in tools] == [
        DuckDuckGoSearchTool,
        VisitWebpageTool,
        WikipediaSearchTool,
        PythonInterpreterTool,
    ]


@pytest.mark.parametrize("executor_type", ["inprocess", "local"])
def test_code_agent_calls_web_tools_from_code(server, executor_type):
    from codeloop.agents import CodeAgent
    from codeloop.models.scripted import ScriptedModel

    code = (
        "Thought: search, then read.\n<code>\n"
        'results = web_search("python")\n'
        f'page = visit_webpage("{server.url}/page.html")\n'
        'final_answer(page.splitlines()[0] + " | " + str(results.count("](")))\n'
        "</code>"
    )
    tools = [DuckDuckGoSearchTool(base_url=server.url + "/html/", rate_limit=None), VisitWebpageTool()]
    agent = CodeAgent(
        tools=tools, model=ScriptedModel([code]), executor_type=executor_type, verbosity_level=0
    )
    assert agent.run("find") == "Test Article | 3"


def test_tool_calling_agent_uses_python_interpreter_and_sees_errors():
    from codeloop.agents import ToolCallingAgent
    from codeloop.models.scripted import ScriptedModel

    def call(name: str, arguments: dict) -> str:
        return "Action:\n" + json.dumps({"name": name, "arguments": arguments})

    model = ScriptedModel(
        [
            call("python_interpreter", {"code": "print('so far')\n1/0"}),
            call("python_interpreter", {"code": "6 * 7"}),
            call("final_answer", {"answer": "done"}),
        ]
    )
    agent = ToolCallingAgent(
        tools=[PythonInterpreterTool(executor_type="inprocess")], model=model, verbosity_level=0
    )
    assert agent.run("compute") == "done"
    seen = "\n".join(
        part["text"] if isinstance(part, dict) else str(part)
        for message in model.calls[-1]
        for part in (message.content if isinstance(message.content, list) else [message.content or ""])
    )
    assert "ZeroDivisionError" in seen and "Stdout before the error:\nso far" in seen
    assert "Output: 42" in seen
