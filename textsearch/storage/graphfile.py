"""The HNSW file beside the store: which graph on disk belongs to which committed state, and the
write lock that keeps one writer at a time.

SQLite is the source of truth. After each write call the graph is saved under a temporary name and
renamed over ``hnsw.bin``; SQLite records the file's ``size:crc32`` and the ``seq`` it reflects,
first as pending, then as current. Whichever moment a crash hits, the file on disk matches one of
the two records, and opening the index replays into the graph what SQLite committed after it.
"""

from __future__ import annotations

import fcntl
import logging
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .ann import ANN_FILE, AnnIndex, file_signature
from ..errors import IndexCorruptError, IndexLockedError
from .store import Store

logger = logging.getLogger(__name__)

LOCK_FILE = ".write.lock"


@dataclass(frozen=True)
class Signature:
    """What SQLite records about an HNSW file: its ``size:crc32`` and the ``seq`` it reflects."""

    file: str
    seq: int

    @classmethod
    def parse(cls, text: str) -> Signature:
        file, _, seq = text.partition("@")
        return cls(file, int(seq or -1))

    def __str__(self) -> str:
        return f"{self.file}@{self.seq}"


def recorded(store: Store) -> list[Signature]:
    """The current and the pending record, those that exist."""
    return [Signature.parse(v) for key in ("ann_sig", "ann_pending") if (v := store.get_meta(key))]


def load(directory: Path, store: Store, empty: AnnIndex) -> tuple[AnnIndex, int]:
    """The graph saved in ``directory`` if it is one SQLite recorded (``empty`` when none was ever
    saved), and the ``seq`` it is up to date with (-1: replay needed). A file that matches no
    record is refused: `textsearch repair` rebuilds it."""
    path = directory / ANN_FILE
    for attempt in range(3):  # a concurrent writer may save a new file after we read the records
        records = recorded(store)
        if not path.exists():
            if not records:
                return empty, -1  # never saved yet: the replay fills it
            raise IndexCorruptError(
                f"HNSW file {path} is missing — rebuild it from the stored vectors with "
                f"`textsearch repair {directory}`"
            )
        ann = AnnIndex.load(path, empty.dimension, empty.ef)
        matches = [r for r in records if r.file == ann.signature]
        if matches:
            with store.snapshot():  # seq and count of one state, or a commit in between is missed
                if matches[0].seq != store.seq:
                    return ann, -1
                ann.live = store.passage_count()
                return ann, matches[0].seq
        time.sleep(0.05 * (attempt + 1))
    raise IndexCorruptError(
        f"HNSW file {path} does not match what the index recorded (truncated or damaged) — "
        f"rebuild it from the stored vectors with `textsearch repair {directory}`"
    )


def save(directory: Path, ann: AnnIndex, store: Store) -> None:
    """Rename protocol: record the new file's signature as pending, rename, then confirm. A rename
    left unconfirmed by a crash is confirmed before the next save, so that two crashes in a row
    cannot leave a file that neither record names."""
    path = directory / ANN_FILE
    seq = store.seq
    pending = store.get_meta("ann_pending")
    if pending and path.exists() and "%d:%d" % file_signature(path) == Signature.parse(pending).file:
        store.set_meta(ann_sig=pending)  # an earlier save renamed, then died before confirming
    tmp = path.with_name(path.name + ".new")
    new = Signature("%d:%d" % ann.save(tmp), seq)
    store.set_meta(ann_pending=new)
    os.replace(tmp, path)
    _fsync_dir(directory)  # the rename is on disk before SQLite says it happened
    store.set_meta(ann_sig=new, ann_pending=None)


def replay(ann: AnnIndex, store: Store, dimension: int, have: np.ndarray, truth: np.ndarray) -> None:
    """Bring a graph holding labels ``have`` to the stored labels ``truth``: add the missing ones
    from their stored vectors, delete the rest. Labels are never reused, so a set difference is
    enough and replaying twice is harmless."""
    missing = np.setdiff1d(truth, have)
    if len(missing):
        logger.info("replaying %d passages into the HNSW graph", len(missing))
    for i in range(0, len(missing), 10_000):
        chunk = missing[i : i + 10_000]
        ann.add(chunk, store.vectors(chunk, dimension))
    ann.delete(np.setdiff1d(have, truth))


@contextmanager
def write_lock(directory: Path) -> Iterator[None]:
    """The index's write lock: one writer at a time. Waits up to TEXTSEARCH_LOCK_TIMEOUT seconds
    (default 30), then fails with a clear message. The kernel drops it when a process dies."""
    lock = open(Path(directory) / LOCK_FILE, "a+")  # noqa: SIM115 - closed in finally
    deadline = time.monotonic() + float(os.environ.get("TEXTSEARCH_LOCK_TIMEOUT", "30"))
    try:
        while True:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise IndexLockedError(
                        f"index {directory} is being written by another process — "
                        "wait for it to finish, then retry"
                    ) from None
                time.sleep(0.1)
        yield
    finally:
        lock.close()


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
