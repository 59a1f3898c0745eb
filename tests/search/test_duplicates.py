"""Copies come back once (``search/duplicates.py``): the fingerprint that tells a copy, the
collapse of a ranked list, and the same through ``Index.search`` (every mode, rerank, passages,
the confidence rule), the HTTP server, ``query --server`` and the Milvus backend.

The keyword fake encoder gives exact scores: cos("cat", "cat") = 1, cos("cat", "cat dog") =
1/√2 = 0.707107, cos("cat", "cat dog sun") = 1/√3 = 0.57735, cos("cat", "cat dog sun tree") = 0.5.
It maps every Chinese text to the same vector (all unknown words share one dimension), so two
different Chinese texts have a cosine of 1: only their words can tell them apart.
"""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import ClassVar

import httpx
import numpy as np
import pytest
from typer.testing import CliRunner

from textsearch import Hit, Index
from textsearch.cli import app
from textsearch.search.duplicates import THRESHOLD, collapse, fingerprint, similarity
from textsearch.search.rerank import Reranker
from textsearch.server import create_app, running
from textsearch.testing import KeywordEncoder

ROOT = Path(__file__).resolve().parents[2]
CATS = [f"c{i:02d}" for i in range(30)]  # 30 files holding one text
OTHERS = [("two", "cat dog"), ("three", "cat dog sun"), ("four", "cat dog sun tree")]


class Calibrated(KeywordEncoder):
    calibration: ClassVar[dict[str, float]] = {"min_margin": 0.5}


class LengthReranker(Reranker):
    """Prefers longer passages: score = len(text) / 100."""

    name = "length"

    def score(self, query: str, passages: Sequence[str]) -> np.ndarray:
        return np.asarray([len(p) / 100 for p in passages], dtype=np.float32)


def hit(doc_id: str, text: str, score: float, path: str | None = None) -> Hit:
    return Hit(doc_id, score, text, {"path": path} if path else {}, 0, 1, 0, len(text))


def names(hit: Hit) -> list[str]:
    """The documents a hit stands for: itself, then its copies."""
    return [hit.doc_id] + [copy["doc_id"] for copy in hit.copies]


@pytest.fixture
def idx(tmp_path: Path) -> Iterator[Index]:
    with Index.create(tmp_path / "idx", encoder=KeywordEncoder()) as index:
        index.add([{"id": c, "text": "Cat!" if i % 2 else "cat", "path": f"{c}.txt"} for i, c in enumerate(CATS)]
                  + [{"id": i, "text": t, "path": f"{i}.txt"} for i, t in OTHERS])
        yield index


# --- what a copy is ------------------------------------------------------------------------------
def test_fingerprint_ignores_width_case_whitespace_punctuation_emoji_and_list_numbers() -> None:
    same = ["很好！", "很好", "很好😀", " 很 好 。", "2、很好", "（3）很好", "一、很好"]
    assert {fingerprint(t) for t in same} == {"很好"}
    assert fingerprint("ＴＨＥ　Ｃａｔ，ｄｏｇ！") == fingerprint("the cat dog") == "the cat dog"
    assert fingerprint("1. 做工差") == fingerprint("１．做工差") == "做工差"


def test_fingerprint_keeps_what_changes_the_meaning() -> None:
    assert fingerprint("价格3.5元") == "价格3.5元" != fingerprint("价格35元")
    assert fingerprint("2、3天就到了") == "2、3天就到了"  # 2 or 3 days, not a list number
    assert fingerprint("cat dog") != fingerprint("catdog")
    assert fingerprint("降价50%") != fingerprint("降价50")
    assert fingerprint("!!!") == "!!!" != fingerprint("???")  # nothing but punctuation: itself
    assert fingerprint("服务很好") != fingerprint("质量很好")


def test_similarity_is_one_exactly_for_copies() -> None:
    assert similarity("很好！", "很好") == 1.0
    # fingerprints 性价比很高 / 性价比高: 4 matching characters, 2 × 4 / (5 + 4) = 0.888889
    assert round(similarity("性价比很高。", "性价比高"), 6) == 0.888889


def test_collapse_keeps_the_best_ranked_and_lists_the_others_in_rank_order() -> None:
    hits = [hit("a", "很好！", 0.9, "a.txt"), hit("x", "质量很好", 0.8), hit("b", "很好", 0.7, "b.txt"),
            hit("c", "很好😀", 0.6)]
    out = collapse(hits)
    assert [(h.doc_id, h.score) for h in out] == [("a", 0.9), ("x", 0.8)]
    assert out[0].copies == [{"doc_id": "b", "path": "b.txt", "passage": 0, "location": None},
                             {"doc_id": "c", "path": None, "passage": 0, "location": None}]
    assert out[1].copies == [] and hits[0].copies == []  # the input is not changed
    assert collapse(out) == out  # collapsed twice: the same


def test_a_lower_threshold_merges_near_copies_the_default_keeps_apart() -> None:
    hits = [hit("a", "性价比很高", 0.9), hit("b", "性价比高", 0.8)]
    assert [names(h) for h in collapse(hits)] == [["a"], ["b"]]
    assert [names(h) for h in collapse(hits, threshold=0.888889)] == [["a"], ["b"]]  # 0.8888… < 0.888889
    assert [names(h) for h in collapse(hits, threshold=0.888888)] == [["a", "b"]]


# --- through Index.search -----------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["dense", "keyword", "hybrid"])
def test_identical_files_come_back_as_one_hit_and_k_distinct_hits_still_come(idx: Index, mode: str) -> None:
    # 4 hits are read first, all copies of "cat"; then 16, the same; then 64: the 34 there are
    hits = idx.search("cat", k=4, mode=mode, include_low_confidence=True)
    assert [h.doc_id for h in hits[1:]] == ["two", "three", "four"]
    assert sorted(names(hits[0])) == CATS
    assert {copy["path"] for copy in hits[0].copies} == {f"{c}.txt" for c in CATS} - {f"{hits[0].doc_id}.txt"}
    assert [h.copies for h in hits[1:]] == [[], [], []]


@pytest.mark.parametrize("mode", ["dense", "keyword", "hybrid"])
def test_without_copies_the_ranking_is_the_same_either_way(tmp_path: Path, mode: str) -> None:
    with Index.create(tmp_path / "distinct", encoder=KeywordEncoder()) as index:
        index.add([{"id": f"d{i}", "text": text} for i, text in enumerate(
            ["cat", "cat dog", "cat dog sun", "dog sun", "sun tree cat", "tree", "cat cat fish", "fish water"])])
        for k in (1, 3, 8):
            assert index.search("cat sun", k=k, mode=mode, include_low_confidence=True) == \
                   index.search("cat sun", k=k, mode=mode, include_low_confidence=True, collapse=False)


def test_collapse_false_returns_every_copy(idx: Index) -> None:
    hits = idx.search("cat", k=4, collapse=False)
    assert len(hits) == 4 and {h.doc_id for h in hits} <= set(CATS)
    assert [h.score for h in hits] == [1.0, 1.0, 1.0, 1.0] and all(h.copies == [] for h in hits)


def test_dense_scores_are_the_best_copys(idx: Index) -> None:
    hits = idx.search("cat", k=4)
    assert [h.score for h in hits] == [1.0, 0.707107, 0.57735, 0.5]


def test_passages_ungrouped_collapse_too(idx: Index) -> None:
    hits = idx.search("cat", k=2, group=False)
    assert sorted(names(hits[0])) == CATS and hits[1].doc_id == "two"


def test_reranked_hits_are_distinct_and_keep_their_copies(idx: Index) -> None:
    # the reranker reads 4 distinct candidates: "cat dog sun tree" is longest, a "cat" shortest
    hits = idx.search("cat", k=4, rerank=LengthReranker(), candidates=4, rerank_weight=1.0)
    assert [h.doc_id for h in hits[:3]] == ["four", "three", "two"]
    assert sorted(names(hits[3])) == CATS
    assert [h.rerank_score for h in hits] == [0.16, 0.11, 0.07, 0.03 if hits[3].text == "cat" else 0.04]


def test_a_collapsed_hit_is_judged_by_the_confidence_rule_as_its_best_copy(tmp_path: Path) -> None:
    with Index.create(tmp_path / "calibrated", encoder=Calibrated()) as index:
        index.add([{"id": "a", "text": "cat"}, {"id": "b", "text": "Cat!"}, {"id": "c", "text": "dog"}])
        collapsed = index.search("cat", k=2, include_low_confidence=True)
        every = index.search("cat", k=2, include_low_confidence=True, collapse=False)
        assert (collapsed[0].score, collapsed[0].margin, collapsed[0].low_confidence) == \
               (every[0].score, every[0].margin, every[0].low_confidence)
        assert sorted(names(collapsed[0])) == ["a", "b"] and collapsed[1].doc_id == "c"
        assert index.search("sun", k=2) == []  # no confident match is still no match


def test_different_texts_are_never_merged_even_with_equal_vectors(tmp_path: Path) -> None:
    reviews = ["很好", "很好！", "服务很好", "质量很好", "很好很好"]  # one vector for all of them
    with Index.create(tmp_path / "zh", encoder=KeywordEncoder()) as index:
        index.add([{"id": f"r{i}", "text": text} for i, text in enumerate(reviews)])
        hits = index.search("很好", k=5, include_low_confidence=True)
        assert sorted(sorted(names(h)) for h in hits) == [["r0", "r1"], ["r2"], ["r3"], ["r4"]]
        assert {h.score for h in hits} == {1.0}


def test_the_option_is_checked(idx: Index) -> None:
    from textsearch.errors import InvalidArgumentError

    with pytest.raises(InvalidArgumentError, match="collapse is true or false"):
        idx.search("cat", collapse="no")


# --- the server, the CLI, Milvus ---------------------------------------------------------------
@pytest.fixture
def url(tmp_path: Path) -> Iterator[str]:
    root = tmp_path / "indexes"
    with Index.create(root / "pets", encoder=KeywordEncoder()) as index:
        index.add([{"id": f"{c}.txt", "text": "Cat!", "lang": "en"} for c in "abc"]
                  + [{"id": "dog.txt", "text": "cat dog", "lang": "en"}])
    with running(create_app(root, encoder=KeywordEncoder())) as base:
        yield base


def test_server_json_carries_the_copies(url: str) -> None:
    # the filter makes the search exact, so the three equal scores keep the order they were added in
    body = {"query": "cat", "k": 2, "where": ["lang = en"], "include_low_confidence": True}
    hits = httpx.post(f"{url}/indexes/pets/search", json=body).json()["hits"]
    assert [(h["doc_id"], [c["doc_id"] for c in h["copies"]]) for h in hits] == [("a.txt", ["b.txt", "c.txt"]),
                                                                             ("dog.txt", [])]
    every = httpx.post(f"{url}/indexes/pets/search", json={**body, "collapse": False}).json()["hits"]
    assert [h["doc_id"] for h in every] == ["a.txt", "b.txt"] and every[0]["copies"] == []
    batch = httpx.post(f"{url}/indexes/pets/search/batch", json={"queries": ["cat"], "k": 2, "where": ["lang = en"],
                                                                  "include_low_confidence": True}).json()
    assert batch["results"][0]["hits"] == hits
    assert httpx.post(f"{url}/indexes/pets/search", json={**body, "collapse": "no"}).status_code == 400


def test_cli_json_and_table_show_the_copies(url: str) -> None:
    args = ["query", "cat", "-k", "2", "--where", "lang = en", "--show-low", "--server", url, "--index", "pets"]
    result = CliRunner().invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [[c["doc_id"] for c in row["copies"]] for row in rows] == [["b.txt", "c.txt"], []]
    table = CliRunner().invoke(app, args)
    assert table.exit_code == 0, table.output
    assert "(3 copies: a.txt, b.txt, c.txt)" in table.stdout
    every = CliRunner().invoke(app, [*args, "--all-copies", "--json"])
    assert [json.loads(line)["doc_id"] for line in every.stdout.splitlines()] == ["a.txt", "b.txt"]
    assert "copies" not in CliRunner().invoke(app, [*args, "--all-copies"]).stdout


def test_cli_names_at_most_five_copies() -> None:
    from textsearch.cli import _copies

    many = Hit("a", 1.0, "t", {}, 0, 1, 0, 1, copies=[{"doc_id": f"{i}.txt"} for i in "bcdefg"])
    assert _copies(many) == "(7 copies: a, b.txt, c.txt, d.txt, e.txt and 2 more)"


@pytest.mark.engine
def test_milvus_collapses_the_same_way(tmp_path: Path) -> None:
    pytest.importorskip("pymilvus")
    pytest.importorskip("milvus_lite")
    with Index.create(tmp_path / "m", encoder=KeywordEncoder(), backend="milvus") as index:
        index.add([{"id": c, "text": "Cat!", "path": f"{c}.txt"} for c in CATS[:12]]
                  + [{"id": i, "text": t, "path": f"{i}.txt"} for i, t in OTHERS])
        for mode in ("dense", "keyword", "hybrid"):
            hits = index.search("cat", k=4, mode=mode, include_low_confidence=True)
            assert [h.doc_id for h in hits[1:]] == ["two", "three", "four"], mode
            assert sorted(names(hits[0])) == CATS[:12], mode
            assert {c["path"] for c in hits[0].copies} == {f"{c}.txt" for c in CATS[:12]} - {f"{hits[0].doc_id}.txt"}
        every = index.search("cat", k=4, collapse=False, include_low_confidence=True)
        assert len(every) == 4 and {h.doc_id for h in every} <= set(CATS[:12])


def test_the_docs_show_the_measured_tables_and_the_shipped_rule() -> None:
    """docs/search.md's tables are the ones ``bench_duplicates.py --tables`` prints from its
    results file, which was measured with the rule that ships."""
    spec = importlib.util.spec_from_file_location("bench_duplicates", ROOT / "benchmarks" / "bench_duplicates.py")
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    result = json.loads((ROOT / "benchmarks" / "results" / "duplicates.json").read_text(encoding="utf-8"))
    assert result["shipped_threshold"] == THRESHOLD
    docs = (ROOT / "docs" / "search.md").read_text(encoding="utf-8")
    for table in bench.tables(result).split("\n\n"):
        assert table in docs
