"""PDF → text with a {"page": n} location where each page's text starts. The only pypdfium2
import (PDFium, the engine of Chrome's PDF viewer: benchmarks/bench_readers.py measured it fastest
of the candidates, and it spaces CJK text correctly).

PDFium gives each page's text line by line. Lines are grouped into paragraphs by their geometry —
a vertical gap clearly wider than the page's usual one, or a sentence end followed by an indented
line, ends a paragraph — and the lines of a paragraph are joined the CJK way (nothing between two CJK
characters, a space between words: ``text.join_lines``). No OCR: a scanned page has no text."""

from __future__ import annotations

import itertools
import re
import statistics
from dataclasses import dataclass
from pathlib import Path

import pypdfium2
import pypdfium2.raw

from ..errors import DocumentEmptyError, DocumentReadError
from .text import Extracted, TextBuilder, join_lines

_SENTENCE_END = re.compile(r"[。！？.!?:：…;；][”’\"」』)）]*$")
EOF_WINDOW = 4096  # where the %%EOF marker must be: the spec says at the end, readers allow trailing bytes
_CONTROL = re.compile(r"[\x00\x01\x03-\x08\x0b-\x1f\x7f\ufffe\uffff]")


@dataclass
class Line:
    text: str
    box: tuple[float, float, float, float] | None  # left, bottom, right, top (PDF points, y up)


def read(path: Path) -> Extracted:
    """The text of every page, paragraphs separated by blank lines, with page locations."""
    document = _open(path)
    builder = TextBuilder()
    try:
        for number in range(len(document)):
            page = document[number]
            textpage = page.get_textpage()
            builder.mark({"page": number + 1})
            for paragraph in paragraphs(lines(textpage)):
                builder.add(join_lines(paragraph))
            textpage.close()
            page.close()
    finally:
        document.close()
    extracted = builder.build()
    if not extracted.text.strip():
        raise DocumentEmptyError("PDF without a text layer (a scan? textsearch does no OCR)")
    return extracted


def _open(path: Path) -> pypdfium2.PdfDocument:
    """The document, or DocumentReadError. A file that does not end in %%EOF is refused as
    truncated (a download or copy not finished yet) even where PDFium could read its first
    pages: indexing part of it would replace the whole version the index holds."""
    with path.open("rb") as file:
        if b"%PDF-" not in file.read(1024):
            raise DocumentReadError("not a PDF (no %PDF- header)")
        file.seek(max(0, path.stat().st_size - EOF_WINDOW))
        if b"%%EOF" not in file.read():
            raise DocumentReadError("truncated PDF (it does not end with %%EOF: a copy or download not finished?)")
    try:
        return pypdfium2.PdfDocument(str(path))
    except pypdfium2.PdfiumError as exc:
        code = getattr(exc, "err_code", None)
        if code == pypdfium2.raw.FPDF_ERR_PASSWORD:
            raise DocumentReadError("password-protected PDF: remove the password to index it") from exc
        if code == pypdfium2.raw.FPDF_ERR_SECURITY:
            raise DocumentReadError("PDF with an unsupported security handler (DRM?)") from exc
        raise DocumentReadError(f"damaged PDF: {str(exc).rstrip('.')}") from exc


def lines(textpage: pypdfium2.PdfTextPage) -> list[Line]:
    """The page's text lines in PDFium's reading order, each with its box (None when PDFium's
    text and its characters cannot be matched)."""
    text = textpage.get_text_range()
    found: list[Line] = []
    position = 0
    for raw in text.split("\n"):
        line = _CONTROL.sub("", raw.rstrip("\r").replace("\x02", "\u00ad"))  # \x02: PDFium's soft hyphen
        if line.strip():
            first = position + len(raw) - len(raw.lstrip())
            last = position + len(raw.rstrip()) - 1
            found.append(Line(line, _box(textpage, first, last)))
        position += len(raw) + 1
    return found


def _box(textpage: pypdfium2.PdfTextPage, first: int, last: int) -> tuple[float, float, float, float] | None:
    """The box from the first to the last character of a line (text indices → PDFium's chars)."""
    start = pypdfium2.raw.FPDFText_GetCharIndexFromTextIndex(textpage.raw, first)
    end = pypdfium2.raw.FPDFText_GetCharIndexFromTextIndex(textpage.raw, last)
    if start < 0 or end < 0:
        return None
    left, bottom1, _, top1 = textpage.get_charbox(start, loose=True)
    _, bottom2, right, top2 = textpage.get_charbox(end, loose=True)
    return left, min(bottom1, bottom2), right, max(top1, top2)


def paragraphs(page: list[Line]) -> list[list[str]]:
    """The page's lines grouped into paragraphs. A paragraph ends where the gap to the next line
    is wider than the page's usual gap by more than half a line, where the next line starts
    above this one (a new column), or where a sentence ends and the next line is indented (a
    first-line indent: Chinese paragraphs often have no gap). Lines without a box stay in the
    paragraph they follow."""
    boxed = [line.box for line in page if line.box is not None]
    if not boxed:
        return [[line.text for line in page]] if page else []
    gaps = [a[1] - b[3] for a, b in itertools.pairwise(boxed)]
    usual = statistics.median(gaps) if gaps else 0.0
    margin = statistics.median_low(box[0] for box in boxed)  # where most lines start
    groups: list[list[str]] = []
    previous: Line | None = None
    for line in page:
        if previous is None or _breaks(previous, line, usual, margin):
            groups.append([])
        groups[-1].append(line.text)
        previous = line if line.box is not None else previous
    return groups


def _breaks(above: Line, line: Line, usual: float, margin: float) -> bool:
    if above.box is None or line.box is None:
        return False
    height = min(above.box[3] - above.box[1], line.box[3] - line.box[1])
    gap = above.box[1] - line.box[3]
    if gap > usual + 0.5 * height or gap < -0.5 * height:
        return True
    return bool(_SENTENCE_END.search(above.text.rstrip())) and line.box[0] > margin + 0.8 * height
