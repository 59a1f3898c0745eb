"""textsearch: semantic search for Chinese and English text.

    from textsearch import Index
    idx = Index.create("indexes/notes")
    idx.add([{"id": "a1", "text": "惹人喜欢的孩子", "lang": "zh"}])
    hits = idx.search("可爱的宝宝", k=5)

Anything the command line does is one call: ``build_index`` (``textsearch index``),
``open_index`` / ``list_indexes`` (indexes by name), ``Index.search`` (``query``), ``calibrate``
(``eval --calibrate``), ``textsearch.training.bi_encoder.train``,
``textsearch.training.cross_encoder.train_reranker``, ``textsearch.check.check`` / ``repair``,
``textsearch.training.quality.report`` (``eval --heldout``), ``textsearch.watch.watch`` (``watch``).
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING

from .config import DEFAULT_CANDIDATES
from .errors import (
    CorpusError,
    IndexCorruptError,
    IndexExistsError,
    IndexLockedError,
    IndexNotFoundError,
    InvalidArgumentError,
    MissingExtraError,
    ModelError,
    ModelMismatchError,
    ModelNotFoundError,
    TextsearchError,
)

if TYPE_CHECKING:
    from importlib.machinery import ModuleSpec
    from types import ModuleType

    from .catalog import Built, build_index, index_path, list_indexes, open_index
    from .models.encoder import Encoder, SentenceTransformerEncoder
    from .training.evaluate import Calibration
    from .hits import Hit, Summary
    from .index import Index
    from .search.rerank import CrossEncoderReranker, Reranker
    from .search.query import SearchOptions

# the public names, each imported from its module on first use (PEP 562): `import textsearch` and
# the command line's start-up stay light; `from textsearch import Index` works as usual
_LAZY = {
    "Built": "catalog", "build_index": "catalog", "index_path": "catalog", "list_indexes": "catalog",
    "open_index": "catalog", "Encoder": "models.encoder", "SentenceTransformerEncoder": "models.encoder", "Hit": "hits",
    "Summary": "hits", "Index": "index", "CrossEncoderReranker": "search.rerank", "Reranker": "search.rerank",
    "SearchOptions": "search.query",
}


def __getattr__(name: str) -> object:
    if name in _LAZY:
        from importlib import import_module

        value = getattr(import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'textsearch' has no attribute {name!r}")


# Modules that sat at the top of the package before each stage had its folder keep their import
# path: ``import textsearch.train`` gives ``textsearch.training.bi_encoder`` itself. (The old
# ``search``, ``models``, ``ingest`` and ``training`` modules are the folders' names now.)
_MOVED = {
    "adapters": "models.adapters", "cache": "models.cache", "e5build": "models.e5build", "encoder": "models.encoder",
    "loading": "models.loading", "runtime": "models.runtime", "corpus": "documents.corpus", "rerank": "search.rerank",
    "keyword": "search.keyword", "confidence": "search.confidence", "filters": "search.filters",
    "store": "storage.store", "ann": "storage.ann", "graphfile": "storage.graphfile", "backend": "storage.backend",
    "milvus": "storage.milvus", "layout": "storage.layout", "distributed": "ingest.distributed",
    "train": "training.bi_encoder", "train_reranker": "training.cross_encoder", "pairs": "training.pairs",
    "sources": "training.sources", "evaluate": "training.evaluate", "quality": "training.quality",
}


class _OldPaths:
    """A finder and loader for ``_MOVED``, asked only after the package's own folder (PEP 451)."""

    @staticmethod
    def find_spec(fullname: str, path: object = None, target: object = None) -> ModuleSpec | None:
        from importlib.util import spec_from_loader

        old = fullname.removeprefix(f"{__name__}.")
        return spec_from_loader(fullname, _OldPaths) if old != fullname and old in _MOVED else None  # type: ignore[arg-type]

    @staticmethod
    def create_module(spec: ModuleSpec) -> ModuleType:
        from importlib import import_module

        return import_module(f"{__name__}.{_MOVED[spec.name.removeprefix(f'{__name__}.')]}")

    @staticmethod
    def exec_module(module: ModuleType) -> None:
        pass  # the moved module ran when it was first imported


sys.meta_path.append(_OldPaths)  # type: ignore[arg-type]
__version__ = "0.1.0"


def calibrate(
    path: str | os.PathLike[str], model: str | None = None, *, reranker: Reranker | None = None,
    candidates: int = DEFAULT_CANDIDATES, runtime: str = "auto",
) -> Calibration:
    """``evaluate.calibrate``: measure a model (or a reranker) on a labeled pair file and store its
    calibration next to it. Imported on use: evaluation pulls in more than searching needs."""
    from .training.evaluate import calibrate as run

    return run(path, model, reranker=reranker, candidates=candidates, runtime=runtime)


__all__ = [
    "Built",
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
    "MissingExtraError",
    "ModelError",
    "ModelMismatchError",
    "ModelNotFoundError",
    "Reranker",
    "SearchOptions",
    "SentenceTransformerEncoder",
    "Summary",
    "TextsearchError",
    "__version__",
    "build_index",
    "calibrate",
    "index_path",
    "list_indexes",
    "open_index",
]
