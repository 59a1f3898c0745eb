"""Word (.docx) → text with {"heading": "H1 › H2"} locations. The only python-docx import.

The body is read in order: each paragraph is a block, each table row a block of its cells (merged
cells once). Headings are the paragraphs whose style is "Heading N" (Word keeps that name in
every language: a Chinese "标题 1" is "heading 1" inside the file) or that carry an outline level;
the "Title" style is text without a location. Text boxes, headers, footers, footnotes and
comments are not read. The zip is size-checked before python-docx opens it (``archive``)."""

from __future__ import annotations

import re
from pathlib import Path

import docx
from docx.table import Table
from docx.text.paragraph import Paragraph

from ..errors import DocumentEmptyError
from .archive import open_zip
from .text import Extracted, HeadingPath, TextBuilder

_HEADING_STYLE = re.compile(r"heading ([1-9])")


def read(path: Path) -> Extracted:
    """The body's paragraphs and table rows in order, with the headings' locations."""
    open_zip(path, "Word file").close()  # refuses a zip bomb before python-docx unpacks anything
    document = docx.Document(str(path))
    builder = TextBuilder()
    headings = HeadingPath()
    for block in document.iter_inner_content():
        if isinstance(block, Table):
            for row in _rows(block):
                builder.add(row)
            continue
        level = _level(block)
        if level is not None and block.text.strip():
            builder.mark({"heading": headings.enter(level, block.text)})
        builder.add(block.text)
    extracted = builder.build()
    if not extracted.text.strip():
        raise DocumentEmptyError("Word file without text")
    return extracted


def _level(paragraph: Paragraph) -> int | None:
    """1–9 for a heading paragraph, None for body text."""
    style = paragraph.style
    match = _HEADING_STYLE.fullmatch((style.name or "").lower()) if style is not None else None
    if match:
        return int(match.group(1))
    # an outline level set on the paragraph (python-docx has no property for it), or on its style
    for element in (paragraph._p, style.element if style is not None else None):
        values = element.xpath("./w:pPr/w:outlineLvl/@w:val") if element is not None else []
        if values and values[0].isdigit() and int(values[0]) < 9:
            return int(values[0]) + 1
    return None


def _rows(table: Table) -> list[str]:
    """Each row's cell texts joined by spaces; a merged cell counts once (python-docx repeats it
    in every grid column and row it spans)."""
    seen: dict[int, object] = {}  # id → the cell element, kept alive so that ids stay unique
    rows = []
    for row in table.rows:
        cells = []
        for cell in row.cells:
            if id(cell._tc) not in seen:
                seen[id(cell._tc)] = cell._tc
                cells.append(" ".join(cell.text.split()))
        rows.append(" ".join(c for c in cells if c))
    return rows
