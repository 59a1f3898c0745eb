"""Verify an index directory (`textsearch check`) and repair what can be repaired
(`textsearch repair`).

Both read the files directly, so they work on an index that ``Index.open`` refuses. SQLite is the
source of truth: the HNSW graph can always be rebuilt from the vectors stored there, the keyword
table from the stored text, and bad vectors re-embedded from the text with the index's model. A
damaged SQLite file or config cannot be repaired here: the index is rebuilt from its corpus.
"""

from __future__ import annotations

import os
import sqlite3
import stat
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .storage.ann import ANN_FILE, AnnIndex
from .config import IndexConfig, is_index_dir
from .models.encoder import Encoder, SentenceTransformerEncoder, same_model
from .errors import IndexCorruptError, IndexNotFoundError, ModelMismatchError
from .storage.graphfile import recorded, replay, write_lock
from .index import Index
from .storage.layout import LEFTOVERS, OWN_FILES
from .storage.store import DB_FILE, VECTOR_DTYPES, Store

SAMPLE = 20  # stored passages searched for in the graph: each must be among its own 10 nearest
NORM_TOLERANCE = 1e-3  # stored vectors are unit length


@dataclass
class Report:
    """What check (or repair) found. ``ok``: no problems; ``notes`` are harmless findings."""

    path: str
    documents: int = 0
    passages: int = 0
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    repaired: list[str] = field(default_factory=list)
    fatal: bool = False  # the config or the SQLite file is damaged: only a rebuild from the corpus helps

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok}


def check(path: str | os.PathLike[str]) -> Report:
    """Verify the config, the SQLite store and the HNSW file of the index at ``path`` and that
    they agree. Reads only; safe while another process writes (it sees the last commit)."""
    path = Path(path)
    if not is_index_dir(path):
        raise IndexNotFoundError(f"no index at {path} — nothing to check")
    if _backend(path) == "milvus":
        return _check_milvus(path)
    for attempt in range(3):  # a writer may have saved a graph newer than our snapshot: look again
        report = Report(str(path))
        try:
            config = IndexConfig.load(path)
            store = Store(path / DB_FILE)
        except IndexCorruptError as exc:
            report.problems.append(str(exc))
            report.fatal = True
            return report
        try:
            with store.snapshot():
                report.documents, report.passages = store.document_count(), store.passage_count()
                raced, ann = _check_graph(path, store, config, report)  # the file is read before the long scans
                bad = _check_store(store, config, report)
                if ann is not None and not report.fatal:
                    _check_search(ann, store, config, np.setdiff1d(store.labels(), bad), report)
        except sqlite3.DatabaseError as exc:
            report.problems.append(f"SQLite database unreadable ({exc})")
            report.fatal = True
            return report
        finally:
            store.close()
        if not raced or report.fatal:
            break
        time.sleep(0.1 * (attempt + 1))
    _check_files(path, report)
    return report


def _backend(path: Path) -> str:
    try:
        return IndexConfig.load(path).backend
    except IndexCorruptError:
        return "local"  # reported by the checks that follow


def _check_milvus(path: Path) -> Report:
    """A Milvus index: its collection is there, and every document has all its passages."""
    report = Report(str(path))
    try:
        with Index.open(path) as index:
            report.documents, report.passages = index.backend.counts()
            if torn := index.backend.torn_documents():
                report.problems.append(f"documents whose passages are missing or extra: {_ids(torn)} — "
                                       "`textsearch repair` removes them, then index the folder again")
    except IndexCorruptError as exc:
        report.problems.append(str(exc))
        report.fatal = True
    _check_files(path, report)
    return report


def _repair_milvus(path: Path) -> Report:
    """Delete the torn documents (the next indexing run of their folder adds them again whole)."""
    done = []
    with write_lock(path), Index.open(path) as index:
        if torn := index.backend.torn_documents():
            index.backend.delete(torn)
            index.backend.save()
            done.append(f"removed {len(torn)} torn documents: {_ids(torn)} — index their folder again")
    report = check(path)
    report.repaired = done
    return report


def _check_store(store: Store, config: IndexConfig, report: Report) -> list[int]:
    """Adds the store's problems to the report; returns the labels of bad vectors."""
    if (result := store.db.execute("PRAGMA quick_check").fetchone()[0]) != "ok":
        report.problems.append(f"SQLite integrity check failed: {result}")
        report.fatal = True
        return []
    if torn := store.torn_documents():
        report.problems.append(f"documents whose passages are missing or extra: {_ids(torn)}")
    if orphans := store.orphan_count():
        report.problems.append(f"{orphans} passages belong to no document")
    next_label, top = int(store.get_meta("next_label", "0") or 0), store.max_label()
    if top is not None and top >= next_label:
        report.problems.append(f"passage label {top} is not below the label counter {next_label}")
    if bad := bad_vectors(store, config.dimension, config.vector_dtype):
        report.problems.append(f"{len(bad)} stored vectors are not {config.vector_dtype} unit vectors of dimension {config.dimension}")
    if unmatched := store.keyword_mismatch():
        report.problems.append(f"keyword index out of step with the passages ({unmatched} rows differ)")
    return bad


def bad_vectors(store: Store, dimension: int, dtype: str = "float32") -> list[int]:
    """Labels whose stored vector has the wrong size for ``dtype``, is not finite or not unit length."""
    size = np.dtype(VECTOR_DTYPES[dtype]).itemsize * dimension
    bad: list[int] = []
    for rows in store.vector_rows():
        sized = [(label, blob) for label, blob in rows if isinstance(blob, bytes) and len(blob) == size]
        bad += [label for label, blob in rows if not (isinstance(blob, bytes) and len(blob) == size)]
        if sized:
            vectors = np.frombuffer(b"".join(blob for _, blob in sized), dtype=VECTOR_DTYPES[dtype])
            with np.errstate(all="ignore"):
                norms = np.linalg.norm(vectors.reshape(-1, dimension).astype(np.float32), axis=1)
            off = ~np.isfinite(norms) | (np.abs(norms - 1.0) > NORM_TOLERANCE)
            bad += [sized[i][0] for i in np.flatnonzero(off)]
    return bad


def _check_graph(path: Path, store: Store, config: IndexConfig, report: Report) -> tuple[bool, AnnIndex | None]:
    """Adds the graph's problems to the report. Returns whether the file is not one the snapshot
    recorded (damaged, or saved by a writer after the snapshot: worth a second look), and the
    graph brought to the snapshot's state when it can be searched."""
    file = path / ANN_FILE
    records = recorded(store)
    if not file.exists():
        if records:
            report.problems.append(f"HNSW file {file.name} is missing")
        elif report.passages:  # the first write was interrupted before the graph was saved
            report.notes.append("HNSW file not written yet; opening the index builds it from the database")
        return False, None
    try:
        ann = AnnIndex.load(file, config.dimension, config.ef)
    except IndexCorruptError:
        ann = None
    match = [r for r in records if ann is not None and r.file == ann.signature]
    if ann is None or not match:
        report.problems.append(f"HNSW file {file.name} is not the one the database recorded (truncated or replaced)")
        return True, None
    labels, live, truth = ann.labels(), ann.live_labels(), store.labels()
    if behind := store.seq - match[0].seq:
        report.notes.append(
            f"HNSW file is {behind} write(s) behind the database (a writer was interrupted or is "
            "running); opening the index replays the difference"
        )
        replay(ann, store, config.dimension, labels, truth)
    elif (missing := len(np.setdiff1d(truth, live))) + (extra := len(np.setdiff1d(live, truth))):
        report.problems.append(
            f"HNSW graph and database disagree: {missing} passages not in the graph, "
            f"{extra} graph labels with no passage"
        )
        return False, None
    return False, ann


def _check_search(ann: AnnIndex, store: Store, config: IndexConfig, labels: np.ndarray, report: Report) -> None:
    """The graph must reach stored passages: each sampled vector is among its own 10 nearest
    neighbours at a generous ef (a few hard-to-reach nodes are normal in a large graph)."""
    if not len(labels):
        return
    sample = np.random.default_rng(0).choice(labels, size=min(SAMPLE, len(labels)), replace=False)
    found, scores = ann.search(store.vectors(sample, config.dimension), k=10, ef=max(config.ef, 400))
    # found: itself, or a passage with the very same vector (repeated text)
    lost = int(sum(label not in row and best < 0.9999
                   for label, row, best in zip(sample.tolist(), found.tolist(), scores[:, 0].tolist())))
    if lost:
        report.problems.append(f"HNSW search does not find {lost} of {len(sample)} sampled passages")


def _world_writable(path: Path) -> list[Path]:
    entries = [path, *(e for e in path.iterdir() if e.name in OWN_FILES)]  # a user's files are theirs
    return [e for e in entries if e.lstat().st_mode & stat.S_IWOTH and not stat.S_ISLNK(e.lstat().st_mode)]


def _check_files(path: Path, report: Report) -> None:
    for name in LEFTOVERS:
        if (path / name).exists():
            report.notes.append(f"leftover temporary file {name} (from an interrupted write; harmless)")
    for entry in _world_writable(path):
        report.problems.append(f"{entry.name or entry} is world-writable")


def repair(path: str | os.PathLike[str], *, reembed: bool = False, encoder: Encoder | None = None) -> Report:
    """Repair the index at ``path`` under its write lock: drop torn documents and orphan passages
    (re-index the corpus to restore them), re-embed bad vectors (all of them with ``reembed``)
    under new labels, rebuild the keyword table, rebuild the HNSW graph from the stored vectors,
    remove leftover files and world-write bits. Returns the check of the repaired index, with
    what was done. Every step is atomic, so a repair killed halfway is simply run again."""
    path = Path(path)
    found = check(path)
    if found.fatal:
        raise IndexCorruptError(
            f"cannot repair {path}: {found.problems[0]} — rebuild it from its corpus with "
            "`textsearch index <corpus> --name <new name>`"
        )
    config = IndexConfig.load(path)
    if config.backend == "milvus":
        return _repair_milvus(path)
    done: list[str] = []
    with write_lock(path):
        store = Store(path / DB_FILE)
        try:
            done += _repair_store(store, config, reembed, encoder)
        finally:
            store.close()
        index = Index(path, config, None, load_ann=False)
        try:
            done.append(f"HNSW graph rebuilt from {index.rebuild_graph()} stored vectors")
        finally:
            index.close()
        for name in LEFTOVERS:
            if (path / name).is_file():
                (path / name).unlink()
                done.append(f"removed {name}")
        for entry in _world_writable(path):
            entry.chmod(stat.S_IMODE(entry.lstat().st_mode) & ~stat.S_IWOTH)
            done.append(f"made {entry.name} not world-writable")
    report = check(path)
    report.repaired = done
    return report


def _repair_store(store: Store, config: IndexConfig, reembed: bool, encoder: Encoder | None) -> list[str]:
    done: list[str] = []
    if torn := store.torn_documents():
        store.delete(torn)
        done.append(f"removed {len(torn)} torn documents ({_ids(torn)}); re-index to restore them")
    labels = store.labels() if reembed else np.asarray(bad_vectors(store, config.dimension, config.vector_dtype), dtype=np.int64)
    vectors = None
    if len(labels):
        encoder = encoder or SentenceTransformerEncoder(config.model, runtime=config.runtime)
        if not same_model(encoder, config.dimension, config.probe):
            raise ModelMismatchError(
                f"cannot re-embed: '{encoder.name}' is not the model the index was built with ({config.model})"
            )
        vectors = encoder.encode_passages(store.texts(labels)).astype(VECTOR_DTYPES[config.vector_dtype])
    with store.transaction():
        if orphans := store.remove_orphans():
            done.append(f"removed {orphans} passages that belonged to no document")
        if vectors is not None:
            store.relabel(labels, vectors)
            done.append(f"re-embedded {len(labels)} passages")
        store.rebuild_keywords()
        done.append("keyword table rebuilt")
        top = store.max_label()
        next_label = max(int(store.get_meta("next_label", "0") or 0), -1 if top is None else top + 1)
        store.set_meta(next_label=next_label, seq=store.seq + 1)
    return done


def _ids(ids: list[str]) -> str:
    return ", ".join(ids[:5]) + (" …" if len(ids) > 5 else "")
