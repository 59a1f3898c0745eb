"""Markdown headings as locations: ``#``…``######`` (ATX) and underlined (setext) headings give
{"heading": "H1 › H2"} at the offset where each section starts (its heading line). The text itself
is indexed unchanged. Fenced code blocks, indented code and YAML front matter hold no headings."""

from __future__ import annotations

import re

from .text import HeadingPath, Location

_ATX = re.compile(r" {0,3}(#{1,6})(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*")
_SETEXT = re.compile(r" {0,3}(=+|-+)[ \t]*")
_FENCE = re.compile(r" {0,3}(`{3,}|~{3,})")
_LINE = re.compile(r"([^\r\n]*)(?:\r\n|\r|\n|$)")  # CommonMark's line ends, not str.splitlines
_NOT_PARAGRAPH = re.compile(r" {0,3}([-*+>|]|\d{1,9}[.)])([ \t]|$)| {4}|\t")  # list, quote, table, code


def headings(text: str) -> list[tuple[int, Location]]:
    """(offset of the heading line, {"heading": path}) for each heading of ``text``."""
    path = HeadingPath()
    found: list[tuple[int, Location]] = []
    paragraph: tuple[int, list[str]] | None = None  # (offset, lines) of the open paragraph
    fence = ""
    for offset, line in _lines(text):
        if fence:
            fence = "" if line.strip().startswith(fence) and not line.strip().strip(fence[0]) else fence
            continue
        opened = _FENCE.match(line)
        atx = _ATX.fullmatch(line)
        setext = _SETEXT.fullmatch(line)
        if opened:
            fence, paragraph = opened.group(1), None
        elif atx:
            if atx.group(2):
                found.append((offset, {"heading": path.enter(len(atx.group(1)), atx.group(2))}))
            paragraph = None
        elif setext and paragraph is not None:
            level = 1 if setext.group(1)[0] == "=" else 2
            found.append((paragraph[0], {"heading": path.enter(level, " ".join(paragraph[1]))}))
            paragraph = None
        elif not line.strip():
            paragraph = None
        elif paragraph is not None:
            paragraph[1].append(line.strip())
        elif not _NOT_PARAGRAPH.match(line):
            paragraph = (offset, [line.strip()])
    return found


def _lines(text: str) -> list[tuple[int, str]]:
    """(offset, line without its end) of each line, YAML front matter left out."""
    out = [(m.start(), m.group(1)) for m in _LINE.finditer(text) if m.end() > m.start()]
    if out and out[0][1].rstrip() == "---":
        end = next((i for i, (_, line) in enumerate(out[1:], 1) if line.rstrip() in ("---", "...")), None)
        if end is not None:
            return out[end + 1 :]
    return out
