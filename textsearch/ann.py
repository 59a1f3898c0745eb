"""Approximate nearest neighbours by cosine. The only module that imports hnswlib.

Labels are the integer passage labels of the store. Deleted labels are marked deleted and their
slots reused by later inserts, so add/delete churn does not grow the graph.
"""

from __future__ import annotations

import os
import struct
import zlib
from pathlib import Path

import hnswlib
import numpy as np

from .errors import IndexCorruptError

ANN_FILE = "hnsw.bin"


class AnnIndex:
    def __init__(
        self,
        dimension: int,
        *,
        M: int = 16,
        ef_construction: int = 200,
        ef: int = 200,
        capacity: int = 1024,
        _index: hnswlib.Index | None = None,
    ) -> None:
        self.dimension = dimension
        self.ef = ef
        if _index is None:
            _index = hnswlib.Index(space="cosine", dim=dimension)
            _index.init_index(
                max_elements=max(capacity, 16),
                ef_construction=ef_construction,
                M=M,
                random_seed=100,
                allow_replace_deleted=True,
            )
        self._index = _index
        self._index.set_ef(ef)
        self.live = 0  # labels present and not deleted; set by the owner after load

    @classmethod
    def load(cls, path: Path, dimension: int, ef: int) -> AnnIndex:
        index = hnswlib.Index(space="cosine", dim=dimension)
        try:
            file_dimension, deleted = _read_header(path)
            if file_dimension == dimension:
                index.load_index(str(path), allow_replace_deleted=True)
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
        ann = cls(dimension, ef=ef, _index=index)
        ann.live = index.get_current_count() - deleted
        return ann

    def add(self, labels: np.ndarray, vectors: np.ndarray) -> None:
        """Insert vectors under new labels (the store never reuses one), growing capacity."""
        if len(labels) == 0:
            return
        needed = self._index.get_current_count() + len(labels)  # deleted slots count as used
        capacity = self._index.get_max_elements()
        if needed > capacity:
            self._index.resize_index(max(needed, capacity * 2))
        self._index.add_items(vectors, np.asarray(labels, dtype=np.int64), num_threads=-1, replace_deleted=True)
        self.live += len(labels)

    def delete(self, labels: np.ndarray) -> None:
        """Mark labels deleted; labels unknown or already deleted are ignored (replays are safe)."""
        for label in labels:
            try:
                self._index.mark_deleted(int(label))
                self.live -= 1
            except RuntimeError:
                pass

    def search(
        self, vectors: np.ndarray, k: int, ef: int | None = None, allowed: set[int] | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-k labels and cosine similarities for each row of ``vectors``; with ``allowed``, only
        among those labels (hnswlib's filter callback: the graph walk skips the others)."""
        vectors = np.atleast_2d(vectors)
        k = min(k, self.live if allowed is None else len(allowed))
        if k <= 0:
            empty = np.zeros((len(vectors), 0))
            return empty.astype(np.int64), empty.astype(np.float32)
        self._index.set_ef(max(ef or self.ef, k))
        if allowed is None:
            labels, distances = self._index.knn_query(vectors, k=k)
        else:
            labels, distances = self._index.knn_query(vectors, k=k, num_threads=1, filter=allowed.__contains__)
        return labels.astype(np.int64), (1.0 - distances).astype(np.float32)

    def labels(self) -> np.ndarray:
        """Every label in the graph, deleted ones included."""
        return np.asarray(self._index.get_ids_list(), dtype=np.int64)

    def count(self) -> int:
        return self.live

    def save(self, path: Path) -> tuple[int, int]:
        """Write to a temporary name, fsync, rename. Returns (size, crc32) to record elsewhere."""
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
