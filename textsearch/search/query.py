"""The query side of an index: candidates → fusion → rerank → confidence.

- ``dense``: the query embedding's nearest passages in the HNSW graph (cosine);
- ``keyword``: BM25 over the FTS5 table of jieba-segmented passages (``keyword.py``);
- ``hybrid``: both lists fused by reciprocal rank fusion, score = Σ 1 / (rrf_k + rank);
- a metadata filter (``filters.py``) restricts every stage before the top k is cut: small allowed
  sets are searched exactly over their stored vectors, larger ones through hnswlib's filter
  callback;
- copies of one text (``duplicates.py``: the same words up to width, case, whitespace and
  punctuation) come back as one hit, the best-ranked, listing the others in ``copies``; more hits
  are read so that k distinct ones still come back (``collapse=False``: every copy);
- an optional cross-encoder reranks the first ``candidates`` hits;
- every hit carries its cosine to the query (``dense_score``) and its ``margin`` over the query's
  background level (``confidence.py``); hits under the confidence rule (by default a margin of
  the model's ``min_margin``; an explicit ``min_score`` judges the cosine instead) are marked
  ``low_confidence``. When no hit passes, the answer is "no confident match" (no hits, unless
  they are asked for); when one does, every hit is returned, the weaker ones marked: a rule
  that hid the second hit would hide answers a user can see are right. The default rule applies
  to dense search and to reranked results; keyword and hybrid results only to an explicit
  ``min_score`` or ``min_margin``.

Each backend brings its ``Reader``: the default one's is ``storage/reader.py`` (SQLite and hnswlib),
Milvus's is in ``storage/milvus.py``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, Protocol

import numpy as np

from . import confidence, duplicates
from ..config import DEFAULT_CANDIDATES, DEFAULT_MODE, RRF_K
from ..errors import InvalidArgumentError
from ..hits import Hit
from .rerank import Reranker, check_weight

MODES = ("dense", "keyword", "hybrid")
HYBRID_DEPTH = 10  # hits taken from each list before fusing (at least k; as measured in the README)
MAX_K = 10_000  # results (and rerank candidates) one search may ask for
MAX_EF = 100_000  # hnswlib's search breadth: past this, a search is exact search done slowly
MAX_RRF_K = 1_000_000


@dataclass(frozen=True)
class SearchOptions:
    """How to search, checked once when made (``Index.search`` makes one from its keywords; the
    CLI and other callers may pass their own). See ``Index.search`` for what each option does."""

    k: int = 10
    mode: str = DEFAULT_MODE
    filter: dict[str, Any] | None = None
    group: bool = True
    ef: int | None = None
    rerank: bool | Reranker = False
    rerank_model: str | None = None
    candidates: int | None = None
    rerank_weight: float | None = None
    min_score: float | None = None
    min_margin: float | None = None
    include_low_confidence: bool = False
    rrf_k: int = RRF_K
    collapse: bool = True

    def __post_init__(self) -> None:
        if self.mode is None:
            object.__setattr__(self, "mode", DEFAULT_MODE)
        if not _positive(self.k, MAX_K):
            raise InvalidArgumentError(f"k must be a number of results from 1 to {MAX_K}, got {self.k}")
        if self.mode not in MODES:
            raise InvalidArgumentError(f"unknown search mode '{self.mode}' — choose one of {', '.join(MODES)}")
        if self.candidates is not None and not _positive(self.candidates, MAX_K):
            raise InvalidArgumentError(f"candidates must be a number from 1 to {MAX_K}, got {self.candidates}")
        if self.ef is not None and not _positive(self.ef, MAX_EF):
            raise InvalidArgumentError(f"ef must be a number from 1 to {MAX_EF}, got {self.ef}")
        if not _positive(self.rrf_k, MAX_RRF_K):
            raise InvalidArgumentError(f"rrf_k must be a number from 1 to {MAX_RRF_K}, got {self.rrf_k}")
        if self.rerank_weight is not None:
            check_weight(self.rerank_weight)
        if not isinstance(self.collapse, bool):
            raise InvalidArgumentError(f"collapse is true or false, got {self.collapse!r}")
        if self.filter is not None and not isinstance(self.filter, dict):
            raise InvalidArgumentError(f"a filter is a dict of conditions, e.g. {{'lang': 'zh'}}, not {self.filter!r}")

    @property
    def reranks(self) -> bool:
        return bool(self.rerank) or self.rerank_model is not None


def _positive(n: Any, most: int) -> bool:
    return isinstance(n, int) and not isinstance(n, bool) and 1 <= n <= most


class Reader(Protocol):
    """A backend's search over one committed state. ``where`` compiles a filter once per query
    (raising InvalidArgumentError for a bad one); ``dense`` and ``keyword`` take what it returned."""

    def where(self, filter: dict[str, Any], fields: set[str]) -> Any: ...

    def dense(self, vector: np.ndarray, k: int, group: bool, ef: int | None, where: Any) -> list[Hit]: ...

    def keyword(self, query: str, vector: np.ndarray, k: int, group: bool, where: Any) -> list[Hit]: ...


@dataclass(frozen=True)
class Source:
    """What a search reads: a backend's reader over one committed state, the metadata fields a
    filter may name, the model's calibrated ``min_margin`` and the index's confidence cut
    (``confidence.index_cut``)."""

    reader: Reader
    fields: Callable[[], set[str]]  # asked only when a filter is given: it may read every document
    min_margin: float | None = None
    cut: float | None = None


def candidates(source: Source, query: str, options: SearchOptions, vector: np.ndarray,
               reranking: bool = False) -> list[Hit]:
    """The first stage: the hits of ``options.mode`` for ``query`` (embedded as ``vector``), as
    many as the reranker will read when ``reranking``. Reads the backend: the caller holds its
    reader at one committed state. With ``options.collapse`` copies of one text come back as
    one hit (``duplicates.collapse``): while the n hits read hold fewer than n distinct texts,
    4 × as many are read, until the backend has no more, as the readers do when grouping passages
    by document. The first read is the one ``collapse=False`` makes, so a ranking without copies
    is the same either way (hybrid's fusion depends on how deep its lists are)."""
    where = source.reader.where(options.filter, source.fields()) if options.filter else None
    n = max(options.k, options.candidates or DEFAULT_CANDIDATES) if reranking else options.k
    fetch = n
    while True:
        hits = _ranked(source.reader, query, options, vector, fetch, where)
        if not options.collapse:
            return hits
        distinct = duplicates.collapse(hits)
        if len(distinct) >= n or len(hits) < fetch or fetch >= MAX_K:
            return distinct[:n]
        fetch = min(4 * fetch, MAX_K)


def _ranked(reader: Reader, query: str, options: SearchOptions, vector: np.ndarray, n: int, where: Any) -> list[Hit]:
    """The n best hits of ``options.mode``, copies and all."""
    group, ef = options.group, options.ef
    if options.mode == "dense":
        return reader.dense(vector, n, group, ef, where)
    if options.mode == "keyword":
        return reader.keyword(query, vector, n, group, where)
    fetch = max(n, HYBRID_DEPTH)
    return fuse([reader.dense(vector, fetch, group, ef, where),
                 reader.keyword(query, vector, fetch, group, where)], options.rrf_k)[:n]


def finish(source: Source, query: str, hits: list[Hit], options: SearchOptions, *, level: float | None = None,
           reranker: Reranker | None = None) -> list[Hit]:
    """The second stage and the verdict: rerank (when ``reranker``), cut to k, give each hit its
    margin over the query's background ``level``, mark the hits under the confidence rule, and
    answer "no confident match" (``[]``) when none passes. Reads neither graph nor store."""
    min_score, min_margin = options.min_score, options.min_margin
    if reranker is not None:
        hits = reranker.rerank(query, hits)
    hits = hits[: options.k]
    if level is not None:
        hits = [replace(h, margin=round(_cosine(h) - level, 6)) for h in hits]
    rule = _rule(source, reranker, min_score, min_margin)
    if rule is None or (min_score is None and min_margin is None and options.mode != "dense" and reranker is None):
        # the default rule judges dense rankings: a keyword hit is there because the query's exact
        # terms are, which the cosine does not measure (ZK-7741 is 0.45)
        return hits
    threshold, judged = rule
    confidence = [h.score if judged == "score" else h.margin if judged == "margin" else _cosine(h) for h in hits]
    marked = [replace(h, low_confidence=c is not None and c < threshold) for h, c in zip(hits, confidence)]
    if options.include_low_confidence or any(not h.low_confidence for h in marked):
        return marked  # a confident match: every hit is shown, the weaker ones marked
    return []  # "no confident match"


def run(source: Source, query: str, options: SearchOptions, *, vector: np.ndarray, level: float | None = None,
        reranker: Reranker | None = None) -> list[Hit]:
    """Both stages for one query (``candidates``, then ``finish``)."""
    hits = candidates(source, query, options, vector, reranking=reranker is not None)
    return finish(source, query, hits, options, level=level, reranker=reranker)


def _cosine(hit: Hit) -> float:
    return hit.dense_score if hit.dense_score is not None else hit.score


def _rule(source: Source, reranker: Reranker | None, min_score: float | None,
          min_margin: float | None) -> tuple[float, str] | None:
    """(threshold, what it judges: "score", "cosine" or "margin"). An explicit ``min_score``
    judges the reranker's score when reranking, else the cosine (in every mode); an explicit
    ``min_margin`` the margin. By default: a ``min_score`` stored with the reranker judges its
    score; else the hit's margin over the query's background level must reach
    ``confidence.threshold`` of the model's ``min_margin`` and the index's ``cut``."""
    if min_score is not None:
        return float(min_score), "score" if reranker is not None else "cosine"
    if min_margin is not None:
        return float(min_margin), "margin"
    stored = getattr(reranker, "calibration", {}).get("min_score") if reranker is not None else None
    if stored is not None:
        return float(stored), "score"
    if source.min_margin is None:
        return None
    return confidence.threshold(source.min_margin, source.cut), "margin"


def fuse(lists: list[list[Hit]], rrf_k: int = RRF_K) -> list[Hit]:
    """Reciprocal rank fusion: each hit scores Σ 1 / (rrf_k + rank) over the lists it is in
    (rank from 1); the cosine is kept as ``dense_score``."""
    if rrf_k < 1:
        raise InvalidArgumentError(f"rrf_k must be at least 1, got {rrf_k}")
    fused: dict[tuple[str, int], float] = {}
    first: dict[tuple[str, int], Hit] = {}
    for hits in lists:
        for rank, hit in enumerate(hits, 1):
            key = (hit.doc_id, hit.passage)
            fused[key] = fused.get(key, 0.0) + 1.0 / (rrf_k + rank)
            if key not in first or first[key].dense_score is None:
                first[key] = hit
    order = sorted(fused, key=lambda key: -fused[key])
    return [replace(first[key], score=round(fused[key], 6),
                    dense_score=first[key].dense_score if first[key].dense_score is not None else first[key].score)
            for key in order]
