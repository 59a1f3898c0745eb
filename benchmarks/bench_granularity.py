"""Which granularity finds one fact inside a long document, and what each one costs.

Today's 64-token passages, smaller passages, single sentences (with or without short ones joined
to the next), sentence windows, "small-to-big" (sentence vectors, the enclosing passage shown) and
passages + sentences together, all with the bundled default model, on:

- the held-out long-document splits of docs/quality.md, ``longdoc_zh`` and ``news_fact`` (their
  120 documents form one corpus, as ``quality.report`` indexes them), and the demo splits
  ``demo_questions`` and ``demo_in_corpus`` (whole-document questions over ``corpora/demo``);
- dev twins of the two long-document splits, built here by the same recipe
  (``sources.longdoc_sets``) from Tatoeba's dev clusters and the last 1,500 news paragraphs:
  settings are chosen there, the held-out splits check the choice;
- the 27,000-character note of ``tests/training/test_quality.py`` with one fact in its middle.

Beyond the four granularities asked about (passages, sentences, windows, small-to-big) and their
combination: 32-token passages; short sentences joined with the next; and sentence units only in
documents longer than one passage (the others keep their one vector).

Search is exact: each query's cosine to every unit (numpy), a document scored by its best unit or
a combination of its best units, as ``Index.search`` groups passages. Beside MRR@10 and Recall@1/10
of the right document: whether the text shown for it holds the sentence the query looks for, how
many units a query reads before 10 documents appear, "no confident match" on each granularity
(``confidence.index_cut`` measured over its units), vectors, index size and embedding time.
Unless ``--no-check-index``, real indexes of today's passages are built from the same vectors and
evaluated with ``evaluate_index`` (as ``quality.report`` does): they must agree with the exact numbers.

Every unit set is embedded in one ``encode_passages`` call, timed; vectors and seconds are kept in
``--cache`` (default: a folder in the temp dir) and read back on a rerun (the JSON says when each
was measured); ``--fresh`` embeds everything again. Run it alone on the machine:

    flock /tmp/textsearch-cpu.lock .venv/bin/python benchmarks/bench_granularity.py --fresh
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import random
import re
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from textsearch import Index
from textsearch.config import OVERLAP_TOKENS, PASSAGE_TOKENS
from textsearch.documents.corpus import Corpus
from textsearch.documents.split import sentence_spans, split_many, split_passages
from textsearch.models.encoder import SentenceTransformerEncoder
from textsearch.search import confidence
from textsearch.training import sources
from textsearch.training.evaluate import evaluate_index, ranking_metrics
from textsearch.training.quality import DEMO_OUTSIDE, DEMO_SPLITS, LONG_SPLITS

ROOT = Path(__file__).resolve().parent.parent
CORPORA = ROOT / "corpora"
K = 10
DIM_BYTES = 384 * 2  # one float16 vector of the bundled model
FIRST_FETCH = max(4 * K, K + 20)  # what storage/reader.py asks the graph for before grouping
FACT = "我们村子东头那棵三百年的老银杏树，去年秋天被一场雷暴劈成了两半。"
FACT_QUERIES = ("老银杏树被雷劈成两半", "村口的古树被闪电击中裂开了", "the old ginkgo tree was split by lightning",
                "lightning split the ancient tree at the village entrance")  # the last one written here
COMMAND = "flock /tmp/textsearch-cpu.lock .venv/bin/python benchmarks/bench_granularity.py --fresh"
Span = tuple[int, int]
Count = Callable[[Sequence[str]], list[int]]


# --- documents and queries ----------------------------------------------------------------------
@dataclass
class Docs:
    ids: list[str]
    texts: list[str]


@dataclass
class Split:
    docs: str  # which corpus it searches
    queries: list[str]
    relevant: list[set[str]]
    facts: list[tuple[str, Span] | None]  # (document id, span of the sentence to find)


def read_folder(folder: Path) -> Docs:
    docs = list(Corpus(folder).documents())
    return Docs([d.id for d in docs], [d.text for d in docs])


def read_split(path: Path, docs: str) -> Split:
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return Split(docs, [r["query"] for r in rows], [set(map(str, r.get("relevant", []))) for r in rows],
                 [None] * len(rows))


def locate(text: str, sentence: str) -> Span | None:
    """Where ``sentence`` is in ``text``, newlines in the text skipped (the news queries were cut
    from paragraphs joined without them)."""
    kept = [i for i, ch in enumerate(text) if ch != "\n"]
    at = "".join(text[i] for i in kept).find(sentence)
    return None if at < 0 else (kept[at], kept[at + len(sentence) - 1] + 1)


def tatoeba_groups(split: str) -> dict[str, dict[str, set[str]]]:
    """Cluster key → its Chinese and English sentences, for one Tatoeba split (as sources does)."""
    cluster = sources.clusters(sources.tatoeba())
    groups: dict[str, dict[str, set[str]]] = defaultdict(lambda: {"zh": set(), "en": set()})
    for zid, zh, _, en in sources.tatoeba_split(split):
        groups[cluster[f"zh{zid}"]]["zh"].add(zh)
        groups[cluster[f"zh{zid}"]]["en"].add(en)
    return groups


def add_facts(split: Split, docs: Docs, longdoc: bool) -> None:
    """The sentence each held-out query looks for: a news query is that sentence itself; a
    ``longdoc_zh`` query restates the note's sentence of the same Tatoeba cluster."""
    text_of = dict(zip(docs.ids, docs.texts))
    written: dict[str, list[str]] = defaultdict(list)
    if longdoc:
        for group in tatoeba_groups("heldout").values():
            for said in group["zh"] | group["en"]:
                written[said].append(min(group["zh"]))
    for i, (query, relevant) in enumerate(zip(split.queries, split.relevant)):
        doc = next(iter(relevant))
        spans = [locate(text_of[doc], s) for s in (written[query] if longdoc else [query])]
        split.facts[i] = next(((doc, s) for s in spans if s), None)


def dev_sets(seed: int = 0, n_docs: int = 60, n_queries: int = 150) -> tuple[Docs, dict[str, Split]]:
    """``sources.longdoc_sets`` on dev data: notes of 80 sentences of Tatoeba's dev clusters, and
    25-paragraph stretches of the last 1,500 news paragraphs (the held-out ones are the first)."""
    rng = random.Random(seed)
    groups = tatoeba_groups("dev")
    keys = sorted(groups)
    rng.shuffle(keys)
    docs, notes, news = Docs([], []), [], []
    for d in range(n_docs):
        chosen = keys[d * 80 : (d + 1) * 80]
        written = [min(groups[k]["zh"]) for k in chosen]
        ends = np.cumsum([len(s) for s in written]).tolist()
        where = {k: (end - len(s), end) for k, s, end in zip(chosen, written, ends)}
        docs.ids.append(f"dev-note-{d:03d}")
        docs.texts.append("".join(written))
        for k in rng.sample(chosen, n_queries // n_docs + 1):
            others = sorted(groups[k]["zh"])[1:]
            query = others[0] if others else min(groups[k]["en"])
            notes.append((query, docs.ids[-1], where[k]))
    paragraphs = sources.news_paragraphs()[-25 * n_docs :]
    for d in range(n_docs):
        stretch = paragraphs[d * 25 : (d + 1) * 25]
        docs.ids.append(f"dev-news-{d:03d}")
        docs.texts.append("\n".join(stretch))
        middle = "".join(stretch[8:17])
        found = [s for s in re.findall(r"[^。！？]+[。！？]", middle) if 15 <= len(s) <= 60]
        for s in rng.sample(found, min(len(found), n_queries // n_docs + 1)):
            news.append((s, docs.ids[-1], locate(docs.texts[-1], s)))
    splits = {name: Split("dev", [q for q, _, _ in rows], [{d} for _, d, _ in rows],
                          [(d, s) if s else None for _, d, s in rows])
              for name, rows in (("longdoc_dev", rng.sample(notes, n_queries)),
                                 ("news_dev", rng.sample(news, min(n_queries, len(news)))))}
    return docs, splits


# --- units: the spans of a document that get a vector ---------------------------------------------
def passages(texts: Sequence[str], count: Count, tokens: int, overlap: int) -> list[list[Span]]:
    return [[(p.start, p.end) for p in ps] for ps in split_many(texts, count, tokens, overlap)]


def sentences(texts: Sequence[str], count: Count, min_tokens: int = 0) -> list[list[Span]]:
    """``sentence_spans`` of each text, a sentence over PASSAGE_TOKENS cut as passages cut it; with
    ``min_tokens``, a shorter sentence is joined with the next (the last with the one before)."""
    spans = [sentence_spans(t) for t in texts]
    counts = iter(count([t[s:e] for t, ss in zip(texts, spans) for s, e in ss]))
    out = []
    for text, ss in zip(texts, spans):
        units: list[tuple[int, int, int]] = []
        for s, e in ss:
            n = next(counts)
            if n <= PASSAGE_TOKENS:
                units.append((s, e, n))
                continue
            for p in split_passages(text[s:e], count, PASSAGE_TOKENS, 0):
                units.append((s + p.start, s + p.end, PASSAGE_TOKENS))
        out.append([(s, e) for s, e, _ in (joined(units, min_tokens) if min_tokens else units)])
    return out


def joined(units: list[tuple[int, int, int]], min_tokens: int) -> list[tuple[int, int, int]]:
    out: list[tuple[int, int, int]] = []
    current: tuple[int, int, int] | None = None
    for s, e, n in units:
        current = (current[0], e, current[2] + n) if current else (s, e, n)
        if current[2] >= min_tokens:
            out.append(current)
            current = None
    if current and out:
        out[-1] = (out[-1][0], current[1], out[-1][2] + current[2])
    elif current:
        out.append(current)
    return out


def windows(sentence_units: list[list[Span]], width: int) -> list[list[Span]]:
    """Each sentence with ``width`` neighbours on each side (fewer at the ends)."""
    return [[(ss[max(0, i - width)][0], ss[min(len(ss) - 1, i + width)][1]) for i in range(len(ss))]
            for ss in sentence_units]


UNIT_SETS: dict[str, tuple[str, Callable[[Sequence[str], Count, dict[str, list[list[Span]]]], list[list[Span]]]]] = {
    "P64": ("64-token passages, 16 shared with the next (today)",
            lambda t, c, _: passages(t, c, PASSAGE_TOKENS, OVERLAP_TOKENS)),
    "P32": ("32-token passages, 8 shared", lambda t, c, _: passages(t, c, 32, 8)),
    "S": ("sentences (sentence_spans; one over 64 tokens cut as passages are)", lambda t, c, _: sentences(t, c)),
    "S8": ("sentences, one under 8 tokens joined with the next", lambda t, c, _: sentences(t, c, 8)),
    "S16": ("sentences, one under 16 tokens joined with the next", lambda t, c, _: sentences(t, c, 16)),
    "W1": ("windows: each sentence with 1 neighbour on each side", lambda t, c, got: windows(got["S"], 1)),
    "W2": ("windows: each sentence with 2 neighbours on each side", lambda t, c, got: windows(got["S"], 2)),
    "A": ("a document of one passage: that passage; a longer one: its sentences",
          lambda t, c, got: [p if len(p) == 1 else ss for p, ss in zip(got["P64"], got["S"])]),
    "PA": ("a document of one passage: that passage; a longer one: its passages and its sentences",
           lambda t, c, got: [p if len(p) == 1 else sorted(p + ss) for p, ss in zip(got["P64"], got["S"])]),
}


@dataclass
class Method:
    label: str
    ranks_by: tuple[str, ...]  # unit sets whose best unit per document scores it
    combine: str = "max"  # "max" of the best units, or their "sum"
    shown: str | None = None  # the unit set whose unit holding the best one is shown (None: the best unit)


METHODS = {
    "passages": Method("(a) 64-token passages, overlap 16 (today)", ("P64",)),
    "sentences": Method("(b) sentences", ("S",)),
    "windows_1": Method("(c) sentence windows ±1", ("W1",)),
    "windows_2": Method("(c) sentence windows ±2", ("W2",)),
    "small_to_big": Method("(d) small-to-big: sentences found, the 64-token passage shown", ("S",), shown="P64"),
    "max_both": Method("(e) passages + sentences, best of both", ("P64", "S"), shown="P64"),
    "sum_both": Method("(e) passages + sentences, best passage + best sentence", ("P64", "S"), "sum", "P64"),
    "passages_32": Method("32-token passages, overlap 8", ("P32",)),
    "sentences_min8": Method("sentences, under 8 tokens joined with the next", ("S8",)),
    "sentences_min16": Method("sentences, under 16 tokens joined with the next", ("S16",)),
    "sentences_if_long": Method("sentences in documents over one passage, else the passage", ("A",), shown="P64"),
    "both_if_long": Method("passages + sentences in documents over one passage, best of both", ("PA",),
                           shown="P64"),
}


# --- embedding ----------------------------------------------------------------------------------
class Embedder:
    """The default model; each unit set embedded in one timed call, cached on disk with its time."""

    def __init__(self, cache: Path | None) -> None:
        self.encoder = SentenceTransformerEncoder()
        self.cache = cache
        self.memo: dict[str, np.ndarray] = {}  # every passage text embedded so far
        probe = [round(x, 5) for x in self.encoder.probe()]
        self.key = json.dumps([self.encoder.name, self.encoder.runtime, probe])

    def timed(self, texts: list[str]) -> tuple[np.ndarray, dict[str, Any]]:
        """The vectors of ``texts`` and what embedding them took (read back from the cache if kept)."""
        digest = hashlib.sha256(json.dumps([self.key, texts], ensure_ascii=False).encode()).hexdigest()[:24]
        path = self.cache / f"{digest}.npz" if self.cache else None
        if path and path.is_file():
            with np.load(path) as kept:
                vectors, cost = kept["vectors"], json.loads(str(kept["cost"]))
            cost["embedded_this_run"] = False
        else:
            start = time.perf_counter()
            vectors = self.encoder.encode_passages(texts)
            cost = {"seconds": round(time.perf_counter() - start, 2),
                    "tokens": sum(self.encoder.count_tokens(texts)),
                    "measured_at": time.strftime("%Y-%m-%d %H:%M:%S"),
                    "load_average_1min_after": round(os.getloadavg()[0], 2)}  # others' work slows it
            if path:
                path.parent.mkdir(parents=True, exist_ok=True)
                np.savez(path, vectors=vectors, cost=json.dumps(cost))
            cost["embedded_this_run"] = True
        self.memo.update(zip(texts, vectors))
        return vectors, cost

    def passages(self, texts: list[str]) -> np.ndarray:
        """Untimed: from what was embedded already, the rest embedded now."""
        todo = [t for t in dict.fromkeys(texts) if t not in self.memo]
        if todo:
            self.memo.update(zip(todo, self.encoder.encode_passages(todo)))
        return np.stack([self.memo[t] for t in texts])


class Served:
    """The default model with the vectors already made served from memory: an ``Index`` built
    with it stores exactly the vectors the exact search scored."""

    def __init__(self, embedder: Embedder, queries: dict[str, np.ndarray]) -> None:
        self.embedder, self.queries = embedder, queries

    def __getattr__(self, name: str) -> Any:
        return getattr(self.embedder.encoder, name)

    def encode_passages(self, texts: Sequence[str], show_progress: bool = False) -> np.ndarray:
        return self.embedder.passages(list(texts))

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        todo = [t for t in texts if t not in self.queries]
        if todo:
            self.queries.update(zip(todo, self.embedder.encoder.encode_queries(todo)))
        return np.stack([self.queries[t] for t in texts])


# --- scoring ------------------------------------------------------------------------------------
@dataclass
class Units:
    spans: list[list[Span]]  # per document
    vectors: np.ndarray  # one row per unit, documents in order
    starts: np.ndarray  # each document's first row
    owner: np.ndarray  # each row's document
    texts: list[str]
    cost: dict[str, Any]


def build_units(docs: Docs, spans: list[list[Span]], embedder: Embedder) -> Units:
    if any(not s for s in spans):
        raise SystemExit("a document without units")
    texts = [t[s:e] for t, ss in zip(docs.texts, spans) for s, e in ss]
    vectors, cost = embedder.timed(texts)
    sizes = np.array([len(s) for s in spans])
    return Units(spans, vectors, np.concatenate([[0], np.cumsum(sizes)[:-1]]),
                 np.repeat(np.arange(len(spans)), sizes), texts, cost)


def best_units(cosines: np.ndarray, units: Units) -> tuple[np.ndarray, np.ndarray]:
    """Per query and document: the best unit's cosine, and which unit (its row)."""
    best = np.maximum.reduceat(cosines, units.starts, axis=1)
    which = np.empty(best.shape, dtype=np.int64)
    ends = [*units.starts[1:], cosines.shape[1]]
    for d, (a, b) in enumerate(zip(units.starts, ends)):
        which[:, d] = a + cosines[:, a:b].argmax(axis=1)
    return best, which


def enclosing(span: Span, spans: list[Span]) -> Span:
    """The first of ``spans`` that holds ``span``, else the one that overlaps it most."""
    return max(spans, key=lambda p: (p[0] <= span[0] and span[1] <= p[1], min(p[1], span[1]) - max(p[0], span[0])))


def holds(shown: Span, fact: Span) -> bool:
    """The shown text holds the fact: it covers at least half of the fact's characters."""
    return 2 * (min(shown[1], fact[1]) - max(shown[0], fact[0])) >= fact[1] - fact[0]


def depth_for_k(cosines: np.ndarray, owner: np.ndarray, k: int = K) -> list[int]:
    """Per query: how many best units must be read before k distinct documents appear."""
    out = []
    for row in np.argsort(-cosines, axis=1, kind="stable"):
        seen: set[int] = set()
        for i, unit in enumerate(row):
            seen.add(int(owner[unit]))
            if len(seen) >= k:
                break
        out.append(i + 1)
    return out


def evaluate(method: Method, split: Split, docs: Docs, units: dict[str, Units],
             queries: np.ndarray) -> dict[str, Any]:
    """Document-level metrics of one method on one split, where the fact is shown, query cost."""
    k = min(K, len(docs.ids))
    bests, depths = [], {}
    for name in method.ranks_by:
        cosines = queries @ units[name].vectors.T
        bests.append(best_units(cosines, units[name]))
        depths[name] = depth_for_k(cosines, units[name].owner, k)
    scores = np.maximum.reduce([b for b, _ in bests]) if method.combine == "max" else sum(b for b, _ in bests)
    rankings = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    ids = [[docs.ids[d] for d in row] for row in rankings]
    out: dict[str, Any] = {k2: round(v, 4) for k2, v in ranking_metrics(ids, split.relevant, (1, 5, 10)).items()}
    shown = [[shown_span(method, bests, units, q, d) for d in row] for q, row in enumerate(rankings)]
    out["shown_chars_top1"] = round(float(np.mean([s[0][1] - s[0][0] for s in shown])), 1)
    if all(split.facts):
        out.update(fact_metrics(split, ids, shown))
    if method.combine == "max" and len(depths) > 1:  # one graph holding both: one ranked list
        vectors, owner = stacked(method, units)
        depths = {"+".join(depths): depth_for_k(queries @ vectors.T, owner, k)}
    out["units_read_for_top10"] = summary(np.sum([np.array(d) for d in depths.values()], axis=0).tolist())
    return out


def shown_span(method: Method, bests: list[tuple[np.ndarray, np.ndarray]], units: dict[str, Units],
               q: int, d: int) -> Span:
    """The text a user sees for document ``d``: its best unit (of the set that scored best), or
    the unit of ``method.shown`` that holds the best sentence."""
    pick = int(np.argmax([b[q, d] for b, _ in bests])) if method.combine == "max" else len(bests) - 1
    name = method.ranks_by[pick]
    row = int(bests[pick][1][q, d]) - int(units[name].starts[d])
    span = units[name].spans[d][row]
    if method.shown and method.shown != name:
        span = enclosing(span, units[method.shown].spans[d])
    return span


def fact_metrics(split: Split, ids: list[list[str]], shown: list[list[Span]]) -> dict[str, float]:
    """fact_shown@1: the first hit is the right document and its shown text holds the fact;
    fact_shown@10: the right document is in the first 10 and its shown text holds the fact."""
    at1 = at10 = 0
    for fact, row, spans in zip(split.facts, ids, shown):
        assert fact is not None
        doc, span = fact
        if doc in row and holds(spans[row.index(doc)], span):
            at10 += 1
            at1 += row[0] == doc
    n = len(split.facts)
    return {"fact_shown@1": round(at1 / n, 4), "fact_shown@10": round(at10 / n, 4)}


def summary(values: Sequence[int]) -> dict[str, float]:
    a = np.asarray(values)
    return {"mean": round(float(a.mean()), 1), "p95": float(np.percentile(a, 95)), "max": int(a.max()),
            "over_first_fetch": round(float((a > FIRST_FETCH).mean()), 4)}


# --- "no confident match" -----------------------------------------------------------------------
def threshold(method: Method, units: dict[str, Units], background: np.ndarray, min_margin: float) -> float:
    """The margin a confident hit needs on an index of the method's units: ``confidence.index_cut``
    from the background sentences' best cosines and from 200 units spread over the index, each
    with its nearest unit of another document (exact here; the index searches 8 neighbours)."""
    vectors, owner = stacked(method, units)
    best = (background[250:] @ vectors.T).max(axis=1)
    pick = np.linspace(0, len(vectors) - 1, min(confidence.SAMPLE, len(vectors))).astype(np.int64)
    near = vectors[pick] @ vectors.T
    near[owner[pick][:, None] == owner[None, :]] = -np.inf
    nearest = np.where(np.isfinite(near.max(axis=1)), near.max(axis=1), -1.0)
    cut = confidence.index_cut(background[250:], background[:250], best, (vectors[pick], nearest))
    return confidence.threshold(min_margin, cut)


def stacked(method: Method, units: dict[str, Units]) -> tuple[np.ndarray, np.ndarray]:
    names = list(dict.fromkeys(method.ranks_by))
    return (np.vstack([units[n].vectors for n in names]), np.concatenate([units[n].owner for n in names]))


def refused(method: Method, units: dict[str, Units], queries: np.ndarray, background: np.ndarray,
            needed: float) -> float:
    """Share of queries whose best unit anywhere has a margin under ``needed`` (with a best-of
    ranking, the first hit's; for the sum, the same rule on the best single unit)."""
    vectors, _ = stacked(method, units)
    margins = (queries @ vectors.T).max(axis=1) - confidence.levels(queries, background[:250])
    return round(float((margins < needed).mean()), 4)


# --- costs --------------------------------------------------------------------------------------
def costs(method: Method, docs: Docs, units: dict[str, Units]) -> dict[str, Any]:
    """Vectors, the index size they imply (float16 vectors + the UTF-8 text of each distinct span
    stored) and the embedding time of the unit sets the method needs."""
    stored = list(dict.fromkeys([*method.ranks_by, *([method.shown] if method.shown else [])]))
    vectors = sum(len(units[n].texts) for n in method.ranks_by)
    spans = [{span for n in stored for span in units[n].spans[d]} for d in range(len(docs.ids))]
    text_bytes = sum(len(text[a:b].encode("utf-8")) for text, kept in zip(docs.texts, spans) for a, b in kept)
    chars = sum(len(t) for t in docs.texts)
    return {"vectors": vectors, "per_document": round(vectors / len(docs.ids), 2),
            "per_1000_chars": round(1000 * vectors / chars, 2),
            "index_bytes": vectors * DIM_BYTES + text_bytes, "vector_bytes": vectors * DIM_BYTES,
            "text_bytes": text_bytes,
            "tokens_embedded": sum(units[n].cost["tokens"] for n in method.ranks_by),
            "embed_seconds": round(sum(units[n].cost["seconds"] for n in method.ranks_by), 2)}


# --- the 27,000-character note --------------------------------------------------------------------
def showcase(embedder: Embedder, background: np.ndarray) -> dict[str, Any]:
    """tests/training/test_quality.py's note: rank of the unit holding the fact among the note's
    units, its cosine, the best other unit's, and its margin over the query's background level."""
    notes = [json.loads(line)["text"] for line in
             (CORPORA / "heldout/real/docs/longdoc_zh.jsonl").read_text(encoding="utf-8").splitlines()]
    text = "".join(notes)[:27_000]
    middle = text.index("。", 13_500) + 1
    text = text[:middle] + FACT + text[middle:]
    fact = (middle, middle + len(FACT))
    count = embedder.encoder.count_tokens
    got: dict[str, list[list[Span]]] = {}
    for name, (_, make) in UNIT_SETS.items():
        got[name] = make([text], count, got)
    queries = embedder.encoder.encode_queries(list(FACT_QUERIES))
    levels = confidence.levels(queries, background)
    out: dict[str, Any] = {"characters": len(text), "queries": list(FACT_QUERIES), "sets": {}}
    for name, spans in got.items():
        vectors = embedder.passages([text[s:e] for s, e in spans[0]])
        cosines = queries @ vectors.T
        mask = np.array([holds(s, fact) for s in spans[0]])
        rows = []
        for q, row in enumerate(cosines):
            best_fact, best_other = float(row[mask].max()), float(row[~mask].max())
            rows.append({"rank": int((row[~mask] > best_fact).sum()) + 1, "cosine": round(best_fact, 3),
                         "best_other": round(best_other, 3), "margin": round(best_fact - float(levels[q]), 3)})
        out["sets"][name] = {"units": len(spans[0]), "per_query": rows}
    return out


# --- the run ------------------------------------------------------------------------------------
def load(dev: bool) -> tuple[dict[str, Docs], dict[str, Split]]:
    corpora = {"long": read_folder(CORPORA / "heldout/real/docs"), "demo": read_folder(CORPORA / "demo")}
    splits = {name: read_split(CORPORA / path, "long") for name, path in LONG_SPLITS.items()}
    for name in LONG_SPLITS:
        add_facts(splits[name], corpora["long"], longdoc=name == "longdoc_zh")
        missing = sum(f is None for f in splits[name].facts)
        if missing:
            print(f"{name}: the fact of {missing} queries was not found; fact metrics left out", flush=True)
    splits.update({name: read_split(CORPORA / path, "demo") for name, path in DEMO_SPLITS.items()})
    if dev:
        corpora["dev"], dev_splits = dev_sets()
        splits.update(dev_splits)
    return corpora, splits


def embed_all(corpora: dict[str, Docs], embedder: Embedder, sets: list[str]) -> dict[str, dict[str, Units]]:
    out: dict[str, dict[str, Units]] = {}
    for corpus, docs in corpora.items():
        got: dict[str, list[list[Span]]] = {}
        out[corpus] = {}
        for name in sets:
            got[name] = UNIT_SETS[name][1](docs.texts, embedder.encoder.count_tokens, got)
            out[corpus][name] = build_units(docs, got[name], embedder)
            cost = out[corpus][name].cost
            print(f"{corpus:<5} {name:<4} {len(out[corpus][name].texts):>6} units  {cost['tokens']:>7} tokens  "
                  f"{cost['seconds']:>6.1f} s{'' if cost['embedded_this_run'] else ' (cached)'}", flush=True)
    return out


def refusal_queries(splits: dict[str, Split], embedder: Embedder) -> dict[str, dict[str, np.ndarray]]:
    """Per corpus, queries it can answer and (the demo) questions it cannot."""
    encode = embedder.encoder.encode_queries
    outside = read_split(CORPORA / DEMO_OUTSIDE, "demo").queries
    out = {"demo": {"in_corpus": encode(splits["demo_in_corpus"].queries), "out_of_corpus": encode(outside)},
           "long": {"in_corpus": encode(splits["longdoc_zh"].queries + splits["news_fact"].queries)}}
    if "longdoc_dev" in splits:
        out["dev"] = {"in_corpus": encode(splits["longdoc_dev"].queries + splits["news_dev"].queries)}
    return out


def refusal_row(method: Method, units: dict[str, Units], asked: dict[str, np.ndarray], background: np.ndarray,
                min_margin: float) -> dict[str, float]:
    needed = threshold(method, units, background, min_margin)
    return {"threshold": round(needed, 4),
            **{kind: refused(method, units, q, background, needed) for kind, q in asked.items()}}


def check_index(corpora: dict[str, Docs], splits: dict[str, Split], served: Served) -> dict[str, Any]:
    """Today's passages in real indexes (same vectors), evaluated as quality.report does."""
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        for corpus, folder, names in (("long", "heldout/real/docs", LONG_SPLITS), ("demo", "demo", DEMO_SPLITS)):
            with Index.create(Path(tmp) / corpus, encoder=served) as index:  # type: ignore[arg-type]
                index.index_folder(CORPORA / folder)
                for name, path in names.items():
                    got = evaluate_index(index, CORPORA / path)["results"]["all"]
                    out[name] = {m: round(got[m], 4) for m in ("mrr@10", "recall@1", "recall@10")}
                out[f"{corpus}_passages"] = index.info()["passages"]
                asked = [q for name in names for q in read_split(CORPORA / names[name], corpus).queries]
                if corpus == "demo":
                    asked = read_split(CORPORA / DEMO_SPLITS["demo_in_corpus"], corpus).queries
                    outside = read_split(CORPORA / DEMO_OUTSIDE, corpus).queries
                    out["demo_refused_out_of_corpus"] = share_refused(index, outside)
                out[f"{corpus}_refused_in_corpus"] = share_refused(index, asked)
    return out


def share_refused(index: Index, queries: list[str]) -> float:
    return round(sum(not hits for hits in index.search_many(queries, k=K)) / len(queries), 4)


NOTES = {
    "search": "exact: every query's cosine to every unit (float32 numpy); a document is scored by its best unit "
              "(best passage + best sentence for sum_both), as Index.search groups passages",
    "fact_shown@1": "the first hit is the right document and the text shown for it covers at least half of the "
                    "sentence the query looks for; @10: the right document is in the first 10 and its text does",
    "shown_chars_top1": "characters of the text shown for the first hit (its best unit, or the 64-token passage "
                        "that holds it where the method shows passages)",
    "units_read_for_top10": "units read best-first until 10 distinct documents appear (one list over all the "
                            "method's vectors; sum_both: both lists' counts added); over_first_fetch: share of "
                            "queries needing more than the 40 candidates Index.search asks the graph for first",
    "index_bytes": "vectors x 384 dims x 2 bytes (float16) + the UTF-8 text of every unit stored (small-to-big and "
                   "the combinations store the 64-token passages' text too); the graph, FTS table and float32 "
                   "copies an index also keeps are not counted",
    "embedding": "one encode_passages call per unit set and corpus, on the CPUs of this machine, timed; tokens "
                 "are the model's tokens of the units' texts; a set whose texts equal another's (A = S where "
                 "every document is longer than one passage) reads that one's vectors and time back",
    "refusals": "confidence.index_cut over the method's units (200 units spread over them, each with its nearest "
                "unit of another document, exact) and the model's min_margin floor; a query is refused when "
                "its best unit's margin is under that threshold (what Index.search does with its first hit)",
    "demo_within_0.01": "MRR@10 on demo_questions and demo_in_corpus no lower than today's passages' minus 0.01",
}


def measure(args: argparse.Namespace) -> dict[str, Any]:
    started = time.perf_counter()
    embedder = Embedder(Path(args.cache))
    corpora, splits = load(dev=not args.no_dev)
    units = embed_all(corpora, embedder, list(UNIT_SETS))
    query_vectors: dict[str, np.ndarray] = {}
    results: dict[str, dict[str, Any]] = {}
    for name, split in splits.items():
        query_vectors.update(zip(split.queries, embedder.encoder.encode_queries(split.queries)))
        vectors = np.stack([query_vectors[q] for q in split.queries])
        results[name] = {m: evaluate(method, split, corpora[split.docs], units[split.docs], vectors)
                         for m, method in METHODS.items()}
        print(name, {m: r["mrr@10"] for m, r in results[name].items()}, flush=True)
    background = confidence.embed_once(embedder.encoder, embedder.encoder.probe())
    asked = refusal_queries(splits, embedder)
    min_margin = float(embedder.encoder.calibration["min_margin"])
    report = {
        "command": COMMAND, "model": embedder.encoder.name, "runtime": embedder.encoder.runtime,
        "machine": {"platform": platform.platform(), "python": platform.python_version(), "cpus": os.cpu_count()},
        "notes": NOTES, "unit_sets": {n: label for n, (label, _) in UNIT_SETS.items()},
        "methods": {n: vars(m) | {"ranks_by": list(m.ranks_by)} for n, m in METHODS.items()},
        "corpora": {c: {"documents": len(d.ids), "characters": sum(len(t) for t in d.texts),
                        "embedding": {n: u.cost for n, u in units[c].items()}} for c, d in corpora.items()},
        "splits": {n: {"corpus": s.docs, "queries": len(s.queries), "facts_located": sum(f is not None for f in s.facts),
                       "results": results[n]} for n, s in splits.items()},
        "costs": {m: {c: costs(method, corpora[c], units[c]) for c in corpora} for m, method in METHODS.items()},
        "demo_delta": {m: {s: round(results[s][m]["mrr@10"] - results[s]["passages"]["mrr@10"], 4)
                           for s in DEMO_SPLITS} for m in METHODS},
        "refusals": {m: {c: refusal_row(method, units[c], asked[c], background, min_margin) for c in asked}
                     for m, method in METHODS.items()},
        "showcase": showcase(embedder, background[:250]),
    }
    report["demo_within_0.01"] = {m: min(d.values()) >= -0.01 for m, d in report["demo_delta"].items()}
    if not args.no_check_index:
        report["index_check"] = check_index(corpora, splits, Served(embedder, query_vectors))
    report["seconds"] = round(time.perf_counter() - started, 1)
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cache", default=str(Path(tempfile.gettempdir()) / "textsearch-granularity"))
    parser.add_argument("--fresh", action="store_true", help="embed everything again (and refresh the cache)")
    parser.add_argument("--no-dev", action="store_true", help="skip the dev twins of the long splits")
    parser.add_argument("--no-check-index", action="store_true", help="skip the real-index cross-check")
    parser.add_argument("--tables", metavar="JSON", help="only print the markdown tables of a results file")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "granularity.json"))
    args = parser.parse_args(argv)
    if args.tables:
        print(tables(json.loads(Path(args.tables).read_text(encoding="utf-8"))))
        return 0
    if args.fresh and Path(args.cache).is_dir():
        for old in Path(args.cache).glob("*.npz"):
            old.unlink()
    report = measure(args)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    print(tables(report))
    return 0


# --- the markdown the docs page holds -------------------------------------------------------------
def tables(report: dict[str, Any]) -> str:
    splits = [s for s in ("longdoc_zh", "news_fact", "demo_questions", "demo_in_corpus", "longdoc_dev", "news_dev")
              if s in report["splits"]]
    lines = ["| method | " + " | ".join(splits) + " |", "|---|" + "---|" * len(splits)]
    for m, method in report["methods"].items():
        cells = []
        for s in splits:
            r = report["splits"][s]["results"][m]
            cells.append(f"{r['mrr@10']:.3f} / {r['recall@1']:.3f} / {r['recall@10']:.3f}")
        lines.append(f"| {method['label']} | " + " | ".join(cells) + " |")
    lines += ["", "| method | fact shown @1 / @10: longdoc_zh | news_fact | longdoc_dev | news_dev | chars shown (longdoc_zh) |",
              "|---|---|---|---|---|---|"]
    for m, method in report["methods"].items():
        cells = []
        for s in ("longdoc_zh", "news_fact", "longdoc_dev", "news_dev"):
            r = report["splits"].get(s, {}).get("results", {}).get(m, {})
            cells.append(f"{r['fact_shown@1']:.3f} / {r['fact_shown@10']:.3f}" if "fact_shown@1" in r else "—")
        chars = report["splits"]["longdoc_zh"]["results"][m]["shown_chars_top1"]
        lines.append(f"| {method['label']} | " + " | ".join(cells) + f" | {chars:.0f} |")
    return "\n".join(lines + cost_table(report) + refusal_table(report) + showcase_table(report))


def cost_table(report: dict[str, Any]) -> list[str]:
    lines = ["", ("| method | vectors (long / demo) | per 1,000 chars (long / demo) | index MB (long / demo) | "
                  "tokens embedded (long / demo) | embed s (long / demo) | units read for 10 docs, mean / max "
                  "(longdoc_zh; demo_questions) | demo Δ MRR@10 (questions / in corpus) |"),
             "|---|---|---|---|---|---|---|---|"]
    for m, method in report["methods"].items():
        c = report["costs"][m]
        long, demo = (report["splits"][s]["results"][m]["units_read_for_top10"] for s in ("longdoc_zh", "demo_questions"))
        delta = report["demo_delta"][m]
        lines.append(f"| {method['label']} | {c['long']['vectors']:,} / {c['demo']['vectors']:,} | "
                     f"{c['long']['per_1000_chars']:.1f} / {c['demo']['per_1000_chars']:.1f} | "
                     f"{c['long']['index_bytes'] / 1e6:.2f} / {c['demo']['index_bytes'] / 1e6:.2f} | "
                     f"{c['long']['tokens_embedded']:,} / {c['demo']['tokens_embedded']:,} | "
                     f"{c['long']['embed_seconds']:.1f} / {c['demo']['embed_seconds']:.1f} | "
                     f"{long['mean']:.0f} / {long['max']}; {demo['mean']:.0f} / {demo['max']} | "
                     f"{delta['demo_questions']:+.3f} / {delta['demo_in_corpus']:+.3f} |")
    return lines


def refusal_table(report: dict[str, Any]) -> list[str]:
    lines = ["", ("| method | demo: threshold, in-corpus / out-of-corpus refused | long: threshold, in-corpus refused |"
             " dev: threshold, in-corpus refused |"), "|---|---|---|---|"]
    for m, method in report["methods"].items():
        r = report["refusals"][m]
        dev = f"{r['dev']['threshold']:.3f}, {r['dev']['in_corpus']:.1%}" if "dev" in r else "—"
        lines.append(f"| {method['label']} | {r['demo']['threshold']:.3f}, {r['demo']['in_corpus']:.1%} / "
                     f"{r['demo']['out_of_corpus']:.1%} | {r['long']['threshold']:.3f}, {r['long']['in_corpus']:.1%} "
                     f"| {dev} |")
    return lines


def showcase_table(report: dict[str, Any]) -> list[str]:
    show = report["showcase"]
    lines = ["", "| units | units in the note | " + " | ".join(f"\"{q}\"" for q in show["queries"]) + " |",
             "|---|---|" + "---|" * len(show["queries"])]
    for name, got in show["sets"].items():
        cells = [f"{r['rank']}, {r['cosine']:.3f} vs {r['best_other']:.3f}, {r['margin']:+.3f}" for r in got["per_query"]]
        lines.append(f"| {name} | {got['units']:,} | " + " | ".join(cells) + " |")
    return lines


if __name__ == "__main__":
    sys.exit(main())
