"""Which reader reads which file type, and how a reader's failure reaches the corpus.

Text-like files (``.txt``, ``.md``, ``.html``…) are decoded by the corpus like any text file and
then read here from their text: Markdown keeps its text and gains heading locations, HTML becomes
its main text. Binary documents (``.pdf``, ``.docx``, ``.epub``) are read from their path by a
module of their own, each the only importer of its library, imported on first use. Whatever a
library raises on a malformed file becomes a ``DocumentReadError`` naming the file type, so one
bad file never stops a run."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from ..errors import DISTRIBUTION, DocumentEmptyError, DocumentReadError, MissingExtraError
from . import markdown
from .text import Extracted

BINARY = {".pdf": "PDF", ".docx": "Word file", ".epub": "EPUB"}  # suffix → what the messages call it
MARKUP = {".html", ".htm", ".xhtml"}
LIBRARIES = {".pdf": "pypdfium2", ".docx": "python-docx", ".epub": "selectolax", **dict.fromkeys(MARKUP, "selectolax")}
# A binary document holds much less text per byte than a text file (fonts, images, compression):
# its size limit is this many times the text files' (--max-file-mb): 100 MB by default.
BINARY_SIZE_FACTOR = 10
T = TypeVar("T")
REFUSED = {".doc": "Word 97–2003 file: save it as .docx to index it"}  # instead of "unsupported"


def from_text(suffix: str, text: str) -> Extracted:
    """The document of a decoded text file: as it is (``.txt``), with its headings (``.md``), or
    its main text (HTML)."""
    if suffix in MARKUP:
        try:  # selectolax loads only when a page is read: the query path imports the corpus
            from . import html
        except ImportError as exc:
            raise _missing(suffix, exc) from exc
        return _guarded("HTML page", html.read, text)
    if suffix == ".md":
        return Extracted(text, markdown.headings(text))
    return Extracted(text)


def read(path: Path, suffix: str) -> Extracted:
    """The document of a PDF, Word or EPUB file. Raises DocumentReadError (the file cannot be read
    this time), DocumentEmptyError (it holds no text), MissingExtraError (its library is not
    installed) or OSError."""
    try:
        reader = _reader(suffix)
    except ImportError as exc:
        raise _missing(suffix, exc) from exc
    return _guarded(BINARY[suffix], reader, path)


def _guarded(kind: str, reader: Callable[[T], Extracted], source: T) -> Extracted:
    """``reader(source)``, any error of its library on a malformed file turned into a
    DocumentReadError naming ``kind`` (our own errors and OSError pass as they are)."""
    try:
        return reader(source)
    except (DocumentReadError, DocumentEmptyError, OSError):
        raise
    except MemoryError as exc:
        raise DocumentReadError(f"{kind} too large to read in memory") from exc
    except Exception as exc:  # any library error on a malformed file is this file's problem
        first_line = (str(exc).strip().splitlines() or [""])[0][:200]
        raise DocumentReadError(f"damaged {kind} ({type(exc).__name__}: {first_line})") from exc


def _missing(suffix: str, exc: ImportError) -> MissingExtraError:
    return MissingExtraError(f"reading {suffix} files needs {LIBRARIES[suffix]}, which does not import "
                             f"({exc}) — pip install '{DISTRIBUTION}' brings it")


def _reader(suffix: str) -> Callable[[Path], Extracted]:
    if suffix == ".pdf":
        from . import pdf

        return pdf.read
    if suffix == ".docx":
        from . import word

        return word.read
    from . import epub

    return epub.read
