"""Verify an index directory (`textsearch check`) and repair what can be repaired
(`textsearch repair`).

Both read the files directly, so they work on an index that ``Index.open`` refuses. SQLite is the
source of truth: the HNSW graph can always be rebuilt from the vectors stored there, the keyword
table from the stored text, and bad vectors re-embedded from the text with the index's model. A
damaged SQLite file or config cannot be repaired here: the index is rebuilt from its corpus.
"""

from __future__ import annotations

import os
import stat
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .ann import ANN_FILE, AnnIndex
from .config import CONFIG_FILE, IndexConfig, is_index_dir
from .encoder import Encoder, SentenceTransformerEncoder, same_model
from .errors import IndexCorruptError, IndexNotFoundError, ModelMismatchError
from .store import DB_FILE, Store

LEFTOVERS = (ANN_FILE + ".new", ANN_FILE + ".tmp", ANN_FILE + ".new.tmp", CONFIG_FILE + ".tmp")
SAMPLE = 20  # stored passages searched for in the graph: each must find itself
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
    for attempt in range(3):  # a writer may save a new graph between our snapshot and reading it
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
                _check_store(store, config, report)
                raced = report.ok and not _check_graph(path, store, config, report)
        finally:
            store.close()
        if not raced:
            break
        time.sleep(0.1 * (attempt + 1))
    _check_files(path, report)
    return report


def _check_store(store: Store, config: IndexConfig, report: Report) -> None:
    db = store.db
    if (result := db.execute("PRAGMA quick_check").fetchone()[0]) != "ok":
        report.problems.append(f"SQLite integrity check failed: {result}")
        report.fatal = True
        return
    report.documents, report.passages = store.document_count(), store.passage_count()
    torn = db.execute(
        "SELECT d.id FROM documents d LEFT JOIN passages p ON p.doc_id = d.id"
        " GROUP BY d.id HAVING count(p.label) != d.n_passages LIMIT 5"
    ).fetchall()
    if torn:
        report.problems.append(f"documents whose passages are missing or extra: {_ids(torn)}")
    orphans = db.execute(
        "SELECT count(*) FROM passages p LEFT JOIN documents d ON d.id = p.doc_id WHERE d.id IS NULL"
    ).fetchone()[0]
    if orphans:
        report.problems.append(f"{orphans} passages belong to no document")
    next_label = int(store.get_meta("next_label", "0") or 0)
    top = db.execute("SELECT max(label) FROM passages").fetchone()[0]
    if top is not None and top >= next_label:
        report.problems.append(f"passage label {top} is not below the label counter {next_label}")
    bad = len(bad_vectors(store, config.dimension))
    if bad:
        report.problems.append(
            f"{bad} stored vectors are not unit vectors of dimension {config.dimension}"
        )
    unmatched = db.execute(
        "SELECT (SELECT count(*) FROM passages WHERE label NOT IN (SELECT rowid FROM passages_fts))"
        " + (SELECT count(*) FROM passages_fts WHERE rowid NOT IN (SELECT label FROM passages))"
    ).fetchone()[0]
    if unmatched:
        report.problems.append(f"keyword index out of step with the passages ({unmatched} rows differ)")


def bad_vectors(store: Store, dimension: int) -> list[int]:
    """Labels whose stored vector has the wrong size, is not finite or not unit length."""
    bad: list[int] = []
    last = -1
    while True:
        rows = store.db.execute(
            "SELECT label, vector FROM passages WHERE label > ? ORDER BY label LIMIT 5000", [last]
        ).fetchall()
        if not rows:
            return bad
        last = rows[-1][0]
        good = [(label, blob) for label, blob in rows if isinstance(blob, bytes) and len(blob) == 4 * dimension]
        bad += [label for label, blob in rows if not (isinstance(blob, bytes) and len(blob) == 4 * dimension)]
        if good:
            vectors = np.frombuffer(b"".join(blob for _, blob in good), dtype=np.float32).reshape(-1, dimension)
            with np.errstate(all="ignore"):
                norms = np.linalg.norm(vectors, axis=1)
            off = ~np.isfinite(norms) | (np.abs(norms - 1.0) > NORM_TOLERANCE)
            bad += [good[i][0] for i in np.flatnonzero(off)]


def _check_graph(path: Path, store: Store, config: IndexConfig, report: Report) -> bool:
    """Adds the graph's problems to the report; False when the file is not one the snapshot
    recorded (damaged, or saved by a writer after the snapshot was taken: worth a retry)."""
    file = path / ANN_FILE
    recorded = [v for v in (store.get_meta("ann_sig"), store.get_meta("ann_pending")) if v]
    if not file.exists():
        if recorded:
            report.problems.append(f"HNSW file {file.name} is missing")
        elif report.passages:  # the first write was interrupted before the graph was saved
            report.notes.append("HNSW file not written yet; opening the index builds it from the database")
        return True
    try:
        ann = AnnIndex.load(file, config.dimension, config.ef)
    except IndexCorruptError:
        ann = None
    match = [v for v in recorded if ann is not None and v.split("@")[0] == ann.signature]
    if ann is None or not match:
        report.problems.append(f"HNSW file {file.name} is not the one the database recorded (truncated or replaced)")
        return False
    labels, live = ann.labels(), ann.live_labels()
    truth = store.labels()
    behind = store.seq - int(match[0].split("@")[1])
    if behind == 0:
        missing, extra = np.setdiff1d(truth, live), np.setdiff1d(live, truth)
        if len(missing) or len(extra):
            report.problems.append(
                f"HNSW graph and database disagree: {len(missing)} passages not in the graph, "
                f"{len(extra)} graph labels with no passage"
            )
            return True
    else:
        report.notes.append(
            f"HNSW file is {behind} write(s) behind the database (a writer was interrupted or is "
            "running); opening the index replays the difference"
        )
        added = np.setdiff1d(truth, labels)
        ann.add(added, store.vectors(added, config.dimension))
        ann.delete(np.setdiff1d(live, truth))
    _check_search(ann, store, config, truth, report)
    return True


def _check_search(ann: AnnIndex, store: Store, config: IndexConfig, truth: np.ndarray, report: Report) -> None:
    """The graph must find stored passages: each sampled vector's nearest neighbour is itself
    (or an identical vector)."""
    if not len(truth):
        return
    sample = np.random.default_rng(0).choice(truth, size=min(SAMPLE, len(truth)), replace=False)
    vectors = store.vectors(sample, config.dimension)
    found, scores = ann.search(vectors, k=1)
    lost = int(np.sum((found[:, 0] != sample) & (scores[:, 0] < 0.9999)))
    if lost:
        report.problems.append(f"HNSW search does not find {lost} of {len(sample)} sampled passages")


def _check_files(path: Path, report: Report) -> None:
    for name in LEFTOVERS:
        if (path / name).exists():
            report.notes.append(f"leftover temporary file {name} (from an interrupted write; harmless)")
    for entry in [path, *path.iterdir()]:
        mode = entry.lstat().st_mode
        if mode & stat.S_IWOTH and not stat.S_ISLNK(mode):
            report.problems.append(f"{entry.name or entry} is world-writable")
    db = path / DB_FILE
    if db.exists() and db.stat().st_size == 0 and report.passages:
        report.problems.append(f"{DB_FILE} is empty")


def repair(path: str | os.PathLike[str], *, reembed: bool = False, encoder: Encoder | None = None) -> Report:
    """Repair the index at ``path`` under its write lock: drop torn documents and orphan passages
    (re-index the corpus to restore them), re-embed bad vectors (all of them with ``reembed``),
    rebuild the keyword table, then rebuild the HNSW graph from the stored vectors and remove
    leftover files. Returns the check of the repaired index, with what was done."""
    from .index import Index, write_lock

    path = Path(path)
    found = check(path)
    if found.fatal:
        raise IndexCorruptError(
            f"cannot repair {path}: {found.problems[0]} — rebuild it from its corpus with "
            "`textsearch index <corpus> --name <new name>`"
        )
    config = IndexConfig.load(path)
    done: list[str] = []
    with write_lock(path):
        store = Store(path / DB_FILE)
        try:
            done += _repair_store(store, config, reembed, encoder)
        finally:
            store.close()
        index = Index(path, config, None, load_ann=False)
        try:
            index._refresh()  # replays every stored vector into the empty graph
            index._save_ann()
            done.append(f"HNSW graph rebuilt from {index.ann.count()} stored vectors")
        finally:
            index.close()
    for name in LEFTOVERS:
        if (path / name).exists():
            (path / name).unlink()
            done.append(f"removed {name}")
    for entry in [path, *path.iterdir()]:
        mode = entry.lstat().st_mode
        if mode & stat.S_IWOTH and not stat.S_ISLNK(mode):
            entry.chmod(stat.S_IMODE(mode) & ~stat.S_IWOTH)
            done.append(f"made {entry.name} not world-writable")
    report = check(path)
    report.repaired = done
    return report


def _repair_store(store: Store, config: IndexConfig, reembed: bool, encoder: Encoder | None) -> list[str]:
    from .keyword import segment

    db, done = store.db, []
    labels = store.labels() if reembed else np.asarray(bad_vectors(store, config.dimension), dtype=np.int64)
    vectors = None
    if len(labels):
        encoder = encoder or SentenceTransformerEncoder(config.model)
        if not same_model(encoder, config.dimension, config.probe):
            raise ModelMismatchError(
                f"cannot re-embed: '{encoder.name}' is not the model the index was built with ({config.model})"
            )
        texts = {int(r[0]): r[1] for r in db.execute("SELECT label, text FROM passages").fetchall()}
        vectors = encoder.encode_passages([texts[int(label)] for label in labels])
    torn = db.execute(
        "SELECT d.id FROM documents d LEFT JOIN passages p ON p.doc_id = d.id"
        " GROUP BY d.id HAVING count(p.label) != d.n_passages"
    ).fetchall()
    if torn:
        store.delete([r[0] for r in torn])
        done.append(f"removed {len(torn)} torn documents ({_ids(torn)}); re-index to restore them")
    with store.transaction():
        orphans = db.execute(
            "DELETE FROM passages WHERE doc_id NOT IN (SELECT id FROM documents)"
        ).rowcount
        if orphans:
            done.append(f"removed {orphans} passages that belonged to no document")
        if vectors is not None:
            db.conn.executemany(
                "UPDATE passages SET vector = ? WHERE label = ?",
                [(v.astype(np.float32).tobytes(), int(label)) for v, label in zip(vectors, labels, strict=True)],
            )
            done.append(f"re-embedded {len(labels)} passages")
        db.execute("DELETE FROM passages_fts")
        db.conn.executemany(
            "INSERT INTO passages_fts(rowid, terms) VALUES (?, ?)",
            ((label, segment(text or "")) for label, text in db.execute("SELECT label, text FROM passages").fetchall()),
        )
        done.append("keyword table rebuilt")
        top = db.execute("SELECT max(label) FROM passages").fetchone()[0]
        next_label = max(int(store.get_meta("next_label", "0") or 0), -1 if top is None else top + 1)
        store.set_meta(next_label=next_label, seq=store.seq + 1)
    return done


def _ids(rows: list[tuple[str]]) -> str:
    shown = [r[0] for r in rows[:5]]
    return ", ".join(shown) + (" …" if len(rows) > 5 else "")

