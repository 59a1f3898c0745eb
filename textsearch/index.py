"""Index: the facade that ties corpus → encoder → a storage backend, and search → hits.

An index is a directory::

    textsearch.json   IndexConfig (model, dimension, prompts, HNSW settings, backend, versions)
    background.f32    the background sentences' vectors (confidence.py)
    store.db          (local backend) SQLite: documents, passages, vectors, label counter, seq
    hnsw.bin          (local backend) hnswlib graph; the state it reflects is recorded in store.db

With the local backend SQLite is the source of truth and ``graphfile`` keeps the HNSW file in
step with it; with the Milvus backend passages, vectors and metadata live in a Milvus collection
(``storage/milvus.py``). Either way ``graphfile.write_lock`` allows one writer at a time.
"""

from __future__ import annotations

import copy
import functools
import json
import logging
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from .search import confidence
from .storage import graphfile, layout
from .ingest import pipeline
from .storage.backend import BACKENDS, Backend, LocalBackend, open_backend
from .config import OVERLAP_TOKENS, PASSAGE_TOKENS, IndexConfig, is_index_dir
from .documents.corpus import Corpus, Document
from .models.encoder import Encoder, SentenceTransformerEncoder, same_model
from .errors import (
    CorpusError,
    IndexExistsError,
    IndexNotFoundError,
    InvalidArgumentError,
    ModelMismatchError,
)
from .hits import Hit, Summary
from .ingest.pipeline import Target
from .search.rerank import Reranker
from .search.query import SearchOptions, Source, candidates, finish
from .storage.store import VECTOR_DTYPES

logger = logging.getLogger(__name__)



def _document(item: Any) -> Document:
    """A document given to ``Index.add``, checked: what SQLite and JSON cannot store is refused here
    with a clear error rather than failing (or poisoning every later filter) in the store."""
    try:
        doc = item if isinstance(item, Document) else Document.from_dict(item)
        json.dumps([doc.id, doc.text, doc.metadata], ensure_ascii=False, allow_nan=False).encode("utf-8")
    except (TypeError, ValueError, AttributeError) as exc:
        raise InvalidArgumentError(
            f"cannot store document {str(item)[:60]!r}: {exc} — give a dict with a string 'id', a "
            "string 'text' and JSON-serialisable metadata (no NaN, no lone surrogates)"
        ) from exc
    if not doc.id or not doc.text.strip():
        raise InvalidArgumentError(f"every document needs an 'id' and a non-empty 'text' (got id={doc.id!r})")
    return doc


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for name in ("textsearch-zh", "hnswlib", "sentence-transformers", "torch", "sqlite-utils"):
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            pass
    return found


class Index:
    """A searchable collection of documents stored in one directory.

    Create with ``Index.create(path, model=...)``, reopen with ``Index.open(path)``.
    """

    def __init__(
        self, path: Path, config: IndexConfig, encoder: Encoder | None, *, load_ann: bool = True,
        backend: Backend | None = None,
    ) -> None:
        self.path = Path(path)
        self.config = config
        self._encoder = encoder
        self._encoder_checked = encoder is not None
        self._rerankers: dict[tuple[str | None, float | None], Reranker] = {}
        self._background: np.ndarray | None = None  # confidence.embed: passages, then queries
        self._background_stored = False  # whether the index directory holds it
        self.backend = backend or open_backend(self.path, config, load_graph=load_ann)

    @property
    def local(self) -> LocalBackend:
        """The local backend (SQLite + hnswlib), for what only it has: its files' checks and repair."""
        if not isinstance(self.backend, LocalBackend):
            raise InvalidArgumentError(f"index {self.path} keeps its passages in {self.config.backend}, "
                                       "not in a local SQLite store and HNSW file")
        return self.backend

    @property
    def store(self) -> Any:  # the local backend's Store
        return self.local.store

    @property
    def ann(self) -> Any:  # the local backend's AnnIndex
        return self.local.ann

    # --- opening ----------------------------------------------------------------------------
    @classmethod
    def create(
        cls,
        path: str | os.PathLike[str],
        model: str | None = None,
        *,
        encoder: Encoder | None = None,
        M: int = 16,
        ef_construction: int = 200,
        ef: int = 400,
        max_passage_tokens: int = PASSAGE_TOKENS,
        overlap_tokens: int = OVERLAP_TOKENS,
        runtime: str = "auto",
        vector_dtype: str = "float32",
        backend: str = "local",
        uri: str | None = None,
        show_progress: bool = False,
        sentences: bool = True,
    ) -> Index:
        """Make a new, empty index at ``path`` that embeds with ``model`` (default: the bundled one)
        on ``runtime`` (see ``encoder.RUNTIMES``; "onnx-int8" stays with the index). SQLite keeps
        each vector (what the graph is rebuilt and replayed from) as ``vector_dtype``: float32,
        or float16 for half the bytes (the graph then gets vectors rounded to float16 when it is
        rebuilt or replayed: scores move by about 1e-4). ``sentences``: a document of several
        passages also gets a unit per sentence (a fact inside a long document is found by its
        sentence; docs/long-documents.md), shown in its passage with ``Hit.match``.

        ``backend="milvus"`` keeps passages, vectors and metadata in Milvus instead: ``uri`` is a
        Milvus Lite file (default ``milvus.db`` in the index directory; a relative path is taken
        from the index directory) or a server's ``http://host:19530``."""
        path = Path(path)
        if is_index_dir(path):
            raise IndexExistsError(f"an index already exists at {path} — open it with Index.open")
        layout.check_target(path)
        if max_passage_tokens < 8 or not 0 <= overlap_tokens < max_passage_tokens:
            raise InvalidArgumentError("need max_passage_tokens >= 8 and 0 <= overlap < max")
        if vector_dtype not in VECTOR_DTYPES:
            raise InvalidArgumentError(f"unknown vector dtype '{vector_dtype}' — use {' or '.join(VECTOR_DTYPES)}")
        if backend not in BACKENDS:
            raise InvalidArgumentError(f"unknown backend '{backend}' — use {' or '.join(BACKENDS)}")
        if uri is not None and backend != "milvus":
            raise InvalidArgumentError("a URI is for the milvus backend — add --backend milvus")
        encoder = encoder or SentenceTransformerEncoder(model, runtime=runtime, show_progress=show_progress)
        config = IndexConfig(
            model=encoder.name,
            dimension=encoder.dimension,
            prompts=dict(encoder.prompts),
            probe=encoder.probe(),
            runtime="onnx-int8" if getattr(encoder, "runtime", "") == "onnx-int8" else "auto",
            vector_dtype=vector_dtype,
            M=M,
            ef_construction=ef_construction,
            ef=ef,
            max_passage_tokens=max_passage_tokens,
            overlap_tokens=overlap_tokens,
            sentences=sentences,
            backend=backend,
            uri=(uri or layout.DEFAULT_LITE_FILE) if backend == "milvus" else None,
            collection=_collection_name(path) if backend == "milvus" else None,
            versions=_versions(),
        )
        made = layout.missing_parents(path)
        path.mkdir(parents=True, exist_ok=True)
        try:
            store = open_backend(path, config, create=True)
        except BaseException:
            layout.remove(path, config.uri, made)  # what this call wrote, and nothing else
            raise
        confidence.save(path, confidence.embed_once(encoder, config.probe))
        config.save(path)  # last: until it is there, the directory is no index
        return cls(path, config, encoder, backend=store)

    @classmethod
    def open(
        cls,
        path: str | os.PathLike[str],
        model: str | None = None,
        *,
        encoder: Encoder | None = None,
        runtime: str | None = None,
    ) -> Index:
        """Open an existing index. Its own model (and runtime) is used unless ``model``/``encoder``
        (``runtime``) is given, which must then embed the same way (else ModelMismatchError)."""
        path = Path(path)
        if not is_index_dir(path):
            raise IndexNotFoundError(
                f"no index at {path} — build one with `textsearch index <corpus> --name {path.name}`"
            )
        index = cls(path, IndexConfig.load(path), encoder)
        if (model is not None or runtime is not None) and encoder is None:
            index._encoder = SentenceTransformerEncoder(model or index.config.model,
                                                        runtime=runtime or index.config.runtime)
            index._encoder_checked = False
        if index._encoder is not None:
            index._check_encoder()
        return index

    @classmethod
    def open_or_create(
        cls, path: str | os.PathLike[str], model: str | None = None, **options: Any
    ) -> Index:
        if is_index_dir(Path(path)):
            index = cls.open(path, model, encoder=options.get("encoder"), runtime=options.get("runtime"))
            kept = {"vector_dtype": f"keeps {index.config.vector_dtype} vectors; the vector dtype",
                    "backend": f"keeps its passages in {index.config.backend}; the backend",
                    "uri": f"keeps its passages at {index.config.uri}; the URI"}
            for option, says in kept.items():
                wanted = options.get(option)
                if wanted and wanted != getattr(index.config, option):
                    index.close()
                    raise InvalidArgumentError(f"index {path} {says} is chosen when an index is created — "
                                               "build a new index to change it")
            return index
        return cls.create(path, model, **{k: v for k, v in options.items() if v is not None})

    @property
    def encoder(self) -> Encoder:
        """The index's encoder, loaded on first use (``info`` and ``delete`` never need it)."""
        if self._encoder is None:
            self._encoder = SentenceTransformerEncoder(self.config.model, runtime=self.config.runtime)
        if not self._encoder_checked:
            self._check_encoder()
        return self._encoder

    def _check_encoder(self) -> None:
        assert self._encoder is not None
        # int8 vectors differ from fp32 ones (cosine ~0.99) even where the probe text agrees
        runtime = getattr(self._encoder, "runtime", "onnx-int8")
        runtime_differs = self.config.runtime == "onnx-int8" and runtime != "onnx-int8"
        if runtime_differs or not same_model(self._encoder, self.config.dimension, self.config.probe):
            built = f"'{self.config.model}'" + (" on onnx-int8" if self.config.runtime == "onnx-int8" else "")
            given = f"'{self._encoder.name}'" + (f" on {getattr(self._encoder, 'runtime', '')}"
                                                  if getattr(self._encoder, "runtime", "") else "")
            raise ModelMismatchError(
                f"index {self.path} was built with model {built} "
                f"(dimension {self.config.dimension}); {given} "
                f"(dimension {self._encoder.dimension}) embeds differently — open it without "
                "--model/--runtime, or build a new index with that model"
            )
        self._encoder_checked = True

    # --- writing ----------------------------------------------------------------------------
    def add(self, documents: Iterable[dict[str, Any] | Document], show_progress: bool = False) -> Summary:
        """Upsert documents by id (``{"id", "text", **metadata}``); unchanged ones are skipped."""
        docs = [_document(d) for d in documents]
        latest = {d.id: d for d in docs}  # the last version of a repeated id wins
        _ = self.encoder  # loaded before the write lock is taken: other writers wait less
        with self._writing():
            known = self.backend.hashes(list(latest))
            return self._ingest(iter(latest.values()), known, root=None, show_progress=show_progress)

    def index_folder(
        self,
        folder: str | os.PathLike[str],
        *,
        id_field: str = "id",
        text_field: str = "text",
        max_file_bytes: int | None = None,
        show_progress: bool = False,
        ray: str | None = None,
        ray_actors: int | None = None,
        ray_batch_size: int = 16,
        ray_cpus: float | None = None,
        ray_gpus: float | None = None,
    ) -> Summary:
        """Bring the index in line with a folder: embed new and changed documents, delete the ones
        whose files are gone, skip the unchanged.

        ``ray``: read and embed on Ray Data instead ("auto", or a cluster's address), with
        ``ray_actors`` encoders (default: one per CPU, or per GPU with ``ray_gpus``) that take
        ``ray_batch_size`` files a call, each with ``ray_cpus``/``ray_gpus`` of its own
        (``ingest/distributed.py``). The index ends up exactly as a single-process run leaves it."""
        corpus = Corpus(
            folder,
            id_field=id_field,
            text_field=text_field,
            max_file_bytes=max_file_bytes or self.config.max_file_bytes,
        )
        root = str(corpus.root)
        with self._writing():  # the model loads only if a document is new or changed
            known = self.backend.hashes_for_root(root)
            if ray is None:  # files with the size and mtime they had when read are not opened
                corpus.known_files = self.backend.file_stats(root)
            seen: set[str] = set()

            def tracked() -> Iterator[Document]:
                for doc in corpus.documents():
                    seen.add(doc.id)
                    yield doc

            if ray is None:
                summary = self._ingest(tracked(), known, root=root, show_progress=show_progress)
            else:
                summary, seen = self._ingest_on_ray(corpus, known, root, ray, ray_actors, ray_batch_size,
                                                    ray_cpus, ray_gpus, show_progress)
            if not seen and not corpus.unchanged_files:
                raise CorpusError(
                    f"no documents found in {corpus.root} ({len(corpus.skipped)} files skipped) — "
                    "add .txt, .md, .pdf, .docx, .html, .epub, .jsonl, .csv or .tsv files; nothing was changed"
                )
            gone = sorted(set(known) - seen)
            if corpus.unreadable or corpus.unchanged_files:
                # a file unreadable this time is not a deleted one, nor is a file not opened because
                # it is as it was: their documents stay
                sources = self.backend.sources(gone)
                kept = {i for i in gone if sources.get(i, "") in corpus.unchanged_files}
                summary.unchanged += len(kept)
                gone = [i for i in gone if i not in kept and not corpus.is_unreadable(sources.get(i, ""))]
            if gone:
                summary.deleted = self.backend.delete(gone)
                self._save_ann()
                self._measure_cut()
            forget = [s for s in corpus.known_files if s not in corpus.stats and s not in corpus.unchanged_files
                      and not corpus.is_unreadable(s)]
            if corpus.stats or forget:
                self.backend.record_files(root, corpus.stats, forget)
        summary.skipped = len(corpus.skipped)
        summary.skipped_files = [(s.path, s.reason) for s in corpus.skipped]
        return summary

    def _ingest_on_ray(self, corpus: Corpus, known: dict[str, str], root: str, address: str, actors: int | None,
                       batch_size: int, cpus: float | None, gpus: float | None,
                       show_progress: bool) -> tuple[Summary, set[str]]:
        from .ingest import distributed

        summary, seen = distributed.index_folder(corpus, known, self._target(root), self._encoder_maker(),
                                                 address=address, actors=actors, batch_size=batch_size, cpus=cpus,
                                                 gpus=gpus, show_progress=show_progress)
        self._written(summary)
        return summary, seen

    def _encoder_maker(self) -> Callable[[], Encoder]:
        """What makes this index's encoder in another process: the model by name, or (an encoder
        given to the index, e.g. a test's fake) a copy of it."""
        if self._encoder is None or isinstance(self._encoder, SentenceTransformerEncoder):
            return functools.partial(SentenceTransformerEncoder, self.config.model, runtime=self.config.runtime)
        return functools.partial(copy.deepcopy, self._encoder)

    def delete(self, ids: Iterable[str]) -> int:
        """Delete documents by id; returns how many existed."""
        ids = list(dict.fromkeys(str(i) for i in ids))
        with self._writing():
            deleted = self.backend.delete(ids)
            self._save_ann()
        return deleted

    def _ingest(
        self, docs: Iterator[Document], known: dict[str, str], *, root: str | None, show_progress: bool
    ) -> Summary:
        summary = pipeline.write(docs, known, self._target(root), show_progress=show_progress)
        self._written(summary)
        return summary

    def _target(self, root: str | None) -> Target:
        """Where an ingestion run writes; the background vectors are made ready first (the cut
        after the run needs them), and kept in the directory of an index made before they were."""
        rows = self._background_rows()
        if not self._background_stored:
            confidence.save(self.path, rows)
            self._background_stored = True
        return Target(self.backend, lambda: self.encoder, self.config, root)

    def _written(self, summary: Summary) -> None:
        """After an ingestion run that changed documents: persist, and measure the cut again."""
        if summary.added or summary.updated:
            self._save_ann()
            self._measure_cut()

    def _measure_cut(self) -> None:
        """Store this index's confidence cut (``confidence.index_cut``), after a write changed it."""
        queries = self._background_rows()[len(self.background):]
        cosines = self.backend.nearest(queries)
        self.backend.set_cut(None if cosines is None else confidence.index_cut(
            queries, self.background, cosines, self.backend.neighbours(confidence.SAMPLE)))

    @contextmanager
    def _writing(self) -> Iterator[None]:
        """Hold the index's write lock (one writer at a time) and start from the latest state."""
        with graphfile.write_lock(self.path):
            self.backend.refresh()
            yield

    def rebuild_graph(self) -> int:
        """Build the HNSW graph afresh from the stored vectors and save it (the caller holds the
        write lock, as ``check.repair`` does). Returns its number of passages. Local backend only."""
        return self.local.rebuild_graph()

    def _save_ann(self) -> None:
        """After a run of writes: the local backend saves its graph file, Milvus flushes."""
        self.backend.save()

    # --- reading ----------------------------------------------------------------------------
    def search(self, query: str, k: int = 10, *, options: SearchOptions | None = None, **kwargs: Any) -> list[Hit]:
        """The k best documents for ``query`` (best passage each), or the k best passages when
        ``group=False``. The options (keywords here, or one ``SearchOptions``):

        ``mode``: ``dense`` (cosine), ``keyword`` (BM25) or ``hybrid`` (both, fused by
        reciprocal rank with ``rrf_k``); default ``search.DEFAULT_MODE``. ``filter``: metadata
        conditions applied before the top k is cut, e.g. ``{"lang": "zh", "year": {"$gte": 2020}}``.
        ``ef``: the HNSW search breadth. ``rerank``: rescore the first ``candidates`` hits with a
        cross-encoder (``rerank_model``, default: the shipped one; or pass a ``Reranker``); scores
        are then ``rerank_weight`` × the reranker's plus the rest × the cosine (default weight: the
        reranker's calibrated one). Each hit's ``margin`` is its cosine minus the query's
        background level (``search/confidence.py``); hits whose margin is under the confidence threshold
        (default: the index's cut kept between a quarter of the model's ``min_margin`` and
        ``min_margin``; or ``min_margin`` when given), or whose cosine is under ``min_score`` when
        that is given, are marked ``low_confidence``. When every hit is, the answer is an empty
        list, "no confident match" (the hits, marked, with ``include_low_confidence``).
        ``collapse`` (default True): copies of one text (the same words up to width, case,
        whitespace and punctuation: ``search/duplicates.py``) are one hit, the best-ranked, whose
        ``copies`` lists the others, and k distinct hits still come back; False: every copy."""
        return self.search_many([query], k, options=options, **kwargs)[0]

    def search_many(self, queries: Sequence[str], k: int = 10, *, options: SearchOptions | None = None,
                    **kwargs: Any) -> list[list[Hit]]:
        """``search`` for many queries at once (same options): the queries are embedded in
        batches and answered from one committed state. One list of hits per query, in order."""
        if options is not None and kwargs:
            raise InvalidArgumentError("give search options either as keywords or as one SearchOptions")
        try:
            options = options or SearchOptions(k=k, **kwargs)
        except TypeError as exc:  # an unknown keyword
            raise InvalidArgumentError(f"unknown search option ({exc})") from exc
        queries = list(queries)
        for query in queries:
            check_query(query)
        reranker = self._reranker_for(options)
        cleaned = [clean_query(q) for q in queries]
        vectors = self.encoder.encode_queries(cleaned)  # before the snapshot: it can take a while
        levels = confidence.levels(vectors, self.background)
        min_margin = getattr(self.encoder, "calibration", {}).get("min_margin")
        # the first stage reads one committed state (the encoding above and the reranking below run
        # in parallel with other threads' searches)
        with self.backend.reading() as reader:
            source = Source(reader, self.metadata_fields, None if min_margin is None else float(min_margin),
                            self.backend.get_cut())
            found = [candidates(source, query, options, vector, reranking=reranker is not None)
                     for query, vector in zip(cleaned, vectors, strict=True)]
        return [finish(source, query, hits, options, level=float(level), reranker=reranker)
                for query, hits, level in zip(cleaned, found, levels, strict=True)]

    async def asearch(self, query: str, k: int = 10, *, options: SearchOptions | None = None,
                      **kwargs: Any) -> list[Hit]:
        """``search`` for asyncio code: ``search`` blocks (it embeds the query and reads the graph),
        so this runs it in a worker thread and the event loop stays free. An ``Index`` is safe to
        share between threads; this is what the HTTP server uses."""
        import asyncio

        return await asyncio.to_thread(self.search, query, k, options=options, **kwargs)

    def _reranker_for(self, options: SearchOptions) -> Reranker | None:
        if isinstance(options.rerank, Reranker):
            reranker = options.rerank
        elif options.reranks:
            reranker = self.reranker(options.rerank_model, options.rerank_weight)
        else:
            return None
        if options.rerank_weight is not None and reranker.weight != options.rerank_weight:
            reranker = copy.copy(reranker)
            reranker.weight = options.rerank_weight
        return reranker

    @property
    def background(self) -> np.ndarray:
        """The background sentences as passages of this index's model (``search/confidence.py``)."""
        rows = self._background_rows()
        return rows[: len(rows) // 2]

    def _background_rows(self) -> np.ndarray:
        """``confidence.embed`` of this index's model: read from the index directory, or embedded
        once in this process for an index made before it kept them."""
        if self._background is None:
            self._background = confidence.load(self.path, self.config.dimension)
            self._background_stored = self._background is not None
        if self._background is None:
            self._background = confidence.embed(self.encoder)
        return self._background

    def metadata_fields(self) -> set[str]:
        """The metadata fields a filter may name (the document id as "id" among them)."""
        return self.backend.metadata_fields()

    def reranker(self, model: str | None = None, weight: float | None = None) -> Reranker:
        """The cross-encoder for ``model`` (default: the shipped one) with ``weight`` (default: its
        calibrated one), made once per index: resolving it hashes the adapter file, which must not
        happen on every query."""
        from .search.rerank import CrossEncoderReranker

        if (model, weight) not in self._rerankers:
            self._rerankers[(model, weight)] = CrossEncoderReranker(model, weight=weight)
        return self._rerankers[(model, weight)]

    def count(self) -> int:
        """Number of documents."""
        return self.backend.counts()[0]

    def info(self) -> dict[str, Any]:
        files = {}
        for p in sorted(self.path.iterdir()):
            try:
                if p.is_file():
                    files[p.name] = p.stat().st_size
            except FileNotFoundError:  # a writer's temporary HNSW file, renamed meanwhile
                pass
        documents, passages = self.backend.counts()  # both from one committed state
        return {
            "path": str(self.path),
            "documents": documents,
            "passages": passages,
            "model": self.config.model,
            "dimension": self.config.dimension,
            "prompts": self.config.prompts,
            "runtime": self.config.runtime,
            "vector_dtype": self.config.vector_dtype,
            "space": self.config.space,
            "backend": self.config.backend,
            **self.backend.info(),
            "chunking": {"max_passage_tokens": self.config.max_passage_tokens,
                         "overlap_tokens": self.config.overlap_tokens},
            "files": files,
            "size_bytes": sum(files.values()),
            "versions": self.config.versions,
        }

    def close(self) -> None:
        self.backend.close()

    def __enter__(self) -> Index:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @staticmethod
    def destroy(path: str | os.PathLike[str], made: Sequence[Path] | None = None) -> list[str]:
        """Remove the index at ``path``: its Milvus collection if it has one, its own files, then
        the folder if that leaves it empty (else ``made``: the folders to remove when left empty).
        Nothing the index did not write is removed: returns the names left in the folder."""
        path = Path(path)
        if not is_index_dir(path):
            raise IndexNotFoundError(f"no index at {path} — nothing to delete")
        config = IndexConfig.load(path)
        if config.backend == "milvus":  # its passages live elsewhere: drop them first
            from .storage.milvus import drop

            drop(path, config)
        return layout.remove(path, config.uri, [path] if made is None else list(made))


def _collection_name(path: Path) -> str:
    """A Milvus collection name for a new index: letters, digits and underscores, unique."""
    import re
    import uuid

    stem = re.sub(r"[^A-Za-z0-9_]", "_", path.resolve().name)[:40] or "index"
    return f"textsearch_{stem}_{uuid.uuid4().hex[:8]}"


def check_query(query: object) -> None:
    """Refuse what no search can answer: a query that is not text, or only whitespace."""
    if not isinstance(query, str) or not query.strip():
        raise InvalidArgumentError("the query is empty — give some words to search for")


def clean_query(query: str) -> str:
    """What tokenizers accept: no NUL bytes, no lone surrogates (replaced, not an error)."""
    return query.replace("\x00", " ").encode("utf-16", "surrogatepass").decode("utf-16", "replace")
