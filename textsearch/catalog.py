"""Indexes by name: the folder that holds them (``indexes/`` by default), finding one, listing
them, and building one from a folder without leaving a half-made index behind.

    import textsearch
    textsearch.build_index("corpora/demo")          # → indexes/demo
    textsearch.list_indexes()                        # ["demo"]
    with textsearch.open_index("demo") as idx:       # a name under indexes/, or a path
        idx.search("可爱的宝宝")
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from .storage import layout
from .config import DEFAULT_ROOT, is_index_dir
from .documents.corpus import Corpus
from .models.encoder import Encoder
from .errors import IndexNotFoundError, TextsearchError
from .hits import Summary
from .index import Index

Pathish = str | os.PathLike[str]


def list_indexes(indexes: Pathish = DEFAULT_ROOT) -> list[str]:
    """The names of the indexes directly under ``indexes``, sorted ([] when it does not exist)."""
    root = Path(indexes)
    return sorted(p.name for p in root.glob("*") if is_index_dir(p)) if root.is_dir() else []


def index_path(name_or_path: Pathish | None = None, indexes: Pathish = DEFAULT_ROOT) -> Path:
    """Where an index is: a path to an index (or anything path-like: ``./x``, ``a/b``), else a
    name under ``indexes``; without either, the only index under ``indexes``."""
    if name_or_path:
        given = str(name_or_path)
        if is_index_dir(Path(given)) or os.sep in given or given.startswith("."):
            return Path(given)
        return Path(indexes) / given
    found = list_indexes(indexes)
    if not found:
        raise IndexNotFoundError(f"no index under {indexes}/ — build one with `textsearch index corpora/demo`")
    if len(found) > 1:
        raise IndexNotFoundError(f"several indexes under {indexes}/ ({', '.join(found)}) — choose one with --index NAME")
    return Path(indexes) / found[0]


def open_index(name_or_path: Pathish | None = None, indexes: Pathish = DEFAULT_ROOT, *,
               model: str | None = None, runtime: str | None = None) -> Index:
    """``Index.open`` of an index given by name (under ``indexes``) or path."""
    return Index.open(index_path(name_or_path, indexes), model, runtime=runtime)


@dataclass
class Built:
    """What ``build_index`` did: where the index is, the indexing summary, its document count."""

    path: Path
    summary: Summary
    documents: int


def build_index(folder: Pathish, name: str | None = None, indexes: Pathish = DEFAULT_ROOT, *,
                model: str | None = None, encoder: Encoder | None = None, runtime: str | None = None,
                vector_dtype: str | None = None, backend: str | None = None, uri: str | None = None,
                id_field: str = "id", text_field: str = "text", max_file_bytes: int | None = None,
                show_progress: bool = False, ray: str | None = None, ray_actors: int | None = None,
                ray_batch_size: int = 16, ray_cpus: float | None = None,
                ray_gpus: float | None = None) -> Built:
    """Create the index ``name`` (default: the folder's name) under ``indexes`` from ``folder``, or
    bring an existing one in line with it. ``name`` may also be a path (``./notes-index``, ``a/b``):
    a new index goes only into a new or empty folder. A first build that fails removes what it
    wrote, and nothing else. ``encoder``: one to embed with instead of loading ``model``.
    ``backend``/``uri``: where a new index keeps its passages (``Index.create``); ``ray``…: read
    and embed on Ray (``Index.index_folder``)."""
    target = index_path(name, indexes) if name else Path(indexes) / Path(folder).resolve().name
    created = not is_index_dir(target)
    made = layout.missing_parents(target)  # the folders a failed first build may remove again
    try:
        Corpus(folder)  # a missing folder fails before any index is created
        with Index.open_or_create(target, model, encoder=encoder, runtime=runtime, vector_dtype=vector_dtype, backend=backend,
                                  uri=uri, show_progress=show_progress) as idx:
            summary = idx.index_folder(folder, id_field=id_field, text_field=text_field,
                                       max_file_bytes=max_file_bytes, show_progress=show_progress, ray=ray,
                                       ray_actors=ray_actors, ray_batch_size=ray_batch_size, ray_cpus=ray_cpus,
                                       ray_gpus=ray_gpus)
            return Built(target, summary, idx.count())
    except TextsearchError:
        if created and is_index_dir(target):
            Index.destroy(target, made)  # only what this build wrote: a user's files stay
        raise
