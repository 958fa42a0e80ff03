"""Speed of visit_webpage's built-in HTML to Markdown converter.

Prints the converter's throughput on a synthetic article-like page next to the bare cost of
tokenizing the same page with ``html.parser`` (the floor any stdlib converter pays), and the ratio;
with ``markdownify`` installed it is measured too.

    .venv/bin/python benchmarks/html_to_markdown.py
"""

from __future__ import annotations

import time
from html.parser import HTMLParser

from codeloop.tools.toolkit.markdown import html_to_markdown

SECTIONS = 2000  # about 400 KB of HTML, a long Wikipedia article's size
RUNS = 3


def make_page(sections: int) -> str:
    parts = ["<html><head><title>Bench</title><style>p{margin:0}</style></head><body>"]
    for i in range(sections):
        parts.append(
            f"<h2>Section {i}</h2><p>Some <b>bold</b> text and a <a href='/wiki/Page_{i}'>link {i}</a>, "
            f"with <code>code()</code>.</p><ul><li>item one</li><li>item <em>two</em></li></ul>"
            f"<table><tr><th>k</th><th>v</th></tr><tr><td>a</td><td>{i}</td></tr></table>"
        )
    parts.append("</body></html>")
    return "".join(parts)


def best_of(fn) -> float:
    times = []
    for _ in range(RUNS):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    page = make_page(SECTIONS)
    size_mb = len(page.encode()) / 1e6

    def tokenize() -> None:
        parser = HTMLParser()
        parser.feed(page)
        parser.close()

    bare = best_of(tokenize)
    ours = best_of(lambda: html_to_markdown(page, base_url="https://en.wikipedia.org/wiki/X"))
    print(f"| page size | {size_mb:.2f} MB |")
    print(f"| html.parser tokenize only | {bare * 1000:.0f} ms ({size_mb / bare:.2f} MB/s) |")
    print(f"| codeloop html_to_markdown | {ours * 1000:.0f} ms ({size_mb / ours:.2f} MB/s) |")
    print(f"| ratio converter / tokenize | {ours / bare:.2f}x |")
    try:
        from markdownify import markdownify
    except ImportError:
        print("| markdownify | not installed |")
    else:
        theirs = best_of(lambda: markdownify(page))
        print(f"| markdownify | {theirs * 1000:.0f} ms ({size_mb / theirs:.2f} MB/s) |")
        print(f"| ratio markdownify / codeloop | {theirs / ours:.2f}x |")
    print(f"| output length | {len(html_to_markdown(page)):,} chars |")


if __name__ == "__main__":
    main()
