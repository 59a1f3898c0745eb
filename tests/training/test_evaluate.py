"""evaluate.py: metrics worked out by hand, pair files in every format, exact retrieval and
classification with the keyword fake encoder, and a built index judged by qrels.

KeywordEncoder embeds a text as its normalised bag of known words, so every cosine below is
computed in a comment: cos("cat", "cat dog") = 1/sqrt(2) = 0.7071, cos("cat", "dog") = 0.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Any

import pytest

from textsearch.errors import InvalidArgumentError
from textsearch.training.evaluate import (
    best_threshold,
    compare,
    evaluate_file,
    evaluate_index,
    evaluate_pair_classification,
    evaluate_pairs,
    evaluate_retrieval,
    format_table,
    mrr_at_k,
    ndcg_at_k,
    ranking_metrics,
    recall_at_k,
)
from textsearch.index import Index
from textsearch.training.pairs import IRSet, PairSet, pairs_to_ir, read_pairs
from textsearch.testing import VOCAB, KeywordEncoder

DEMO_QUERIES = Path(__file__).resolve().parents[2] / "corpora" / "demo_queries.jsonl"
L3, L6 = math.log2(3), math.log2(6)


def write_pairs(path: Path, rows: list[dict[str, Any]]) -> Path:
    """Rows as JSONL, or as CSV/TSV with the union of the keys as header."""
    if path.suffix == ".jsonl":
        path.write_text(
            "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8"
        )
        return path
    columns = list(dict.fromkeys(k for r in rows for k in r))
    with open(path, "w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(
            fh, columns, delimiter="\t" if path.suffix == ".tsv" else ",", lineterminator="\n"
        )
        writer.writeheader()
        writer.writerows(rows)
    return path


# --- metrics ---------------------------------------------------------------------------------
def test_metrics_by_hand() -> None:
    # ranked [a, b, c], relevant {b, c}: R@1 = 0, R@5 = 2/2 = 1, MRR@10 = 1/2,
    # nDCG@10 = (1/log2(3) + 1/log2(4)) / (1 + 1/log2(3)) = 1.1309 / 1.6309 = 0.6934
    ranked, relevant = ["a", "b", "c"], {"b", "c"}
    assert recall_at_k(ranked, relevant, 1) == 0.0
    assert recall_at_k(ranked, relevant, 5) == 1.0
    assert mrr_at_k(ranked, relevant, 10) == 0.5
    assert ndcg_at_k(ranked, relevant, 10) == pytest.approx((1 / L3 + 0.5) / (1 + 1 / L3))
    assert ndcg_at_k(ranked, relevant, 10) == pytest.approx(0.6934, abs=1e-4)


def test_metrics_with_an_unretrieved_relevant_doc_and_cutoffs() -> None:
    # ranked [x, a, y], relevant {a, z}; z never comes: R@1 = 0, R@5 = 1/2, MRR = 1/2,
    # nDCG = (1/log2(3)) / (1 + 1/log2(3)) = 0.6309 / 1.6309 = 0.3869
    assert recall_at_k(["x", "a", "y"], {"a", "z"}, 5) == 0.5
    assert mrr_at_k(["x", "a", "y"], {"a", "z"}) == 0.5
    assert ndcg_at_k(["x", "a", "y"], {"a", "z"}) == pytest.approx((1 / L3) / (1 + 1 / L3))
    # the only relevant doc at rank 11: outside every cutoff of 10
    late = [f"n{i}" for i in range(10)] + ["hit"]
    assert (
        recall_at_k(late, {"hit"}, 10),
        mrr_at_k(late, {"hit"}, 10),
        ndcg_at_k(late, {"hit"}, 10),
    ) == (0, 0, 0)
    # 12 relevant docs, the first 10 ranked all relevant: the ideal DCG is capped at 10 → nDCG 1
    many = {f"r{i}" for i in range(12)}
    assert ndcg_at_k([f"r{i}" for i in range(10)], many, 10) == pytest.approx(1.0)
    assert recall_at_k([f"r{i}" for i in range(10)], many, 10) == pytest.approx(10 / 12)
    assert recall_at_k(["a"], set(), 1) == 0.0


def test_ranking_metrics_average_over_queries() -> None:
    # query 1: hit at rank 1 (all 1); query 2: ranked [a, b, c], relevant {b, c} (values above)
    m = ranking_metrics([["h"], ["a", "b", "c"]], [{"h"}, {"b", "c"}])
    assert m["recall@1"] == 0.5 and m["recall@5"] == 1.0 and m["recall@10"] == 1.0
    assert m["mrr@10"] == 0.75  # (1 + 1/2) / 2
    assert m["ndcg@10"] == pytest.approx((1 + 0.6934) / 2, abs=1e-4)
    assert m["n_queries"] == 2
    assert set(ranking_metrics([["h"]], [{"h"}], ks=(1, 3))) == {
        "recall@1",
        "recall@3",
        "mrr@3",
        "ndcg@3",
        "n_queries",
    }
    with pytest.raises(InvalidArgumentError):
        ranking_metrics([], [])


# --- reading pair files ------------------------------------------------------------------------
FORMAT_ROWS = {
    "triplet": [
        {
            "anchor": "可爱的宝宝",
            "positive": "惹人喜欢的孩子",
            "negative": "坏掉的玩具",
            "lang": "zh",
        },
        {"anchor": "cute baby", "positive": "a lovely child", "negative": "", "lang": "en"},
    ],
    "label": [
        {"sentence1": "cute baby", "sentence2": "a lovely child", "label": 1, "lang": "en"},
        {"sentence1": "cute baby", "sentence2": "a broken toy", "label": 0, "lang": "en"},
    ],
    "score": [
        {"sentence1": "cute baby", "sentence2": "a lovely child", "score": 0.9},
        {"sentence1": "cute baby", "sentence2": "a broken toy", "score": 0.25},
    ],
}


@pytest.mark.parametrize("suffix", [".jsonl", ".csv", ".tsv"])
@pytest.mark.parametrize("fmt", list(FORMAT_ROWS))
def test_read_pairs_detects_each_format(tmp_path: Path, fmt: str, suffix: str) -> None:
    pairs = read_pairs(write_pairs(tmp_path / f"pairs{suffix}", FORMAT_ROWS[fmt]))
    assert isinstance(pairs, PairSet)
    assert pairs.format == fmt and pairs.columns == list(FORMAT_ROWS[fmt][0])
    assert pairs.path.endswith(f"pairs{suffix}") and len(pairs.rows) == 2
    first, second = pairs.rows
    if fmt == "triplet":
        assert (
            first["negative"] == ["坏掉的玩具"] and second["negative"] == []
        )  # empty cell: no negative
        assert (first["anchor"], first["positive"], first["lang"]) == (
            "可爱的宝宝",
            "惹人喜欢的孩子",
            "zh",
        )
    elif fmt == "label":
        assert (first["label"], second["label"]) == (1, 0) and isinstance(first["label"], int)
        assert first["lang"] == "en"
    else:
        assert (first["score"], second["score"]) == (0.9, 0.25)


def test_read_pairs_negative_lists(tmp_path: Path) -> None:
    jsonl = write_pairs(
        tmp_path / "p.jsonl", [{"anchor": "a", "positive": "b", "negative": ["c", "d"]}]
    )
    assert read_pairs(jsonl).rows[0]["negative"] == ["c", "d"]
    # sentence-transformers style numbered columns are gathered in order
    path = tmp_path / "p.csv"
    path.write_text(
        "anchor,positive,negative_2,negative_1\na,b,second,first\nc,d,,\n", encoding="utf-8"
    )
    rows = read_pairs(path).rows
    assert rows[0]["negative"] == ["first", "second"] and rows[1]["negative"] == []
    assert "negative_1" not in rows[0]


def test_read_pairs_keeps_quotes_in_tsv_and_newlines_in_csv(tmp_path: Path) -> None:
    tsv = tmp_path / "p.tsv"
    tsv.write_text(
        'sentence1\tsentence2\tscore\n"引号" start\the said "hi\t0.5\n', encoding="utf-8"
    )
    assert read_pairs(tsv).rows[0]["sentence1"] == '"引号" start'
    csv_path = tmp_path / "p.csv"
    csv_path.write_text('anchor,positive\n"two\nlines",b\nc,\n', encoding="utf-8")
    with pytest.raises(
        InvalidArgumentError, match=r"p\.csv line 4: column 'positive' is missing or empty"
    ):
        read_pairs(csv_path)


@pytest.mark.parametrize(
    "name, content, message",
    [
        (
            "pairs.jsonl",
            '{"anchor": "a", "positive": "b"}\n\n{"anchor": "c"}\n',
            r"pairs\.jsonl line 3: column 'positive' is missing or empty",
        ),
        (
            "pairs.jsonl",
            '{"anchor": "a", "positive": "b"}\n{"anchor": "c", "positive": 7}\n',
            r"pairs\.jsonl line 2: column 'positive' must be text",
        ),
        (
            "pairs.jsonl",
            '{"anchor": "a", "positive": "b", "negative": [1]}\n',
            r"pairs\.jsonl line 1: column 'negative' must be text or a list",
        ),
        (
            "pairs.jsonl",
            '{"anchor": "a", "positive": "b"}\n{"anchor": "c", "positive": "d"\n',
            r"pairs\.jsonl line 2: invalid JSON",
        ),
        ("pairs.jsonl", '["a", "b"]\n', r"pairs\.jsonl line 1: expected a JSON object"),
        (
            "pairs.csv",
            "sentence1,sentence2,label\na,b,1\nc,d,2\n",
            r"pairs\.csv line 3: column 'label' must be 1 or 0, got '2'",
        ),
        (
            "pairs.tsv",
            "sentence1\tsentence2\tlabel\na\tb\tyes\n",
            r"pairs\.tsv line 2: column 'label' must be 1 or 0",
        ),
        (
            "pairs.jsonl",
            '{"sentence1": "a", "sentence2": "b", "score": 1.5}\n',
            r"pairs\.jsonl line 1: column 'score' must be a number in \[0, 1\]",
        ),
        (
            "pairs.tsv",
            "sentence1\tsentence2\tscore\na\tb\t0.3\nc\td\t-0.1\n",
            r"pairs\.tsv line 3: column 'score'",
        ),
        (
            "pairs.csv",
            "sentence1,sentence2,score\na,b,\n",
            r"pairs\.csv line 2: column 'score' is missing or empty",
        ),
        (
            "pairs.jsonl",
            '{"sentence1": "a", "sentence2": "b", "score": "high"}\n',
            r"line 1: column 'score'",
        ),
        (
            "pairs.tsv",
            "anchor\tpositive\na\tb\tc\n",
            r"pairs\.tsv line 2: more fields than the header",
        ),
        (
            "pairs.jsonl",
            '{"query": "a", "answer": "b"}\n',
            r"columns query, answer match no pair format",
        ),
        ("pairs.jsonl", "\n", r"holds no pairs"),
        ("pairs.txt", "a\tb\n", r"\.jsonl, \.csv or \.tsv"),
    ],
)
def test_read_pairs_rejects_malformed_rows(
    tmp_path: Path, name: str, content: str, message: str
) -> None:
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    with pytest.raises(InvalidArgumentError, match=message):
        read_pairs(path)


def test_read_pairs_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgumentError, match="not found"):
        read_pairs(tmp_path / "nope.jsonl")


# --- pairs → IR set ------------------------------------------------------------------------------
def test_pairs_to_ir_triplets_dedup_texts_and_merge_anchors() -> None:
    rows = [
        {"anchor": "q1", "positive": "p1", "negative": ["n1"]},
        {"anchor": "q1", "positive": "p2", "negative": "n1"},  # a plain-text negative works too
        {
            "anchor": "q2",
            "positive": "n1",
        },  # one query's negative is another's answer: one document
    ]
    ir = pairs_to_ir(rows, distractors=["p2", "extra"])
    assert ir == IRSet(
        queries=["q1", "q2"], corpus=["p1", "n1", "p2", "extra"], relevant=[{0, 2}, {1}]
    )


def test_pairs_to_ir_labels_and_scores() -> None:
    labels = [
        {"sentence1": "s1", "sentence2": "a", "label": 1},
        {"sentence1": "s1", "sentence2": "b", "label": 0},
        {"sentence1": "s2", "sentence2": "b", "label": 1},
        {
            "sentence1": "s3",
            "sentence2": "c",
            "label": 0,
        },  # no positive: s3 is no query, c is a document
    ]
    assert pairs_to_ir(labels) == IRSet(["s1", "s2"], ["a", "b", "c"], [{0}, {1}])
    scores = [
        {"sentence1": "s1", "sentence2": "a", "score": 0.5},  # >= 0.5 is relevant
        {"sentence1": "s1", "sentence2": "b", "score": 0.49},
        {"sentence1": "s2", "sentence2": "a", "score": 1.0},
    ]
    assert pairs_to_ir(scores) == IRSet(["s1", "s2"], ["a", "b"], [{0}, {0}])


# --- retrieval with the keyword encoder -----------------------------------------------------------
TRIPLETS = [
    {"anchor": "cat sleep", "positive": "cat sleep sun", "negative": "dog", "lang": "en"},
    {"anchor": "dog water", "positive": "dog", "negative": "dog water fish", "lang": "en"},
    {"anchor": "rain", "positive": "weather", "negative": "rain sun", "lang": "zh"},
]


def test_evaluate_retrieval_exact(encoder: KeywordEncoder) -> None:
    ir = pairs_to_ir(TRIPLETS)
    # corpus: 0 "cat sleep sun", 1 "dog" (row 1's negative is row 2's answer), 2 "dog water fish",
    #         3 "weather", 4 "rain sun"
    assert ir.corpus == ["cat sleep sun", "dog", "dog water fish", "weather", "rain sun"]
    # "cat sleep": cos to doc 0 = 2/(sqrt2*sqrt3) = 0.8165, the rest 0 → answer at rank 1
    # "dog water": doc 2 = 2/(sqrt2*sqrt3) = 0.8165 beats doc 1 = 1/sqrt2 = 0.7071 → answer at rank 2
    # "rain": doc 4 = 0.7071, the rest 0 (ties keep corpus order: 0, 1, 2, 3) → "weather" at rank 5
    m = evaluate_retrieval(encoder, ir)
    assert m["recall@1"] == pytest.approx(1 / 3)
    assert m["recall@5"] == 1.0 and m["recall@10"] == 1.0
    assert m["mrr@10"] == pytest.approx((1 + 1 / 2 + 1 / 5) / 3)  # 0.5667
    assert m["ndcg@10"] == pytest.approx(
        (1 + 1 / L3 + 1 / L6) / 3
    )  # (1 + 0.6309 + 0.3869) / 3 = 0.6726
    assert (m["n_queries"], m["n_corpus"]) == (3, 5)
    assert evaluate_retrieval(encoder, ir, ks=(1, 4))["recall@4"] == pytest.approx(2 / 3)
    with pytest.raises(InvalidArgumentError, match="no query"):
        evaluate_retrieval(encoder, pairs_to_ir([{"sentence1": "a", "sentence2": "b", "label": 0}]))


def test_evaluate_pairs_groups_by_lang_and_embeds_each_text_once(encoder: KeywordEncoder) -> None:
    report = evaluate_pairs(encoder, TRIPLETS)
    assert set(report) == {"all", "en", "zh", "classification", "n_queries", "n_corpus"}
    assert (report["n_queries"], report["n_corpus"]) == (3, 5)
    # en alone: corpus "cat sleep sun", "dog", "dog water fish"; ranks 1 and 2 as above
    en = report["en"]
    assert (en["recall@1"], en["mrr@10"], en["n_corpus"]) == (0.5, 0.75, 3)
    assert en["ndcg@10"] == pytest.approx((1 + 1 / L3) / 2)
    # zh alone: corpus "weather", "rain sun"; "rain" ranks "rain sun" (0.7071) above "weather" (0)
    zh = report["zh"]
    assert (zh["recall@1"], zh["recall@5"], zh["mrr@10"], zh["n_queries"]) == (0.0, 1.0, 0.5, 1)
    # 5 distinct passages, each embedded once for all groups and the classification
    assert encoder.calls == 5
    assert report["classification"]["n_pairs"] == 6


def test_single_language_has_no_groups(encoder: KeywordEncoder) -> None:
    rows = [{**r, "lang": "en"} for r in TRIPLETS]
    assert set(evaluate_pairs(encoder, rows)) == {"all", "classification", "n_queries", "n_corpus"}


# --- pair classification --------------------------------------------------------------------------
def test_best_threshold_by_hand() -> None:
    # sorted: 0.1 (0), 0.35 (1), 0.4 (0), 0.8 (1); candidates 0.1, 0.225, 0.375, 0.6, above 0.8
    # at 0.225: matches 0.35, 0.4, 0.8 → tp 2, fp 1, tn 1: accuracy 3/4, F1 = 4/(4+1) = 0.8
    # at 0.6: tp 1, tn 2, fn 1 → accuracy 3/4, F1 = 2/3; the F1 breaks the tie
    best = best_threshold([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1])
    assert best == pytest.approx({"accuracy": 0.75, "f1": 0.8, "threshold": 0.225})
    # one class only: everything at or above the lowest score is a match
    assert best_threshold([0.3, 0.9], [1, 1]) == pytest.approx(
        {"accuracy": 1.0, "f1": 1.0, "threshold": 0.3}
    )
    with pytest.raises(InvalidArgumentError):
        best_threshold([], [])


def test_pair_classification_with_known_cosines(encoder: KeywordEncoder) -> None:
    rows = [
        {"sentence1": "cat", "sentence2": "cat", "label": 1},  # cos 1
        {"sentence1": "cat", "sentence2": "cat dog", "label": 1},  # 1/sqrt2 = 0.7071
        {"sentence1": "cat", "sentence2": "cat dog fish", "label": 0},  # 1/sqrt3 = 0.5774
        {"sentence1": "cat sleep", "sentence2": "cat dog", "label": 1},  # 1/2
        {"sentence1": "cat", "sentence2": "dog", "label": 0},  # 0
    ]
    # threshold 0.6422 (between 0.5774 and 0.7071): accuracy 4/5, F1 = 4/(4+0+1) = 0.8
    # threshold 0.25 (between 0 and 0.5): accuracy 4/5, F1 = 6/(6+1+0) = 0.857 → chosen
    result = evaluate_pair_classification(encoder, rows)
    assert result["accuracy"] == pytest.approx(0.8)
    assert result["f1"] == pytest.approx(6 / 7)
    assert result["threshold"] == pytest.approx(0.25, abs=1e-6)
    assert result["n_pairs"] == 5
    # positives score 1, 0.7071, 0.5: at most 5% of 3 may be refused → none → the lowest, 0.5
    assert result["min_score"] == pytest.approx(0.5)
    # scores >= 0.5 count as matches; triplets give anchor-positive 1 and anchor-negative 0
    scored = [
        {"sentence1": "cat", "sentence2": "cat dog", "score": 0.9},
        {"sentence1": "cat", "sentence2": "dog", "score": 0.1},
    ]
    assert evaluate_pair_classification(encoder, scored)["accuracy"] == 1.0
    triplets = evaluate_pair_classification(encoder, TRIPLETS)
    # pairs: 0.8165 (1), 0 (0), 0.7071 (1), 0.8165 (0), 0 (1), 0.7071 (0): each score holds one
    # match and one non-match, so every threshold is right 3/6 times; F1 picks "all match" (0):
    # tp 3, fp 3 → F1 = 6 / (6 + 3) = 2/3
    # min_score: the lowest positive score (floor(0.05 × 3) = index 0 of the sorted positives 0, 0.7071, 0.8165)
    assert triplets == pytest.approx({"accuracy": 0.5, "f1": 2 / 3, "threshold": 0.0, "min_score": 0.0, "n_pairs": 6})


# --- a built index ------------------------------------------------------------------------------
DOCS = [
    {"id": "d1", "text": "cat sleep sun"},
    {"id": "d2", "text": "cat dog"},
    {"id": "d3", "text": "red apple"},
    {"id": "d4", "text": "rain weather"},
    {"id": "d5", "text": "dog house"},
]
# "cat": d2 0.7071 > d1 0.5774 → d1 at rank 2: R@1 0, R@5 1, MRR 1/2, nDCG 1/log2(3) = 0.6309
# "apple": d3 0.7071 first: all 1
# "dog": d2 and d5 both 0.7071, both relevant → ranks 1 and 2: R@1 1/2, R@5 1, MRR 1, nDCG 1
JUDGED = {"q1": ("cat", ["d1"]), "q2": ("apple", ["d3"]), "q3": ("dog", ["d2", "d5"])}


@pytest.fixture
def index(tmp_path: Path):
    idx = Index.create(tmp_path / "i", encoder=KeywordEncoder())
    idx.add(DOCS)
    yield idx
    idx.close()


def assert_index_metrics(result: dict[str, Any]) -> None:
    m = result["results"]["all"]
    assert m["recall@1"] == pytest.approx((0 + 1 + 0.5) / 3)
    assert m["recall@5"] == 1.0 and m["recall@10"] == 1.0
    assert m["mrr@10"] == pytest.approx((0.5 + 1 + 1) / 3)
    assert m["ndcg@10"] == pytest.approx((1 / L3 + 1 + 1) / 3)  # 0.8770
    assert (m["n_queries"], m["n_corpus"], m["n_missing_docs"]) == (3, 5, 0)
    assert result["model"] == "keyword-test"


@pytest.mark.parametrize("qrels_suffix", [".jsonl", ".tsv"])
def test_evaluate_index_with_queries_and_qrels(
    index: Index, tmp_path: Path, qrels_suffix: str
) -> None:
    queries = tmp_path / "queries.jsonl"
    write_pairs(
        queries,
        [{"id": q, "text": t} for q, (t, _) in JUDGED.items()] + [{"id": "q4", "query": "sun"}],
    )
    judgements = [(q, d, 1) for q, (_, docs) in JUDGED.items() for d in docs] + [
        ("q1", "d2", 0),
        ("q4", "d1", 0),
    ]
    qrels = tmp_path / f"qrels{qrels_suffix}"
    if qrels_suffix == ".jsonl":
        write_pairs(qrels, [{"query_id": q, "doc_id": d, "relevance": r} for q, d, r in judgements])
    else:
        qrels.write_text(
            "query_id\tdoc_id\trelevance\n" + "".join(f"{q}\t{d}\t{r}\n" for q, d, r in judgements)
        )
    result = evaluate_index(index, queries, qrels)  # q4 has only a 0 judgement: not evaluated
    assert_index_metrics(result)
    shallow = evaluate_index(index, queries, qrels, k=3)["results"]["all"]
    assert set(shallow) >= {"recall@1", "recall@3", "mrr@3", "ndcg@3"} and "recall@5" not in shallow


def test_evaluate_index_with_relevant_lists(index: Index, tmp_path: Path) -> None:
    queries = write_pairs(
        tmp_path / "q.jsonl", [{"query": t, "relevant": d, "note": "x"} for t, d in JUDGED.values()]
    )
    assert_index_metrics(evaluate_index(index, queries))


def test_evaluate_index_reads_the_demo_queries(tmp_path: Path) -> None:
    lines = [
        json.loads(line)
        for line in DEMO_QUERIES.read_text(encoding="utf-8").splitlines()
        if line.strip()
    ]
    ids = sorted({d for q in lines for d in q["relevant"]})
    with Index.create(tmp_path / "demo", encoder=KeywordEncoder()) as idx:
        idx.add([{"id": d, "text": f"document {d}"} for d in ids])
        m = evaluate_index(idx, DEMO_QUERIES)["results"]["all"]
    assert (m["n_queries"], m["n_corpus"], m["n_missing_docs"]) == (len(lines), len(ids), 0)
    assert 0.0 <= m["ndcg@10"] <= 1.0


def test_evaluate_index_errors(index: Index, tmp_path: Path) -> None:
    queries = write_pairs(tmp_path / "q.jsonl", [{"query": "cat", "relevant": ["corpus/d1"]}])
    with pytest.raises(InvalidArgumentError, match="none of the 1 relevant document ids"):
        evaluate_index(index, queries)
    unjudged = write_pairs(tmp_path / "u.jsonl", [{"id": "q1", "text": "cat"}])
    with pytest.raises(InvalidArgumentError, match="has a relevant document"):
        evaluate_index(index, unjudged)
    qrels = write_pairs(
        tmp_path / "qrels.jsonl", [{"query_id": "q9", "doc_id": "d1", "relevance": 1}]
    )
    with pytest.raises(InvalidArgumentError, match="query id 'q9' is not in"):
        evaluate_index(index, unjudged, qrels)
    bad = tmp_path / "qrels.tsv"
    bad.write_text("query_id\tdoc_id\trelevance\nq1\td1\t1\nq1 d1\n", encoding="utf-8")
    with pytest.raises(
        InvalidArgumentError, match=r"qrels\.tsv line 3: expected 'query_id doc_id relevance'"
    ):
        evaluate_index(index, unjudged, bad)
    bad_json = write_pairs(
        tmp_path / "qrels.jsonl", [{"query_id": "q1", "doc_id": "d1", "relevance": "x"}]
    )
    with pytest.raises(InvalidArgumentError, match=r"qrels\.jsonl line 1: column 'relevance'"):
        evaluate_index(index, unjudged, bad_json)
    empty = write_pairs(tmp_path / "e.jsonl", [{"id": "q1", "text": " "}])
    with pytest.raises(InvalidArgumentError, match=r"e\.jsonl line 1: column 'text'"):
        evaluate_index(index, empty)


# --- comparing and reporting ----------------------------------------------------------------------
def test_compare_and_format_table(tmp_path: Path) -> None:
    base = {"all": {"recall@1": 0.5, "mrr@10": 0.6, "n_queries": 3}, "n_queries": 3}
    tuned = {
        "all": {"recall@1": 0.75, "mrr@10": 0.55, "n_queries": 3},
        "zh": {"recall@1": 1.0},
        "n_queries": 3,
    }
    assert compare(base, tuned) == {
        "all": {
            "recall@1": {"base": 0.5, "tuned": 0.75, "delta": 0.25},
            "mrr@10": {"base": 0.6, "tuned": 0.55, "delta": pytest.approx(-0.05)},
        },
        "zh": {},
    }
    table = format_table(
        {
            "file": "t.jsonl",
            "model": "tuned",
            "baseline": "base",
            "results": tuned,
            "baseline_results": base,
        }
    )
    lines = table.splitlines()
    assert lines[0] == "t.jsonl — model tuned, baseline base"
    assert lines[1].split() == ["group", "metric", "baseline", "model", "Δ"]
    assert lines[2].split() == ["all", "recall@1", "0.5000", "0.7500", "+0.2500"]
    assert lines[3].split() == ["all", "mrr@10", "0.6000", "0.5500", "-0.0500"]
    assert len(lines[2]) == len(lines[3]) == len(lines[1])  # aligned columns
    assert "(3 queries)" in table
    assert format_table(compare(base, tuned)).splitlines()[1].split()[-1] == "+0.2500"
    single = format_table(tuned).splitlines()
    assert single[0].split() == ["group", "metric", "model"] and single[1].split() == [
        "all",
        "recall@1",
        "0.7500",
    ]


def test_evaluate_file_compares_two_encoders(tmp_path: Path) -> None:
    path = write_pairs(tmp_path / "t.jsonl", TRIPLETS)
    # the baseline knows neither "rain" nor "weather": both become <other>, so for it
    # cos("rain", "weather") = 1 > cos("rain", "rain sun") = 1/sqrt2 and the answer comes first:
    # recall@1 is 2/3 for the baseline against 1/3 for the model
    vocab = [w for w in VOCAB if w not in ("rain", "weather")]
    result = evaluate_file(
        path, encoder=KeywordEncoder(), baseline_encoder=KeywordEncoder("lumps", vocab)
    )
    assert (result["model"], result["baseline"], result["format"]) == (
        "keyword-test",
        "lumps",
        "triplet",
    )
    assert result["comparison"]["all"]["recall@1"] == pytest.approx(
        {"base": 2 / 3, "tuned": 1 / 3, "delta": -1 / 3}
    )
    assert result["comparison"]["zh"]["mrr@10"] == pytest.approx(
        {"base": 1.0, "tuned": 0.5, "delta": -0.5}
    )
    assert set(result["comparison"]) == {"all", "en", "zh", "classification"}
    assert "keyword-test" in format_table(result) and "Δ" in format_table(result)


def test_refusal_threshold_refuses_at_most_the_given_share() -> None:
    from textsearch.training.evaluate import refusal_threshold

    scores = [i / 100 for i in range(100)] + [0.99] * 10  # 100 positives 0.00–0.99, 10 negatives
    labels = [1] * 100 + [0] * 10
    # 5% of 100 positives may fall under: the 6th lowest positive, 0.05, refuses exactly 0.00–0.04
    assert refusal_threshold(scores, labels) == pytest.approx(0.05)
    assert refusal_threshold(scores, labels, max_refused=0.0) == 0.0
    with pytest.raises(InvalidArgumentError):
        refusal_threshold([0.3], [0])
