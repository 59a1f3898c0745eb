"""textsearch: semantic search for Chinese and English text.

    from textsearch import Index
    idx = Index.create("indexes/notes")
    idx.add([{"id": "a1", "text": "惹人喜欢的孩子", "lang": "zh"}])
    hits = idx.search("可爱的宝宝", k=5)
"""

from __future__ import annotations

from .encoder import Encoder, SentenceTransformerEncoder
from .errors import (
    CorpusError,
    IndexCorruptError,
    IndexExistsError,
    IndexLockedError,
    IndexNotFoundError,
    InvalidArgumentError,
    ModelError,
    ModelMismatchError,
    ModelNotFoundError,
    TextsearchError,
)
from .index import Hit, Index, Summary
from .rerank import CrossEncoderReranker, Reranker

__version__ = "0.1.0"

__all__ = [
    "CorpusError",
    "CrossEncoderReranker",
    "Encoder",
    "Hit",
    "Index",
    "IndexCorruptError",
    "IndexExistsError",
    "IndexLockedError",
    "IndexNotFoundError",
    "InvalidArgumentError",
    "ModelError",
    "ModelMismatchError",
    "ModelNotFoundError",
    "Reranker",
    "SentenceTransformerEncoder",
    "Summary",
    "TextsearchError",
    "__version__",
]
