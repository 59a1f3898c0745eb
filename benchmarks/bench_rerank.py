"""Reranking benchmark: what the second stage costs and what it buys, per candidate count.

Prints tables and writes JSON (benchmarks/results/rerank-<device>.json by default):
- quality: MRR@10 / Recall@1 of recall only and of recall + rerank of the top C candidates (at the
  reranker's weight, and of the reranker alone), for C in --candidates, on held-out pair files
  (each file's own texts are the corpus);
- latency: the time ``Index.search`` adds when reranking C candidates (p50/p95 over the queries of
  corpora/demo_queries.jsonl against an index of corpora/demo), same process, model kept warm;
- throughput: reranker pairs/s on demo passages (batch as in search), on this device.

    python benchmarks/bench_rerank.py                       # CPU (or the GPU when there is one)
    python benchmarks/bench_rerank.py --rerank-model models/reranker --device cpu
    python benchmarks/bench_rerank.py --runtime torch --skip-quality   # the torch path's latency
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
import time
from pathlib import Path

from textsearch import Index, SentenceTransformerEncoder
from textsearch.training.evaluate import evaluate_pairs
from textsearch.training.pairs import read_pairs
from textsearch.search.rerank import CrossEncoderReranker, Memoized

ROOT = Path(__file__).resolve().parent.parent
SPLITS = ["corpora/heldout/zh.jsonl", "corpora/heldout/en.jsonl", "corpora/heldout/zh_en.jsonl",
          "corpora/heldout/overlap_controls.jsonl",
          "corpora/pairs/test_zh.jsonl", "corpora/pairs/test_en.jsonl", "corpora/pairs/test_zh_en.jsonl"]


def quality(encoder, reranker, candidates: list[int], splits: list[str]) -> dict[str, dict]:
    """MRR@10 etc. of recall only, then of recall + rerank at the reranker's weight (and of the
    reranker alone, weight 1, when its weight is another) for each candidate count."""
    out: dict[str, dict] = {}
    weights = sorted({reranker.weight, 1.0})
    reranker = Memoized(reranker)
    for split in splits:
        pairs = read_pairs(ROOT / split)
        row = {"recall only": evaluate_pairs(encoder, pairs)["all"]}
        for c in sorted(candidates, reverse=True):  # the deepest first: the others reuse its scores
            for w in weights:
                reranker.weight = w
                name = f"rerank {c}" if w == weights[0] else f"reranker alone {c}"
                row[name] = evaluate_pairs(encoder, pairs, reranker=reranker, candidates=c)["all"]
        out[split] = {name: {m: round(v, 4) for m, v in metrics.items()} for name, metrics in row.items()}
        cells = "  ".join(f"{name} {m['mrr@10']:.3f}" for name, m in out[split].items())
        print(f"{split:<34} MRR@10  {cells}", flush=True)
    return out


def latency(index: Index, queries: list[str], reranker, candidates: list[int]) -> dict[str, dict]:
    def timed(**kwargs) -> list[float]:
        index.search(queries[0], k=10, **kwargs)  # warm
        times = []
        for q in queries:
            t0 = time.perf_counter()
            index.search(q, k=10, **kwargs)
            times.append((time.perf_counter() - t0) * 1000)
        return times

    base = timed()
    out = {"recall only": {"p50_ms": statistics.median(base), "p95_ms": _p95(base)}}
    for c in candidates:
        times = timed(rerank=reranker, candidates=c)
        out[f"rerank {c}"] = {"p50_ms": statistics.median(times), "p95_ms": _p95(times),
                              "added_p50_ms": statistics.median(times) - statistics.median(base)}
    for name, row in out.items():
        extra = f", added {row['added_p50_ms']:.0f} ms" if "added_p50_ms" in row else ""
        print(f"  {name:<12} p50 {row['p50_ms']:.0f} ms, p95 {row['p95_ms']:.0f} ms{extra}", flush=True)
    return out


def throughput(reranker, passages: list[str], query: str, repeat: int = 3) -> float:
    reranker.score(query, passages[:32])
    t0 = time.perf_counter()
    for _ in range(repeat):
        reranker.score(query, passages)
    return repeat * len(passages) / (time.perf_counter() - t0)


def _p95(values: list[float]) -> float:
    return sorted(values)[max(0, round(0.95 * len(values)) - 1)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rerank-model", default=None)
    parser.add_argument("--device", default=None)
    parser.add_argument("--rerank-weight", type=float, default=None, help="default: the reranker's calibrated one")
    parser.add_argument("--candidates", default="10,20,30,50", help="for quality")
    parser.add_argument("--latency-candidates", default="10,20,50,100")
    parser.add_argument("--splits", default=",".join(SPLITS))
    parser.add_argument("--runtime", default="auto", help="the reranker's: auto (ONNX Runtime on CPU), torch, onnx")
    parser.add_argument("--skip-quality", action="store_true")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    candidates = [int(c) for c in args.candidates.split(",")]
    encoder = SentenceTransformerEncoder(device=args.device)
    reranker = CrossEncoderReranker(args.rerank_model, device=args.device, weight=args.rerank_weight,
                                    runtime=args.runtime)
    print(f"reranker {reranker.name} (weight {reranker.weight:g}) on {reranker.device} ({reranker.runtime}), "
          f"encoder {encoder.name}", flush=True)

    result = {"reranker": reranker.name, "weight": reranker.weight, "device": reranker.device,
              "runtime": reranker.runtime, "machine": platform.processor() or platform.machine()}
    if not args.skip_quality:
        result["quality"] = quality(encoder, reranker, candidates, [s for s in args.splits.split(",") if s])
    queries = [json.loads(line)["query"] for line in (ROOT / "corpora/demo_queries.jsonl").read_text().splitlines()]
    with tempfile.TemporaryDirectory() as tmp:
        index = Index.create(Path(tmp) / "demo", encoder=encoder)
        index.index_folder(ROOT / "corpora/demo")
        print(f"latency over {len(queries)} demo queries, {index.count()} documents:", flush=True)
        result["latency"] = latency(index, queries, reranker, [int(c) for c in args.latency_candidates.split(",")])
        passages = [h.text for h in index.search("我们周末去哪里玩", k=100, group=False, min_score=-1.0)]
        index.close()
    result["throughput_pairs_per_s"] = round(throughput(reranker, passages, "我们周末去哪里玩"), 1)
    print(f"throughput: {result['throughput_pairs_per_s']} pairs/s ({reranker.device}, {reranker.runtime}, "
          f"{len(passages)} demo passages)")
    out = Path(args.out or ROOT / f"benchmarks/results/rerank-{reranker.device}-{reranker.runtime}.json")
    out.write_text(json.dumps(result, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
