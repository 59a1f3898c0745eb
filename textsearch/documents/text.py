"""The text a document reader builds, and where each part of it comes from.

Every reader (PDF, Word, HTML, EPUB) hands its blocks — paragraphs, headings, table rows — to a
``TextBuilder`` in reading order: blocks are joined by a blank line, and a location marked before a
block ({"page": 3}, {"heading": "第一章 › 背景"}) is recorded at the offset where that block starts.
Lines that a layout broke inside a sentence (a PDF's lines, an HTML source's line breaks) are
joined the way the script wants: nothing between two CJK characters, a space between two words.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

Location = dict[str, Any]
PARAGRAPH = "\n\n"  # between blocks; the passage splitter ends a sentence there too
HEADING_SEPARATOR = " › "
MAX_HEADING = 100  # characters of one heading in a location; longer ones are cut, with "…"

# Scripts written without spaces between words: CJK ideographs (with extensions and compatibility
# forms), kana, bopomofo, CJK symbols and punctuation (，。「」), and full-width forms (！？：).
# Hangul is not here: Korean puts spaces between words.
_WIDE = re.compile(
    "[\u2e80-\u2fdf\u3000-\u303f\u3040-\u30ff\u3100-\u312f\u3190-\u31ff\u3400-\u4dbf\u4e00-\u9fff"
    "\uf900-\ufaff\ufe30-\ufe4f\uff00-\uffef\U00020000-\U0003134f]"
)
_SPACES = re.compile(r"[ \t\u00a0\u2000-\u200b\u202f\u205f]+")


def is_wide(char: str) -> bool:
    """Whether ``char`` belongs to a script written without spaces between words (CJK)."""
    return bool(_WIDE.match(char))


def join_lines(lines: Iterable[str]) -> str:
    """Join the lines of one paragraph as a reader would see them: nothing where a CJK character
    meets the break (on either side), nothing after a hyphen or soft hyphen ending a word, one
    space between anything else. Runs of spaces inside a line become one space."""
    out: list[str] = []
    last = ""
    for raw in lines:
        line = _SPACES.sub(" ", raw).strip()
        if not line:
            continue
        if last.endswith("\u00ad"):  # a soft hyphen: the word continues on the next line
            out[-1] = out[-1][:-1]
            last = last[:-1]
        elif last and not _glued(last, line):
            out.append(" ")
        out.append(line)
        last = line
    return "".join(out)


def _glued(before: str, after: str) -> bool:
    """No space at the break between two lines."""
    if is_wide(before[-1]) or is_wide(after[0]):
        return True
    return before[-1] == "-" and len(before) > 1 and before[-2].isalpha() and after[0].isalpha()


@dataclass
class Extracted:
    """A reader's result: the document text, and (offset, location) where each located part
    starts, sorted by offset (``Document.locations``)."""

    text: str
    locations: list[tuple[int, Location]] = field(default_factory=list)


class TextBuilder:
    """Blocks in reading order, joined by blank lines, with the locations where parts start.

    ``mark(location)`` applies to the next non-empty block: a page or chapter without text leaves
    no location, and a chapter mark followed by its first heading's mark keeps the heading's (the
    later one), so no two locations share an offset."""

    def __init__(self) -> None:
        self._parts: list[str] = []
        self._length = 0
        self._pending: Location | None = None
        self.locations: list[tuple[int, Location]] = []

    def mark(self, location: Location) -> None:
        self._pending = dict(location)

    def add(self, block: str) -> None:
        block = block.strip()
        if not block:
            return
        if self._parts:
            self._parts.append(PARAGRAPH)
            self._length += len(PARAGRAPH)
        if self._pending is not None:
            self.locations.append((self._length, self._pending))
            self._pending = None
        self._parts.append(block)
        self._length += len(block)

    def build(self) -> Extracted:
        return Extracted("".join(self._parts), list(self.locations))


class HeadingPath:
    """The chain of headings above the current point: entering a level-2 heading under a level-1
    one gives "H1 › H2"; a new level-1 heading drops both."""

    def __init__(self) -> None:
        self._open: list[tuple[int, str]] = []

    def enter(self, level: int, title: str) -> str:
        title = " ".join(title.split())
        if len(title) > MAX_HEADING:  # a heading left open swallows the text after it (HTML)
            title = title[: MAX_HEADING - 1] + "…"
        self._open = [(lvl, t) for lvl, t in self._open if lvl < level]
        self._open.append((level, title))
        return HEADING_SEPARATOR.join(t for _, t in self._open)
