"""SQLite side of an index: documents, passages with their vectors, labels, metadata.
The only module that imports sqlite-utils.

Passage labels are the HNSW labels. They come from a counter kept in the same database and are
never reused, so a label names one passage forever and replaying a change is harmless. Every write
runs in one transaction and bumps ``seq``; the HNSW file records the ``seq`` it reflects.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..documents.corpus import Document, Passage
from ..errors import IndexCorruptError, IndexLockedError, InvalidArgumentError
from ..search.keyword import segment

if TYPE_CHECKING:
    import sqlite_utils

logger = logging.getLogger(__name__)

DB_FILE = "store.db"
_CHUNK = 500  # SQLite host parameters per IN (...) list
FTS_TOKENIZE = "porter unicode61 remove_diacritics 2"
# How a passage's vector may be kept: the blob's length tells which (4 or 2 bytes a dimension)
VECTOR_DTYPES = {"float32": np.float32, "float16": np.float16}


def decode_vector(blob: bytes, dimension: int) -> np.ndarray:
    """A stored vector blob as numbers: float16 when it holds 2 bytes a dimension, else float32."""
    return np.frombuffer(blob, dtype=np.float16 if len(blob) == 2 * dimension else np.float32)
Where = tuple[str, list[Any]]  # an SQL condition over documents ``d`` and its parameters


def _shown(passage: Passage) -> tuple[int, int, str]:
    """(start, end, text) a hit shows: a sentence unit's passage, else the passage itself."""
    shown = passage.within or passage
    return shown.start, shown.end, shown.text


def _m001_initial(db: sqlite_utils.Database) -> None:
    db["meta"].create({"key": str, "value": str}, pk="key")
    db["documents"].create(
        {
            "id": str,
            "root": str,
            "source": str,
            "content_hash": str,
            "metadata": str,
            "n_passages": int,
            "updated_at": str,
        },
        pk="id",
    )
    db["documents"].create_index(["root", "source"])
    db["passages"].create(
        {
            "label": int,
            "doc_id": str,
            "position": int,
            "start": int,
            "end": int,
            "text": str,
            "vector": bytes,
        },
        pk="label",
    )
    db["passages"].create_index(["doc_id"])


def _m002_keyword(db: sqlite_utils.Database) -> None:
    """Keyword search: an FTS5 table of segmented passage text, rowid = passage label, filled
    from the passages already there (an index built before this migration gets it on open)."""
    db.execute(f"CREATE VIRTUAL TABLE passages_fts USING fts5(terms, tokenize='{FTS_TOKENIZE}')")
    if filled := _fill_keywords(db.conn):
        logger.info("keyword index built for %d existing passages", filled)


def _fill_keywords(db: sqlite3.Connection) -> int:
    """Insert every passage's segmented text into the (empty) keyword table, a chunk at a time."""
    last, filled = -1, 0
    while rows := db.execute(
        "SELECT label, text FROM passages WHERE label > ? ORDER BY label LIMIT ?", [last, _CHUNK]
    ).fetchall():
        db.executemany(
            "INSERT INTO passages_fts(rowid, terms) VALUES (?, ?)",
            [(label, segment(text or "")) for label, text in rows],
        )
        last, filled = rows[-1][0], filled + len(rows)
    return filled


def _m003_locations_and_files(db: sqlite_utils.Database) -> None:
    """Where each passage is for a person (``location``: page, heading, line; JSON, NULL before
    this migration), for a sentence unit where its sentence is in the passage it shows
    (``match``: [start, end) in ``text``), and the size and modification time each indexed file
    had when it was read, so that an unchanged file is not opened again."""
    db.execute("ALTER TABLE passages ADD COLUMN location TEXT")
    db.execute("ALTER TABLE passages ADD COLUMN match TEXT")
    db["files"].create({"root": str, "source": str, "size": int, "mtime_ns": int}, pk=("root", "source"))


MIGRATIONS: list[Callable[[sqlite_utils.Database], None]] = [_m001_initial, _m002_keyword, _m003_locations_and_files]
SCHEMA_VERSION = len(MIGRATIONS)


@dataclass
class PassageRow:
    label: int
    doc_id: str
    position: int
    start: int
    end: int
    text: str
    metadata: dict[str, Any]
    n_passages: int
    location: dict[str, Any] | None = None
    match: list[int] | None = None


class Store:
    """The database of one index. Safe to share between threads: each thread gets its own SQLite
    connection (made on its first use, closed when that thread is gone or the store is closed),
    so every thread reads its own snapshot and writes its own transactions."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._local = threading.local()
        self._connections: dict[int, tuple[threading.Thread, sqlite3.Connection]] = {}
        self._lock = threading.Lock()
        self._closed = False
        try:
            if self.db.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                self.db.execute("PRAGMA journal_mode = wal")
            self._migrate()
        except sqlite3.DatabaseError as exc:
            self.close()
            raise IndexCorruptError(
                f"SQLite database {self.path} is unreadable ({exc}) — the index cannot be opened; "
                "rebuild it with `textsearch index <corpus>` under a new name"
            ) from exc

    @property
    def db(self) -> sqlite3.Connection:
        """This thread's connection (plain sqlite3: reading needs nothing more, and sqlite-utils,
        which imports pandas where it is installed, is loaded only to migrate a schema)."""
        db = getattr(self._local, "db", None)
        if db is None:
            db = self._connect()
            self._local.db = db
        return db

    def _connect(self) -> sqlite3.Connection:
        with self._lock:
            if self._closed:
                raise InvalidArgumentError(f"the index at {self.path.parent} is closed — open it again")
            for ident, (thread, old) in list(self._connections.items()):
                if not thread.is_alive():  # a finished thread's connection
                    old.close()
                    del self._connections[ident]
            # used by this thread only; closed by whichever thread closes the store
            db = sqlite3.connect(str(self.path), timeout=30, check_same_thread=False)
            db.execute("PRAGMA busy_timeout = 30000")
            self._connections[threading.get_ident()] = (threading.current_thread(), db)
            return db

    def _migrate(self) -> None:
        version = self.db.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise IndexCorruptError(
                f"{self.path} has schema version {version}, newer than this textsearch knows "
                f"({SCHEMA_VERSION}) — upgrade textsearch"
            )
        if version == SCHEMA_VERSION:
            return
        import sqlite_utils  # only here: it imports pandas where pandas is installed

        with self.transaction():
            for step in MIGRATIONS[version:]:
                step(sqlite_utils.Database(self.db))
            self.db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """One atomic write: all of it lands or none of it."""
        conn = self.db
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            raise IndexLockedError(
                f"{self.path} is locked by another writer ({exc}) — wait for it to finish and retry"
            ) from exc
        try:
            yield
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    @contextmanager
    def snapshot(self) -> Iterator[None]:
        """Reads that all see one committed state while another process writes (WAL readers
        are never blocked). Inside a transaction already, the reads join it."""
        conn = self.db
        if conn.in_transaction:
            yield
            return
        conn.execute("BEGIN")
        try:
            yield
        finally:
            if conn.in_transaction:
                conn.execute("COMMIT")

    # --- meta -------------------------------------------------------------------------------
    def get_meta(self, key: str, default: str | None = None) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", [key]).fetchone()
        return row[0] if row else default

    def set_meta(self, **values: Any) -> None:
        """Set keys; call inside a transaction (or alone: it then commits itself)."""
        conn = self.db
        own = not conn.in_transaction
        if own:
            conn.execute("BEGIN IMMEDIATE")
        conn.executemany(
            "INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)",
            [(k, None if v is None else str(v)) for k, v in values.items()],
        )
        if own:
            conn.execute("COMMIT")

    @property
    def seq(self) -> int:
        return int(self.get_meta("seq", "0") or 0)

    # --- documents --------------------------------------------------------------------------
    def hashes_for_root(self, root: str) -> dict[str, str]:
        rows = self.db.execute("SELECT id, content_hash FROM documents WHERE root = ?", [root])
        return dict(rows.fetchall())

    def sources(self, ids: Sequence[str]) -> dict[str, str]:
        """The source file (relative to its root) of each document that came from a folder."""
        return self._lookup("SELECT id, source FROM documents WHERE source IS NOT NULL AND id", ids)

    def hashes(self, ids: Sequence[str]) -> dict[str, str]:
        return self._lookup("SELECT id, content_hash FROM documents WHERE id", ids)

    def file_stats(self, root: str) -> dict[str, tuple[int, int]]:
        """source → (size, mtime_ns) of the files under ``root`` as they were when last read."""
        rows = self.db.execute("SELECT source, size, mtime_ns FROM files WHERE root = ?", [root])
        return {source: (size, mtime) for source, size, mtime in rows}

    def record_files(self, root: str, stats: dict[str, tuple[int, int]], gone: Iterable[str] = ()) -> None:
        """Remember the files read under ``root`` (source → (size, mtime_ns)), forget ``gone``."""
        with self.transaction():
            self.db.executemany("INSERT OR REPLACE INTO files(root, source, size, mtime_ns) VALUES (?, ?, ?, ?)",
                                [(root, source, size, mtime) for source, (size, mtime) in stats.items()])
            self.db.executemany("DELETE FROM files WHERE root = ? AND source = ?", [(root, s) for s in gone])

    def _lookup(self, select: str, keys: Iterable[Any]) -> dict[Any, Any]:
        """Rows of ``select ... IN (keys)`` as a dict of their two columns, keys sent in chunks."""
        found: dict[Any, Any] = {}
        for chunk in _chunks(list(keys)):
            found.update(self.db.execute(f"{select} IN ({_marks(chunk)})", chunk).fetchall())
        return found

    def write(
        self,
        docs: Sequence[tuple[Document, list[Passage]]],
        vectors: np.ndarray,
        *,
        root: str | None = None,
        delete_ids: Sequence[str] = (),
    ) -> tuple[np.ndarray, np.ndarray]:
        """Upsert documents with their passages and vectors (rows of ``vectors`` in passage order)
        and delete ``delete_ids``, in one transaction. Returns (new labels, removed labels)."""
        conn = self.db
        now = datetime.now(timezone.utc).isoformat(timespec="seconds")
        n = sum(len(p) for _, p in docs)
        if len(vectors) != n:
            raise ValueError(f"{n} passages but {len(vectors)} vectors — one vector per passage")
        terms = [segment(p.text) for _, ps in docs for p in ps]  # before taking the write lock
        with self.transaction():
            removed = self._remove([d.id for d, _ in docs] + list(delete_ids))
            next_label = int(self.get_meta("next_label", "0") or 0)
            labels = np.arange(next_label, next_label + n, dtype=np.int64)
            conn.executemany(
                "INSERT INTO documents(id, root, source, content_hash, metadata, n_passages, updated_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                [
                    (d.id, root if d.source else None, d.source, d.content_hash,
                     json.dumps(d.metadata, ensure_ascii=False), len(p), now)
                    for d, p in docs
                ],
            )
            rows = (
                (int(label), d.id, pos, *_shown(p), vec.tobytes(),
                 json.dumps(p.location, ensure_ascii=False) if p.location else None,
                 json.dumps([p.start - p.within.start, p.end - p.within.start]) if p.within else None)
                for label, (d, pos, p), vec in zip(
                    labels, ((d, i, p) for d, ps in docs for i, p in enumerate(ps)), vectors, strict=True
                )
            )
            conn.executemany(
                "INSERT INTO passages(label, doc_id, position, start, end, text, vector, location, match)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                rows,
            )
            conn.executemany(
                "INSERT INTO passages_fts(rowid, terms) VALUES (?, ?)",
                zip(labels.tolist(), terms, strict=True),
            )
            self.set_meta(next_label=next_label + n, seq=self.seq + 1)
        return labels, removed

    def delete(self, ids: Sequence[str]) -> tuple[int, np.ndarray]:
        """Delete documents by id. Returns (documents deleted, labels removed)."""
        with self.transaction():
            before = self.document_count()
            removed = self._remove(list(ids))
            deleted = before - self.document_count()
            if deleted:
                self.set_meta(seq=self.seq + 1)
        return deleted, removed

    def _remove(self, ids: list[str]) -> np.ndarray:
        removed: list[int] = []
        for chunk in _chunks(ids):
            marks = _marks(chunk)
            removed += [r[0] for r in self.db.execute(
                f"SELECT label FROM passages WHERE doc_id IN ({marks})", chunk
            )]
            self.db.execute(
                "DELETE FROM passages_fts WHERE rowid IN"
                f" (SELECT label FROM passages WHERE doc_id IN ({marks}))",
                chunk,
            )
            self.db.execute(f"DELETE FROM passages WHERE doc_id IN ({marks})", chunk)
            self.db.execute(f"DELETE FROM documents WHERE id IN ({marks})", chunk)
        return np.asarray(removed, dtype=np.int64)

    # --- passages ---------------------------------------------------------------------------
    def passages(self, labels: Iterable[int]) -> dict[int, PassageRow]:
        labels = [int(x) for x in labels]
        found: dict[int, PassageRow] = {}
        for chunk in _chunks(labels):
            sql = (
                "SELECT p.label, p.doc_id, p.position, p.start, p.end, p.text, d.metadata,"
                " d.n_passages, p.location, p.match FROM passages p JOIN documents d ON d.id = p.doc_id"
                f" WHERE p.label IN ({_marks(chunk)})"
            )
            for row in self.db.execute(sql, chunk):
                found[row[0]] = PassageRow(*row[:6], json.loads(row[6] or "{}"), row[7],
                                           json.loads(row[8]) if row[8] else None,
                                           json.loads(row[9]) if row[9] else None)
        return found

    def vectors(self, labels: Sequence[int] | np.ndarray, dimension: int) -> np.ndarray:
        """The stored vectors as float32 (whichever of VECTOR_DTYPES they are kept in)."""
        out = np.zeros((len(labels), dimension), dtype=np.float32)
        position = {int(label): i for i, label in enumerate(labels)}
        for chunk in _chunks([int(x) for x in labels]):
            sql = f"SELECT label, vector FROM passages WHERE label IN ({_marks(chunk)})"
            for label, blob in self.db.execute(sql, chunk):
                out[position[label]] = decode_vector(blob, dimension)
        return out

    def labels(self, whole: bool = False) -> np.ndarray:
        """Every stored label; ``whole``: only those of passages, not of sentence units."""
        sql = "SELECT label FROM passages" + (" WHERE match IS NULL" if whole else "")
        rows = self.db.execute(sql).fetchall()
        return np.asarray([r[0] for r in rows], dtype=np.int64)

    # --- integrity (textsearch check / repair) ----------------------------------------------
    def torn_documents(self) -> list[str]:
        """Ids of documents whose stored passages are not exactly the ``n_passages`` they recorded."""
        rows = self.db.execute(
            "SELECT d.id FROM documents d LEFT JOIN passages p ON p.doc_id = d.id"
            " GROUP BY d.id HAVING count(p.label) != d.n_passages ORDER BY d.id"
        ).fetchall()
        return [r[0] for r in rows]

    def orphan_count(self) -> int:
        """Passages whose document is gone."""
        sql = "SELECT count(*) FROM passages p LEFT JOIN documents d ON d.id = p.doc_id WHERE d.id IS NULL"
        return int(self.db.execute(sql).fetchone()[0])

    def keyword_mismatch(self) -> int:
        """Rows of the keyword table without a passage plus passages without a row."""
        return int(self.db.execute(
            "SELECT (SELECT count(*) FROM passages WHERE label NOT IN (SELECT rowid FROM passages_fts))"
            " + (SELECT count(*) FROM passages_fts WHERE rowid NOT IN (SELECT label FROM passages))"
        ).fetchone()[0])

    def max_label(self) -> int | None:
        return self.db.execute("SELECT max(label) FROM passages").fetchone()[0]

    def vector_rows(self, chunk: int = 5000) -> Iterator[list[tuple[int, Any]]]:
        """(label, raw vector blob) of every passage, in label order, ``chunk`` rows at a time."""
        last = -1
        while rows := self.db.execute(
            "SELECT label, vector FROM passages WHERE label > ? ORDER BY label LIMIT ?", [last, chunk]
        ).fetchall():
            last = rows[-1][0]
            yield rows

    def texts(self, labels: Sequence[int] | np.ndarray) -> list[str]:
        """The text each label was embedded from, in order: its passage, or a sentence unit's
        sentence (the part of the passage its ``match`` marks)."""
        found: dict[int, str] = {}
        for chunk in _chunks([int(x) for x in labels]):
            for label, text, match in self.db.execute(
                f"SELECT label, text, match FROM passages WHERE label IN ({_marks(chunk)})", chunk
            ):
                start, end = json.loads(match) if match else (0, len(text or ""))
                found[label] = (text or "")[start:end]
        return [found[int(label)] for label in labels]

    def remove_orphans(self) -> int:
        """Delete passages whose document is gone (call inside a transaction)."""
        self.db.execute("DELETE FROM passages_fts WHERE rowid IN"
                        " (SELECT label FROM passages WHERE doc_id NOT IN (SELECT id FROM documents))")
        return self.db.execute("DELETE FROM passages WHERE doc_id NOT IN (SELECT id FROM documents)").rowcount

    def relabel(self, labels: Sequence[int] | np.ndarray, vectors: np.ndarray) -> np.ndarray:
        """Give passages new vectors under new labels (call inside a transaction): a label names one
        vector forever, so every open graph sees the old ones go and the new ones come."""
        first = int(self.get_meta("next_label", "0") or 0)
        new = np.arange(first, first + len(labels), dtype=np.int64)
        self.db.executemany(
            "UPDATE passages SET label = ?, vector = ? WHERE label = ?",
            [(int(n), np.asarray(v).tobytes(), int(old)) for n, v, old in zip(new, vectors, labels, strict=True)],
        )
        self.db.executemany("DELETE FROM passages_fts WHERE rowid = ?", [(int(old),) for old in labels])
        self.db.executemany("INSERT INTO passages_fts(rowid, terms) VALUES (?, ?)",
                                 zip(new.tolist(), (segment(t or "") for t in self.texts(new)), strict=True))
        self.set_meta(next_label=first + len(labels))
        return new

    def rebuild_keywords(self) -> None:
        """Refill the keyword table from the passages (call inside a transaction)."""
        self.db.execute("DELETE FROM passages_fts")
        _fill_keywords(self.db)

    # --- keyword search and metadata filters ------------------------------------------------
    def keyword_search(
        self, expression: str, limit: int, where: Where | None = None
    ) -> list[tuple[int, float]]:
        """(label, score) best first for an FTS5 MATCH ``expression`` (build it with
        ``keyword.match_expression``); score = -bm25, higher is better. ``where`` (from
        ``filters.to_sql``) keeps only passages whose document matches."""
        if limit < 1:
            raise InvalidArgumentError(f"limit must be at least 1, got {limit}")
        sql = "SELECT passages_fts.rowid, -bm25(passages_fts) FROM passages_fts"
        params: list[Any] = [expression]
        condition = "passages_fts MATCH ?"
        if where is not None:
            sql += (
                " JOIN passages p ON p.label = passages_fts.rowid"
                " JOIN documents d ON d.id = p.doc_id"
            )
            condition += f" AND ({where[0]})"
            params += where[1]
        sql += f" WHERE {condition} ORDER BY rank, passages_fts.rowid LIMIT ?"
        try:
            rows = self.db.execute(sql, [*params, int(limit)]).fetchall()
        except sqlite3.OperationalError as exc:
            raise InvalidArgumentError(
                f"keyword expression {expression!r} is not valid FTS5 ({exc}) — "
                "build it with textsearch.search.keyword.match_expression(query)"
            ) from exc
        return [(int(label), float(score)) for label, score in rows]

    def filtered_labels(self, where: Where) -> np.ndarray:
        """Labels (int64, ascending) of the passages whose document matches ``where``."""
        sql = f"SELECT p.label {_FILTERED} ({where[0]}) ORDER BY p.label"
        rows = self.db.execute(sql, where[1]).fetchall()
        return np.asarray([r[0] for r in rows], dtype=np.int64)

    def count_filtered(self, where: Where) -> int:
        """How many passages belong to documents matching ``where``."""
        sql = f"SELECT count(*) {_FILTERED} ({where[0]})"
        return int(self.db.execute(sql, where[1]).fetchone()[0])

    def metadata_fields(self) -> set[str]:
        """Metadata keys found in the index, plus "id" (the document id) — the fields a filter
        may name."""
        rows = self.db.execute(
            "SELECT DISTINCT j.key FROM documents, json_each(documents.metadata) j"
            " WHERE json_valid(documents.metadata) AND json_type(documents.metadata) = 'object'"
        )
        return {r[0] for r in rows} | {"id"}

    def keyword_count(self) -> int:
        """Rows of the keyword index; equals passage_count() in a consistent store."""
        return int(self.db.execute("SELECT count(*) FROM passages_fts").fetchone()[0])

    def document_count(self) -> int:
        return int(self.db.execute("SELECT count(*) FROM documents").fetchone()[0])

    def passage_count(self) -> int:
        return int(self.db.execute("SELECT count(*) FROM passages").fetchone()[0])

    def close(self) -> None:
        """Close every thread's connection."""
        with self._lock:
            self._closed = True
            for _, db in self._connections.values():
                db.close()
            self._connections.clear()


_FILTERED = "FROM passages p JOIN documents d ON d.id = p.doc_id WHERE"


def _chunks(items: list[Any]) -> Iterator[list[Any]]:
    for i in range(0, len(items), _CHUNK):
        yield items[i : i + _CHUNK]


def _marks(chunk: Sequence[Any]) -> str:
    return ", ".join("?" * len(chunk))
