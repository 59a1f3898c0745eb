"""The encoder on each runtime: speed, closeness to torch fp32, and retrieval quality.

For every runtime (torch, onnx = ONNX Runtime fp32, onnx-int8), in one process, one after the
other, on the same texts:

- passages/s encoding generated zh/en passages (``bench_ingest_query.generate_passages``) in one
  call, as an index's write batch does, after a warm-up;
- single-query latency p50/p95 (one short query at a time, the query prompt);
- cosine of each passage vector to torch's (mean and minimum);
- MRR@10 (and Recall@1) on every pair file given, by ``textsearch eval``'s own code, with the
  difference to torch: the issue's bar for a faster path is MRR@10 within 0.01 of fp32 on the
  held-out splits.

    python benchmarks/bench_encoder.py                       # writes results/encoder.json
    python benchmarks/bench_encoder.py --runtimes torch,onnx --passages 1000
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from textsearch.models.encoder import SentenceTransformerEncoder
from textsearch.training.evaluate import evaluate_file

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_ingest_query import generate_passages, percentile

ROOT = Path(__file__).resolve().parent.parent
PAIR_FILES = [
    "corpora/pairs/test_zh.jsonl", "corpora/pairs/test_en.jsonl", "corpora/pairs/test_zh_en.jsonl",
    "corpora/pairs/test_hsk.jsonl", "corpora/heldout/zh.jsonl", "corpora/heldout/en.jsonl",
    "corpora/heldout/zh_en.jsonl",
]
QUERIES = ["可爱的宝宝", "a cute baby", "明天的会议改到几点了？", "How do I get to the train station?",
           "这本书讲的是什么", "broken phone screen repair"]


def measure(runtime: str, passages: list[str], files: list[str], reference: np.ndarray | None) -> dict[str, Any]:
    encoder = SentenceTransformerEncoder(device="cpu", runtime=runtime)
    encoder.encode_passages(passages[:64])  # warm-up
    started = time.perf_counter()
    vectors = encoder.encode_passages(passages)
    seconds = time.perf_counter() - started
    latencies = []
    for i in range(100):
        started = time.perf_counter()
        encoder.encode_queries([QUERIES[i % len(QUERIES)]])
        latencies.append((time.perf_counter() - started) * 1000)
    cosines = (vectors * reference).sum(axis=1) if reference is not None else np.ones(len(vectors))
    quality = {}
    for path in files:
        found = evaluate_file(ROOT / path, encoder=encoder)["results"]["all"]
        quality[path] = {"mrr@10": found["mrr@10"], "recall@1": found["recall@1"], "n_queries": found["n_queries"]}
    return {
        "runtime": encoder.runtime,
        "passages_per_s": len(passages) / seconds,
        "query_ms_p50": percentile(latencies, 50),
        "query_ms_p95": percentile(latencies, 95),
        "cosine_to_torch_mean": float(cosines.mean()),
        "cosine_to_torch_min": float(cosines.min()),
        "quality": quality,
        "export": getattr(encoder._onnx, "info", None),
        "_vectors": vectors,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--runtimes", default="torch,onnx,onnx-int8")
    parser.add_argument("--passages", type=int, default=2000)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "encoder.json")
    args = parser.parse_args()
    runtimes = [r.strip() for r in args.runtimes.split(",") if r.strip()]
    if runtimes[0] != "torch":
        runtimes.insert(0, "torch")  # the reference every other runtime is compared with
    passages = [d["text"] for d in generate_passages(args.passages)]
    results: dict[str, dict[str, Any]] = {}
    for runtime in runtimes:
        print(f"[{runtime}]", file=sys.stderr, flush=True)
        reference = results["torch"]["_vectors"] if "torch" in results else None
        results[runtime] = measure(runtime, passages, PAIR_FILES, reference)
    for figures in results.values():
        figures.pop("_vectors")
        for path, q in figures["quality"].items():
            q["mrr@10_vs_torch"] = q["mrr@10"] - results["torch"]["quality"][path]["mrr@10"]

    print(f"{len(passages)} passages, {os.cpu_count()} cpus")
    print(f"{'':30}" + "".join(f"{r:>18}" for r in results))
    rows = [("passages/s", "passages_per_s", "{:>18.1f}"), ("query p50 ms", "query_ms_p50", "{:>18.2f}"),
            ("query p95 ms", "query_ms_p95", "{:>18.2f}"), ("cosine to torch, mean", "cosine_to_torch_mean", "{:>18.5f}"),
            ("cosine to torch, min", "cosine_to_torch_min", "{:>18.5f}")]
    for label, key, fmt in rows:
        print(f"{label:30}" + "".join(fmt.format(f[key]) for f in results.values()))
    for path in PAIR_FILES:
        cells = [f"{f['quality'][path]['mrr@10']:.4f} ({f['quality'][path]['mrr@10_vs_torch']:+.4f})"
                 for f in results.values()]
        print(f"{'MRR@10 ' + path.replace('corpora/', ''):30}" + "".join(f"{c:>18}" for c in cells))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({
        "passages": len(passages), "command": " ".join(["python", *sys.argv]),
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "python": platform.python_version()},
        "runtimes": results,
    }, indent=2, ensure_ascii=False))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
