"""The confidence rule: a hit's margin over the query's background level (confidence.py)."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest

from textsearch.search import confidence
from textsearch.index import Index
from textsearch.testing import KeywordEncoder


def test_level_is_the_mean_of_the_ten_best_background_cosines() -> None:
    background = np.eye(12, dtype=np.float32)  # 12 orthogonal background sentences
    query = np.zeros((1, 12), dtype=np.float32)
    query[0, :2] = [0.8, 0.6]  # cosines 0.8, 0.6 and ten zeros: the ten best are 0.8, 0.6 and eight 0s
    assert confidence.levels(query, background)[0] == pytest.approx(0.14)
    assert confidence.margins([0.9, 0.14], 0.14) == [0.76, 0.0]


def test_background_file_round_trip_and_refusals(tmp_path: Path) -> None:
    vectors = np.arange(2000, dtype=np.float32).reshape(500, 4)  # 250 passages, then 250 queries
    confidence.save(tmp_path, vectors)
    assert np.array_equal(confidence.load(tmp_path, 4), vectors)
    assert confidence.load(tmp_path, 5) is None  # 8,000 bytes are not 500 rows of 5 float32
    confidence.save(tmp_path, vectors[:3])
    assert confidence.load(tmp_path, 4) is None  # another background
    (tmp_path / confidence.INDEX_FILE).write_bytes(b"")
    assert confidence.load(tmp_path, 4) is None
    assert confidence.load(tmp_path / "missing", 4) is None


def test_an_index_keeps_its_background(tmp_path: Path, encoder: KeywordEncoder) -> None:
    texts = confidence.background_texts()
    with Index.create(tmp_path / "idx", encoder=encoder) as idx:
        expected = encoder.encode_passages(texts)
        assert np.allclose(idx.background, expected)
    stored = confidence.load(tmp_path / "idx", encoder.dimension)
    assert stored is not None and np.allclose(stored, np.vstack([expected, encoder.encode_queries(texts)]))
    assert len(texts) == 250


def test_an_index_without_a_background_file_still_judges_and_gets_one_at_its_next_write(
    tmp_path: Path, encoder: KeywordEncoder
) -> None:
    Index.create(tmp_path / "idx", encoder=encoder).close()
    (tmp_path / "idx" / confidence.INDEX_FILE).unlink()  # as made by an earlier version
    with Index.open(tmp_path / "idx", encoder=encoder) as idx:
        idx.add([{"id": "c", "text": "cat"}])
        assert (tmp_path / "idx" / confidence.INDEX_FILE).is_file()
        (hit,) = idx.search("cat", k=1, include_low_confidence=True)
        assert hit.margin == round(1.0 - float(confidence.levels(encoder.encode_queries(["cat"]), idx.background)[0]), 6)


def test_keyword_hits_carry_a_margin_but_are_not_judged_by_default(tmp_path: Path) -> None:
    class Strict(KeywordEncoder):
        calibration: ClassVar[dict[str, float]] = {"min_margin": 2.0}

    with Index.create(tmp_path / "idx", encoder=Strict()) as idx:
        idx.add([{"id": "c", "text": "cat"}])
        idx.store.set_meta(corpus_cut=3.0)  # the threshold: max(0.2 × 2.0, 3.0) = 3.0, out of reach
        assert idx.search("cat") == []  # dense: judged, refused
        (hit,) = idx.search("cat", mode="keyword")  # keyword: the exact term is there
        assert hit.margin is not None and not hit.low_confidence
        assert idx.search("cat", mode="keyword", min_margin=2.0) == []  # unless asked


def test_without_neighbours_the_cut_is_the_99th_percentile_of_the_background_sentences_own_margins() -> None:
    # 3 orthogonal background sentences, each query is one of them: its level is taken over the
    # other two (cosine 0), so each margin is its best cosine on the index
    background = np.eye(3, dtype=np.float32)
    cut = confidence.index_cut(background, background, np.array([0.2, 0.4, 0.6]))
    assert cut == pytest.approx(np.quantile([0.2, 0.4, 0.6], 0.99))  # 0.596


def test_the_cut_is_the_smaller_of_elsewhere_and_near_but_not_under_a_share_of_near() -> None:
    background = np.eye(3, dtype=np.float32)  # as above: "elsewhere" is the 99th percentile, 0.596
    best = np.array([0.2, 0.4, 0.6])
    # four stored passages along the fourth axis: every level is 0, so each margin is its cosine
    vectors = np.zeros((4, 3), dtype=np.float32)
    near = (vectors, np.array([0.1, 0.3, 0.5, 0.7], dtype=np.float32))  # 25th percentile: 0.25
    assert confidence.index_cut(background, background, best, near) == pytest.approx(0.25)  # min(0.596, 0.25)
    high = (vectors, np.array([0.9, 0.9, 0.9, 0.9], dtype=np.float32))  # a corpus of near-duplicates
    assert confidence.index_cut(background, background, best, high) == pytest.approx(0.596)  # min(0.596, 0.9)
    low_elsewhere = np.array([0.0, 0.0, 0.1])  # nothing from elsewhere comes near: 0.098
    assert confidence.index_cut(background, background, low_elsewhere, high) == pytest.approx(0.36)  # 0.4 × 0.9


def test_the_threshold_is_the_cut_never_under_a_fifth_of_min_margin() -> None:
    assert confidence.threshold(0.2, None) == 0.2  # no cut measured: the model's own
    assert confidence.threshold(0.2, 0.1) == 0.1  # the index's cut
    assert confidence.threshold(0.2, 0.01) == pytest.approx(0.04)  # never under a fifth of min_margin
    assert confidence.threshold(0.2, 0.9) == 0.9  # a corpus may ask for more than min_margin


def test_a_write_stores_the_cut_and_search_judges_by_it(tmp_path: Path) -> None:
    class Calibrated(KeywordEncoder):
        calibration: ClassVar[dict[str, float]] = {"min_margin": 2.0}  # thresholds from 0.5 to 2.0

    encoder = Calibrated()
    with Index.create(tmp_path / "idx", encoder=encoder) as idx:
        assert idx.store.get_meta("corpus_cut") is None  # nothing indexed, nothing measured
        idx.add([{"id": "c", "text": "cat"}, {"id": "d", "text": "dog water"}])
        queries = encoder.encode_queries(confidence.background_texts())
        _, best = idx.ann.search(queries, 1)
        # each passage's nearest passage of another document: cat ⟂ dog water, cosine 0
        passages = encoder.encode_passages(["cat", "dog water"])
        expected = confidence.index_cut(queries, idx.background, best[:, 0], (passages, np.zeros(2, np.float32)))
        assert float(idx.store.get_meta("corpus_cut")) == pytest.approx(expected)
        idx.store.set_meta(corpus_cut=0.1)  # a small corpus: the threshold is the floor, 0.2 × 2.0 = 0.4
        assert [(h.doc_id, h.low_confidence) for h in idx.search("cat")] == [("c", False), ("d", True)]
        idx.store.set_meta(corpus_cut=5.0)  # a corpus whose unrelated queries score that high
        assert idx.search("cat") == []  # "no confident match": cat's margin is at most 1
        assert [h.doc_id for h in idx.search("cat", min_margin=0.0)] == ["c", "d"]  # an explicit rule wins
