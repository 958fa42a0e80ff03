"""A small HTML to Markdown converter on the standard library's ``html.parser``.

Layer 2 (tools). Good enough for a model to read a page: headings, paragraphs, links (made absolute
when a base URL is given), emphasis, inline code, code blocks, nested lists, block quotes, tables and
images; scripts, styles and other invisible parts are dropped. It is forgiving like browsers are:
unclosed ``<li>``, ``<td>`` or ``<p>`` tags and stray end tags do not derail it.

Every element that changes how its content is written (a link, a list item, a cell...) gets a frame
with its own buffer; when the element closes, the frame renders its buffer into its parent's.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from urllib.parse import urljoin

__all__ = ["html_to_markdown"]

_SKIP = frozenset({"script", "style", "noscript", "template", "svg", "iframe", "object", "canvas", "select"})
_VOID = frozenset(
    {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}
)
_PARAGRAPH = frozenset({"p", "figure", "form", "dl", "details", "address"})
_LINE = frozenset(
    {
        "div", "section", "article", "header", "footer", "main", "nav", "aside", "figcaption", "dt", "dd",
        "summary", "caption", "center", "fieldset", "legend", "body", "html",
    }
)  # fmt: skip
_INLINE_MARK = {"strong": "**", "b": "**", "em": "*", "i": "*", "code": "`", "s": "~~", "del": "~~"}
_FRAMES = frozenset(
    {"a", "h1", "h2", "h3", "h4", "h5", "h6", "pre", "blockquote", "ul", "ol", "li", "table", "tr", "td", "th"}
    | set(_INLINE_MARK)
    | {"title"}
)  # fmt: skip
_WS = re.compile(r"\s+")


class _Buffer:
    """Text being written, tracking the end so blank lines and spaces never pile up."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.newlines = 0  # newlines at the end
        self.space = False  # ends with a space
        self.empty = True

    def text(self, s: str) -> None:
        """Inline text whose whitespace is already collapsed."""
        if self.empty or self.newlines:
            s = s.lstrip(" ")
        elif self.space and s.startswith(" "):
            s = s[1:]
        if not s:
            return
        self.parts.append(s)
        self.empty, self.newlines, self.space = False, 0, s.endswith(" ")

    def raw(self, s: str) -> None:
        """Text written as it is (preformatted code, rendered blocks)."""
        if not s:
            return
        if self.space and s.startswith("\n"):
            self._strip_space()
        self.parts.append(s)
        body = s.rstrip("\n")
        self.newlines = len(s) - len(body) + (self.newlines if not body else 0)
        self.empty, self.space = False, s.endswith(" ")

    def newline(self, count: int = 1) -> None:
        if self.empty:
            return
        self._strip_space()
        if count > self.newlines:
            self.parts.append("\n" * (count - self.newlines))
            self.newlines = count

    def _strip_space(self) -> None:
        if self.space and self.parts:
            self.parts[-1] = self.parts[-1].rstrip(" ")
            self.space = False

    def value(self) -> str:
        return "".join(self.parts).strip("\n")


class _Frame:
    def __init__(self, tag: str, attrs: dict[str, str | None]) -> None:
        self.tag = tag
        self.attrs = attrs
        self.buf = _Buffer()
        self.rows: list[tuple[list[str], bool]] = []  # table: (cells, is_header)
        self.cells: list[str] = []  # tr
        self.header = False  # tr: holds a <th>
        self.count = 0  # ol: items so far
        self.lead = False  # inline element whose text starts with a space: keep it outside the marks


class _Converter(HTMLParser):
    def __init__(self, base_url: str | None) -> None:
        super().__init__(convert_charrefs=True)
        self.base_url = base_url
        self.root = _Frame("#root", {})
        self.stack: list[_Frame] = [self.root]
        self.skip: list[str] = []
        self.title = ""

    # ------------------------------------------------------------------ helpers

    @property
    def buf(self) -> _Buffer:
        return self.stack[-1].buf

    def _in(self, tag: str) -> bool:
        return any(f.tag == tag for f in self.stack)

    def _close_to(self, tag: str, stop: frozenset[str] = frozenset()) -> None:
        """Close open frames down to and including the innermost ``tag`` unless a ``stop`` frame comes first."""
        for i in range(len(self.stack) - 1, 0, -1):
            found = self.stack[i].tag
            if found == tag:
                while len(self.stack) > i:
                    self._pop()
                return
            if found in stop:
                return

    def _link(self, url: str | None) -> str | None:
        if not url:
            return None
        url = url.strip()
        if url.lower().startswith(("javascript:", "data:")):
            return None
        return urljoin(self.base_url, url) if self.base_url else url

    # ------------------------------------------------------------------ parser events

    def handle_starttag(self, tag: str, attrs_list: list[tuple[str, str | None]]) -> None:
        if self.skip:
            if tag == self.skip[-1]:
                self.skip.append(tag)
            return
        if tag in _SKIP:
            self.skip.append(tag)
            return
        attrs = dict(attrs_list)
        if tag in ("li",):
            self._close_to("li", stop=frozenset({"ul", "ol"}))
        elif tag in ("td", "th"):
            self._close_to("td", stop=frozenset({"tr", "table"}))
            self._close_to("th", stop=frozenset({"tr", "table"}))
        elif tag == "tr":
            self._close_to("tr", stop=frozenset({"table"}))
        if tag in _VOID:
            self._void(tag, attrs)
        elif tag in _FRAMES:
            if tag == "code" and self._in("pre"):
                return
            if tag == "title" and self.title:
                return
            self.stack.append(_Frame(tag, attrs))
        elif tag in _PARAGRAPH:
            self.buf.newline(2)
        elif tag in _LINE:
            self.buf.newline(1)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        if tag not in _VOID:
            self.handle_endtag(tag)

    def _void(self, tag: str, attrs: dict[str, str | None]) -> None:
        if tag == "br":
            if self._in("pre"):
                self.buf.raw("\n")
            else:
                self.buf.newline(1)
        elif tag == "hr":
            self.buf.newline(2)
            self.buf.raw("---")
            self.buf.newline(2)
        elif tag == "img":
            alt = _WS.sub(" ", attrs.get("alt") or "").strip()
            src = self._link(attrs.get("src"))
            if src:
                self.buf.text(f"![{alt}]({src})")
            elif alt:
                self.buf.text(alt)

    def handle_endtag(self, tag: str) -> None:
        if self.skip:
            if tag == self.skip[-1]:
                self.skip.pop()
            return
        if tag in _FRAMES:
            if tag in ("ul", "ol", "table"):
                self._close_to(tag)
            else:
                self._close_to(tag, stop=frozenset({"ul", "ol", "table"} - {tag}))
        elif tag in _PARAGRAPH:
            self.buf.newline(2)
        elif tag in _LINE:
            self.buf.newline(1)

    def handle_data(self, data: str) -> None:
        if self.skip:
            return
        if self._in("pre"):
            self.buf.raw(data)
            return
        top = self.stack[-1]
        if top.buf.empty and data[:1].isspace():
            top.lead = True
        top.buf.text(_WS.sub(" ", data))

    # ------------------------------------------------------------------ rendering a closed frame

    def _pop(self) -> None:
        frame = self.stack.pop()
        parent = self.stack[-1]
        out = parent.buf
        tag = frame.tag
        inner = frame.buf.value()
        if tag in _INLINE_MARK:
            mark = _INLINE_MARK[tag]
            text = _one_line(inner)
            if text:
                out.text(_spaced(frame, f"{mark}{text}{mark}"))
        elif tag == "a":
            text, href = _one_line(inner), self._link(frame.attrs.get("href"))
            if text and href and not href.startswith("#"):
                out.text(_spaced(frame, f"[{text}]({href})"))
            elif text:
                out.text(_spaced(frame, text))
        elif tag[0] == "h" and tag[1:].isdigit():
            text = _one_line(inner)
            if text:
                out.newline(2)
                out.raw("#" * int(tag[1]) + " " + text)
                out.newline(2)
        elif tag == "title":
            self.title = _one_line(inner)
        elif tag == "pre":
            code = "\n".join(line.rstrip() for line in "".join(frame.buf.parts).strip("\n").split("\n"))
            out.newline(2)
            out.raw(f"```\n{code}\n```")
            out.newline(2)
        elif tag == "blockquote":
            if inner:
                out.newline(2)
                out.raw("\n".join(f"> {line}".rstrip() for line in inner.split("\n")))
                out.newline(2)
        elif tag in ("ul", "ol"):
            if inner:
                nested = any(f.tag == "li" for f in self.stack)
                out.newline(1 if nested else 2)
                out.raw(inner)
                out.newline(1 if nested else 2)
        elif tag == "li":
            owner = parent if parent.tag in ("ul", "ol") else None
            if owner is not None:
                owner.count += 1
            marker = f"{owner.count}. " if owner is not None and owner.tag == "ol" else "- "
            pad = " " * len(marker)
            lines = inner.split("\n") if inner else [""]
            body = "\n".join([lines[0]] + [pad + line if line else "" for line in lines[1:]])
            out.newline(1)
            out.raw(marker + body)
            out.newline(1)
        elif tag in ("td", "th"):
            cell = _one_line(inner).replace("|", "\\|")
            if parent.tag == "tr":
                parent.cells.append(cell)
                parent.header = parent.header or tag == "th"
            else:
                out.text(cell + " ")
        elif tag == "tr":
            if parent.tag == "table":
                if frame.cells:
                    parent.rows.append((frame.cells, frame.header))
            elif frame.cells:
                out.newline(1)
                out.raw("| " + " | ".join(frame.cells) + " |")
                out.newline(1)
        elif tag == "table":
            rendered = _render_table(frame.rows, loose=inner)
            if rendered:
                out.newline(2)
                out.raw(rendered)
                out.newline(2)

    def finish(self) -> str:
        self.close()
        while len(self.stack) > 1:
            self._pop()
        body = self.root.buf.value()
        if self.title and not body.startswith(self.title) and not body.startswith("# " + self.title):
            body = f"{self.title}\n\n{body}" if body else self.title
        return re.sub(r"\n{3,}", "\n\n", body).strip()


def _spaced(frame: _Frame, text: str) -> str:
    """Put spaces that were inside an inline element (``<b> x </b>``) back outside its marks."""
    return (" " if frame.lead else "") + text + (" " if frame.buf.space else "")


def _one_line(text: str) -> str:
    return _WS.sub(" ", text).strip()


def _render_table(rows: list[tuple[list[str], bool]], loose: str) -> str:
    """A Markdown table; the first row is the header (as markdownify does when no <th> row exists)."""
    if not rows:
        return loose
    width = max(len(cells) for cells, _ in rows)
    lines = []
    for i, (cells, _header) in enumerate(rows):
        padded = cells + [""] * (width - len(cells))
        lines.append("| " + " | ".join(padded) + " |")
        if i == 0:
            lines.append("|" + " --- |" * width)
    if loose:
        lines.insert(0, loose)
    return "\n".join(lines)


def html_to_markdown(html: str, base_url: str | None = None) -> str:
    """Convert an HTML document or fragment to Markdown; relative links resolve against ``base_url``."""
    converter = _Converter(base_url)
    converter.feed(html)
    return converter.finish()
