"""Ingestion: documents → passages → vectors → the index's storage backend.

Documents are read, decoded and split lazily; whole documents are grouped into batches of about
``BATCH_PASSAGES`` passages; batch i+1 is embedded in a helper thread while batch i is written
(local backend: one SQLite transaction, then the graph), in order, on the calling thread. A kill
loses at most the batch in flight; what was committed stays (the graph catches up from SQLite on
open). A batch written again (a retried task) replaces its documents: nothing is duplicated.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from ..search import keyword
from ..documents.corpus import Document, locate
from ..documents.split import Passage, split_many, with_sentences
from ..hits import Summary

if TYPE_CHECKING:
    from ..storage.backend import Backend
    from ..config import IndexConfig
    from ..models.encoder import Encoder

BATCH_PASSAGES = 1024  # passages embedded and committed per transaction: a kill loses at most these (~2 s of CPU work)
SPLIT_GROUP = 256  # documents whose tokens are counted in one call
Batch = list[tuple[Document, list[Passage]]]


@dataclass
class Target:
    """Where ingestion writes: an index's storage backend, embedding with its encoder (asked for
    only when a document is new or changed: an unchanged folder never loads the model) and cutting
    passages by its config; ``root`` the folder the documents come from (None: added by the API)."""

    backend: Backend
    encoder: Callable[[], Encoder]
    config: IndexConfig
    root: str | None = None


def write(docs: Iterable[Document], known: dict[str, str], target: Target, show_progress: bool = False) -> Summary:
    """Embed and write the documents that are new or changed against ``known`` (id → content
    hash); count the rest as unchanged. The caller holds the write lock."""
    started = time.perf_counter()
    summary = Summary()
    config = target.config

    def split(group: list[Document]) -> Iterator[tuple[Document, list[Passage]]]:
        cut = split_many([doc.text for doc in group], target.encoder().count_tokens, config.max_passage_tokens,
                         config.overlap_tokens)
        for doc, passages in zip(group, cut):
            if config.sentences:
                passages = with_sentences(doc.text, passages)
            locate(doc, passages)
            summary.passages += len(passages)
            bar.grow(len(passages))
            yield doc, passages

    def changed() -> Iterator[tuple[Document, list[Passage]]]:
        """Read, decode and split lazily, a group of documents at a time (their tokens counted in
        one call): this runs between writes, while the encoder works."""
        group: list[Document] = []
        for doc in docs:
            if known.get(doc.id) == doc.content_hash:
                summary.unchanged += 1
                continue
            if not summary.added and not summary.updated:
                keyword.warm_up()  # the keyword table's segmenter loads while the first batch embeds
            if doc.id in known:
                summary.updated += 1
            else:
                summary.added += 1
            group.append(doc)
            if len(group) >= min(SPLIT_GROUP, BATCH_PASSAGES):
                yield from split(group)
                group = []
        if group:  # none left (or none changed): the encoder is not asked for
            yield from split(group)

    with Progress(show_progress) as bar:
        _write_pipelined(batches(changed()), target, bar)
    summary.seconds = time.perf_counter() - started
    return summary


def _write_pipelined(todo: Iterator[Batch], target: Target, bar: Progress) -> None:
    """Embed batch i+1 in a helper thread while batch i is written (SQLite, keywords, graph)
    here: the encoder releases the GIL, so the writing is nearly free. Writes stay in order,
    on this thread, one transaction per batch."""
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="textsearch-encode") as pool:
        pending: tuple[Batch, Future[np.ndarray]] | None = None
        for batch in todo:
            texts = [p.text for _, passages in batch for p in passages]
            embedding = pool.submit(target.encoder().encode_passages, texts)
            if pending:
                write_batch(pending[0], pending[1].result(), target, bar)
            pending = (batch, embedding)
        if pending:
            write_batch(pending[0], pending[1].result(), target, bar)


def write_batch(batch: Batch, vectors: np.ndarray, target: Target, bar: Progress) -> None:
    """One batch of documents and their passages' vectors (rows in passage order), written."""
    target.backend.write(batch, vectors, target.root)
    bar.update(len(vectors))


def batches(todo: Iterable[tuple[Document, list[Passage]]]) -> Iterator[Batch]:
    """Whole documents, about BATCH_PASSAGES passages a batch."""
    batch: Batch = []
    in_batch = 0
    for item in todo:
        batch.append(item)
        in_batch += len(item[1])
        if in_batch >= BATCH_PASSAGES:
            yield batch
            batch, in_batch = [], 0
    if batch:
        yield batch


class Progress:
    """A bar of passages embedded, made on the first passage (a run with nothing to embed shows
    none), its total growing as documents are read and split ahead of the encoder."""

    def __init__(self, show: bool) -> None:
        self.show, self.bar = show, None

    def grow(self, n: int) -> None:
        if self.show and self.bar is None:
            from tqdm import tqdm

            self.bar = tqdm(total=0, unit="passage", desc="embedding")
        if self.bar is not None:
            self.bar.total += n
            self.bar.refresh()

    def update(self, n: int) -> None:
        if self.bar is not None:
            self.bar.update(n)

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.close()
