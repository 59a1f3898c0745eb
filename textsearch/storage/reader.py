"""The default backend's reader: search over one committed state of the SQLite store and the
hnswlib graph (``search.Reader``).

- ``dense``: the query embedding's nearest passages in the graph; under a filter, small allowed
  sets (up to ``EXACT_LIMIT`` passages) are searched exactly over their stored vectors, larger
  ones through hnswlib's filter callback;
- ``keyword``: BM25 over the FTS5 table of jieba-segmented passages, each hit with its cosine.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from ..search.filters import to_sql
from ..hits import Hit
from ..search.keyword import match_expression
from .store import Where

if TYPE_CHECKING:
    from .ann import AnnIndex
    from .store import Store

EXACT_LIMIT = 2_000  # allowed passages up to which a filtered dense search is exact (measured: README)


@dataclass(frozen=True)
class LocalReader:
    """The default backend's reader: the SQLite store and the hnswlib graph, with the vector size."""

    store: Store
    ann: AnnIndex
    dimension: int

    def where(self, filter: dict[str, Any], fields: set[str]) -> Where:
        return to_sql(filter, fields)

    def dense(self, vector: np.ndarray, k: int, group: bool, ef: int | None, where: Where | None) -> list[Hit]:
        return dense(self, vector, k, group, ef, where)

    def keyword(self, query: str, vector: np.ndarray, k: int, group: bool, where: Where | None) -> list[Hit]:
        return keyword(self, query, vector, k, group, where)


def dense(source: LocalReader, vector: np.ndarray, k: int, group: bool, ef: int | None, where: Where | None) -> list[Hit]:
    """The k best documents (or passages) by cosine, among the filtered ones when ``where``."""
    allowed: np.ndarray | None = None
    if where is not None:
        allowed = source.store.filtered_labels(where)
        if len(allowed) <= EXACT_LIMIT:
            return _exact(source, vector, allowed, k, group)
    fetch = max(4 * k, k + 20) if group else k
    allowed_set = None if allowed is None else set(allowed.tolist())
    while True:
        try:
            labels, scores = source.ann.search(vector, fetch, ef=ef, allowed=allowed_set)
        except RuntimeError:  # the filtered graph walk found fewer than asked: search exactly
            return _exact(source, vector, allowed if allowed is not None else source.store.labels(), k, group)
        hits = _hits(source, zip(labels[0].tolist(), scores[0].tolist()), group)
        if len(hits) >= k or fetch >= (source.ann.live if allowed_set is None else len(allowed_set)):
            return hits[:k]
        fetch *= 4


def _exact(source: LocalReader, vector: np.ndarray, labels: np.ndarray, k: int, group: bool) -> list[Hit]:
    if not len(labels):
        return []
    scores = source.store.vectors(labels, source.dimension) @ vector
    order = np.argsort(-scores, kind="stable")
    return _hits(source, ((int(labels[i]), float(scores[i])) for i in order), group, limit=k)


def keyword(source: LocalReader, query: str, vector: np.ndarray, k: int, group: bool, where: Where | None) -> list[Hit]:
    """The k best documents (or passages) by BM25; ``dense_score`` is each passage's cosine."""
    expression = match_expression(query)
    if expression is None:
        return []
    fetch = max(4 * k, k + 20) if group else k
    while True:
        found = source.store.keyword_search(expression, fetch, where)
        hits = _hits(source, found, group)
        if len(hits) >= k or len(found) < fetch:
            break
        fetch *= 4
    hits = hits[:k]
    labels = np.asarray([h.label for h in hits], dtype=np.int64)
    cosines = source.store.vectors(labels, source.dimension) @ vector if len(labels) else []
    return [replace(h, dense_score=round(float(c), 6)) for h, c in zip(hits, cosines)]


def _hits(source: LocalReader, scored: Iterable[tuple[int, float]], group: bool, limit: int | None = None) -> list[Hit]:
    """Hits for (label, score) best first: the best passage per document when ``group``; rows are
    read in chunks, so a long exact ranking stops being read once ``limit`` hits are found."""
    scored = list(scored)
    step = max(4 * (limit or 0), 64) if limit else len(scored)
    best: dict[str, Hit] = {}
    for start in range(0, len(scored), max(step, 1)):
        chunk = scored[start : start + step]
        rows = source.store.passages(label for label, _ in chunk)
        for label, score in chunk:
            row = rows.get(int(label))
            key = None if row is None else row.doc_id if group else str(row.label)
            if row is None or key in best:
                continue
            best[key] = Hit(row.doc_id, round(float(score), 6), row.text, row.metadata, row.position,
                            row.n_passages, row.start, row.end, label=row.label, location=row.location,
                            match=row.match)
            if limit and len(best) >= limit:
                return list(best.values())
    return list(best.values())
