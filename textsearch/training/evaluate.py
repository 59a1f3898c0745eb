"""Measure quality: labeled pairs → IR set → Recall@k, MRR, nDCG; pair classification; an index.

Pair files are read by ``pairs.read_pairs`` (formats there). As an IR set, each anchor is a query
and the corpus is every positive and negative text, one document per distinct text: the hard
negatives compete with the answers.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..search import confidence
from ..config import DEFAULT_CANDIDATES
from ..models.encoder import Encoder
from ..errors import InvalidArgumentError
from ..models.registry import write_calibration
from .pairs import (
    IRSet,
    PairSet,
    Row,
    as_list,
    labeled_pairs,
    missing_column,
    number_column,
    pairs_to_ir,
    read_pairs,
    read_records,
)
from ..search.rerank import Memoized, Reranker, blend, calibration_spec

if TYPE_CHECKING:
    from ..index import Index

logger = logging.getLogger(__name__)

KS = (1, 5, 10)
WEIGHTS = tuple(round(0.05 * i, 2) for i in range(21))  # rerank weights tried by choose_rerank_weight
MAX_REFUSED = 0.05  # calibration: share of labeled answers a "no confident match" threshold may refuse
COUNTS = {"n_queries": "queries", "n_corpus": "documents", "n_pairs": "pairs",
          "n_missing_docs": "judged ids missing from the index"}


# --- metrics over ranked ids ----------------------------------------------------------------
def recall_at_k(ranked: Sequence[Any], relevant: set[Any], k: int) -> float:
    """Fraction of the relevant ids found in the first k."""
    return len(relevant.intersection(ranked[:k])) / len(relevant) if relevant else 0.0


def mrr_at_k(ranked: Sequence[Any], relevant: set[Any], k: int = 10) -> float:
    """1 / rank of the first relevant id within the first k, else 0."""
    return next((1.0 / (i + 1) for i, d in enumerate(ranked[:k]) if d in relevant), 0.0)


def ndcg_at_k(ranked: Sequence[Any], relevant: set[Any], k: int = 10) -> float:
    """Binary-relevance nDCG, log2 discount; the ideal ranks min(|relevant|, k) hits first."""
    dcg = sum(1.0 / math.log2(i + 2) for i, d in enumerate(ranked[:k]) if d in relevant)
    ideal = sum(1.0 / math.log2(i + 2) for i in range(min(len(relevant), k)))
    return dcg / ideal if ideal else 0.0


def ranking_metrics(
    rankings: Sequence[Sequence[Any]], relevant: Sequence[set[Any]], ks: Sequence[int] = KS
) -> dict[str, float]:
    """Recall@k for each k, MRR and nDCG at the largest k, averaged over queries."""
    if not rankings or not ks or min(ks) < 1:
        raise InvalidArgumentError("nothing to evaluate: need a query and cutoffs k >= 1")
    n, top, judged = len(rankings), max(ks), list(zip(rankings, relevant))
    metrics = {f"recall@{k}": sum(recall_at_k(r, s, k) for r, s in judged) / n for k in ks}
    metrics[f"mrr@{top}"] = sum(mrr_at_k(r, s, top) for r, s in judged) / n
    metrics[f"ndcg@{top}"] = sum(ndcg_at_k(r, s, top) for r, s in judged) / n
    return {**metrics, "n_queries": n}


# --- evaluating an encoder ------------------------------------------------------------------
class CachedEncoder(Encoder):
    """Embeds each distinct text once per side, so groups and classification share the work."""

    def __init__(self, encoder: Encoder, show_progress: bool = False) -> None:
        self.inner, self.show_progress = encoder, show_progress
        self.name, self.dimension = encoder.name, encoder.dimension
        self.seen: dict[bool, dict[str, np.ndarray]] = {True: {}, False: {}}

    def _encode(self, texts: Sequence[str], query: bool) -> np.ndarray:
        seen = self.seen[query]
        todo = [t for t in dict.fromkeys(texts) if t not in seen]
        if todo:
            new = (self.inner.encode_queries(todo) if query
                   else self.inner.encode_passages(todo, show_progress=self.show_progress))
            seen.update(zip(todo, np.asarray(new, dtype=np.float32)))
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        return np.stack([seen[t] for t in texts])

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode(texts, True)

    def encode_passages(self, texts: Sequence[str], show_progress: bool = False) -> np.ndarray:
        return self._encode(texts, False)


def evaluate_retrieval(
    encoder: Encoder, ir: IRSet, ks: Sequence[int] = KS, *, show_progress: bool = False,
    reranker: Reranker | None = None, candidates: int = DEFAULT_CANDIDATES,
) -> dict[str, float]:
    """Exact cosine search of every query over the corpus (ties: the earlier corpus text first);
    with a reranker, its order (scores blended with the cosine as in search) over each query's
    first ``candidates`` texts."""
    if not ir.queries:
        raise InvalidArgumentError(
            "no query to evaluate — a query needs a positive (label 1 or score >= 0.5)")
    docs = encoder.encode_passages(ir.corpus, show_progress=show_progress)
    queries = encoder.encode_queries(ir.queries)
    depth = max(max(ks), candidates if reranker else 0)
    rankings: list[list[int]] = []
    for start in range(0, len(queries), 1024):
        scores = queries[start : start + 1024] @ docs.T
        top = np.argsort(-scores, axis=1, kind="stable")[:, :depth].tolist()
        if reranker is not None:
            top = [_reranked(reranker, ir.queries[start + i], ranked, row[ranked], ir.corpus, candidates)
                   for i, (ranked, row) in enumerate(zip(top, scores))]
        rankings += top
    return {**ranking_metrics(rankings, ir.relevant, ks), "n_corpus": len(ir.corpus)}


def _reranked(reranker: Reranker, query: str, ranked: list[int], cosines: np.ndarray, corpus: Sequence[str],
              n: int) -> list[int]:
    top = ranked[:n]
    scores = blend(reranker.weight, reranker.score(query, [corpus[i] for i in top]), cosines[:n])
    return [top[i] for i in np.argsort(-scores, kind="stable")] + ranked[n:]


def evaluate_by_group(
    encoder: Encoder, rows: Sequence[Row], distractors: Sequence[str] = (), ks: Sequence[int] = KS,
    **rerank: Any,
) -> dict[str, Any]:
    """``{"all": metrics, <lang>: metrics…, "n_queries", "n_corpus"}``. With 2+ languages each
    gets its own IR set, built from its rows only (plus the distractors). ``rerank``:
    ``reranker=`` and ``candidates=`` for evaluate_retrieval."""
    encoder = encoder if isinstance(encoder, CachedEncoder) else CachedEncoder(encoder)
    whole = evaluate_retrieval(encoder, pairs_to_ir(rows, distractors), ks, **rerank)
    report: dict[str, Any] = {"all": whole}
    langs = sorted({str(r["lang"]) for r in rows if r.get("lang")})
    for lang in langs if len(langs) > 1 else []:
        ir = pairs_to_ir([r for r in rows if r.get("lang") == lang], distractors)
        if ir.queries:
            report[lang] = evaluate_retrieval(encoder, ir, ks, **rerank)
    return {**report, "n_queries": whole["n_queries"], "n_corpus": whole["n_corpus"]}


def best_threshold(scores: Sequence[float], labels: Sequence[int]) -> dict[str, float]:
    """The cosine threshold (match ⇔ score >= threshold) of best accuracy, ties broken by F1.
    Candidates: midpoints between consecutive distinct scores, the lowest score (all match) and
    just above the highest (none match)."""
    s, y = np.asarray(scores, dtype=np.float64), np.asarray(labels, dtype=bool)
    if not len(s):
        raise InvalidArgumentError("no pairs to classify")
    u = np.unique(s)
    t = np.concatenate([u[:1], (u[:-1] + u[1:]) / 2, [np.nextafter(u[-1], np.inf)]])
    pos, neg = np.sort(s[y]), np.sort(s[~y])
    tp = len(pos) - np.searchsorted(pos, t)  # scores >= t
    fp = len(neg) - np.searchsorted(neg, t)
    accuracy = (tp + len(neg) - fp) / len(s)
    f1 = 2 * tp / np.maximum(2 * tp + fp + (len(pos) - tp), 1)
    best = int(np.lexsort((t, -f1, -accuracy))[0])
    return {"accuracy": float(accuracy[best]), "f1": float(f1[best]), "threshold": float(t[best])}


def refusal_threshold(scores: Sequence[float], labels: Sequence[int], max_refused: float = MAX_REFUSED) -> float:
    """The "no confident match" threshold: the highest score that keeps at least
    1 − ``max_refused`` of the positive pairs at or above it (so real answers are rarely refused)."""
    s, y = np.asarray(scores, dtype=np.float64), np.asarray(labels, dtype=bool)
    positives = np.sort(s[y])
    if not len(positives):
        raise InvalidArgumentError("no positive pair to calibrate on")
    return float(positives[int(np.floor(max_refused * len(positives)))])


def evaluate_pair_classification(encoder: Encoder, rows: Iterable[Row], margins: bool = False) -> dict[str, float]:
    """Cosine of encode_queries(text1) and encode_passages(text2) per pair, best threshold; with
    ``margins``, also ``min_margin``: the confidence rule (``search/confidence.py``) under which at most
    5% of the positive pairs fall."""
    items = labeled_pairs(rows)
    encoder = encoder if isinstance(encoder, CachedEncoder) else CachedEncoder(encoder)
    cosines = _pair_cosines(encoder, items)
    labels = [x[2] for x in items]
    report = _classification(cosines.tolist(), labels)
    if margins:
        level = confidence.levels(encoder.encode_queries([x[0] for x in items]), confidence.embed(encoder))
        report["min_margin"] = refusal_threshold((cosines - level).tolist(), labels)
    return report


def _classification(scores: list[float], labels: list[int]) -> dict[str, float]:
    """Best-accuracy threshold, F1, the "no confident match" threshold and the pair count."""
    return {**best_threshold(scores, labels), "min_score": refusal_threshold(scores, labels), "n_pairs": len(labels)}


def _pair_cosines(encoder: Encoder, items: Sequence[tuple[str, str, int]]) -> np.ndarray:
    a = encoder.encode_queries([x[0] for x in items]).astype(np.float64)
    b = encoder.encode_passages([x[1] for x in items]).astype(np.float64)
    return np.sum(a * b, axis=1)


def evaluate_reranker_classification(reranker: Reranker, rows: Iterable[Row], encoder: Encoder) -> dict[str, float]:
    """The second stage's score of each labeled pair (the reranker's blended with the cosine, as
    in search), best threshold."""
    items = labeled_pairs(rows)
    by_query: dict[str, list[int]] = {}
    for i, (query, _, _) in enumerate(items):
        by_query.setdefault(query, []).append(i)
    scores = np.zeros(len(items))
    for query, at in by_query.items():
        scores[at] = reranker.score(query, [items[i][1] for i in at])
    if reranker.weight < 1.0:
        scores = blend(reranker.weight, scores, _pair_cosines(encoder, items))
    return _classification(scores.tolist(), [x[2] for x in items])


def evaluate_pairs(
    encoder: Encoder, pairs: PairSet | Sequence[Row], distractors: Sequence[str] = (),
    ks: Sequence[int] = KS, *, show_progress: bool = False, reranker: Reranker | None = None,
    candidates: int = DEFAULT_CANDIDATES, margins: bool = False,
) -> dict[str, Any]:
    """Retrieval overall and per language, plus ``classification`` when both labels occur (with
    ``margins``, its ``min_margin`` too); with a reranker, ranking and classification are the reranker's."""
    rows = pairs.rows if isinstance(pairs, PairSet) else list(pairs)
    cached = encoder if isinstance(encoder, CachedEncoder) else CachedEncoder(encoder, show_progress)
    report = evaluate_by_group(cached, rows, distractors, ks, reranker=reranker, candidates=candidates)
    if len({label for *_, label in labeled_pairs(rows)}) == 2:
        report["classification"] = (evaluate_reranker_classification(reranker, rows, cached) if reranker
                                    else evaluate_pair_classification(cached, rows, margins))
    return report


def wrong_first(encoder: Encoder, rows: Sequence[Row]) -> float:
    """The share of rows whose first negative (a word-sharing sentence of another meaning) scores
    above their positive for the anchor: how often the near miss outranks the right answer."""
    rows = [r for r in rows if r.get("negative")]
    if not rows:
        raise InvalidArgumentError("no row has a negative to compare its positive with")
    queries = encoder.encode_queries([r["anchor"] for r in rows])
    positives = encoder.encode_passages([r["positive"] for r in rows])
    negatives = encoder.encode_passages([as_list(r["negative"])[0] for r in rows])
    wrong = np.sum(queries * negatives, axis=1) > np.sum(queries * positives, axis=1)
    return float(np.mean(wrong))


def choose_rerank_weight(
    encoder: Encoder, pairs: PairSet | Sequence[Row], reranker: Reranker, candidates: int = DEFAULT_CANDIDATES,
    weights: Sequence[float] = WEIGHTS,
) -> tuple[float, dict[float, float]]:
    """The rerank weight of best MRR@10 over the pair file's queries (ties: the lowest, the
    closest to recall alone), and MRR@10 at each weight tried."""
    rows = pairs.rows if isinstance(pairs, PairSet) else list(pairs)
    cached = encoder if isinstance(encoder, CachedEncoder) else CachedEncoder(encoder)
    memo = reranker if isinstance(reranker, Memoized) else Memoized(reranker)
    curve = {}
    for weight in weights:
        memo.weight = weight
        curve[weight] = evaluate_by_group(cached, rows, (), reranker=memo, candidates=candidates)["all"][f"mrr@{max(KS)}"]
    best = max(curve, key=lambda w: (round(curve[w], 6), -w))
    return best, curve


def evaluate_file(
    path: str | os.PathLike[str], model: str | None = None, *, baseline: str | None = None,
    encoder: Encoder | None = None, baseline_encoder: Encoder | None = None,
    reranker: Reranker | None = None, candidates: int = DEFAULT_CANDIDATES, show_progress: bool = False,
    runtime: str = "auto", choose_weight: bool = False, margins: bool = False,
) -> dict[str, Any]:
    """`textsearch eval`: a model (default: the default model, on ``runtime``) on a pair file, and
    optionally a baseline, compared. With a reranker: recall only (as the baseline) against recall + rerank
    of the first ``candidates`` texts; ``choose_weight`` first sets the reranker's weight to the
    file's best (``choose_rerank_weight``), with the curve in ``rerank_weights``."""
    from ..models.encoder import SentenceTransformerEncoder

    pairs = read_pairs(path)
    tuned = CachedEncoder(encoder or SentenceTransformerEncoder(model, runtime=runtime), show_progress)
    curve = None
    if reranker is not None and choose_weight:
        memo = Memoized(reranker)
        reranker.weight, curve = choose_rerank_weight(tuned, pairs, memo, candidates)
        memo.weight = reranker.weight
        reranker = memo
    result: dict[str, Any] = {"file": str(path), "format": pairs.format, "model": tuned.name,
                              "results": evaluate_pairs(tuned, pairs, reranker=reranker, candidates=candidates,
                                                        margins=margins and reranker is None)}
    if reranker is not None:
        result.update(model=f"{tuned.name} + rerank {reranker.name} (top {candidates}, weight {reranker.weight:g})",
                      baseline=f"{tuned.name}, recall only", baseline_results=evaluate_pairs(tuned, pairs),
                      rerank_weight=reranker.weight, candidates=candidates)
        if curve is not None:
            result["rerank_weights"] = {f"{w:g}": round(m, 4) for w, m in curve.items()}
        result["comparison"] = compare(result["baseline_results"], result["results"])
    elif baseline or baseline_encoder:
        base = baseline_encoder or SentenceTransformerEncoder(baseline, runtime=runtime)
        result["baseline"] = base.name
        result["baseline_results"] = evaluate_pairs(base, pairs, show_progress=show_progress)
        result["comparison"] = compare(result["baseline_results"], result["results"])
    return result


@dataclass
class Calibration:
    """What ``calibrate`` measured and stored: the evaluation, the record written and where."""

    results: dict[str, Any]
    data: dict[str, Any]
    path: Path


def calibrate(
    path: str | os.PathLike[str], model: str | None = None, *, reranker: Reranker | None = None,
    candidates: int = DEFAULT_CANDIDATES, runtime: str = "auto",
) -> Calibration:
    """Measure on a labeled pair file and store the result next to the model (``models.write_calibration``):
    the model's ``min_margin`` (at most ``MAX_REFUSED`` of the file's positive pairs under it), or
    with a reranker the rerank weight of best MRR@10 on the file."""
    results = evaluate_file(path, model, reranker=reranker, candidates=candidates, runtime=runtime,
                            choose_weight=reranker is not None, margins=True)
    found = results.get("results", {}).get("classification")
    if not found:
        raise InvalidArgumentError("calibrating needs a pairs file with positive and negative pairs")
    if reranker is not None:  # its weight only: "no confident match" stays the bi-encoder's rule
        data = {"weight": results["rerank_weight"], "pairs_file": str(path),
                "rule": f"the rerank weight of best MRR@10 on the file (top {candidates} candidates; ties: the lowest)"}
        return Calibration(results, data, write_calibration(calibration_spec(reranker.name), data))
    data = {"min_margin": round(found["min_margin"], 4), "pairs_file": str(path),
            "rule": f"at most {MAX_REFUSED:.0%} of the file's positive pairs have a margin below min_margin",
            "best_accuracy_threshold": round(found["threshold"], 4)}
    return Calibration(results, data, write_calibration(model, data))


# --- evaluating a built index ---------------------------------------------------------------
def _read_queries(path: Path) -> tuple[dict[str, str], dict[str, set[str]]]:
    texts: dict[str, str] = {}
    relevant: dict[str, set[str]] = {}
    for n, row in read_records(path):
        qid = str(row["id"]) if row.get("id") is not None else f"#{n}"
        text = row.get("text") or row.get("query")
        if not isinstance(text, str) or not text.strip():
            raise missing_column(f"{path} line {n}", "text' (or 'query")
        if qid in texts:
            raise InvalidArgumentError(f"{path} line {n}: query id '{qid}' appears twice")
        texts[qid] = text
        relevant[qid] = {str(d) for d in as_list(row.get("relevant")) if str(d).strip()}
    return texts, relevant


def _read_qrels(path: Path) -> Iterator[tuple[str, str]]:
    """(query id, doc id) per judgement with relevance > 0: JSONL, or TSV/text lines
    ``query_id doc_id relevance`` (or TREC's 4 columns; a header line is skipped)."""
    if path.suffix.lower() == ".jsonl":
        for n, row in read_records(path):
            at = f"{path} line {n}"
            ids = ["" if v is None else str(v).strip() for v in map(row.get, ("query_id", "doc_id"))]
            if not all(ids):
                raise missing_column(at, "query_id' or 'doc_id")
            if "relevance" not in row or number_column(row, "relevance", at, "a number", math.isfinite):
                yield ids[0], ids[1]
        return
    for n, line in enumerate(path.read_text(encoding="utf-8-sig").splitlines(), 1):
        fields = [f.strip() for f in (line.split("\t") if "\t" in line else line.split())]
        if not any(fields):
            continue
        try:
            relevance = float(fields[-1]) if len(fields) in (3, 4) and all(fields) else math.nan
        except ValueError:
            relevance = math.inf if n == 1 else math.nan  # inf: a header line
        if math.isnan(relevance):
            raise InvalidArgumentError(f"{path} line {n}: expected 'query_id doc_id relevance'")
        if 0 < relevance < math.inf:
            yield fields[0], fields[-2]


def evaluate_index(
    index: Index, queries: str | os.PathLike[str], qrels: str | os.PathLike[str] | None = None,
    k: int = 10, *, reranker: Reranker | None = None, candidates: int = DEFAULT_CANDIDATES,
) -> dict[str, Any]:
    """Search a built index with each judged query: Recall@1/5…/k, MRR@k, nDCG@k by doc id (of the
    ranking: hits under the confidence rule count too); with a reranker, recall only (as the
    baseline) against recall + rerank.

    ``queries``: JSONL ``{"id", "text"}`` (or ``"query"``) with a qrels file (JSONL
    ``query_id, doc_id, relevance`` or TSV), or JSONL ``{"query", "relevant": [doc ids]}`` alone."""
    if not isinstance(k, int) or k < 1:
        raise InvalidArgumentError(f"k must be a positive number of results, got {k}")
    texts, relevant = _read_queries(Path(queries))
    for qid, doc in _read_qrels(Path(qrels)) if qrels is not None else ():
        if qid not in texts:
            raise InvalidArgumentError(f"{qrels}: query id '{qid}' is not in {queries}")
        relevant[qid].add(doc)
    judged = [q for q in texts if relevant[q]]
    if not judged:
        raise InvalidArgumentError(f"no query in {queries} has a relevant document — give a "
                                   "qrels file, or a 'relevant' list of document ids per query")
    wanted = set().union(*(relevant[q] for q in judged))
    missing = wanted - set(index.store.hashes(sorted(wanted)))
    if missing == wanted:
        raise InvalidArgumentError(
            f"none of the {len(wanted)} relevant document ids (e.g. '{min(missing)}') is in index "
            f"{index.path} — judge the ids the index gives its documents (`textsearch query`)")
    if missing:
        logger.warning("%d judged ids not in %s, e.g. %s", len(missing), index.path, min(missing))
    ks = sorted({c for c in KS if c < k} | {k})

    def run(rerank: Reranker | None) -> dict[str, Any]:
        # judged by document id: a copy of a better hit keeps its own rank (collapse=False)
        rankings = [[hit.doc_id for hit in index.search(texts[q], k=k, rerank=rerank or False, candidates=candidates,
                                                        include_low_confidence=True, collapse=False)] for q in judged]
        metrics = ranking_metrics(rankings, [relevant[q] for q in judged], ks)
        metrics.update(n_corpus=index.count(), n_missing_docs=len(missing))
        return {"all": metrics, "n_queries": metrics["n_queries"], "n_corpus": metrics["n_corpus"]}

    result = {"file": str(queries), "model": index.config.model, "results": run(reranker)}
    if reranker is not None:
        result.update(model=f"{index.config.model} + rerank {reranker.name} (top {candidates}, weight {reranker.weight:g})",
                      baseline=f"{index.config.model}, recall only", baseline_results=run(None))
        result["comparison"] = compare(result["baseline_results"], result["results"])
    return result


# --- reporting ------------------------------------------------------------------------------
def _groups(report: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    return {g: m for g, m in report.items() if isinstance(m, dict)}


def compare(base: Mapping[str, Any], tuned: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Per group and metric ``{"base", "tuned", "delta"}`` (delta = tuned − base); counts, and
    what only one side reports, are left out."""
    out: dict[str, dict[str, Any]] = {}
    for group, metrics in _groups(tuned).items():
        old = _groups(base).get(group, {})
        out[group] = {m: {"base": old[m], "tuned": v, "delta": v - old[m]}
                      for m, v in metrics.items() if m not in COUNTS and m in old}
    return out


def format_table(results: Mapping[str, Any]) -> str:
    """Aligned rows of group × metric; columns baseline, model and Δ when there is a baseline.
    Takes an evaluate_file / evaluate_index result, a report, or a compare() result."""
    lines, report = [], results.get("results", results)
    if "results" in results:
        extra = f", baseline {results['baseline']}" if "baseline_results" in results else ""
        lines.append(f"{results.get('file', '')} — model {results.get('model', '?')}{extra}")
    if "rerank_weights" in results:
        curve = "  ".join(f"{w} {m:.4f}" for w, m in results["rerank_weights"].items())
        lines.append(f"MRR@10 by rerank weight: {curve}; chosen {results['rerank_weight']:g}")
    groups = _groups(report)
    if any(isinstance(v, dict) for m in groups.values() for v in m.values()):
        table, groups = groups, {}  # already a comparison: no counts to show
    elif "baseline_results" in results:
        table = compare(results["baseline_results"], report)
    else:
        table = {g: {n: {"tuned": v} for n, v in m.items() if n not in COUNTS}
                 for g, m in groups.items()}
    paired = any("base" in cell for m in table.values() for cell in m.values())
    w = max([8, *(len(g) + 2 for g in table)])
    cols = f"{'baseline':>10}{'model':>10}{'Δ':>9}" if paired else f"{'model':>10}"
    lines.append(f"{'group':<{w}}{'metric':<12}{cols}")
    for group, metrics in table.items():
        for name, c in metrics.items():
            cells = (f"{c['base']:>10.4f}{c['tuned']:>10.4f}{c['delta']:>+9.4f}" if paired
                     else f"{c['tuned']:>10.4f}")
            lines.append(f"{group:<{w}}{name:<12}{cells}")
        counts = groups.get(group, {})
        sizes = [f"{counts[c]} {label}" for c, label in COUNTS.items() if counts.get(c)]
        if sizes:
            lines.append(f"{'':<{w}}({', '.join(sizes)})")
    return "\n".join(lines)
