"""The held-out quality report: every split a model is judged on, in one table.

The splits (files under ``corpora/``, built by ``sources.py`` from text nobody here wrote, plus
our older hand-written sets, which are labelled as such):

- pair splits: each file's texts are the corpus (``evaluate.evaluate_pairs``);
- whole documents: the demo corpus indexed, with natural questions; long documents (notes of 80
  unrelated sentences, and news) indexed, with one fact to find in each;
- "no confident match": on the demo index, the share of out-of-corpus queries refused and of
  in-corpus queries wrongly refused; and the same on an index of Tatoeba sentences (in-corpus:
  restatements; out-of-corpus: 1998 news sentences).

``report(model)`` measures one model; ``table(reports)`` lays several side by side (markdown).
``textsearch eval --heldout`` and ``benchmarks/bench_quality.py`` print it.
"""

from __future__ import annotations

import json
import logging
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..config import PASSAGE_TOKENS
from ..models.encoder import Encoder, SentenceTransformerEncoder
from ..errors import InvalidArgumentError
from .evaluate import evaluate_index, evaluate_pairs, wrong_first
from ..index import Index
from .pairs import pairs_to_ir, read_pairs

logger = logging.getLogger(__name__)

PAIR_SPLITS = {
    "restate_en": "heldout/real/restate_en.jsonl",
    "restate_zh": "heldout/real/restate_zh.jsonl",
    "overlap_controls": "heldout/overlap_controls.jsonl",
    "idiom_meaning": "heldout/real/idiom_meaning.jsonl",
    "xling_zh_en": "heldout/real/xling_zh_en.jsonl",
    "xling_en_zh": "heldout/real/xling_en_zh.jsonl",
    "keyword_zh": "heldout/real/keyword_zh.jsonl",
    "keyword_en_zh": "heldout/real/keyword_en_zh.jsonl",
    "wordshare_zh": "heldout/real/wordshare_zh.jsonl",
    "wordshare_en": "heldout/real/wordshare_en.jsonl",
    "control_zh": "heldout/real/control_zh.jsonl",
    "control_en": "heldout/real/control_en.jsonl",
    "contain_zh": "heldout/real/contain_zh.jsonl",
    "handwritten_zh": "heldout/zh.jsonl",
    "handwritten_en": "heldout/en.jsonl",
    "handwritten_zh_en": "heldout/zh_en.jsonl",
}
WORDSHARE_SPLITS = ("wordshare_zh", "wordshare_en")  # also: how often the near miss comes first
CONTAIN_SPLITS = ("contain_zh",)  # the same, where the near miss holds the query whole
CONTROL_SPLITS = ("control_zh", "control_en")  # also: how often the other meaning that shares few words does
WRONG_FIRST = {**dict.fromkeys(WORDSHARE_SPLITS + CONTAIN_SPLITS, "the word-sharing wrong answer first"),
               **dict.fromkeys(CONTROL_SPLITS, "the wrong answer that shares few words first")}
DEV_SPLITS = ("idiom_meaning", "keyword_zh", "restate_en", "restate_zh", "xling_en_zh", "xling_zh_en",
              *WORDSHARE_SPLITS, *CONTROL_SPLITS, *CONTAIN_SPLITS)  # corpora/dev/real/NAME.jsonl: where recipes are chosen
DEMO_SPLITS = {"demo_questions": "demo_queries.jsonl", "demo_in_corpus": "queries/in_corpus.jsonl"}
LONG_SPLITS = {"longdoc_zh": "heldout/real/longdoc_zh_queries.jsonl",  # over heldout/real/docs
               "news_fact": "heldout/real/news_fact_queries.jsonl"}
DEMO_OUTSIDE = "queries/out_of_corpus.jsonl"
NEWS_OUTSIDE = "heldout/real/out_of_corpus_news.jsonl"
SHOWCASE = ("可爱的宝宝", "family/family.jsonl#fam-001")
Log = Callable[[str], None]


def _queries(path: Path) -> list[str]:
    return [json.loads(line)["query"] for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _row(metrics: dict[str, Any]) -> dict[str, Any]:
    return {"mrr@10": round(metrics["mrr@10"], 4), "recall@1": round(metrics["recall@1"], 4),
            "n_queries": metrics["n_queries"], "n_corpus": metrics["n_corpus"]}


def _refused(index: Index, queries: list[str]) -> float:
    return round(sum(not hits for hits in index.search_many(queries, k=10)) / len(queries), 4)


def _pair_row(encoder: Encoder, name: str, path: Path, log: Log) -> dict[str, Any]:
    rows = read_pairs(path).rows
    row = _row(evaluate_pairs(encoder, rows)["all"])
    if name in WRONG_FIRST:
        row["wrong_first"] = round(wrong_first(encoder, rows), 4)
    log(f"{name:<20} MRR@10 {row['mrr@10']:.3f}  R@1 {row['recall@1']:.3f}"
        + (f"  wrong first {row['wrong_first']:.1%}" if "wrong_first" in row else ""))
    return row


def dev_report(model: str | Encoder | None = None, corpora: str | Path = "corpora", *, runtime: str = "auto",
               log: Log = logger.info) -> dict[str, Any]:
    """The dev splits (``DEV_SPLITS``) for one model: what a recipe is chosen on."""
    encoder = model if isinstance(model, Encoder) else SentenceTransformerEncoder(model, runtime=runtime)
    out: dict[str, Any] = {"model": encoder.name}
    for name in DEV_SPLITS:
        out[name] = _pair_row(encoder, name, Path(corpora) / "dev" / "real" / f"{name}.jsonl", log)
    return out


def report(model: str | Encoder | None = None, corpora: str | Path = "corpora", *, runtime: str = "auto",
           passage_tokens: int | None = None, log: Log = logger.info) -> dict[str, Any]:
    """Every split for one model (a name, a folder or an Encoder; default: the default model)."""
    corpora = Path(corpora)
    if not (corpora / PAIR_SPLITS["restate_en"]).is_file():
        raise InvalidArgumentError(f"the held-out sets are not under {corpora}/ — run from a textsearch "
                                   "checkout (or `make heldout` to build them)")
    encoder = model if isinstance(model, Encoder) else SentenceTransformerEncoder(model, runtime=runtime)
    out: dict[str, Any] = {"model": encoder.name}
    for name, split in PAIR_SPLITS.items():
        out[name] = _pair_row(encoder, name, corpora / split, log)
    with tempfile.TemporaryDirectory() as tmp:
        with Index.create(Path(tmp) / "demo", encoder=encoder) as index:
            index.index_folder(corpora / "demo")
            for name, split in DEMO_SPLITS.items():
                out[name] = _row(evaluate_index(index, corpora / split)["results"]["all"])
                log(f"{name:<20} MRR@10 {out[name]['mrr@10']:.3f}  R@1 {out[name]['recall@1']:.3f}")
            hits = index.search(SHOWCASE[0], k=5, include_low_confidence=True)
            out["demo_refusals"] = {
                "out_of_corpus": _refused(index, _queries(corpora / DEMO_OUTSIDE)),
                "in_corpus": _refused(index, _queries(corpora / DEMO_SPLITS["demo_in_corpus"])),
                "showcase_rank": next((i + 1 for i, h in enumerate(hits) if h.doc_id == SHOWCASE[1]), None),
            }
            log(f"demo refusals        {out['demo_refusals']}")
        with Index.create(Path(tmp) / "long", encoder=encoder,
                          max_passage_tokens=passage_tokens or PASSAGE_TOKENS) as index:
            index.index_folder(corpora / "heldout" / "real" / "docs")
            for name, split in LONG_SPLITS.items():
                out[name] = _row(evaluate_index(index, corpora / split)["results"]["all"])
                log(f"{name:<20} MRR@10 {out[name]['mrr@10']:.3f}  R@1 {out[name]['recall@1']:.3f}")
            out["long_passages"] = index.count(), index.store.passage_count()
        inside = [pairs_to_ir(read_pairs(corpora / PAIR_SPLITS[n]).rows) for n in ("restate_zh", "restate_en")]
        with Index.create(Path(tmp) / "tatoeba", encoder=encoder) as index:
            texts = dict.fromkeys(t for ir in inside for t in ir.corpus)
            index.add({"id": str(i), "text": t} for i, t in enumerate(texts))
            out["tatoeba_refusals"] = {
                "out_of_corpus": _refused(index, _queries(corpora / NEWS_OUTSIDE)),
                "in_corpus": _refused(index, [q for ir in inside for q in ir.queries]),
            }
            log(f"tatoeba refusals     {out['tatoeba_refusals']}")
    return out


def table(reports: list[dict[str, Any]]) -> str:
    """The reports side by side (``report``s, or ``dev_report``s): MRR@10 / Recall@1 per split, how
    often the word-sharing wrong answer (and, in the controls, the one sharing few words) comes
    first, then the refusal rates."""
    held_out = any("demo_refusals" in r for r in reports)
    head = "| split | " + " | ".join(f"{r['model']} MRR@10 / R@1" for r in reports) + " |"
    lines = [head, "|---|" + "---|" * len(reports)]
    for split in [*PAIR_SPLITS, *DEMO_SPLITS, *LONG_SPLITS] if held_out else DEV_SPLITS:
        cells = [f"{r[split]['mrr@10']:.3f} / {r[split]['recall@1']:.3f}" if split in r else "—" for r in reports]
        lines.append(f"| {split} | " + " | ".join(cells) + " |")
    for split, what in WRONG_FIRST.items():
        cells = [f"{r[split]['wrong_first']:.1%}" if "wrong_first" in r.get(split, {}) else "—" for r in reports]
        lines.append(f"| {split}: {what} | " + " | ".join(cells) + " |")
    for where in ("demo", "tatoeba") if held_out else ():
        for kind in ("out_of_corpus", "in_corpus"):
            cells = [f"{r[f'{where}_refusals'][kind]:.1%}" if f"{where}_refusals" in r else "—" for r in reports]
            lines.append(f"| {where}: {kind.replace('_', '-')} queries refused | " + " | ".join(cells) + " |")
    return "\n".join(lines)
