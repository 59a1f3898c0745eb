"""Scale-out on one machine: the same corpus through a single process and through Ray, into each
storage backend, and a labelled projection to 10M and 100M passages.

The corpus: --passages generated zh/en documents (``bench_ingest_query.generate_passages``: 1–3
HSK sentences each, one passage each), written as JSONL files of 100 rows (so Ray has files to
spread). Each configuration builds its index from an empty directory with ``textsearch index``'s
own code (``build_index``), in a child process of its own (peak memory is its own, and Ray starts
and stops inside it):

- ``single``: today's single process; ``ray-1`` / ``ray-2``: ``--ray auto`` with 1 and 2 encoder
  actors (a local Ray on this machine's cores);
- backends ``local`` (SQLite + hnswlib in the index directory) and ``milvus`` (Milvus Lite).

Per configuration: passages/s (wall time of the build, Ray's start included), single-query p50/p95
end to end (``Index.search``, k 10, one passage per hit), recall@10 of those passages against
exact search over the same stored vectors (a passage within 1e-4 of the exact 10th best counts),
the index's size on disk, and peak RSS. The projection (``projection``) is arithmetic on stated
assumptions, printed and written next to the measurements, labelled as such.

    python benchmarks/bench_scale_out.py --passages 10000    # writes results/scale_out-10000.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_compare import make_queries
from bench_ingest_query import generate_passages, percentile

CONFIGS = ["local/single", "local/ray-1", "local/ray-2", "milvus/single", "milvus/ray-2"]
K = 10
TIE = 1e-4


def write_corpus(folder: Path, n: int) -> list[dict[str, str]]:
    docs = generate_passages(n)
    folder.mkdir(parents=True)
    for start in range(0, n, 100):
        rows = docs[start:start + 100]
        (folder / f"part-{start // 100:05}.jsonl").write_text(
            "".join(json.dumps(d, ensure_ascii=False) + "\n" for d in rows), encoding="utf-8")
    return docs


def disk_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def measure(config: str, folder: Path, work: Path, queries: list[str]) -> dict[str, Any]:
    """One configuration, in this (child) process."""
    from textsearch import open_index
    from textsearch.catalog import build_index

    backend, mode = config.split("/")
    actors = int(mode.split("-")[1]) if mode.startswith("ray") else None
    started = time.perf_counter()
    built = build_index(folder, "bench", work, backend=backend, ray="auto" if actors else None, ray_actors=actors)
    seconds = time.perf_counter() - started
    with open_index(work / "bench") as index:
        index.search(queries[0], k=K, group=False, min_score=-1.0)  # warm-up
        latencies, found = [], []
        for query in queries:
            t0 = time.perf_counter()
            hits = index.search(query, k=K, group=False, min_score=-1.0)
            latencies.append((time.perf_counter() - t0) * 1000)
            found.append([(h.doc_id, h.passage) for h in hits])
        vectors = index.encoder.encode_queries(queries)
        info = index.info()
        passages = info["passages"]
    return {
        "config": config, "backend": backend, "ray_actors": actors, "passages": passages,
        "documents": built.documents, "seconds": seconds, "passages_per_s": passages / seconds,
        "embed_seconds": built.summary.seconds,
        "query_ms_p50": percentile(latencies, 50), "query_ms_p95": percentile(latencies, 95),
        "disk_mb": disk_bytes(work / "bench") / 1e6,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "found": found, "query_vectors": vectors.tolist(),
    }


def exact_recall(work: Path, found: list[list[tuple[str, int]]], query_vectors: np.ndarray) -> float:
    """Recall@10 against exact search over the passage vectors of the single-process local index."""
    from textsearch import Index

    with Index.open(work) as index:
        labels = index.store.labels()
        rows = index.store.passages(labels)
        vectors = index.store.vectors(labels, index.config.dimension)
    keys = [(rows[int(label)].doc_id, rows[int(label)].position) for label in labels]
    position = {key: i for i, key in enumerate(keys)}
    scores = query_vectors @ vectors.T
    kth = -np.partition(-scores, K - 1, axis=1)[:, K - 1]
    true = [sum(scores[q, position[tuple(key)]] >= kth[q] - TIE for key in hits if tuple(key) in position)
            for q, hits in enumerate(found)]
    return float(np.mean(true)) / K


def projection(per_gpu: list[float], cpu_rate: float) -> dict[str, Any]:
    """Ingestion time and Milvus memory for 10M and 100M passages on N GPU nodes — arithmetic on
    the assumptions written into the result, not a measurement."""
    dimension, m = 384, 16
    rows = []
    for total in (10_000_000, 100_000_000):
        vectors_gb = total * dimension * 4 / 1e9
        graph_gb = total * 2 * m * 4 / 1e9  # hnswlib-style level-0 links: 2M neighbours × 4 bytes
        for rate in per_gpu:
            for nodes in (1, 4, 16):
                rows.append({"passages": total, "nodes": nodes, "gpus_per_node": 1, "passages_per_s_per_gpu": rate,
                             "hours": total / (rate * nodes) / 3600, "vectors_gb": vectors_gb,
                             "hnsw_links_gb": graph_gb})
        rows.append({"passages": total, "nodes": 1, "gpus_per_node": 0, "passages_per_s_per_gpu": None,
                     "cpu_passages_per_s": cpu_rate, "hours": total / cpu_rate / 3600,
                     "vectors_gb": vectors_gb, "hnsw_links_gb": graph_gb})
    return {
        "label": "PROJECTION — arithmetic on the assumptions below, not measured",
        "assumptions": [
            "encoding dominates ingestion and scales linearly with encoder actors (one per GPU), as Ray "
            "Data's actor pool spreads blocks; the single writer is not the bottleneck (to be confirmed: "
            "on this machine the write share is measured in the table)",
            f"per-GPU encoder throughput {per_gpu} passages/s for the 384-dimension e5-small model on ~40-token "
            "passages: NOT measured by us (no GPU was available); replace with the encoder figure of "
            "bench_ingest_query.py --device cuda",
            f"the CPU row uses this machine's measured single-process rate ({cpu_rate:.0f} passages/s on 2 cores)",
            "Milvus memory: float32 vectors (N × 384 × 4 bytes) plus HNSW links (N × 2M × 4 bytes, M 16), before "
            "scalar fields and replicas; Milvus spreads sealed segments over query nodes, so memory per node is "
            "this divided by the query nodes (size a real cluster with the Milvus sizing tool)",
        ],
        "rows": rows,
    }


def run_child(config: str, folder: Path, work: Path, queries_file: Path) -> dict[str, Any]:
    out = work / "result.json"
    subprocess.run([sys.executable, __file__, "--child", config, "--folder", str(folder), "--work", str(work),
                    "--queries-file", str(queries_file), "--child-out", str(out)], check=True)
    return json.loads(out.read_text(encoding="utf-8"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--passages", type=int, default=10_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--configs", default=",".join(CONFIGS))
    parser.add_argument("--gpu-rates", default="2000,8000",
                        help="assumed passages/s per GPU for the projection (not measured here)")
    parser.add_argument("--out", type=Path)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--folder", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--queries-file", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--child-out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        queries = json.loads(args.queries_file.read_text(encoding="utf-8"))
        result = measure(args.child, args.folder, args.work, queries)
        args.child_out.write_text(json.dumps(result), encoding="utf-8")
        return

    tmp = Path(tempfile.mkdtemp(prefix="bench-scale-out-"))
    try:
        docs = write_corpus(tmp / "corpus", args.passages)
        queries = [q for q, _ in make_queries(docs, args.queries)]
        (tmp / "queries.json").write_text(json.dumps(queries, ensure_ascii=False), encoding="utf-8")
        results = []
        for config in args.configs.split(","):
            print(f"[{config}]", flush=True)
            work = tmp / config.replace("/", "-")
            work.mkdir()
            results.append(run_child(config, tmp / "corpus", work, tmp / "queries.json"))
        reference = next((tmp / r["config"].replace("/", "-") / "bench" for r in results
                          if r["config"] == "local/single"), None)
        for r in results:
            found, vectors = r.pop("found"), np.asarray(r.pop("query_vectors"), dtype=np.float32)
            r["recall_at_10"] = exact_recall(reference, found, vectors) if reference else None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    single = next((r for r in results if r["config"] == "local/single"), results[0])
    result = {
        "passages_asked": args.passages, "queries": args.queries, "cpus": len(os.sched_getaffinity(0)),
        "machine": {"platform": platform.platform(), "python": platform.python_version()},
        "command": "python benchmarks/bench_scale_out.py " + " ".join(sys.argv[1:]),
        "results": results,
        "projection": projection([float(x) for x in args.gpu_rates.split(",")], single["passages_per_s"]),
    }
    print(f"{'config':<15}{'passages/s':>12}{'p50 ms':>9}{'p95 ms':>9}{'recall@10':>11}{'disk MB':>9}{'RSS MB':>8}")
    for r in results:
        recall = "-" if r["recall_at_10"] is None else f"{r['recall_at_10']:.3f}"
        print(f"{r['config']:<15}{r['passages_per_s']:>12.1f}{r['query_ms_p50']:>9.1f}{r['query_ms_p95']:>9.1f}"
              f"{recall:>11}{r['disk_mb']:>9.1f}{r['peak_rss_mb']:>8.0f}")
    print(result["projection"]["label"])
    for row in result["projection"]["rows"]:
        rate = (f"{row['passages_per_s_per_gpu']:,.0f}/s a GPU" if row["gpus_per_node"]
                 else f"CPU {row['cpu_passages_per_s']:,.0f}/s")
        print(f"  {row['passages']:>11,} passages, {row['nodes']:>2} node(s), {rate:>16}: "
              f"{row['hours']:8.1f} h; vectors {row['vectors_gb']:.0f} GB + HNSW links {row['hnsw_links_gb']:.0f} GB")
    out = args.out or Path(__file__).parent / "results" / f"scale_out-{args.passages}.json"
    out.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
