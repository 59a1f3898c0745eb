"""HTML (a saved web page, an EPUB chapter) → its main text and heading locations. The only
selectolax import: lexbor, a browser-grade HTML5 parser (benchmarks/bench_readers.py: lxml's
parser dropped the text past 255 levels of nesting, which unclosed tags of old pages reach).

What a reader of the page would call its text: scripts, styles, form controls, navigation, site
headers and footers, sidebars, cookie banners and hidden parts are dropped; a page with a
``<main>`` (or a single ``<article>``) is read from there. Headings (h1–h6) give {"heading": "H1 › H2"} where they
start; paragraphs, list items and table rows become blocks; the source's own line breaks inside a
paragraph are joined the CJK way (``text.join_lines``)."""

from __future__ import annotations

import re
from typing import Any

from selectolax.lexbor import LexborHTMLParser

from .text import Extracted, HeadingPath, Location, TextBuilder, join_lines

# never text for a reader; not <form>: ASP.NET pages wrap the whole page in one
DROPPED = ["script", "style", "noscript", "template", "svg", "math", "canvas", "iframe", "object", "embed",
           "button", "select", "textarea", "nav", "aside", "dialog", "menu", "footer"]
BLOCKS = frozenset({
    "address", "article", "blockquote", "body", "caption", "center", "dd", "details", "div", "dl", "dt",
    "fieldset", "figcaption", "figure", "header", "hgroup", "hr", "html", "legend", "li", "main", "ol", "p",
    "pre", "section", "summary", "table", "tbody", "tfoot", "thead", "tr", "ul",
})
HEADINGS = {f"h{n}": n for n in range(1, 7)}
CELLS = frozenset({"td", "th"})
BOILERPLATE_ROLES = frozenset({"navigation", "banner", "contentinfo", "complementary", "search", "menu",
                               "menubar", "dialog", "alert", "alertdialog"})
# class or id words of page furniture (matched as whole words of "site-nav", "cookie_banner"…)
BOILERPLATE_WORDS = frozenset({
    "nav", "navbar", "navigation", "menu", "sidebar", "breadcrumb", "breadcrumbs", "footer", "cookie",
    "cookies", "consent", "banner", "advert", "advertisement", "ads", "share", "sharing", "social", "related",
    "comments", "popup", "modal", "subscribe", "newsletter", "toolbar", "pagination", "pager", "masthead",
    "topbar", "skiplink",
})
_WORDS = re.compile(r"[^a-z0-9]+")
_HIDDEN_STYLE = re.compile(r"display\s*:\s*none|visibility\s*:\s*hidden")
Page = Any  # a parsed page; other modules pass it through without looking inside
Node = Any


def read(text: str) -> Extracted:
    """The main text of an HTML page and its heading locations."""
    builder = TextBuilder()
    extract(parse(text), builder)
    return builder.build()


def parse(text: str) -> Page:
    """Parse HTML or XHTML as a browser does, the parts that never hold text removed."""
    page = LexborHTMLParser(text)
    page.strip_tags(DROPPED)
    return page


def title(page: Page) -> str:
    """The page's first heading, else its <title>: what to call it when nothing else says."""
    for selector in ("h1, h2, h3", "title"):
        for node in page.css(selector):
            found = _flat(node.text(deep=True))
            if found:
                return found
    return ""


def extract(page: Page, builder: TextBuilder, context: Location | None = None) -> None:
    """Add the page's blocks to ``builder``; each heading is marked as {**context, "heading": path}."""
    _Walk(builder, context or {}).run(_content_root(page))


def _content_root(page: Page) -> Node:
    """<main> (or role=main), else the only <article>, else <body>: where the page's own text is."""
    for candidates in (page.css("main, [role=main]"), page.css("article")):
        single = len(candidates) == 1 or (candidates and candidates[0].tag == "main")
        if single and _flat(candidates[0].text(deep=True)):
            return candidates[0]
    return page.body if page.body is not None else page.root


class _Walk:
    """One pass over the content root, in document order, without recursion (pages nest deep)."""

    def __init__(self, builder: TextBuilder, context: Location) -> None:
        self.builder, self.context, self.path = builder, context, HeadingPath()
        self.lines: list[list[str]] = [[]]  # the open block: its lines (<br>), each of text pieces
        self.pre = 0

    def run(self, root: Node) -> None:
        total = len(root.text(deep=True))
        stack: list[tuple[Node, bool]] = [(root, False)]
        while stack:
            node, closing = stack.pop()
            tag = node.tag
            if tag == "-text":
                self.lines[-1].append(node.text_content or "")
            elif closing:
                self.close(tag)
            elif tag.startswith("-") or (node.mem_id != root.mem_id and _boilerplate(node, tag, total)):
                continue  # a comment, or page furniture
            elif tag in HEADINGS:
                self.heading(HEADINGS[tag], node)
            else:
                self.open(tag)
                stack.append((node, True))
                stack.extend((child, False) for child in reversed(list(node.iter(include_text=True))))
        self.flush()

    def open(self, tag: str) -> None:
        if tag in BLOCKS:
            self.flush()
        elif tag == "br":
            self.lines.append([])
        self.pre += tag == "pre"

    def close(self, tag: str) -> None:
        if tag in BLOCKS:
            self.flush()
        elif tag in CELLS:
            self.lines[-1].append(" ")
        self.pre -= tag == "pre"

    def heading(self, level: int, node: Node) -> None:
        self.flush()
        text = _flat(node.text(deep=True))
        if text:
            self.builder.mark({**self.context, "heading": self.path.enter(level, text)})
            self.builder.add(text)

    def flush(self) -> None:
        """End the open block: its text pieces joined, source line breaks joined the CJK way."""
        if self.pre:
            block = "\n".join("".join(line).rstrip() for line in self.lines)
        else:
            block = "\n".join(filter(None, (join_lines("".join(line).split("\n")) for line in self.lines)))
        self.builder.add(block)
        self.lines = [[]]


def _boilerplate(node: Node, tag: str, total: int) -> bool:
    """Page furniture, not text: a site header, a hidden part, a navigation role, or a class/id
    naming furniture — unless that element holds the page's h1 or most of its text."""
    attrs = {key: value or "" for key, value in node.attributes.items()}
    if "hidden" in attrs or attrs.get("aria-hidden") == "true" or _HIDDEN_STYLE.search(attrs.get("style", "")):
        return True
    if attrs.get("role", "").lower() in BOILERPLATE_ROLES:
        return True
    if tag == "header" and node.css_first("h1, h2") is None:
        return True
    words = set(_WORDS.split(f"{attrs.get('class', '')} {attrs.get('id', '')}".lower()))
    if words & BOILERPLATE_WORDS and tag not in ("body", "main", "article"):
        return node.css_first("h1") is None and 2 * len(node.text(deep=True)) < total
    return False


def _flat(text: str) -> str:
    return join_lines(text.split("\n"))
