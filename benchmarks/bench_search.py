"""Search modes, metadata filters and "no confident match", measured.

Prints tables and writes JSON (benchmarks/results/search.json by default):
- modes: MRR@10 / Recall@1 / Recall@10 of dense, keyword and hybrid search on held-out pair files
  (each file's texts indexed as documents) and on exact-term queries over the demo corpus;
- filters: latency p50 and recall@10 (against exact search over the allowed set) of a filtered
  search at 50%, 10% and 1% selectivity, through hnswlib's filter callback and through exact search
  over the stored vectors (random vectors, --filter-docs documents);
- no match: with the calibrated threshold, the share of out-of-corpus queries answered "no
  confident match" and the share of in-corpus queries wrongly refused (recall only and reranked).

    python benchmarks/bench_search.py
    python benchmarks/bench_search.py --skip-modes --filter-docs 100000   # keeps the other figures
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

from textsearch import Encoder, Index, SentenceTransformerEncoder
from textsearch.storage import reader
from textsearch.training.evaluate import ranking_metrics
from textsearch.training.pairs import pairs_to_ir, read_pairs
from textsearch.testing import HashEncoder

ROOT = Path(__file__).resolve().parent.parent
SPLITS = ["corpora/heldout/zh.jsonl", "corpora/heldout/en.jsonl", "corpora/heldout/zh_en.jsonl",
          "corpora/heldout/overlap_controls.jsonl",
          "corpora/pairs/test_zh.jsonl", "corpora/pairs/test_en.jsonl", "corpora/pairs/test_zh_en.jsonl"]
MODES = ("dense", "keyword", "hybrid")


def _metrics(rankings: list[list[str]], relevant: list[set[str]]) -> dict[str, float]:
    m = ranking_metrics(rankings, relevant, (1, 10))
    return {k: round(v, 4) for k, v in m.items() if k != "n_queries"} | {"n_queries": m["n_queries"]}


def modes_on_pairs(encoder: Encoder, tmp: Path) -> dict[str, dict]:
    out = {}
    for split in SPLITS:
        ir = pairs_to_ir(read_pairs(ROOT / split).rows)
        with Index.create(tmp / split.replace("/", "_"), encoder=encoder) as index:
            index.add([{"id": str(i), "text": t} for i, t in enumerate(ir.corpus)])
            relevant = [{str(i) for i in r} for r in ir.relevant]
            out[split] = {mode: _metrics([[h.doc_id for h in index.search(q, k=10, mode=mode, min_score=-1.0)]
                                          for q in ir.queries], relevant) for mode in MODES}
        print(f"{split:<32} " + "  ".join(f"{m} {out[split][m]['mrr@10']:.3f}" for m in MODES), flush=True)
    return out


def _queries(path: Path) -> tuple[list[str], list[set[str]]]:
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [r["query"] for r in rows], [set(r.get("relevant", [])) for r in rows]


def modes_on_demo(index: Index) -> dict[str, dict]:
    out = {}
    for name in ("queries/exact_terms.jsonl", "queries/in_corpus.jsonl", "demo_queries.jsonl"):
        queries, relevant = _queries(ROOT / "corpora" / name)
        out[name] = {mode: _metrics([[h.doc_id for h in index.search(q, k=10, mode=mode, min_score=-1.0)]
                                     for q in queries], relevant) for mode in MODES}
        print(f"{name:<32} " + "  ".join(f"{m} {out[name][m]['mrr@10']:.3f}" for m in MODES), flush=True)
    return out


def no_match(index: Index, rerank: bool) -> dict[str, float]:
    outside, _ = _queries(ROOT / "corpora/queries/out_of_corpus.jsonl")
    inside = _queries(ROOT / "corpora/queries/in_corpus.jsonl")[0] + _queries(ROOT / "corpora/demo_queries.jsonl")[0]
    refused_out = sum(not index.search(q, k=10, rerank=rerank) for q in outside) / len(outside)
    refused_in = sum(not index.search(q, k=10, rerank=rerank) for q in inside) / len(inside)
    row = {"out_of_corpus_refused": round(refused_out, 4), "in_corpus_refused": round(refused_in, 4),
           "n_out": len(outside), "n_in": len(inside)}
    print(f"no match ({'rerank' if rerank else 'recall only'}): out-of-corpus answered 'no confident match' "
          f"{refused_out:.1%}, in-corpus wrongly refused {refused_in:.1%}", flush=True)
    return row


def clustered_encoder() -> HashEncoder:
    """Clustered unit vectors, fast, for the filter benchmark: 256 centres, noise 0.6 of a centre's
    length (uniform random vectors would be an unrealistic worst case for any ANN graph)."""
    return HashEncoder(name="hash-384", dimension=384, centres=256, noise=0.6 / 384**0.5)


def filters(n_docs: int, tmp: Path, n_queries: int = 50) -> dict[str, dict]:
    index = Index.create(tmp / "filters", encoder=clustered_encoder())
    index.add({"id": f"d{i}", "text": f"document {i}", "bucket": i % 100} for i in range(n_docs))
    queries = [f"query {i}" for i in range(n_queries)]
    out = {}
    for share in (50, 10, 1):
        flt = {"bucket": {"$lt": share}}
        truth = [[h.doc_id for h in search_with(index, q, flt, exact_limit=10**9)] for q in queries]
        for path, limit in (("exact", 10**9), ("hnsw filter", 0)):
            times, found = [], []
            for q in queries:
                t0 = time.perf_counter()
                found.append([h.doc_id for h in search_with(index, q, flt, exact_limit=limit)])
                times.append((time.perf_counter() - t0) * 1000)
            recall = statistics.mean(len(set(f) & set(t)) / len(t) for f, t in zip(found, truth))
            out[f"{share}% {path}"] = {"p50_ms": round(statistics.median(times), 2), "recall@10": round(recall, 4)}
            print(f"filter {share:>2}% ({n_docs * share // 100} docs) {path:<12} p50 "
                  f"{statistics.median(times):7.2f} ms  recall@10 {recall:.3f}", flush=True)
    index.close()
    return out


def search_with(index: Index, query: str, flt: dict, exact_limit: int) -> list:
    saved = reader.EXACT_LIMIT
    reader.EXACT_LIMIT = exact_limit
    try:
        return index.search(query, k=10, filter=flt, mode="dense", min_score=-1.0)
    finally:
        reader.EXACT_LIMIT = saved


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--filter-docs", type=int, default=50_000)
    parser.add_argument("--skip-modes", action="store_true")
    parser.add_argument("--skip-rerank", action="store_true")
    parser.add_argument("--skip-filters", action="store_true")
    parser.add_argument("--out", default=str(ROOT / "benchmarks/results/search.json"))
    args = parser.parse_args()
    out = Path(args.out)
    result: dict[str, dict] = json.loads(out.read_text(encoding="utf-8")) if out.is_file() else {}
    with tempfile.TemporaryDirectory() as tmp:
        if not args.skip_modes:
            encoder = SentenceTransformerEncoder()
            result["modes_pairs"] = modes_on_pairs(encoder, Path(tmp))
            with Index.create(Path(tmp) / "demo", encoder=encoder) as index:
                index.index_folder(ROOT / "corpora/demo")
                result["modes_demo"] = modes_on_demo(index)
                result["no_match"] = {"recall only": no_match(index, rerank=False)}
                if not args.skip_rerank:
                    result["no_match"]["rerank"] = no_match(index, rerank=True)
        if not args.skip_filters:
            result["filters"] = filters(args.filter_docs, Path(tmp))
    out.write_text(json.dumps(result, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
