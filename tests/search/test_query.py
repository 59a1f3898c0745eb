"""The query side: keyword and hybrid modes, filters applied before the top k, confidence
thresholds — through ``Index.search`` with the keyword fake encoder (exact scores)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import KeywordEncoder
from textsearch import Hit, Index
from textsearch.search import confidence
from textsearch.storage import reader
from textsearch.errors import InvalidArgumentError
from textsearch.search.query import fuse


class CalibratedEncoder(KeywordEncoder):
    calibration = {"min_margin": 0.5}


@pytest.fixture
def idx(tmp_path: Path, encoder) -> Index:
    return Index.create(tmp_path / "idx", encoder=encoder)


def ids(hits: list[Hit]) -> list[str]:
    return [h.doc_id for h in hits]


def test_keyword_finds_a_chinese_word_inside_a_longer_run(idx: Index) -> None:
    idx.add([{"id": "bio", "text": "北京大学生物系的实验室"}, {"id": "sky", "text": "今天天气很好"}])
    hits = idx.search("生物", mode="keyword")
    assert ids(hits) == ["bio"]
    assert hits[0].dense_score is not None  # the cosine travels with every hit


def test_keyword_index_follows_updates_and_deletes(idx: Index) -> None:
    idx.add([{"id": "d", "text": "an apple a day"}])
    assert ids(idx.search("apple", mode="keyword")) == ["d"]
    idx.add([{"id": "d", "text": "a banana a day"}])  # same id: replaced
    assert idx.search("apple", mode="keyword") == []
    assert ids(idx.search("banana", mode="keyword")) == ["d"]
    idx.delete(["d"])
    assert idx.search("banana", mode="keyword") == []
    assert idx.store.keyword_count() == idx.store.passage_count() == 0


def test_reciprocal_rank_fusion_arithmetic() -> None:
    def hit(doc: str, score: float) -> Hit:
        return Hit(doc, score, doc, {}, 0, 1, 0, 1)

    # x: 1/61; y: 1/62 + 1/61 = 0.032526; z: 1/62
    fused = fuse([[hit("x", 0.9), hit("y", 0.8)], [hit("y", 7.0), hit("z", 3.0)]], rrf_k=60)
    assert ids(fused) == ["y", "x", "z"]
    assert [h.score for h in fused] == [round(1 / 62 + 1 / 61, 6), round(1 / 61, 6), round(1 / 62, 6)]
    assert fused[1].dense_score == 0.9  # a dense hit keeps its cosine
    with pytest.raises(InvalidArgumentError):
        fuse([], rrf_k=0)


def test_hybrid_finds_what_either_mode_finds(idx: Index) -> None:
    # "zk7741" is unknown to the fake encoder (all unknown words share one dimension), so dense
    # search cannot tell the two codes apart; the keyword side can
    idx.add([{"id": "a", "text": "order ZK7741 cat"}, {"id": "b", "text": "order ZK7714 cat"},
             {"id": "c", "text": "dog"}])
    assert ids(idx.search("ZK7741", mode="keyword")) == ["a"]
    assert ids(idx.search("ZK7741", mode="hybrid", k=1)) == ["a"]
    with pytest.raises(InvalidArgumentError, match="search mode"):
        idx.search("cat", mode="fuzzy")


@pytest.mark.parametrize("exact_limit", [2_000, 0])  # exact search over the allowed set / hnswlib's filter
def test_selective_filter_still_returns_k_hits(idx: Index, monkeypatch, exact_limit: int) -> None:
    monkeypatch.setattr(reader, "EXACT_LIMIT", exact_limit)
    docs = [{"id": f"d{i}", "text": "cat" if i % 2 else "cat dog", "year": 2000 + i % 25} for i in range(300)]
    idx.add(docs)
    # two texts, 150 copies each: every copy comes back (collapse=False), as the filter is tested
    hits = idx.search("cat", k=5, filter={"year": {"$gte": 2024}}, collapse=False)  # 12 of 300 documents
    assert len(hits) == 5 and all(h.metadata["year"] == 2024 for h in hits)
    both = idx.search("cat", k=20, filter={"year": 2024, "lang": {"$in": ["en"]}}, collapse=False)
    assert len(both) == 12
    assert idx.search("cat", filter={"year": {"$gt": 2030}}) == []


def test_filters_in_keyword_and_hybrid_modes(idx: Index) -> None:
    idx.add([{"id": "old", "text": "apple pie", "year": 2010}, {"id": "new", "text": "apple cake", "year": 2022}])
    for mode in ("keyword", "hybrid", "dense"):
        assert ids(idx.search("apple", mode=mode, filter={"year": {"$gte": 2020}})) == ["new"]


def test_filter_injection_fails_safely(idx: Index) -> None:
    idx.add([{"id": "a", "text": "cat", "lang": "zh"}])
    assert idx.search("cat", filter={"lang": "zh'; DROP TABLE documents; --"}) == []
    assert idx.search("cat", mode="keyword", filter={"lang": '") OR 1=1 --'}) == []
    with pytest.raises(InvalidArgumentError, match="unknown"):
        idx.search("cat", filter={"lang = 'zh' OR 1": "x"})
    assert idx.count() == 1 and ids(idx.search("cat")) == ["a"]


def test_min_score_marks_low_confidence_hits_and_refuses_when_none_passes(idx: Index) -> None:
    idx.add([{"id": "c", "text": "cat"}, {"id": "cd", "text": "cat dog"}, {"id": "f", "text": "fish"}])
    # cos("cat", c) = 1, cd = 0.7071, f = 0: one confident match, so every hit is shown, marked
    marked = idx.search("cat", min_score=0.8)
    assert [(h.doc_id, h.low_confidence) for h in marked] == [("c", False), ("cd", True), ("f", True)]
    assert idx.search("fish water", min_score=0.8) == []  # best cos = 0.7071: "no confident match"
    kept = idx.search("fish water", min_score=0.8, include_low_confidence=True)  # unless asked for
    assert [h.low_confidence for h in kept] == [True, True, True]


def test_calibrated_threshold_is_the_default(tmp_path: Path) -> None:
    idx = Index.create(tmp_path / "cal", encoder=CalibratedEncoder())
    idx.add([{"id": "c", "text": "cat"}, {"id": "d", "text": "dog"}])
    # margin = cosine − the query's background level, which is under 0.5 for "cat" here
    level = float(confidence.levels(idx.encoder.encode_queries(["cat"]), idx.background)[0])
    assert 0.0 <= level < 0.5
    hits = idx.search("cat")  # cat: margin 1 − level ≥ 0.5; dog: 0 − level < 0.5, shown marked
    assert [(h.doc_id, h.margin, h.low_confidence) for h in hits] == [
        ("c", round(1.0 - level, 6), False), ("d", round(-level, 6), True)]
    assert idx.search("dog cat", min_score=2.0) == []  # an explicit cosine threshold wins
    assert [h.low_confidence for h in idx.search("cat", min_margin=-1.0)] == [False, False]  # and a margin


class CountingEncoder(KeywordEncoder):
    """Counts query-embedding calls: a batch must be embedded in one."""

    def __init__(self) -> None:
        super().__init__()
        self.query_calls = 0

    def encode_queries(self, texts):
        self.query_calls += 1
        return super().encode_queries(texts)


@pytest.mark.parametrize("mode", ["dense", "keyword", "hybrid"])
def test_search_many_equals_one_search_per_query(tmp_path: Path, mode: str) -> None:
    """The batch API answers each query exactly as ``search`` does, embedding them in one call."""
    encoder = CountingEncoder()
    with Index.create(tmp_path / "idx", encoder=encoder) as idx:
        idx.add([{"id": "c", "text": "cat"}, {"id": "cd", "text": "cat dog"}, {"id": "f", "text": "fish",
                 "year": 2020}, {"id": "r", "text": "red apple"}])
        queries = ["cat", "fish", "red apple", "dog cat"]
        single = [idx.search(q, mode=mode, filter={"year": {"$ne": 1999}}) for q in queries]
        encoder.query_calls = 0
        many = idx.search_many(queries, mode=mode, filter={"year": {"$ne": 1999}})
        assert many == single and encoder.query_calls == 1
        assert idx.search_many([]) == []
        with pytest.raises(InvalidArgumentError, match="empty"):
            idx.search_many(["cat", "  "])
