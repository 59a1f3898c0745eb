"""textsearch vs chromadb vs a hand-written sentence-transformers + hnswlib script, side by side.

Same model (the bundled one, with its query/passage prompts) for every system: textsearch runs it
its own default way (``SentenceTransformerEncoder()``: ONNX Runtime fp32 on CPU, the same vectors
as torch), chroma and the script the way their users do, with sentence-transformers on torch
(``--others-runtime`` changes that); ``textsearch-torch`` and ``textsearch-int8`` are textsearch
on the other runtimes, ``textsearch-fp16`` textsearch keeping float16 vectors in SQLite. Same generated zh/en corpus (``bench_ingest_query.generate_passages``), same queries, and the same
HNSW settings everywhere: cosine, M 16, ef_construction 200, ef (search) 400 — textsearch's
defaults, given to chroma through its collection configuration and to hnswlib directly.

textsearch embeds a text that repeats within a write batch once (the generated corpora repeat HSK
sentences: 2,532 distinct texts in 3,000 ``--short`` passages); the others are given an encoder
that embeds every text, as sentence-transformers does.

Each system runs in its own child process (this script with ``--system``), so that peak memory is
its own. Per system:

- ingestion passages/s: wall time from an empty directory until every passage is embedded, indexed
  and persisted (textsearch: ``Index.create`` + one ``Index.add``; chroma: ``PersistentClient`` +
  ``create_collection`` + ``add`` in batches of ``get_max_batch_size()``; script: encode, build
  the graph, ``save_index`` + a JSON file of the documents); the share of it spent inside
  ``encode_passages`` is reported too;
- single-query latency p50/p95 end to end (query text in, ids and texts out), after one warm-up;
- batch throughput: all queries in one call (``search_many``; ``query(query_texts=all)``; one
  ``encode_queries`` + ``knn_query`` on the matrix);
- peak RSS (``ru_maxrss``, read before the recall computation), and peak minus the peak right after
  the model was loaded and warmed up (corpus and queries were in memory already): what the system
  itself costs;
- size on disk: all files under the system's directory once it is closed;
- recall@10 of the single-query (and batch) answers against exact search over the very passage
  vectors the system was given: a wrapper around the encoder records them (spilled to a temporary
  file, outside both the RSS and the system's directory). A returned passage counts when its exact
  cosine is within 1e-4 of the 10th best (as ann-benchmarks does), so ties between duplicate
  passages cannot cost recall.

Queries are HSK sentences (zh or en, seeded) that are no passage's whole text. Prints one table
with ratios and writes JSON (benchmarks/results/compare-<N>.json by default):

    nice -n 10 python benchmarks/bench_compare.py --passages 10000
    nice -n 10 python benchmarks/bench_compare.py --passages 100000 --systems textsearch,chroma,script
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import resource
import shutil
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from functools import partial
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from textsearch import Index, SentenceTransformerEncoder
from textsearch.models.encoder import Encoder

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_ingest_query import generate_passages, percentile

K = 10
M, EF_CONSTRUCTION, EF = 16, 200, 400  # textsearch's defaults, used by all three
TIE = 1e-4  # a hit within this cosine of the exact 10th best counts as a true neighbour
Hits = list[tuple[str, str]]  # (id, text) per hit: every system has to fetch the text


class RecordingEncoder(Encoder):
    """The encoder every system is given: delegates, times ``encode_passages`` and keeps each
    passage vector it returned (on disk, so that the copy adds nothing to the system's RSS)."""

    def __init__(self, inner: SentenceTransformerEncoder, spill: Path) -> None:
        self.inner = inner
        self.name, self.dimension, self.prompts = inner.name, inner.dimension, inner.prompts
        self.runtime = inner.runtime
        self.calibration = inner.calibration
        self.texts: list[str] = []
        self.seconds = 0.0
        self._spill_path = spill
        self._spill = open(spill, "wb")  # noqa: SIM115 - closed by vectors()

    def encode_passages(self, texts: Sequence[str], show_progress: bool = False) -> np.ndarray:
        started = time.perf_counter()
        vectors = self.inner.encode_passages(texts, show_progress)
        self.seconds += time.perf_counter() - started
        self.texts.extend(texts)
        self._spill.write(np.ascontiguousarray(vectors, dtype=np.float32).tobytes())
        return vectors

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self.inner.encode_queries(texts)

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        return self.inner.count_tokens(texts)

    def vectors(self) -> np.ndarray:
        self._spill.close()
        return np.fromfile(self._spill_path, dtype=np.float32).reshape(-1, self.dimension)


# --- the three systems ---------------------------------------------------------------------------
class System(Protocol):
    def ingest(self, docs: list[dict[str, str]]) -> None: ...  # empty directory → persisted

    def search(self, query: str) -> Hits: ...

    def search_many(self, queries: list[str]) -> list[Hits]: ...

    def close(self) -> dict[str, Any]: ...  # the HNSW settings as the system reports them


class TextsearchSystem:
    def __init__(self, encoder: RecordingEncoder, path: Path, vector_dtype: str = "float32") -> None:
        self.encoder, self.path, self.vector_dtype = encoder, path, vector_dtype

    def ingest(self, docs: list[dict[str, str]]) -> None:
        self.index = Index.create(self.path, encoder=self.encoder, vector_dtype=self.vector_dtype)
        self.index.add(docs)

    def search(self, query: str) -> Hits:
        return [(h.doc_id, h.text) for h in self.index.search(query, k=K, min_score=-1.0, collapse=False)]

    def search_many(self, queries: list[str]) -> list[Hits]:  # every copy, as the others return them
        found = self.index.search_many(queries, k=K, min_score=-1.0, collapse=False)
        return [[(h.doc_id, h.text) for h in hits] for hits in found]

    def close(self) -> dict[str, Any]:
        hnsw = {"space": self.index.config.space, **self.index.info()["hnsw"]}
        self.index.close()
        return {"hnsw": hnsw}


def chroma_function(encoder: Encoder | None, model: str | None = None) -> Any:
    """Our encoder as a chroma EmbeddingFunction: documents get the passage prompt, ``query_texts``
    the query prompt (chroma 1.5 calls ``embed_query`` for those). Defined here so that only the
    chroma child imports chromadb."""
    from chromadb.api.types import Documents, EmbeddingFunction, Embeddings

    class EncoderFunction(EmbeddingFunction[Documents]):
        def __init__(self, encoder: Encoder | None, model: str | None = None, runtime: str = "torch") -> None:
            self._encoder, self._model, self._runtime = encoder, model, runtime  # rebuilt from config: loaded on first use

        @property
        def encoder(self) -> Encoder:
            if self._encoder is None:
                self._encoder = SentenceTransformerEncoder(self._model, runtime=self._runtime)
            return self._encoder

        def __call__(self, input: Documents) -> Embeddings:
            return list(self.encoder.encode_passages(list(input)))

        def embed_query(self, input: Documents) -> Embeddings:
            return list(self.encoder.encode_queries(list(input)))

        @staticmethod
        def name() -> str:
            return "textsearch"

        def get_config(self) -> dict[str, Any]:
            return {"model": self._model or self.encoder.name, "runtime": self._runtime}

        @staticmethod
        def build_from_config(config: dict[str, Any]) -> EncoderFunction:
            return EncoderFunction(None, config.get("model"), config.get("runtime", "torch"))

    return EncoderFunction(encoder, model, getattr(encoder, "runtime", "torch"))


class ChromaSystem:
    def __init__(self, encoder: RecordingEncoder, path: Path) -> None:
        import chromadb

        self.chromadb, self.encoder, self.path = chromadb, encoder, path

    def ingest(self, docs: list[dict[str, str]]) -> None:
        settings = self.chromadb.Settings(anonymized_telemetry=False)
        self.client = self.chromadb.PersistentClient(path=str(self.path), settings=settings)
        self.collection = self.client.create_collection(
            "bench",
            embedding_function=chroma_function(self.encoder, self.encoder.name),
            configuration={"hnsw": {"space": "cosine", "max_neighbors": M,
                                    "ef_construction": EF_CONSTRUCTION, "ef_search": EF}},
        )
        step = self.client.get_max_batch_size()
        for i in range(0, len(docs), step):
            batch = docs[i : i + step]
            self.collection.add(
                ids=[d["id"] for d in batch],
                documents=[d["text"] for d in batch],
                metadatas=[{"lang": d["lang"]} for d in batch],
            )

    def search(self, query: str) -> Hits:
        return self.search_many([query])[0]

    def search_many(self, queries: list[str]) -> list[Hits]:
        found = self.collection.query(query_texts=queries, n_results=K)
        documents = found["documents"]
        assert documents is not None, "chroma includes documents by default"
        return [list(zip(ids, texts)) for ids, texts in zip(found["ids"], documents)]

    def close(self) -> dict[str, Any]:
        details = {"hnsw": dict(self.collection.configuration.get("hnsw") or {}),
                   "max_batch_size": self.client.get_max_batch_size()}
        self.client.close()  # type: ignore[attr-defined]  # Client has it, the ClientAPI stub not
        details["hnsw_file"] = chroma_hnsw_header(self.path)
        return details


def chroma_hnsw_header(path: Path) -> dict[str, int]:
    """M, ef_construction and the element count that chroma's HNSW file on disk holds (its
    hnswlib fork puts a 4-byte version before hnswlib's 96-byte header)."""
    headers = list(path.glob("*/header.bin"))
    if len(headers) != 1:
        return {}
    fields = struct.unpack("<i6QiI3QdQ", headers[0].read_bytes()[:100])
    return {"capacity": fields[2], "elements": fields[3], "M": fields[11], "ef_construction": fields[13]}


class ScriptSystem:
    """What a user writes by hand: encode, hnswlib, save the graph and the texts next to it."""

    def __init__(self, encoder: RecordingEncoder, path: Path) -> None:
        import hnswlib

        self.hnswlib, self.encoder, self.path = hnswlib, encoder, path

    def ingest(self, docs: list[dict[str, str]]) -> None:
        self.docs = docs
        vectors = self.encoder.encode_passages([d["text"] for d in docs])
        self.index = self.hnswlib.Index(space="cosine", dim=vectors.shape[1])
        self.index.init_index(max_elements=len(docs), ef_construction=EF_CONSTRUCTION, M=M)
        self.index.add_items(vectors, np.arange(len(docs)))
        self.index.set_ef(EF)
        self.path.mkdir(parents=True)
        self.index.save_index(str(self.path / "index.bin"))
        (self.path / "docs.json").write_text(json.dumps(docs, ensure_ascii=False), encoding="utf-8")

    def search(self, query: str) -> Hits:
        return self.search_many([query])[0]

    def search_many(self, queries: list[str]) -> list[Hits]:
        labels, _ = self.index.knn_query(self.encoder.encode_queries(queries), k=K)
        return [[(self.docs[i]["id"], self.docs[i]["text"]) for i in row] for row in labels.tolist()]

    def close(self) -> dict[str, Any]:
        index = self.index
        return {"hnsw": {"space": index.space, "M": index.M, "ef_construction": index.ef_construction,
                         "ef": index.ef}}


SYSTEMS: dict[str, Callable[[RecordingEncoder, Path], System]] = {
    "textsearch": TextsearchSystem, "textsearch-torch": TextsearchSystem,
    "textsearch-int8": TextsearchSystem, "textsearch-fp16": partial(TextsearchSystem, vector_dtype="float16"),
    "chroma": ChromaSystem, "script": ScriptSystem,
}
RUNTIMES = {"textsearch": "auto", "textsearch-torch": "torch", "textsearch-int8": "onnx-int8",
            "textsearch-fp16": "auto"}  # others: --others-runtime


# --- one system, in a child process -------------------------------------------------------------
def make_queries(docs: list[dict[str, str]], n: int, seed: int = 1) -> list[tuple[str, str]]:
    """n (text, lang) HSK sentences that are no passage's whole text (at 100k passages only ~200
    are left: most sentences are then also a one-sentence passage)."""
    import hsk_sentences_audio

    taken = {d["text"] for d in docs}
    pool: dict[str, str] = {}
    for s in hsk_sentences_audio.load_sentences():
        for text, lang in ((s["chinese"], "zh"), (s["translation"]["en"], "en")):
            if text not in taken:
                pool.setdefault(text, lang)
    queries = sorted(pool.items())
    random.Random(seed).shuffle(queries)
    if len(queries) < n:
        raise SystemExit(f"only {len(queries)} sentences are not a passage of this corpus — "
                         f"ask for --queries {len(queries)}")
    return queries[:n]


def peak_rss_mb() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # bytes on macOS, KiB on Linux
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10


def recall(
    encoder: RecordingEncoder, docs: list[dict[str, str]], queries: np.ndarray, found: list[Hits]
) -> float:
    """Mean recall@K of ``found`` against exact search over the passage vectors the system got."""
    rows = {text: i for i, text in enumerate(encoder.texts)}  # equal texts have equal vectors
    missing = [d["id"] for d in docs if d["text"] not in rows]
    if missing:
        raise SystemExit(f"passages {missing[:3]} were not embedded verbatim: "
                         "recall needs one passage per document")
    passages = encoder.vectors()[[rows[d["text"]] for d in docs]]
    position = {d["id"]: i for i, d in enumerate(docs)}
    scores = queries @ passages.T
    kth = -np.partition(-scores, K - 1, axis=1)[:, K - 1]
    true = [sum(scores[q, position[i]] >= kth[q] - TIE for i, _ in hits) for q, hits in enumerate(found)]
    return float(np.mean(true)) / K


def dir_files(path: Path) -> dict[str, int]:
    return {str(p.relative_to(path)): p.stat().st_size for p in sorted(path.rglob("*")) if p.is_file()}


def measure(name: str, n: int, n_queries: int, runtime: str, short: bool = False) -> dict[str, Any]:
    """All figures of one system (run in a fresh process), its encoder on ``runtime``."""
    import torch

    docs = generate_passages(n, short=short)
    queries = [q for q, _ in make_queries(docs, n_queries)]
    model = SentenceTransformerEncoder(runtime=runtime)
    model.reuse_repeated = name.startswith("textsearch")  # the others embed every text, as their users' code does
    model.encode_passages([d["text"] for d in docs[:64]])  # warm-up: the first batches are slow
    model.encode_queries(queries[:8])
    model_mb = peak_rss_mb()
    work = Path(tempfile.mkdtemp(prefix=f"bench-compare-{name}-"))
    try:
        encoder = RecordingEncoder(model, work / "passage-vectors.f32")
        system = SYSTEMS[name](encoder, work / "data")
        started = time.perf_counter()
        system.ingest(docs)
        ingest = time.perf_counter() - started
        encode, embedded = encoder.seconds, len(encoder.texts)

        system.search(queries[0])  # warm-up
        latencies, single = [], []
        for query in queries:
            started = time.perf_counter()
            single.append(system.search(query))
            latencies.append((time.perf_counter() - started) * 1000)
        started = time.perf_counter()
        batch = system.search_many(queries)
        batch_seconds = time.perf_counter() - started
        peak_mb = peak_rss_mb()

        details = system.close()
        files = dir_files(work / "data")
        vectors = model.encode_queries(queries)
        return {
            "passages": n,
            "ingest_seconds": ingest,
            "ingest_passages_per_s": n / ingest,
            "encode_seconds": encode,
            "encode_share": encode / ingest,
            "passages_embedded": embedded,
            "query_ms_p50": percentile(latencies, 50),
            "query_ms_p95": percentile(latencies, 95),
            "query_ms_mean": float(np.mean(latencies)),
            "batch_seconds": batch_seconds,
            "batch_queries_per_s": len(queries) / batch_seconds,
            "peak_rss_mb": peak_mb,
            "model_rss_mb": model_mb,
            "rss_over_model_mb": peak_mb - model_mb,
            "disk_mb": sum(files.values()) / 2**20,
            "files": files,
            "recall_at_10": recall(encoder, docs, vectors, single),
            "recall_at_10_batch": recall(encoder, docs, vectors, batch),
            "model": model.name,
            "device": model.device,
            "runtime": model.runtime,
            "torch_threads": torch.get_num_threads(),
            **details,
        }
    finally:
        shutil.rmtree(work, ignore_errors=True)


# --- the parent: run the children, print the table -------------------------------------------
ROWS = [  # (key, label, which way is better; None: no ratio)
    ("ingest_passages_per_s", "ingest passages/s", "higher"),
    ("encode_share", "  share spent encoding", None),
    ("passages_embedded", "  passages embedded", None),
    ("query_ms_p50", "single query p50 ms", "lower"),
    ("query_ms_p95", "single query p95 ms", "lower"),
    ("batch_queries_per_s", "batch queries/s", "higher"),
    ("peak_rss_mb", "peak RSS MB", "lower"),
    ("rss_over_model_mb", "RSS over the model MB", "lower"),
    ("disk_mb", "size on disk MB", "lower"),
    ("recall_at_10", "recall@10 (single)", "higher"),
    ("recall_at_10_batch", "recall@10 (batch)", "higher"),
]
FORMATS = {"encode_share": "{:>17.1%}", "passages_embedded": "{:>17d}",
           "recall_at_10": "{:>17.3f}", "recall_at_10_batch": "{:>17.3f}"}


def run_child(name: str, n: int, n_queries: int, runtime: str, short: bool = False) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-compare-") as tmp:
        out = Path(tmp) / "result.json"
        command = [sys.executable, __file__, "--system", name, "--passages", str(n),
                   "--queries", str(n_queries), "--runtime", runtime, "--result", str(out),
                   *(["--short"] if short else [])]
        subprocess.run(command, check=True)
        return json.loads(out.read_text())


def ratios(systems: dict[str, dict[str, Any]]) -> dict[str, dict[str, float]]:
    """textsearch ÷ each other system, for every figure that has a better direction."""
    if "textsearch" not in systems:
        return {}
    ts = systems["textsearch"]
    return {f"textsearch/{other}": {key: ts[key] / systems[other][key]
                                    for key, _, better in ROWS if better and systems[other][key]}
            for other in systems if other != "textsearch"}


def table(systems: dict[str, dict[str, Any]], ratio: dict[str, dict[str, float]]) -> str:
    names, pairs = list(systems), list(ratio)
    head = "".join(f"{n:>17}" for n in names) + "".join(f"{p.replace('textsearch', 'ts'):>22}" for p in pairs)
    lines = [f"{'':24}{head}  better"]
    for key, label, better in ROWS:
        cells = "".join(FORMATS.get(key, "{:>17.1f}").format(systems[n][key]) for n in names)
        cells += "".join(f"{ratio[p][key]:>22.2f}" if key in ratio[p] else " " * 22 for p in pairs)
        lines.append(f"{label:24}{cells}  {better or ''}")
    return "\n".join(lines)


def versions() -> dict[str, str]:
    found = {}
    for name in ("textsearch", "chromadb", "hnswlib", "sentence-transformers", "torch"):
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            pass
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("-n", "--passages", type=int, default=10_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--systems", default="textsearch,textsearch-torch,chroma,script",
                        help="comma-separated: " + ", ".join(SYSTEMS))
    parser.add_argument("--others-runtime", default="torch", help="chroma's and the script's encoder runtime")
    parser.add_argument("--runtime", help=argparse.SUPPRESS)  # child: its encoder's runtime
    parser.add_argument("--out", type=Path, default=None, help="default: results/compare-<N>.json")
    parser.add_argument("--system", choices=SYSTEMS, help=argparse.SUPPRESS)  # child: one system
    parser.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--short", action="store_true", help="one HSK sentence per passage (~12 characters)")
    args = parser.parse_args()
    if args.passages <= K or args.queries < 1:
        parser.error(f"need more than {K} passages and at least one query")
    if args.system:
        args.result.write_text(json.dumps(measure(args.system, args.passages, args.queries, args.runtime,
                                                  args.short)))
        return

    names = [s.strip() for s in args.systems.split(",") if s.strip()]
    unknown = set(names) - set(SYSTEMS)
    if unknown or not names:
        parser.error(f"unknown systems {sorted(unknown)} — choose among {', '.join(SYSTEMS)}")
    langs = [lang for _, lang in make_queries(generate_passages(args.passages, short=args.short), args.queries)]
    systems = {}
    for i, name in enumerate(names, 1):
        print(f"[{i}/{len(names)}] {name}", file=sys.stderr, flush=True)
        systems[name] = run_child(name, args.passages, args.queries,
                                  RUNTIMES.get(name, args.others_runtime), args.short)
    first = next(iter(systems.values()))
    ratio = ratios(systems)
    result = {
        "passages": args.passages,
        "short": args.short,
        "queries": args.queries,
        "query_langs": {lang: langs.count(lang) for lang in sorted(set(langs))},
        "model": first["model"],
        "device": first["device"],
        "hnsw": {"space": "cosine", "M": M, "ef_construction": EF_CONSTRUCTION, "ef": EF},
        "machine": {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
                    "cpus": os.cpu_count(), "torch_threads": first["torch_threads"],
                    "python": platform.python_version(), "versions": versions()},
        "command": " ".join(["python", *sys.argv]),
        "systems": systems,
        "ratios": ratio,
    }
    out = args.out or Path(__file__).parent / "results" / f"compare-{args.passages}{'-short' if args.short else ''}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2, ensure_ascii=False))

    print(f"{args.passages} passages, {args.queries} queries {result['query_langs']}, model "
          f"{result['model']} on {result['device']}, {os.cpu_count()} cpus, "
          f"{first['torch_threads']} torch threads")
    print(f"HNSW for all: cosine, M {M}, ef_construction {EF_CONSTRUCTION}, ef {EF}")
    for name, figures in systems.items():
        print(f"  {name} (encoder on {figures['runtime']}) reports {figures['hnsw']}")
    if "chroma" in systems:
        print(f"  chroma's HNSW file on disk: {systems['chroma']['hnsw_file']} (elements not yet in "
              "it are in chroma.sqlite3's log until sync_threshold more accumulate)")
    print(table(systems, ratio))
    print("ratios are textsearch ÷ other: above 1 is better on 'higher' rows, below 1 on 'lower' rows")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
