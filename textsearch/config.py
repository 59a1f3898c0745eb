"""IndexConfig: the JSON file that sits next to an index's HNSW and SQLite files."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from .errors import IndexCorruptError

CONFIG_FILE = "textsearch.json"
# Passages of at most 64 tokens, 16 shared with the next: one sentence inside a long document is
# found about three times as often as in 256-token passages, and confidently (docs/quality.md,
# "Long documents"); documents of one passage are unaffected
PASSAGE_TOKENS = 64
OVERLAP_TOKENS = 16
FORMAT_VERSION = 1
# search defaults, here so that the command line can show them without importing the search path
DEFAULT_MODE = "dense"  # chosen by measurement (docs/search.md)
RRF_K = 60
DEFAULT_CANDIDATES = 10  # first-stage hits reranked per query: the least harmful count measured (docs/reranking.md)
DEFAULT_ROOT = "indexes"  # the folder that holds indexes by name
# a hit's least margin over the query's background level before "no confident match"
# (search/confidence.py), chosen on the dev sets for multilingual-e5-small (docs/quality.md)
DEFAULT_MIN_MARGIN = 0.03


@dataclass
class IndexConfig:
    """Everything needed to reopen an index exactly as it was built.

    hnswlib does not save ``ef`` with the graph, so it lives here.
    """

    model: str
    dimension: int
    prompts: dict[str, str] = field(default_factory=dict)
    probe: list[float] = field(default_factory=list)  # the model's embedding of PROBE_TEXT
    runtime: str = "auto"  # "onnx-int8" when built with it (its vectors differ from fp32's)
    vector_dtype: str = "float32"  # how SQLite keeps each vector: float32, or float16 (half the bytes)
    space: str = "cosine"
    M: int = 16
    ef_construction: int = 200
    ef: int = 400
    max_passage_tokens: int = PASSAGE_TOKENS
    overlap_tokens: int = OVERLAP_TOKENS
    max_file_bytes: int = 10_000_000
    # a document of several passages also gets one unit per sentence, shown in the passage that
    # holds it; a document scores its best unit (docs/long-documents.md)
    sentences: bool = True
    backend: str = "local"  # where passages live: "local" (SQLite + hnswlib here) or "milvus"
    uri: str | None = None  # milvus: a Milvus Lite file (relative: to this directory) or a server URL
    collection: str | None = None  # milvus: the collection holding this index's passages
    format_version: int = FORMAT_VERSION
    versions: dict[str, str] = field(default_factory=dict)

    def save(self, directory: Path) -> None:
        """Write atomically: a crash leaves the old file or the new one, never half of one."""
        path = Path(directory) / CONFIG_FILE
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(asdict(self), ensure_ascii=False, indent=2), encoding="utf-8")
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)

    @classmethod
    def load(cls, directory: Path) -> IndexConfig:
        path = Path(directory) / CONFIG_FILE
        try:
            data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise IndexCorruptError(
                f"cannot read {path} ({exc}); the index config is damaged — rebuild the index "
                "with `textsearch index <corpus> --name <name>` into a new name"
            ) from exc
        known = {f.name for f in fields(cls)}
        data.setdefault("sentences", False)  # an index from before sentence units keeps its units
        try:
            config = cls(**{k: v for k, v in data.items() if k in known})
        except TypeError as exc:
            raise IndexCorruptError(f"{path} lacks required fields ({exc})") from exc
        if config.format_version > FORMAT_VERSION:
            raise IndexCorruptError(
                f"{path} was written by a newer textsearch (format {config.format_version}); "
                "upgrade textsearch to open it"
            )
        return config


def is_index_dir(path: Path) -> bool:
    return (Path(path) / CONFIG_FILE).is_file()
