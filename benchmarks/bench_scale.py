"""The ANN stage at scale: textsearch's HNSW graph (``AnnIndex``, the defaults an index uses) over
N precomputed, clustered unit vectors of the encoder's dimension.

Prints and writes JSON (benchmarks/results/scale-<N>.json): build time and rate, process memory
(RSS) before and after the build, bytes per passage in memory and on disk (graph file; the SQLite
copy of each vector adds 4 × dimension bytes on disk), and for several ef: single-query search
latency p50/p95 and recall@10 against exact search.

Vectors: ``--clusters`` random centres, each vector a centre plus Gaussian noise, normalised —
closer to real embeddings (which crowd in topics) than uniform noise, which no ANN index can
search well in 384 dimensions.

    python benchmarks/bench_scale.py                  # 1,000,000 vectors (about 15 min on 2 cores)
    python benchmarks/bench_scale.py -n 100000        # quicker
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import tempfile
import time
from pathlib import Path

import numpy as np
import psutil

from textsearch.storage.ann import AnnIndex
from textsearch.config import IndexConfig

ROOT = Path(__file__).resolve().parent.parent


def clustered(n: int, centres: np.ndarray, noise: float, seed: int) -> np.ndarray:
    """n unit vectors, each a random centre plus Gaussian noise."""
    rng = np.random.default_rng(seed)
    out = np.empty((n, centres.shape[1]), dtype=np.float32)
    for start in range(0, n, 100_000):  # in chunks: bounded temporary memory
        m = min(100_000, n - start)
        block = centres[rng.integers(0, len(centres), m)]
        block = block + noise * rng.standard_normal(block.shape).astype(np.float32)
        out[start : start + m] = block / np.linalg.norm(block, axis=1, keepdims=True)
    return out


def exact_top(vectors: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    best_scores = np.full((len(queries), k), -np.inf, dtype=np.float32)
    best = np.zeros((len(queries), k), dtype=np.int64)
    for start in range(0, len(vectors), 200_000):
        scores = queries @ vectors[start : start + 200_000].T
        top = np.argpartition(-scores, k, axis=1)[:, :k]
        merged_scores = np.concatenate([best_scores, np.take_along_axis(scores, top, axis=1)], axis=1)
        merged = np.concatenate([best, top + start], axis=1)
        order = np.argsort(-merged_scores, axis=1)[:, :k]
        best_scores = np.take_along_axis(merged_scores, order, axis=1)
        best = np.take_along_axis(merged, order, axis=1)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("-n", "--passages", type=int, default=1_000_000)
    parser.add_argument("--dimension", type=int, default=384)
    parser.add_argument("--clusters", type=int, default=None, help="default: one per 50 vectors")
    parser.add_argument("--noise", type=float, default=0.03, help="per-coordinate noise around a centre")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--ef", type=int, nargs="+", default=[16, 32, 64, 100, 200])
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()

    defaults = IndexConfig(model="-", dimension=args.dimension)
    process = psutil.Process()
    args.clusters = args.clusters or max(1, args.passages // 50)
    centres = np.random.default_rng(0).standard_normal((args.clusters, args.dimension)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    vectors = clustered(args.passages, centres, args.noise, seed=1)
    queries = clustered(args.queries, centres, args.noise, seed=2)  # new points around the same centres
    rss_before = process.memory_info().rss

    ann = AnnIndex(args.dimension, M=defaults.M, ef_construction=defaults.ef_construction, ef=defaults.ef,
                   capacity=args.passages)
    started = time.perf_counter()
    for start in range(0, args.passages, 50_000):
        ann.add(np.arange(start, min(start + 50_000, args.passages)), vectors[start : start + 50_000])
    build = time.perf_counter() - started
    rss_after = process.memory_info().rss
    with tempfile.TemporaryDirectory() as tmp:
        size, _ = ann.save(Path(tmp) / "hnsw.bin")
    print(f"built {args.passages:,} vectors in {build:.1f} s ({args.passages / build:,.0f}/s); "
          f"graph {(rss_after - rss_before) / 2**20:,.0f} MB in memory, {size / 2**20:,.0f} MB on disk")

    exact = exact_top(vectors, queries, 10)
    rows = []
    for ef in args.ef:
        ann.search(queries[:1], 10, ef=ef)
        times, found = [], []
        for q in queries:
            t0 = time.perf_counter()
            labels, _ = ann.search(q[None], 10, ef=ef)
            times.append((time.perf_counter() - t0) * 1000)
            found.append(labels[0])
        recall = float(np.mean([len(set(f.tolist()) & set(e.tolist())) / 10 for f, e in zip(found, exact)]))
        row = {"ef": ef, "recall_at_10": round(recall, 4), "p50_ms": round(float(np.percentile(times, 50)), 3),
               "p95_ms": round(float(np.percentile(times, 95)), 3)}
        rows.append(row)
        print(f"ef {ef:4d}: recall@10 {recall:.3f}  p50 {row['p50_ms']:.3f} ms  p95 {row['p95_ms']:.3f} ms")

    result = {
        "passages": args.passages, "dimension": args.dimension, "clusters": args.clusters, "noise": args.noise,
        "M": defaults.M, "ef_construction": defaults.ef_construction, "default_ef": defaults.ef,
        "build_s": round(build, 1), "build_per_s": round(args.passages / build),
        "graph_memory_mb": round((rss_after - rss_before) / 2**20, 1),
        "memory_bytes_per_passage": round((rss_after - rss_before) / args.passages),
        "file_bytes_per_passage": round(size / args.passages),
        "sqlite_vector_bytes_per_passage": 4 * args.dimension,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "search": rows,
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count()},
    }
    out = args.out or ROOT / "benchmarks" / "results" / f"scale-{args.passages}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
