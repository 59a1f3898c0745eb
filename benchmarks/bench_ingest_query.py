"""Ingestion and query benchmark of textsearch on generated zh/en passages.

Prints a table and writes JSON (benchmarks/results/ingest_query-<N>.json by default):
- encoder alone on the same passage texts (passages/s) vs ingestion end to end through
  ``Index.add`` (chunking, embedding, SQLite, HNSW, save): their ratio is our overhead;
- single-query latency p50/p95 end to end (``Index.search``: encode + HNSW + SQLite);
- HNSW recall@10 against exact (brute-force) search over the stored vectors.

    python benchmarks/bench_ingest_query.py                 # 10k passages
    python benchmarks/bench_ingest_query.py -n 100000       # on request
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from textsearch import Index, SentenceTransformerEncoder


def generate_passages(n: int, seed: int = 0, short: bool = False) -> list[dict[str, str]]:
    """n short documents: 1–3 HSK sentences each (``short``: one, about 12 characters), half
    Chinese, half their English translations."""
    import hsk_sentences_audio

    sentences = hsk_sentences_audio.load_sentences()
    rng = random.Random(seed)
    docs = []
    for i in range(n):
        picks = rng.sample(sentences, 1 if short else rng.randint(1, 3))
        if i % 2:
            text = " ".join(s["translation"]["en"] for s in picks)
        else:
            text = "".join(s["chinese"] for s in picks)
        docs.append({"id": f"g{i}", "text": text, "lang": "en" if i % 2 else "zh"})
    return docs


def hnsw_sweep(labels: np.ndarray, vectors: np.ndarray, queries: np.ndarray, exact: np.ndarray) -> list[dict]:
    """Recall@10 and single-query search time of the bare graph for several M and ef."""
    from textsearch.storage.ann import AnnIndex

    rows = []
    for m in (16, 32):
        ann = AnnIndex(vectors.shape[1], M=m, ef_construction=200, capacity=len(labels))
        t0 = time.perf_counter()
        ann.add(labels, vectors)
        build = time.perf_counter() - t0
        for ef in (50, 100, 200, 400):
            ann.search(queries[:1], 10, ef=ef)
            t0 = time.perf_counter()
            found = [ann.search(q[None], 10, ef=ef)[0][0] for q in queries]
            ms = (time.perf_counter() - t0) * 1000 / len(queries)
            recall = float(np.mean([len(set(f) & set(e)) / 10 for f, e in zip(found, exact)]))
            rows.append({"M": m, "ef": ef, "recall_at_10": recall, "search_ms": ms, "build_s": build})
    return rows


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("-n", "--passages", type=int, default=10_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--model", default=None, help="default: the bundled model")
    parser.add_argument("--device", default=None)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()

    docs = generate_passages(args.passages)
    texts = [d["text"] for d in docs]
    encoder = SentenceTransformerEncoder(args.model, device=args.device)
    encoder.encode_passages(texts[:64])  # warm-up

    t0 = time.perf_counter()
    encoder.encode_passages(texts)
    encoder_seconds = time.perf_counter() - t0

    workdir = Path(tempfile.mkdtemp(prefix="ts-bench-"))
    try:
        t0 = time.perf_counter()
        idx = Index.create(workdir / "bench", encoder=encoder)
        summary = idx.add(docs)
        ingest_seconds = time.perf_counter() - t0
        assert summary.passages == len(docs), "generated documents are single passages"

        rng = random.Random(1)
        queries = [rng.choice(texts)[:30] for _ in range(args.queries)]
        idx.search(queries[0])  # warm-up
        latencies = []
        for q in queries:
            t0 = time.perf_counter()
            idx.search(q, k=10)
            latencies.append((time.perf_counter() - t0) * 1000)

        labels = idx.store.labels()
        vectors = idx.store.vectors(labels, idx.config.dimension)
        qvecs = encoder.encode_queries(queries)
        exact = labels[np.argsort(-(qvecs @ vectors.T), axis=1)[:, :10]]
        approx, _ = idx.ann.search(qvecs, 10)
        recall = float(np.mean([len(set(a) & set(e)) / 10 for a, e in zip(approx, exact)]))
        size = idx.info()["size_bytes"]
        sweep = hnsw_sweep(labels, vectors, qvecs, exact)
        idx.close()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    result = {
        "passages": len(docs),
        "model": encoder.name,
        "device": encoder.device,
        "machine": f"{platform.machine()}, {__import__('os').cpu_count()} cores",
        "encoder_passages_per_s": len(docs) / encoder_seconds,
        "ingest_passages_per_s": len(docs) / ingest_seconds,
        "overhead_vs_encoder": ingest_seconds / encoder_seconds - 1,
        "query_ms_p50": percentile(latencies, 50),
        "query_ms_p95": percentile(latencies, 95),
        "query_ms_mean": statistics.fmean(latencies),
        "hnsw_recall_at_10": recall,
        "index_bytes": size,
        "hnsw_sweep": sweep,
    }
    out = args.out or Path(__file__).parent / "results" / f"ingest_query-{len(docs)}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    for row in sweep:
        print("hnsw M={M:<3} ef={ef:<4} recall@10={recall_at_10:.3f} search={search_ms:.3f} ms".format(**row))
    for key, value in result.items():
        if key != "hnsw_sweep":
            print(f"{key:28} {value:.3f}" if isinstance(value, float) else f"{key:28} {value}")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
