"""Turn a folder into documents, and give a document's passages their locations.

- walk a folder (sorted, hidden entries ignored, symlinks followed only inside the root);
- decode each file (UTF-8 with or without BOM, UTF-16 with BOM, GB18030/GBK), refusing binary;
- ``.txt``/``.md`` give one document per file; ``.jsonl``/``.csv``/``.tsv`` one per row;
- PDF, Word, HTML and EPUB files one document each, with locations (``readers``: a module per
  format); a document file that fails to read keeps what the index holds of it;
- ``locate`` gives each passage where it starts: page, heading, line.

Splitting text into passages and sentences is ``split.py``; its names stay importable from here.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
import json
import logging
import os
import re
import unicodedata
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import CorpusError, DocumentEmptyError, DocumentReadError, MissingExtraError
from . import readers
from .split import (  # noqa: F401 - re-exported: they were imported from here before split.py
    CountTokens,
    Passage,
    sentence_spans,
    split_many,
    split_passages,
    with_sentences,
)
from .text import Extracted, Location

logger = logging.getLogger(__name__)

TEXT_SUFFIXES = {".txt", ".md"}
TABLE_SUFFIXES = {".jsonl", ".csv", ".tsv"}
_LINE_END = re.compile(r"\r\n?|\n")


@dataclass
class Document:
    """One searchable unit: a text file, or one row of a table file, or one dict given to add()."""

    id: str
    text: str
    metadata: dict[str, Any] = field(default_factory=dict)
    source: str | None = None  # file path relative to the corpus root, None when added by API
    # where the text comes from, for the hits: (character offset where a part starts, where that
    # is: {"page": 3}, {"heading": "第一章 › 背景"}…), sorted by offset; a reader fills it
    locations: list[tuple[int, Location]] = field(default_factory=list, compare=False)

    @property
    def content_hash(self) -> str:
        payload = json.dumps([self.text, self.metadata], ensure_ascii=False, sort_keys=True)
        return hashlib.sha256(payload.encode("utf-8")).hexdigest()

    @classmethod
    def from_dict(cls, row: dict[str, Any]) -> Document:
        """``{"id", "text", **metadata}``; a nested ``metadata`` dict is merged in."""
        if not isinstance(row, dict):
            raise TypeError(f"a document must be a dict with 'id' and 'text', got {type(row).__name__}")
        extra = {k: v for k, v in row.items() if k not in ("id", "text", "metadata")}
        metadata = {**(row.get("metadata") or {}), **extra}
        metadata.setdefault("lang", detect_lang(str(row.get("text", ""))))
        return cls(id=str(row.get("id", "")), text=str(row.get("text", "")), metadata=metadata)


@dataclass
class Skipped:
    path: str
    reason: str


class UndecodableError(ValueError):
    pass


def detect_lang(text: str) -> str:
    """'zh' when Han characters make up at least a fifth of the letters, else 'en'."""
    han = sum(1 for ch in text if "\u4e00" <= ch <= "\u9fff" or "\u3400" <= ch <= "\u4dbf")
    letters = sum(1 for ch in text if ch.isalpha())
    return "zh" if letters and han * 5 >= letters else "en"


def _odd_share(text: str, categories: tuple[str, ...]) -> float:
    sample = text[:20000]
    if not sample:
        return 0.0
    odd = sum(
        1 for ch in sample if unicodedata.category(ch) in categories and ch not in "\t\n\r\f\v"
    )
    return odd / len(sample)


def decode_text(data: bytes) -> str:
    """Decode bytes of a text file, or raise UndecodableError for binary and unknown encodings."""
    if data.startswith(codecs.BOM_UTF8):
        encodings = ["utf-8-sig"]
    elif data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        encodings = ["utf-16"]
    elif b"\x00" in data[:8192]:
        raise UndecodableError("binary file (NUL bytes)")
    else:
        encodings = ["utf-8", "gb18030"]
    for encoding in encodings:
        try:
            text = data.decode(encoding)
        except UnicodeDecodeError:
            continue
        if _odd_share(text, ("Cc",)) > 0.01:
            raise UndecodableError("binary file (control characters)")
        if encoding == "gb18030" and _odd_share(text, ("Co", "Cn")) > 0.01:
            break  # GB18030 accepts many byte strings; private-use output means it was not GB text
        return text
    raise UndecodableError("not valid UTF-8, UTF-16 (with BOM) or GB18030/GBK text")


class Corpus:
    """A folder of documents. Iterate ``documents()``; afterwards ``skipped`` lists what was not read."""

    def __init__(
        self,
        root: str | os.PathLike[str],
        *,
        id_field: str = "id",
        text_field: str = "text",
        max_file_bytes: int = 10_000_000,
        known_files: dict[str, tuple[int, int]] | None = None,
        max_document_bytes: int | None = None,
    ) -> None:
        self.root = Path(root)
        if not self.root.exists():
            raise CorpusError(f"corpus folder {self.root} does not exist — check the path")
        if not self.root.is_dir():
            raise CorpusError(f"{self.root} is not a folder — give the folder that holds the documents")
        self.root = self.root.resolve()
        if not is_utf8(str(self.root)):
            raise CorpusError(f"folder path {os.fsencode(self.root)!r} is not UTF-8 — rename it")
        self.id_field = id_field
        self.text_field = text_field
        self.max_file_bytes = max_file_bytes
        # PDF, Word and EPUB files: by default readers.BINARY_SIZE_FACTOR times the text limit
        self.max_document_bytes = max_document_bytes or readers.BINARY_SIZE_FACTOR * max_file_bytes
        self._missing_readers: set[str] = set()  # file types whose library is missing: warned once
        self.skipped: list[Skipped] = []
        self.unreadable: list[str] = []  # files and folders that could not be read this time
        # size and mtime of each file when it was last read (``known_files``): a file whose
        # documents take their ids from its path is not opened again while both are the same
        self.known_files = known_files or {}
        self.unchanged_files: set[str] = set()  # not opened: as when last read
        self.stats: dict[str, tuple[int, int]] = {}  # read this time: size and mtime before reading

    def files(self) -> Iterator[Path]:
        """Every non-hidden file under the root, sorted, symlinks kept inside the root."""
        for dirpath, dirnames, filenames in os.walk(self.root, onerror=self._unreadable_folder):
            dirnames[:] = sorted(
                d for d in dirnames if not d.startswith(".") and self._utf8_name(Path(dirpath) / d)
            )
            for name in sorted(filenames):
                path = Path(dirpath) / name
                if name.startswith(".") or not self._utf8_name(path):
                    continue
                if path.is_symlink():
                    try:
                        target = path.resolve(strict=True)
                    except (OSError, RuntimeError):  # RuntimeError: a loop, before Python 3.13
                        self._skip(path, "broken symlink or symlink loop", warn=True)
                        continue
                    if not target.is_relative_to(self.root):
                        self._skip(path, "symlink pointing outside the corpus folder", warn=True)
                        continue
                yield path

    def _utf8_name(self, path: Path) -> bool:
        """False (and skipped) for a name that is not UTF-8: its id could not be stored."""
        if is_utf8(path.name):
            return True
        self._skip(path, "name is not valid UTF-8 — rename it", warn=True)
        return False

    def _unreadable_folder(self, exc: OSError) -> None:
        folder = Path(exc.filename or self.root)
        self._skip(folder, f"unreadable folder ({exc.strerror or exc})", warn=True)
        self.unreadable.append(_relative(folder, self.root))

    def is_unreadable(self, source: str) -> bool:
        """Whether a document from ``source`` (a path relative to the root) could not be read this
        time: a file or folder without permission, an I/O error. Its documents are kept."""
        return any(source == u or source.startswith(u.rstrip("/") + "/") or u == "." for u in self.unreadable)

    def documents(self) -> Iterator[Document]:
        emitted: set[str] = set()
        for doc in self._documents():
            if doc.id in emitted:  # e.g. the file "a.jsonl#x.md" and the row "x.md" of a.jsonl
                self._skip(self.root / doc.source, f"document id '{doc.id}' is already used by another file", warn=True)
                continue
            emitted.add(doc.id)
            yield doc

    def _documents(self) -> Iterator[Document]:
        for path in self.files():
            rel = path.relative_to(self.root).as_posix()
            try:
                stat = path.stat()
            except OSError:
                yield from self.documents_of(path)  # documents_of says why it cannot be read
                continue
            seen = (stat.st_size, stat.st_mtime_ns)
            if path.suffix.lower() not in TABLE_SUFFIXES and self.known_files.get(rel) == seen:
                self.unchanged_files.add(rel)  # a table's rows name their own ids: always read
                continue
            produced = False
            for doc in self.documents_of(path):
                produced = True
                yield doc
            if produced:
                self.stats[rel] = seen

    def documents_of(self, path: Path) -> Iterator[Document]:
        """The documents of one file under the root (``files()`` lists them), what it skipped
        added to ``skipped``: a worker reading its share of the files calls this."""
        suffix = path.suffix.lower()
        if suffix in readers.BINARY:
            yield from self._binary(path, suffix)
            return
        if suffix not in TEXT_SUFFIXES | TABLE_SUFFIXES | readers.MARKUP:
            reason = readers.REFUSED.get(suffix, f"unsupported file type '{suffix or path.name}'")
            self._skip(path, reason, warn=suffix in readers.REFUSED)
            return
        text = self._read(path)
        if text is None:
            return
        rel = path.relative_to(self.root).as_posix()
        if suffix in TABLE_SUFFIXES:
            yield from self._rows(path, rel, text)
        elif not text.strip():
            self._skip(path, "empty file", warn=True)
        elif (extracted := self._extract(path, suffix, lambda: readers.from_text(suffix, text))) is not None:
            yield self._document(rel, suffix, extracted)

    def _binary(self, path: Path, suffix: str) -> Iterator[Document]:
        """A PDF, Word or EPUB file as one document, refused from its size before it is opened."""
        try:
            size = path.stat().st_size
        except OSError as exc:
            self._skip(path, f"unreadable ({exc.strerror or exc})", warn=True)
            self.unreadable.append(_relative(path, self.root))
            return
        if size == 0:
            self._skip(path, "empty file", warn=True)
        elif size > self.max_document_bytes:
            self._skip(path, f"{size:,} bytes is over the {self.max_document_bytes:,}-byte limit for PDF, Word "
                             f"and EPUB files ({readers.BINARY_SIZE_FACTOR} × --max-file-mb)", warn=True)
        elif (extracted := self._extract(path, suffix, lambda: readers.read(path, suffix))) is not None:
            yield self._document(path.relative_to(self.root).as_posix(), suffix, extracted)

    def _extract(self, path: Path, suffix: str, read: Callable[[], Extracted]) -> Extracted | None:
        """``read()``, or None with the reason skipped. A file that cannot be read this time (damaged,
        truncated, locked, its library missing, an I/O error) is listed in ``unreadable``: the index
        keeps its last good version. One that reads but holds no text is only skipped."""
        try:
            extracted = read()
        except DocumentEmptyError as exc:
            self._skip(path, str(exc), warn=True)
            return None
        except (DocumentReadError, MissingExtraError, OSError) as exc:
            missing = isinstance(exc, MissingExtraError)
            reason = f"unreadable ({exc.strerror or exc})" if isinstance(exc, OSError) else str(exc)
            self._skip(path, f"{reason} — its indexed version, if any, is kept",
                       warn=not missing or suffix not in self._missing_readers)
            if missing:
                self._missing_readers.add(suffix)
            self.unreadable.append(_relative(path, self.root))
            return None
        if not extracted.text.strip():
            self._skip(path, "no text", warn=True)
            return None
        return extracted

    @staticmethod
    def _document(rel: str, suffix: str, extracted: Extracted) -> Document:
        meta = {"path": rel, "type": suffix[1:], "lang": detect_lang(extracted.text)}
        return Document(id=rel, text=extracted.text, metadata=meta, source=rel, locations=extracted.locations)

    def _read(self, path: Path) -> str | None:
        try:
            size = path.stat().st_size
            if size == 0:
                self._skip(path, "empty file", warn=True)
                return None
            if size > self.max_file_bytes:
                self._skip(
                    path,
                    f"{size:,} bytes is over the {self.max_file_bytes:,}-byte limit "
                    "(raise it with --max-file-mb)",
                    warn=True,
                )
                return None
            return decode_text(path.read_bytes())
        except UndecodableError as exc:
            self._skip(path, str(exc), warn=True)
        except OSError as exc:
            self._skip(path, f"unreadable ({exc.strerror or exc})", warn=True)
            self.unreadable.append(_relative(path, self.root))
        return None

    def _rows(self, path: Path, rel: str, text: str) -> Iterator[Document]:
        seen: set[str] = set()
        rows = 0
        for line_no, row in self._parse_table(path, text):
            rows += 1
            if isinstance(row, str):
                self._skip(path, f"line {line_no}: {row}", warn=True)
                continue
            body = row.get(self.text_field)
            if not isinstance(body, str) or not body.strip():
                self._skip(path, f"line {line_no}: no '{self.text_field}' text", warn=True)
                continue
            raw_id = row.get(self.id_field)
            row_id = str(line_no) if raw_id is None or str(raw_id).strip() == "" else str(raw_id)
            if row_id in seen:
                self._skip(path, f"line {line_no}: duplicate id '{row_id}'", warn=True)
                continue
            seen.add(row_id)
            meta = {k: v for k, v in row.items() if k not in (self.id_field, self.text_field)}
            meta.update(path=rel, type=path.suffix.lower()[1:])
            meta.setdefault("lang", detect_lang(body))
            yield Document(id=f"{rel}#{row_id}", text=body, metadata=meta, source=rel)
        if not rows:
            self._skip(path, "no rows", warn=True)

    @staticmethod
    def _parse_table(path: Path, text: str) -> Iterator[tuple[int, dict[str, Any] | str]]:
        """(line number, row) per row, or (line number, why the row is unusable)."""
        if path.suffix.lower() == ".jsonl":
            # not str.splitlines(): it also cuts at U+2028 or \x85, which JSON strings may hold
            for line_no, line in enumerate(_LINE_END.split(text), 1):
                if line.strip():
                    yield line_no, _json_row(line)
        else:
            delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
            reader = csv.DictReader(io.StringIO(text), delimiter=delimiter)
            try:
                for line_no, row in enumerate(reader, 2):
                    yield line_no, {k: v for k, v in row.items() if k is not None}
            except csv.Error as exc:  # e.g. a field over csv.field_size_limit(): the reader stops
                reason = f"unreadable CSV ({exc}); the rest of the file was skipped"
                yield reader.reader.line_num, reason

    def _skip(self, path: Path, reason: str, warn: bool = False) -> None:
        rel = _relative(path, self.root).encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
        self.skipped.append(Skipped(rel, reason))
        if warn:
            logger.warning("skipped %s: %s", rel, reason)


def _relative(path: Path, root: Path) -> str:
    return path.relative_to(root).as_posix() if path.is_relative_to(root) else str(path)


def is_utf8(text: str) -> bool:
    """False for text with lone surrogates (how Python keeps the undecodable bytes of a name)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _json_row(line: str) -> dict[str, Any] | str:
    """A JSONL line as a dict, or why not. Rows the store cannot keep as JSON text are refused
    here: NaN/Infinity (or a number that overflows to it) and lone surrogates."""
    try:
        row = json.loads(line)
    except RecursionError:
        return "JSON nested too deeply"
    except ValueError:  # also a number of over 4300 digits
        return "not a JSON object"
    if not isinstance(row, dict):
        return "not a JSON object"
    try:
        dumped = json.dumps(row, ensure_ascii=False, allow_nan=False)
    except (ValueError, RecursionError):
        return "holds NaN or Infinity (or is nested too deeply), which JSON text cannot store"
    if not is_utf8(dumped):
        return "holds a lone surrogate (\\ud800-\\udfff), which UTF-8 text cannot store"
    return row


# --- where each passage is -------------------------------------------------------------------

LINED_TYPES = {"txt", "md"}  # file types whose hits say their line, as grep does (path:line)


def locate(doc: Document, passages: list[Passage]) -> list[Passage]:
    """Give each passage (and sentence unit) where it starts: the document's location there
    (``Document.locations``: its page, its heading) and, in a text file, its line number."""
    lined = doc.source is not None and doc.metadata.get("type") in LINED_TYPES
    marks, line, counted, i = doc.locations, 1, 0, -1
    for passage in sorted(passages, key=lambda p: p.start):  # in document order; set in place
        while i + 1 < len(marks) and marks[i + 1][0] <= passage.start:
            i += 1
        location = dict(marks[i][1]) if i >= 0 else {}
        if lined:
            line += doc.text.count("\n", counted, passage.start)
            counted = passage.start
            location["line"] = line
        passage.location = location or None
    return passages
