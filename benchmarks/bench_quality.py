"""Search quality of each model on every held-out split: the table that chooses the default model.

For each model: MRR@10 and Recall@1 on
- the pair splits built from real text (``corpora/heldout/real``, ``textsearch.sources``), the
  restatement controls and the older hand-written held-out files, each file's texts as the corpus;
- whole documents: the demo corpus indexed, with its natural questions (``corpora/demo_queries.jsonl``,
  ``corpora/queries/in_corpus.jsonl``);
- "no confident match": the share of out-of-corpus queries refused and of in-corpus queries wrongly
  refused on the demo index, with the model's default confidence rule.

Writes JSON (benchmarks/results/quality.json) and prints a markdown table (docs/quality.md holds it).

    python benchmarks/bench_quality.py                          # base, tuned and the default model
    python benchmarks/bench_quality.py --models multilingual-e5-small path/to/adapter
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from textsearch import Index, SentenceTransformerEncoder
from textsearch.evaluate import evaluate_index, evaluate_pairs, read_pairs
from textsearch.models import DEFAULT_MODEL

ROOT = Path(__file__).resolve().parent.parent
PAIR_SPLITS = {
    "restate_en": "corpora/heldout/real/restate_en.jsonl",
    "restate_zh": "corpora/heldout/real/restate_zh.jsonl",
    "overlap_controls": "corpora/heldout/overlap_controls.jsonl",
    "idiom_meaning": "corpora/heldout/real/idiom_meaning.jsonl",
    "xling_zh_en": "corpora/heldout/real/xling_zh_en.jsonl",
    "xling_en_zh": "corpora/heldout/real/xling_en_zh.jsonl",
    "keyword_zh": "corpora/heldout/real/keyword_zh.jsonl",
    "keyword_en_zh": "corpora/heldout/real/keyword_en_zh.jsonl",
    "handwritten_zh": "corpora/heldout/zh.jsonl",
    "handwritten_en": "corpora/heldout/en.jsonl",
    "handwritten_zh_en": "corpora/heldout/zh_en.jsonl",
}
DOC_SPLITS = {"demo_questions": "corpora/demo_queries.jsonl", "demo_in_corpus": "corpora/queries/in_corpus.jsonl"}
LONG_SPLITS = {"longdoc_zh": "corpora/heldout/real/longdoc_zh_queries.jsonl",
               "news_fact": "corpora/heldout/real/news_fact_queries.jsonl"}  # over corpora/heldout/real/docs
OUTSIDE = "corpora/queries/out_of_corpus.jsonl"


def _queries(path: Path) -> list[str]:
    return [json.loads(line)["query"] for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _index_splits(index: Index, splits: dict[str, str], out: dict[str, Any]) -> None:
    for name, split in splits.items():
        m = evaluate_index(index, ROOT / split)["results"]["all"]
        out[name] = {"mrr@10": round(m["mrr@10"], 4), "recall@1": round(m["recall@1"], 4),
                     "n_queries": m["n_queries"], "n_corpus": m["n_corpus"]}
        print(f"  {name:<20} MRR@10 {m['mrr@10']:.3f}  R@1 {m['recall@1']:.3f}", flush=True)


def measure(model: str, tmp: Path, runtime: str, passage_tokens: int, long_only: bool = False) -> dict[str, Any]:
    encoder = SentenceTransformerEncoder(model, runtime=runtime)
    out: dict[str, Any] = {}
    if long_only:
        _long_documents(encoder, model, tmp, passage_tokens, out)
        return out
    for name, split in PAIR_SPLITS.items():
        m = evaluate_pairs(encoder, read_pairs(ROOT / split))["all"]
        out[name] = {"mrr@10": round(m["mrr@10"], 4), "recall@1": round(m["recall@1"], 4),
                     "n_queries": m["n_queries"], "n_corpus": m["n_corpus"]}
        print(f"  {name:<20} MRR@10 {m['mrr@10']:.3f}  R@1 {m['recall@1']:.3f}", flush=True)
    with Index.create(tmp / model.replace("/", "_"), encoder=encoder) as index:
        index.index_folder(ROOT / "corpora" / "demo")
        _index_splits(index, DOC_SPLITS, out)
        inside, outside = _queries(ROOT / DOC_SPLITS["demo_in_corpus"]), _queries(ROOT / OUTSIDE)
        out["refusals"] = {
            "out_of_corpus_refused": round(sum(not index.search(q, k=10) for q in outside) / len(outside), 4),
            "in_corpus_refused": round(sum(not index.search(q, k=10) for q in inside) / len(inside), 4),
            "showcase_first": (index.search("可爱的宝宝", k=1, include_low_confidence=True) or [None])[0].doc_id,
        }
        print(f"  refusals             {out['refusals']}", flush=True)
    _long_documents(encoder, model, tmp, passage_tokens, out)
    return out


def _long_documents(encoder: SentenceTransformerEncoder, model: str, tmp: Path, passage_tokens: int,
                    out: dict[str, Any]) -> None:
    with Index.create(tmp / (model.replace("/", "_") + "-long"), encoder=encoder,
                      max_passage_tokens=passage_tokens) as index:
        index.index_folder(ROOT / "corpora" / "heldout" / "real" / "docs")
        _index_splits(index, LONG_SPLITS, out)
        out["long_passages"] = index.info().get("passages")
        print(f"  passages             {out['long_passages']}", flush=True)


def table(results: dict[str, dict[str, Any]]) -> str:
    models = list(results)
    lines = ["| split | " + " | ".join(f"{m} MRR@10 / R@1" for m in models) + " |",
             "|---|" + "---|" * len(models)]
    for split in [*PAIR_SPLITS, *DOC_SPLITS, *LONG_SPLITS]:
        cells = [f"{results[m][split]['mrr@10']:.3f} / {results[m][split]['recall@1']:.3f}" for m in models]
        lines.append(f"| {split} | " + " | ".join(cells) + " |")
    for key in ("out_of_corpus_refused", "in_corpus_refused"):
        lines.append(f"| demo: {key.replace('_', ' ')} | "
                     + " | ".join(f"{results[m]['refusals'][key]:.1%}" for m in models) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+",
                        default=list(dict.fromkeys(["multilingual-e5-small", "zh-en-tuned", DEFAULT_MODEL])))
    parser.add_argument("--runtime", default="auto")
    parser.add_argument("--long-only", action="store_true", help="only the long-document splits")
    parser.add_argument("--passage-tokens", type=int, default=256, help="max_passage_tokens of the long-document index")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "quality.json"))
    args = parser.parse_args(argv)
    results: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for model in args.models:
            print(model, flush=True)
            start = time.perf_counter()
            results[model] = measure(model, Path(tmp), args.runtime, args.passage_tokens, args.long_only)
            results[model]["seconds"] = round(time.perf_counter() - start, 1)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"models": results, "splits": {**PAIR_SPLITS, **DOC_SPLITS}},
                                         ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    if not args.long_only:
        print(table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
