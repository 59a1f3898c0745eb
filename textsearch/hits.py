"""What the library returns: search hits and indexing summaries (the ground floor: every stage
that makes or reads them imports them from here, and this module imports nothing of ours)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class Hit:
    """One search result: the best passage of a document (or one passage, ungrouped)."""

    doc_id: str
    score: float  # cosine similarity in [-1, 1]; reranked: the reranker's score blended with the cosine
    text: str  # the passage text
    metadata: dict[str, Any]
    passage: int  # position of the passage in its document, from 0
    passages: int  # number of passages of the document
    start: int  # character offsets of the passage in the document
    end: int
    dense_score: float | None = None  # the cosine, when ``score`` is another score (rerank, BM25, RRF)
    low_confidence: bool = False  # under the confidence rule (shown below a confident hit, or on request)
    rerank_score: float | None = None  # the reranker's own score (0-1), when reranked
    margin: float | None = None  # the cosine minus the query's background level (confidence.py)
    label: int = -1  # the passage's label in the HNSW graph and the store
    # where the passage is for a person: {"page": 3} (PDF), {"heading": "A › B"}, {"line": 42}
    # (text files: its first line, as grep prints path:line); None when there is nothing to say
    location: dict[str, Any] | None = None
    # the sentence that matched, as [start, end) in ``text``, when the best unit was a sentence
    # of the passage shown (a long document is searched down to the sentence)
    match: list[int] | None = None
    # the other hits with the same text (search/duplicates.py), best first, when copies are
    # collapsed: [{"doc_id", "path" (metadata["path"] or None), "passage", "location"}]
    copies: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Summary:
    """What one indexing call did."""

    added: int = 0
    updated: int = 0
    unchanged: int = 0
    deleted: int = 0
    skipped: int = 0
    passages: int = 0  # passages embedded
    seconds: float = 0.0
    skipped_files: list[tuple[str, str]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
