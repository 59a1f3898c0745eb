"""Distributed ingestion on Ray Data (``textsearch index FOLDER --ray auto|ADDRESS``). The only
module that imports ray.

The driver lists the folder's files. A Ray Dataset of them is read and decoded by tasks, which
hash each document and pass on only the new or changed ones (the unchanged as their ids alone);
an actor pool of encoders (``actors`` of them, each with ``cpus`` or ``gpus`` of its own) splits
them into passages and embeds them, ``batch_size`` files a call. The driver takes the results
in the folder's order and writes them to the index's backend in batches, exactly as a
single-process run does (``ingest.write``): the same passages, the same vectors for the same
texts, the same hits. Writing stays on the driver, under the index's write lock: a task Ray
retries is only computed again, and a batch written again replaces its documents, so nothing is
ever stored twice.

Each encoder actor runs as many threads as the CPUs it is given (Ray sets ``OMP_NUM_THREADS``;
``models/runtime.py`` follows it), so actors sharing a node never oversubscribe it; leave Ray Data a CPU
of its own on each node (actors that take every CPU leave it none, and the run waits forever).

``address``: "auto" connects to the cluster ``RAY_ADDRESS`` or a running local head names, and
starts a local Ray otherwise; anything else is a cluster address (``ray://head:10001``). A Ray
this run started is shut down when it ends. On a cluster every node needs textsearch installed.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..documents.corpus import Corpus, Document, Skipped, locate
from ..documents.split import Passage, split_many, with_sentences
from ..errors import InvalidArgumentError, require
from ..hits import Summary
from .pipeline import Progress, batches, write_batch

if TYPE_CHECKING:
    from ..models.encoder import Encoder
    from .pipeline import Target

logger = logging.getLogger(__name__)


def index_folder(corpus: Corpus, known: dict[str, str], target: Target, encoder: Callable[[], Encoder], *,
                 address: str = "auto", actors: int | None = None, batch_size: int = 16,
                 cpus: float | None = None, gpus: float | None = None,
                 show_progress: bool = False) -> tuple[Summary, set[str]]:
    """Embed and write the folder's new and changed documents on Ray (see the module's
    docstring). ``encoder`` makes the index's encoder in each actor: it must pickle. Returns the
    summary and the ids of every document found (for the caller to delete the ones gone);
    what was skipped is added to ``corpus.skipped`` and ``corpus.unreadable``."""
    require(("ray",), "ray", "--ray")
    if actors is not None and actors < 1 or batch_size < 1:
        raise InvalidArgumentError("--ray-actors and --ray-batch-size must be at least 1")
    import ray

    started_here = _connect(ray, address)
    try:
        return _run(ray, corpus, known, target, encoder, actors, batch_size, cpus, gpus, show_progress)
    finally:
        if started_here:
            ray.shutdown()


def _connect(ray: Any, address: str) -> bool:
    """Join or start Ray; True when this call started it (and should stop it)."""
    if ray.is_initialized():
        return False
    options = {"log_to_driver": False, "logging_level": logging.WARNING, "include_dashboard": False}
    try:
        ray.init(address=None if address == "auto" else address, **options)
    except (ConnectionError, ValueError, RuntimeError) as exc:
        raise InvalidArgumentError(f"cannot reach Ray at {address!r} ({exc}) — give 'auto' or a running "
                                   "cluster's address, e.g. ray://head:10001") from exc
    return True


def _run(ray: Any, corpus: Corpus, known: dict[str, str], target: Target, encoder: Callable[[], Encoder],
         actors: int | None, batch_size: int, cpus: float | None, gpus: float | None,
         show_progress: bool) -> tuple[Summary, set[str]]:
    started = time.perf_counter()
    context = ray.data.DataContext.get_current()
    context.execution_options.preserve_order = True  # written in the folder's order, as one process does
    context.enable_progress_bars = False
    files = [path.relative_to(corpus.root).as_posix() for path in corpus.files()]
    summary, seen = Summary(), set()
    if not files:
        return summary, seen
    width = actors or max(1, int(ray.available_resources().get("GPU" if gpus else "CPU", 1) // (gpus or cpus or 1)))
    if cpus is None and not gpus:
        cpus = 1.0  # Ray sets OMP_NUM_THREADS to an actor's CPUs: its encoder runs that many threads
    reading = {"root": str(corpus.root), "id_field": corpus.id_field, "text_field": corpus.text_field,
               "max_file_bytes": corpus.max_file_bytes, "known": [ray.put(known)]}
    config = target.config
    dataset = (
        ray.data.from_items([{"file": f} for f in files], override_num_blocks=min(len(files), 1000))
        # Ray Data fuses reading into the encoders' stage: both take ``batch_size`` files a call
        .map_batches(_read, fn_kwargs=reading, batch_size=batch_size)
        .map_batches(_Embedder, fn_constructor_kwargs={"encoder": encoder, "max_tokens": config.max_passage_tokens,
                                                       "overlap": config.overlap_tokens,
                                                       "sentences": config.sentences},
                     compute=ray.data.ActorPoolStrategy(size=width), batch_size=batch_size,
                     num_cpus=cpus, num_gpus=gpus)
    )
    for name in ("ray", "ray.data"):  # Ray Data reports each run's plan and progress: ours is the bar
        logging.getLogger(name).setLevel(logging.ERROR)
    emitted: set[str] = set()
    vectors: dict[str, np.ndarray] = {}  # a document's, until its batch is written

    def embedded() -> Iterator[tuple[Document, list[Passage]]]:
        """The new and changed documents with their passages, in the folder's order; counts the rest."""
        for row in _rows(dataset.iter_batches(batch_size=None, batch_format="numpy")):
            kind = row["kind"]
            if kind == "skipped":
                corpus.skipped.append(Skipped(row["id"], row["text"]))
                if row["source"]:
                    corpus.unreadable.append(row["id"])
                continue
            if row["id"] in emitted:  # as Corpus.documents: the first file with an id keeps it
                corpus.skipped.append(Skipped(row["source"], f"document id '{row['id']}' is already used by another file"))
                continue
            emitted.add(row["id"])
            seen.add(row["id"])
            if kind == "unchanged":
                summary.unchanged += 1
                continue
            doc = Document(row["id"], row["text"], json.loads(row["meta"]), row["source"],
                           [(start, where) for start, where in json.loads(row["locations"])])
            passages = locate(doc, [_passage(doc.text, *p) for p in json.loads(row["passages"])])
            if doc.id in known:
                summary.updated += 1
            else:
                summary.added += 1
            summary.passages += len(passages)
            bar.grow(len(passages))
            vectors[doc.id] = np.frombuffer(row["vectors"], dtype=np.float32).reshape(len(passages), -1)
            yield doc, passages

    with Progress(show_progress) as bar:
        for batch in batches(embedded()):  # written as a single process writes them
            write_batch(batch, np.concatenate([vectors.pop(doc.id) for doc, _ in batch]), target, bar)
    summary.seconds = time.perf_counter() - started
    return summary, seen


def _passage(text: str, shown: str, start: int, end: int, *within: int) -> Passage:
    """A passage as the embedder sent it: [text, start, end], a sentence unit with the start and
    end of the passage that holds it."""
    holder = Passage(text[within[0]:within[1]], within[0], within[1]) if within else None
    return Passage(shown, start, end, within=holder)


def _rows(batches: Iterator[dict[str, np.ndarray]]) -> Iterator[dict[str, Any]]:
    for columns in batches:
        names = list(columns)
        for values in zip(*(columns[n] for n in names)):
            yield dict(zip(names, values))


def _read(files: dict[str, np.ndarray], root: str, id_field: str, text_field: str, max_file_bytes: int,
          known: list[Any]) -> dict[str, list[Any]]:
    """A Ray task: the documents of some files, new or changed ones whole, unchanged ones as their
    ids, and what was skipped."""
    import ray

    hashes: dict[str, str] = ray.get(known[0])
    corpus = Corpus(root, id_field=id_field, text_field=text_field, max_file_bytes=max_file_bytes)
    out: dict[str, list[Any]] = {name: [] for name in ("kind", "id", "text", "meta", "source", "locations")}

    def add(kind: str, id: str, text: str = "", meta: str = "{}", source: str = "", locations: str = "[]") -> None:
        for name, value in zip(out, (kind, id, text, meta, source, locations)):
            out[name].append(value)

    for file in files["file"]:
        for doc in corpus.documents_of(corpus.root / Path(str(file))):
            if hashes.get(doc.id) == doc.content_hash:
                add("unchanged", doc.id, source=doc.source or "")
            else:
                add("document", doc.id, doc.text, json.dumps(doc.metadata, ensure_ascii=False), doc.source or "",
                    json.dumps(doc.locations, ensure_ascii=False))
    unreadable = set(corpus.unreadable)
    for skipped in corpus.skipped:
        add("skipped", skipped.path, skipped.reason, source="unreadable" if skipped.path in unreadable else "")
    return out


class _Embedder:
    """A Ray actor: the index's encoder, made once; splits documents into passages and embeds them."""

    def __init__(self, encoder: Callable[[], Encoder], max_tokens: int, overlap: int, sentences: bool = False) -> None:
        self.encoder, self.max_tokens, self.overlap, self.sentences = encoder(), max_tokens, overlap, sentences

    def __call__(self, rows: dict[str, np.ndarray]) -> dict[str, list[Any]]:
        kinds = [str(k) for k in rows["kind"]]
        documents = [i for i, kind in enumerate(kinds) if kind == "document"]
        whole = [str(rows["text"][i]) for i in documents]
        cut = split_many(whole, self.encoder.count_tokens, self.max_tokens, self.overlap)
        if self.sentences:
            cut = [with_sentences(text, passages) for text, passages in zip(whole, cut)]
        texts = [p.text for passages in cut for p in passages]
        vectors = self.encoder.encode_passages(texts) if texts else np.zeros((0, 0), dtype=np.float32)
        out: dict[str, list[Any]] = {name: [str(v) for v in rows[name]]
                                     for name in ("kind", "id", "text", "meta", "source", "locations")}
        out["passages"], out["vectors"] = ["[]"] * len(kinds), [b""] * len(kinds)
        row = 0
        for i, passages in zip(documents, cut):
            out["passages"][i] = json.dumps([[p.text, p.start, p.end] + ([p.within.start, p.within.end] if p.within else [])
                                             for p in passages], ensure_ascii=False)
            out["vectors"][i] = np.ascontiguousarray(vectors[row:row + len(passages)], dtype=np.float32).tobytes()
            row += len(passages)
        return out
