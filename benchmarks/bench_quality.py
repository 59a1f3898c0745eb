"""Search quality of each model on every held-out split: the table that chooses the default model.

Runs ``textsearch.training.quality.report`` for each model (MRR@10 and Recall@1 on every split, refusal
rates of "no confident match") and prints the markdown table that docs/quality.md holds; writes
JSON (benchmarks/results/quality.json by default).

    python benchmarks/bench_quality.py                  # the base model and our two adapters
    python benchmarks/bench_quality.py --models multilingual-e5-small zh-en-tuned path/to/adapter
    python benchmarks/bench_quality.py --dev --models multilingual-e5-small path/to/adapter  # choosing a recipe
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from textsearch.models.registry import DEFAULT_MODEL, SHIPPED_ADAPTERS
from textsearch.training.quality import dev_report, report, table

ROOT = Path(__file__).resolve().parent.parent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=list(dict.fromkeys(["multilingual-e5-small", DEFAULT_MODEL, *SHIPPED_ADAPTERS])))
    parser.add_argument("--runtime", default="auto")
    parser.add_argument("--passage-tokens", type=int, default=None, help="max_passage_tokens of the long-document index")
    parser.add_argument("--dev", action="store_true", help="the dev splits only (corpora/dev/real): where recipes are chosen")
    parser.add_argument("--out", default=None, help="default: benchmarks/results/quality.json (--dev: quality-dev.json)")
    args = parser.parse_args(argv)
    out = args.out or str(ROOT / "benchmarks" / "results" / ("quality-dev.json" if args.dev else "quality.json"))
    reports = []
    for model in args.models:
        print(model, flush=True)
        start = time.perf_counter()
        log = lambda line: print("  " + line, flush=True)  # noqa: E731
        result = (dev_report(model, ROOT / "corpora", runtime=args.runtime, log=log) if args.dev else
                  report(model, ROOT / "corpora", runtime=args.runtime, passage_tokens=args.passage_tokens, log=log))
        reports.append({**result, "seconds": round(time.perf_counter() - start, 1)})
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    Path(out).write_text(json.dumps({"reports": reports, "passage_tokens": args.passage_tokens},
                                         ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    print(table(reports))
    return 0


if __name__ == "__main__":
    sys.exit(main())
