"""Approximate nearest neighbours by cosine. The only module that imports hnswlib.

Labels are the integer passage labels of the store. Deleted labels are marked deleted (they keep
routing searches) and new ones take new slots; once deleted slots are half the graph, it is
rebuilt from its live vectors, so add/delete churn does not grow it. Slots are never refilled in
place: hnswlib's replace_deleted costs ~20 inserts each and, over many rounds, leaves elements
that a search for their own vector no longer reaches (found by benchmarks/bench_crash.py).
"""

from __future__ import annotations

import logging
import os
import struct
import threading
import zlib
from pathlib import Path

import hnswlib
import numpy as np

from ..errors import IndexCorruptError

logger = logging.getLogger(__name__)

ANN_FILE = "hnsw.bin"


class AnnIndex:
    """One HNSW graph. Safe to share between threads: every method holds the graph's lock (a
    search sets ef and may race a resize otherwise); a search takes about a quarter millisecond,
    so readers queue briefly here while their encoding and SQLite reads run in parallel."""

    def __init__(
        self,
        dimension: int,
        *,
        M: int = 16,
        ef_construction: int = 200,
        ef: int = 400,
        capacity: int = 1024,
        _index: hnswlib.Index | None = None,
        _deleted: set[int] | None = None,
    ) -> None:
        self.dimension = dimension
        self.ef = ef
        self._index = (
            _index if _index is not None else _empty(dimension, capacity, M, ef_construction)
        )
        self._index.set_ef(ef)
        self._deleted = _deleted or set()  # labels marked deleted, still holding a slot
        self.live = 0  # labels present and not deleted; set by the owner after load
        self.signature = ""  # "size:crc32" of the file this graph was loaded from
        self.lock = threading.RLock()

    @classmethod
    def load(cls, path: Path, dimension: int, ef: int) -> AnnIndex:
        """Load the graph at ``path``. ``signature`` ("size:crc32") is that of the very file
        loaded: it is held open throughout, so a writer renaming a new file over ``path`` meanwhile
        cannot mix two files."""
        index = hnswlib.Index(space="cosine", dim=dimension)
        try:
            with open(path, "rb") as fh:
                pinned = Path(f"/proc/self/fd/{fh.fileno()}") if _PINNABLE else path
                signature = file_signature(pinned)
                file_dimension, deleted = _read_header(pinned)
                if file_dimension == dimension:
                    index.load_index(str(pinned))
                    labels, flags = file_labels(pinned)
        except (RuntimeError, ValueError, OSError, struct.error) as exc:
            raise IndexCorruptError(
                f"HNSW file {path} is unreadable ({exc}) — rebuild it from the stored vectors "
                f"with `textsearch repair {path.parent}`"
            ) from exc
        if file_dimension != dimension:
            raise IndexCorruptError(
                f"HNSW file {path} has dimension {file_dimension}, expected {dimension} — rebuild "
                f"it with `textsearch repair {path.parent}`"
            )
        ann = cls(dimension, ef=ef, _index=index, _deleted=set(labels[flags].tolist()))
        ann.live = index.get_current_count() - deleted
        ann.signature = "%d:%d" % signature
        return ann

    def add(self, labels: np.ndarray, vectors: np.ndarray) -> None:
        """Insert vectors under new labels (the store never reuses one), growing capacity."""
        with self.lock:
            if len(labels) == 0:
                return
            needed = self._index.get_current_count() + len(labels)  # deleted slots count as used
            capacity = self._index.get_max_elements()
            if needed > capacity:
                self._index.resize_index(max(needed, capacity * 2))
            self._index.add_items(vectors, np.asarray(labels, dtype=np.int64), num_threads=-1)
            self.live += len(labels)

    def delete(self, labels: np.ndarray) -> None:
        """Mark labels deleted; labels unknown or already deleted are ignored (replays are safe).
        Compacts the graph when deleted slots reach half of it."""
        with self.lock:
            for label in labels:
                try:
                    self._index.mark_deleted(int(label))
                except RuntimeError:
                    continue
                self.live -= 1
                self._deleted.add(int(label))
            if self._deleted and 2 * len(self._deleted) >= self._index.get_current_count():
                self._compact()

    def _compact(self) -> None:
        """Rebuild the graph from its live vectors, dropping the deleted slots. A rebuild re-inserts
        no more vectors than it frees slots, so it costs at most one insert per delete, and leaves
        a graph as good as one built afresh."""
        old = self._index
        live = self.live_labels()
        logger.info("compacting the HNSW graph: %d live, %d deleted slots", len(live), len(self._deleted))
        # room for as many again (the capacity shrinks after a mass delete, never below the start)
        capacity = min(old.get_max_elements(), max(2 * len(live), 1024))
        new = _empty(self.dimension, capacity, int(old.M), int(old.ef_construction))
        new.set_ef(self.ef)
        for start in range(0, len(live), _REBUILD_CHUNK):  # bounded extra memory while both exist
            chunk = live[start : start + _REBUILD_CHUNK]
            new.add_items(old.get_items(chunk), chunk, num_threads=-1)
        self._index = new  # only once complete: an error above leaves the old graph in place
        self._deleted.clear()

    def search(
        self, vectors: np.ndarray, k: int, ef: int | None = None, allowed: set[int] | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-k labels and cosine similarities for each row of ``vectors``; with ``allowed``, only
        among those labels (hnswlib's filter callback: the graph walk skips the others)."""
        with self.lock:
            vectors = np.atleast_2d(vectors)
            k = min(k, self.live if allowed is None else len(allowed))
            if k <= 0:
                empty = np.zeros((len(vectors), 0))
                return empty.astype(np.int64), empty.astype(np.float32)
            self._index.set_ef(max(ef or self.ef, k))
            if allowed is None:
                labels, distances = self._index.knn_query(vectors, k=k)
            else:
                labels, distances = self._index.knn_query(vectors, k=k, num_threads=1,
                                                          filter=allowed.__contains__)
            return labels.astype(np.int64), (1.0 - distances).astype(np.float32)

    def labels(self) -> np.ndarray:
        """Every label in the graph, deleted ones included."""
        with self.lock:
            return np.asarray(self._index.get_ids_list(), dtype=np.int64)

    def live_labels(self) -> np.ndarray:
        """Labels present and not deleted, ascending."""
        with self.lock:
            return np.setdiff1d(self.labels(), np.fromiter(self._deleted, np.int64, len(self._deleted)))

    def count(self) -> int:
        return self.live

    def save(self, path: Path) -> tuple[int, int]:
        """Write to a temporary name, fsync, rename. Returns (size, crc32) to record elsewhere."""
        with self.lock:
            tmp = path.with_name(path.name + ".tmp")
            self._index.save_index(str(tmp))
            with open(tmp, "rb+") as fh:
                os.fsync(fh.fileno())
            os.replace(tmp, path)
            return file_signature(path)

    @property
    def settings(self) -> dict[str, int]:
        return {
            "M": int(self._index.M),
            "ef_construction": int(self._index.ef_construction),
            "capacity": int(self._index.get_max_elements()),
            "slots_used": int(self._index.get_current_count()),
        }


_REBUILD_CHUNK = 10_000
_PINNABLE = os.path.isdir("/proc/self/fd")  # Linux: reopen a file held open by its descriptor


def _empty(dimension: int, capacity: int, M: int, ef_construction: int) -> hnswlib.Index:
    index = hnswlib.Index(space="cosine", dim=dimension)
    index.init_index(
        max_elements=max(capacity, 16),
        ef_construction=ef_construction,
        M=M,
        random_seed=100,
    )
    return index


# hnswlib 0.8's file header: offsetLevel0, max_elements, count, size_per_element, label_offset,
# offsetData (size_t each), then maxlevel, enterpoint (4 bytes each), maxM, maxM0, M, mult, efC.
_HEADER = struct.Struct("<6Q")
_HEADER_SIZE = 96


def _read_header(path: Path) -> tuple[int, int]:
    """(dimension, deleted elements) of an hnswlib file, read without loading the graph."""
    with open(path, "rb") as fh:
        off0, _, count, per, label_off, data_off = _HEADER.unpack(fh.read(_HEADER.size))
    if count and (per == 0 or path.stat().st_size < _HEADER_SIZE + count * per):
        raise ValueError("Index seems to be corrupted or unsupported")
    if not count:
        return (label_off - data_off) // 4, 0
    records = np.memmap(path, np.uint8, "r", offset=_HEADER_SIZE, shape=(count, per))
    return (label_off - data_off) // 4, int(np.count_nonzero(records[:, off0 + 2] & 1))


def file_signature(path: Path) -> tuple[int, int]:
    crc = 0
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 22):
            crc = zlib.crc32(chunk, crc)
    return path.stat().st_size, crc


def file_labels(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(labels, deleted flags) of every slot in an hnswlib file, read without loading the graph:
    what `textsearch check` compares with the store."""
    with open(path, "rb") as fh:
        off0, _, count, per, label_off, _ = _HEADER.unpack(fh.read(_HEADER.size))
    if not count:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=bool)
    records = np.memmap(path, np.uint8, "r", offset=_HEADER_SIZE, shape=(count, per))
    labels = np.ascontiguousarray(records[:, label_off : label_off + 8]).view("<u8").ravel()
    return labels.astype(np.int64), (records[:, off0 + 2] & 1).astype(bool)
