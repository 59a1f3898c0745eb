"""Does the second stage earn its cost on text we did not write? Recall + rerank on the held-out
splits of docs/quality.md, against recall alone, for one or more rerankers.

For each reranker: every candidate count and weight in --candidates / --weights is scored on the
dev splits (corpora/dev/real) and the one of best mean MRR@10 is chosen there; the held-out splits
are then reported at that choice (and at every other, in the JSON). The first stage is the
default bi-encoder. Each split is capped at --max-queries queries (the first ones in file order)
so that a CPU run stays within minutes: reranking costs one cross-encoder pass per candidate.

    python benchmarks/bench_rerank_quality.py --rerank-model zh-en-reranker --rerank-model models/rr
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import tempfile
import time
from pathlib import Path

from textsearch import Index
from textsearch.models.encoder import SentenceTransformerEncoder
from textsearch.search.rerank import CrossEncoderReranker, Memoized
from textsearch.training import quality
from textsearch.training.evaluate import CachedEncoder, evaluate_index, evaluate_retrieval
from textsearch.training.pairs import IRSet, pairs_to_ir, read_pairs
from textsearch.training.quality import DEMO_SPLITS, LONG_SPLITS, PAIR_SPLITS

ROOT = Path(__file__).resolve().parent.parent
CORPORA = ROOT / "corpora"
# the bi-encoder's dev splits but contain_zh: the blends in benchmarks/results/rerank_quality*.json were chosen on these
DEV_SPLITS = {name: f"dev/real/{name}.jsonl" for name in quality.DEV_SPLITS if name not in quality.CONTAIN_SPLITS}


def capped(path: Path, n: int) -> IRSet:
    ir = pairs_to_ir(read_pairs(path).rows)
    return IRSet(ir.queries[:n], ir.corpus, ir.relevant[:n])


def capped_queries(path: Path, n: int, folder: Path) -> Path:
    lines = [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()][:n]
    out = folder / path.name
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return out


def measure(encoder, split, reranker=None, candidates: int = 10) -> dict[str, float]:
    """The metrics of one split: a pair split (an IRSet) or an index with its queries file."""
    if isinstance(split, IRSet):
        return evaluate_retrieval(encoder, split, reranker=reranker, candidates=candidates)
    index, queries = split
    return evaluate_index(index, queries, reranker=reranker, candidates=candidates)["results"]["all"]


def score_splits(encoder, reranker, settings, splits) -> dict[str, dict[str, dict[str, float]]]:
    """MRR@10 / R@1 per split: ``recall`` and one entry per (candidates, weight) setting."""
    out: dict[str, dict[str, dict[str, float]]] = {}
    for name, split in splits.items():
        row = {"recall": measure(encoder, split)}
        for c, w in settings if reranker is not None else []:
            reranker.weight = w
            row[f"{c}@{w:g}"] = measure(encoder, split, reranker, c)
        out[name] = {k: {"mrr@10": round(v["mrr@10"], 4), "recall@1": round(v["recall@1"], 4),
                         "n_queries": v["n_queries"]} for k, v in row.items()}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rerank-model", action="append", default=[], help="reranker name or folder (repeatable)")
    ap.add_argument("--candidates", type=int, nargs="+", default=[10, 20])
    ap.add_argument("--weights", type=float, nargs="+", default=[0.15, 0.3, 0.5, 0.7, 1.0])
    ap.add_argument("--max-queries", type=int, default=200)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "rerank_quality.json"))
    args = ap.parse_args()

    encoder = CachedEncoder(SentenceTransformerEncoder())
    n = args.max_queries
    dev = {name: capped(CORPORA / split, n) for name, split in DEV_SPLITS.items()}
    held = {name: capped(CORPORA / split, n) for name, split in PAIR_SPLITS.items()}
    settings = list(itertools.product(sorted(args.candidates), sorted(args.weights)))
    result: dict = {"first_stage": encoder.name, "max_queries": n, "rerankers": {}}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        demo = Index.create(tmp / "demo", encoder=encoder.inner)
        demo.index_folder(CORPORA / "demo")
        long = Index.create(tmp / "long", encoder=encoder.inner)
        long.index_folder(CORPORA / "heldout" / "real" / "docs")
        indexes = {**{name: (demo, capped_queries(CORPORA / split, n, tmp)) for name, split in DEMO_SPLITS.items()},
                   **{name: (long, capped_queries(CORPORA / split, n, tmp)) for name, split in LONG_SPLITS.items()}}
        result["recall"] = {"dev": score_splits(encoder, None, [], dev),
                            "heldout": score_splits(encoder, None, [], {**held, **indexes})}
        for spec in args.rerank_model:
            reranker = Memoized(CrossEncoderReranker(spec))
            start = time.perf_counter()
            dev_scores = score_splits(encoder, reranker, settings, dev)
            mean = {f"{c}@{w:g}": statistics.mean(s[f"{c}@{w:g}"]["mrr@10"] for s in dev_scores.values())
                    for c, w in settings}
            chosen = max(mean, key=lambda key: (round(mean[key], 4), -int(key.split("@")[0])))
            held_scores = score_splits(encoder, reranker, settings, {**held, **indexes})
            result["rerankers"][spec] = {
                "dev": dev_scores, "dev_mean_mrr@10": {k: round(v, 4) for k, v in mean.items()},
                "recall_dev_mean_mrr@10": round(statistics.mean(s["recall"]["mrr@10"] for s in dev_scores.values()), 4),
                "chosen": chosen, "heldout": held_scores, "pairs_scored": len(reranker.seen),
                "seconds": round(time.perf_counter() - start, 1),
            }
            print(f"\n{spec}: chosen on dev {chosen} (dev mean MRR@10 {mean[chosen]:.4f}, recall alone "
                  f"{result['rerankers'][spec]['recall_dev_mean_mrr@10']:.4f})")
            print("| split | recall MRR@10 / R@1 | + rerank MRR@10 / R@1 | reranker alone |")
            print("|---|---|---|---|")
            alone = f"{chosen.split('@')[0]}@1"
            for split, row in held_scores.items():
                r, x, a = row["recall"], row[chosen], row.get(alone, row[chosen])
                print(f"| {split} | {r['mrr@10']:.3f} / {r['recall@1']:.3f} | {x['mrr@10']:.3f} / "
                      f"{x['recall@1']:.3f} | {a['mrr@10']:.3f} / {a['recall@1']:.3f} |")
        demo.close()
        long.close()
    Path(args.out).write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
