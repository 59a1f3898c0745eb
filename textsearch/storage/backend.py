"""Where an index keeps its passages, and how it finds them: the storage backend interface and
the default backend.

``Backend`` is what the ``Index`` facade asks of a backend: documents' content hashes (for
incremental indexing), writes of one batch of embedded documents, deletes, a reader over one
committed state (dense and keyword search, metadata filters), counts and what ``info`` shows.

- ``LocalBackend`` (``"local"``, the default): SQLite (``store.py``) is the source of truth for
  documents, passages, vectors and metadata; the hnswlib graph (``ann.py``) beside it is kept in
  step by ``graphfile.py``. Everything lives in the index directory.
- ``milvus.MilvusBackend`` (``"milvus"``): passages, vectors and metadata in a Milvus collection
  (a local Milvus Lite file or a server), the index directory holding the config.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from . import graphfile
from .ann import AnnIndex
from ..search.confidence import CUT_KEY, NEIGHBOURS
from .reader import LocalReader
from ..search.query import Reader
from .store import DB_FILE, VECTOR_DTYPES, Store

if TYPE_CHECKING:
    from ..config import IndexConfig
    from ..documents.corpus import Document, Passage

BACKENDS = ("local", "milvus")
Batch = Sequence[tuple["Document", list["Passage"]]]


class Backend(Protocol):
    """The storage an ``Index`` writes to and searches. Writes come from one writer at a time
    (the index's write lock); reads may come from many threads at once."""

    name: str

    def hashes(self, ids: Sequence[str]) -> dict[str, str]: ...  # id → content hash, of those stored

    def hashes_for_root(self, root: str) -> dict[str, str]: ...  # of the documents from one folder

    def sources(self, ids: Sequence[str]) -> dict[str, str]: ...  # id → file, of folder documents

    def file_stats(self, root: str) -> dict[str, tuple[int, int]]: ...  # file → (size, mtime_ns) when read

    def record_files(self, root: str, stats: dict[str, tuple[int, int]], gone: Sequence[str]) -> None: ...

    def write(self, batch: Batch, vectors: np.ndarray, root: str | None) -> None: ...  # upsert, in order

    def delete(self, ids: Sequence[str]) -> int: ...  # how many of the documents existed

    def refresh(self) -> None: ...  # see what other writers committed

    def save(self) -> None: ...  # after a run of writes: make them durable

    def reading(self) -> Any: ...  # a context manager: a Reader over one committed state

    def nearest(self, vectors: np.ndarray) -> np.ndarray | None: ...  # cosine of each row's best passage

    def neighbours(self, n: int) -> tuple[np.ndarray, np.ndarray] | None: ...  # see LocalBackend.neighbours

    def get_cut(self) -> float | None: ...

    def set_cut(self, cut: float | None) -> None: ...

    def counts(self) -> tuple[int, int]: ...  # (documents, passages), from one committed state

    def metadata_fields(self) -> set[str]: ...  # the fields a filter may name, "id" included

    def info(self) -> dict[str, Any]: ...  # what ``textsearch info`` adds for this backend

    def close(self) -> None: ...


class LocalBackend:
    """SQLite + an hnswlib graph in the index directory (see ``graphfile`` for how the graph
    follows SQLite's committed state and survives crashes)."""

    name = "local"

    def __init__(self, path: Path, config: IndexConfig, *, load_graph: bool = True) -> None:
        self.path, self.config = Path(path), config
        self.store = Store(self.path / DB_FILE)
        self._seen_seq = -1
        self._fields: tuple[int, set[str]] | None = None
        self.ann = self._load_graph() if load_graph else self._new_graph()
        if load_graph:
            self.refresh()

    @property
    def lock(self) -> threading.RLock:
        return self.ann.lock

    # --- the graph --------------------------------------------------------------------------
    def _load_graph(self) -> AnnIndex:
        """The HNSW file SQLite recorded (see ``graphfile``); ``refresh`` replays what it lacks."""
        ann, self._seen_seq = graphfile.load(self.path, self.store, self._new_graph())
        return ann

    def _new_graph(self) -> AnnIndex:
        c = self.config
        return AnnIndex(c.dimension, M=c.M, ef_construction=c.ef_construction, ef=c.ef)

    def refresh(self) -> None:
        """Make the in-memory graph match SQLite's committed state (after another writer, or a
        crash between a commit and the HNSW save). Labels are never reused, so this is a set diff,
        read in one snapshot so that a concurrent commit cannot tear it."""
        with self.store.snapshot(), self.ann.lock:  # one thread replays; the others then see it done
            seq = self.store.seq
            if seq == self._seen_seq:
                return
            truth = self.store.labels()
            graphfile.replay(self.ann, self.store, self.config.dimension, self.ann.labels(), truth)
            self.ann.live = len(truth)
            self._seen_seq = seq

    def rebuild_graph(self) -> int:
        """Build the HNSW graph afresh from the stored vectors and save it (the caller holds the
        write lock). Returns its number of passages."""
        self.ann, self._seen_seq = self._new_graph(), -1
        self.refresh()
        self.save()
        return self.ann.count()

    def save(self) -> None:
        graphfile.save(self.path, self.ann, self.store)

    # --- writing ----------------------------------------------------------------------------
    def hashes(self, ids: Sequence[str]) -> dict[str, str]:
        return self.store.hashes(ids)

    def hashes_for_root(self, root: str) -> dict[str, str]:
        return self.store.hashes_for_root(root)

    def sources(self, ids: Sequence[str]) -> dict[str, str]:
        return self.store.sources(ids)

    def file_stats(self, root: str) -> dict[str, tuple[int, int]]:
        return self.store.file_stats(root)

    def record_files(self, root: str, stats: dict[str, tuple[int, int]], gone: Sequence[str]) -> None:
        self.store.record_files(root, stats, gone)

    def write(self, batch: Batch, vectors: np.ndarray, root: str | None) -> None:
        """One transaction, then the graph: a reader in another thread sees both change together."""
        stored = vectors.astype(VECTOR_DTYPES[self.config.vector_dtype])
        with self.ann.lock:
            labels, removed = self.store.write(batch, stored, root=root)
            self.ann.delete(removed)
            self.ann.add(labels, vectors)
            self._seen_seq = self.store.seq

    def delete(self, ids: Sequence[str]) -> int:
        with self.ann.lock:
            deleted, removed = self.store.delete(list(ids))
            self.ann.delete(removed)
            self._seen_seq = self.store.seq
        return deleted

    # --- reading ----------------------------------------------------------------------------
    @contextmanager
    def reading(self) -> Iterator[Reader]:
        """The graph and the rows it points to, at one committed state. The graph is shared by
        every thread of this process, so the reader holds it while it searches."""
        with self.ann.lock, self.store.snapshot():
            self.refresh()
            yield LocalReader(self.store, self.ann, self.config.dimension)

    def nearest(self, vectors: np.ndarray) -> np.ndarray | None:
        labels, cosines = self.ann.search(vectors, 1)
        return cosines[:, 0] if labels.size else None

    def neighbours(self, n: int) -> tuple[np.ndarray, np.ndarray] | None:
        """Up to ``n`` stored passages spread over the index: their vectors, and the cosine of the
        nearest passage of another document to each (-1 where there is none); None when empty.
        Whole passages only: a sentence unit is shorter than what users' questions are measured
        against, so its neighbours would pull the cut down (``confidence``)."""
        labels = np.intersect1d(self.ann.live_labels(), self.store.labels(whole=True))
        if not labels.size:
            return None
        labels = labels[np.linspace(0, len(labels) - 1, min(n, len(labels))).astype(np.int64)]
        vectors = self.store.vectors(labels, self.config.dimension)
        found, cosines = self.ann.search(vectors, NEIGHBOURS)
        rows = self.store.passages(np.unique(np.concatenate([labels, found.ravel()])))
        best = np.full(len(labels), -1.0, dtype=np.float32)
        for i, label in enumerate(labels):
            own = rows[int(label)].doc_id
            others = (c for f, c in zip(found[i], cosines[i]) if int(f) in rows and rows[int(f)].doc_id != own)
            best[i] = next(others, -1.0)
        return vectors, best

    def get_cut(self) -> float | None:
        cut = self.store.get_meta(CUT_KEY)
        return None if cut is None else float(cut)

    def set_cut(self, cut: float | None) -> None:
        self.store.set_meta(**{CUT_KEY: cut})

    def counts(self) -> tuple[int, int]:
        with self.store.snapshot():
            return self.store.document_count(), self.store.passage_count()

    def metadata_fields(self) -> set[str]:
        """Read again only after a write."""
        seq = self.store.seq
        if self._fields is None or self._fields[0] != seq:
            self._fields = (seq, self.store.metadata_fields())
        return self._fields[1]

    def info(self) -> dict[str, Any]:
        c = self.config
        return {"hnsw": {"M": c.M, "ef_construction": c.ef_construction, "ef": c.ef, **self.ann.settings}}

    def close(self) -> None:
        self.store.close()


def open_backend(path: Path, config: IndexConfig, *, load_graph: bool = True, create: bool = False) -> Backend:
    """The backend ``config`` names, opened (``create``: made, for a new index)."""
    if config.backend == "milvus":
        from .milvus import MilvusBackend

        return MilvusBackend(path, config, create=create)
    return LocalBackend(path, config, load_graph=load_graph)
