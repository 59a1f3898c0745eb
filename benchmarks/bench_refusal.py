"""How well "no confident match" refuses questions from elsewhere and keeps real ones, per corpus.

    python benchmarks/bench_refusal.py                  # every corpus of refusal_sets.py
    python benchmarks/bench_refusal.py --sets demo five

For each corpus (``refusal_sets.py``: the demo, five files, the laptop set, 12,000 reviews, 2,000
news paragraphs, the Tatoeba restatements, 5,000 idioms) it builds an index with the default
model and settings, asks its in-corpus and out-of-corpus questions, and reports the share of each
that gets "no confident match", under the rule that ships (``confidence.threshold``) and under
the rules it is compared with. The raw margins go to the JSON as well, so a rule can be judged
again without rebuilding. Needs ``make data-packages``.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import refusal_sets  # noqa: E402

from textsearch import config  # noqa: E402
from textsearch.search import confidence  # noqa: E402
from textsearch.models.encoder import SentenceTransformerEncoder  # noqa: E402
from textsearch.index import Index  # noqa: E402

OUT = Path(__file__).resolve().parent / "results" / "refusal.json"


def _best_margins(index: Index, queries: list[str]) -> list[float]:
    hits = index.search_many(queries, k=1, include_low_confidence=True)
    return [round(h[0].margin, 4) if h else -1.0 for h in hits]


def measure(name: str, split: str, encoder: Any, tmp: Path) -> dict[str, Any]:
    spec = refusal_sets.SETS[name](split)
    started = time.perf_counter()
    with Index.create(tmp / f"{name}-{split}", encoder=encoder) as index:
        if "folder" in spec:
            index.index_folder(spec["folder"])
        else:
            index.add(spec["docs"])
        built = time.perf_counter() - started
        # what the index measured its cut from (Index._measure_cut), kept raw to judge other rules
        rows = index._background_rows()
        probes = rows[len(rows) // 2:]
        background = confidence.background_margins(probes, index.background, index.backend.nearest(probes))
        vectors, cosines = index.backend.neighbours(confidence.SAMPLE)
        neighbours = cosines - confidence.levels(vectors, index.background)
        documents, passages = index.backend.counts()
        cut = index.backend.get_cut()
        return {"documents": documents, "passages": passages, "build_seconds": round(built, 1), "cut": cut,
                "threshold": round(confidence.threshold(_min_margin(encoder), cut), 6),
                "in": _best_margins(index, spec["in"]), "out": _best_margins(index, spec["out"]),
                "in_queries": spec["in"], "out_queries": spec["out"],
                "background_margins": [round(float(m), 4) for m in background],
                "neighbour_margins": [round(float(m), 4) for m in neighbours]}


def _min_margin(encoder: Any) -> float:
    return float(getattr(encoder, "calibration", {}).get("min_margin", config.DEFAULT_MIN_MARGIN))


def _q(values: list[float], q: float) -> float:
    return float(np.quantile(np.asarray(values, dtype=np.float64), q)) if values else 0.0


RULES = {  # name → the threshold it gives an index, from what the index knows and the model's min_margin
    # the rule before: the 95th percentile of the background sentences' margins, kept between a
    # quarter of min_margin and min_margin
    "before: q95 of the background, within ¼–1 × min_margin":
        lambda d, mm: min(mm, max(mm / 4, _q(d["background_margins"], 0.95))),
    "q99 of the background, no ceiling":
        lambda d, mm: confidence.threshold(mm, confidence.cut(d["background_margins"], None)),
    # today's rule (confidence.index_cut), from the same raw margins the index measured
    "now: min(q99 background, q25 neighbours), ≥ 0.4 × q25 neighbours, ≥ 0.2 × min_margin":
        lambda d, mm: confidence.threshold(mm, confidence.cut(d["background_margins"], d["neighbour_margins"])),
}


def rule_table(result: dict[str, Any]) -> str:
    """A markdown table: a row per corpus, a column per rule; refused in-corpus / out-of-corpus."""
    rules = list(RULES)
    lines = ["| corpus | " + " | ".join(rules) + " |", "|---|" + "---|" * len(rules)]
    for name, d in result["corpora"].items():
        cells = []
        for rule in rules:
            t = RULES[rule](d, result["min_margin"])
            cells.append(f"{refused(d['in'], t):.1%} / {refused(d['out'], t):.1%} ({t:.3f})")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def refused(margins: list[float], threshold: float) -> float:
    return round(sum(m < threshold for m in margins) / len(margins), 4)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sets", nargs="+", default=list(refusal_sets.SETS), choices=list(refusal_sets.SETS))
    parser.add_argument("--split", choices=["a", "b"], default="a",
                        help="a: the corpora and questions a rule is chosen on; b: other draws and questions")
    parser.add_argument("--model", default=None, help="default: the default model")
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--rules", type=Path, help="only lay the rules side by side over this JSON")
    args = parser.parse_args()
    if args.rules:
        print(rule_table(json.loads(args.rules.read_text(encoding="utf-8"))))
        return
    encoder = SentenceTransformerEncoder(args.model)
    result: dict[str, Any] = {"command": "python benchmarks/bench_refusal.py " + " ".join(sys.argv[1:]),
                              "model": encoder.name, "min_margin": _min_margin(encoder), "corpora": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.sets:
            got = measure(name, args.split, encoder, Path(tmp))
            got["refused_in"], got["refused_out"] = refused(got["in"], got["threshold"]), refused(got["out"], got["threshold"])
            result["corpora"][name] = got
            print(f"{name:<8} {got['documents']:>6} docs  cut {got['cut']}  threshold {got['threshold']:.3f}  "
                  f"in refused {got['refused_in']:.1%}  out refused {got['refused_out']:.1%}", flush=True)
    args.out.write_text(json.dumps(result, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    print(rule_table(result))


if __name__ == "__main__":
    main()
