"""ann.py: the HNSW wrapper's contract (add/count/search/delete/save/load) and its recall."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from textsearch.storage.ann import AnnIndex, file_signature
from textsearch.errors import IndexCorruptError

DIM = 32


def unit_vectors(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    v = rng.standard_normal((n, DIM)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


@pytest.fixture
def filled() -> tuple[AnnIndex, np.ndarray]:
    vectors = unit_vectors(100, seed=1)
    ann = AnnIndex(DIM)
    ann.add(np.arange(100), vectors)
    return ann, vectors


def test_add_count_and_search_finds_each_item_first(filled) -> None:
    ann, vectors = filled
    assert ann.count() == 100
    labels, scores = ann.search(vectors, k=3)
    assert labels.shape == scores.shape == (100, 3)
    assert labels.dtype == np.int64 and scores.dtype == np.float32
    assert labels[:, 0].tolist() == list(range(100))
    # cosine of a unit vector with itself is 1 (float32 rounding only)
    np.testing.assert_allclose(scores[:, 0], 1.0, atol=1e-5)
    assert np.all(np.diff(scores, axis=1) <= 1e-6)  # best first


def test_scores_are_exact_cosines(filled) -> None:
    ann, vectors = filled
    labels, scores = ann.search(vectors[0], k=5)
    np.testing.assert_allclose(scores[0], vectors[labels[0]] @ vectors[0], atol=1e-5)


def test_search_accepts_one_vector() -> None:
    ann = AnnIndex(DIM)
    ann.add(np.array([7, 9]), unit_vectors(2, seed=2))
    labels, _ = ann.search(unit_vectors(2, seed=2)[1], k=1)
    assert labels.tolist() == [[9]]


def test_deleted_labels_are_never_returned(filled) -> None:
    ann, vectors = filled
    gone = np.arange(0, 100, 10)  # 10 labels
    ann.delete(gone)
    assert ann.count() == 90
    labels, _ = ann.search(vectors, k=100)  # clamped to the 90 live ones
    assert labels.shape == (100, 90)
    assert not np.isin(labels, gone).any()
    assert sorted(labels[0].tolist()) == sorted(set(range(100)) - set(gone.tolist()))


def test_delete_unknown_or_twice_is_ignored(filled) -> None:
    ann, _ = filled
    ann.delete(np.array([5]))
    ann.delete(np.array([5, 1000]))  # already deleted, never added
    assert ann.count() == 99


def test_k_larger_than_count_is_clamped() -> None:
    ann = AnnIndex(DIM)
    vectors = unit_vectors(5, seed=3)
    ann.add(np.arange(5), vectors)
    labels, scores = ann.search(vectors[0], k=50)
    assert labels.shape == scores.shape == (1, 5)
    assert sorted(labels[0].tolist()) == [0, 1, 2, 3, 4]


def test_empty_index_returns_empty_results() -> None:
    ann = AnnIndex(DIM)
    labels, scores = ann.search(unit_vectors(3, seed=4), k=10)
    assert labels.shape == scores.shape == (3, 0)
    ann.add(np.array([], dtype=np.int64), np.zeros((0, DIM), np.float32))
    assert ann.count() == 0


def test_capacity_grows_past_the_initial_capacity() -> None:
    ann = AnnIndex(DIM, capacity=16)
    assert ann.settings["capacity"] == 16
    vectors = unit_vectors(300, seed=5)
    for start in range(0, 300, 50):
        ann.add(np.arange(start, start + 50), vectors[start : start + 50])
    assert ann.count() == 300
    assert ann.settings["capacity"] >= 300
    assert ann.settings["slots_used"] == 300
    labels, _ = ann.search(vectors, k=1)
    assert labels[:, 0].tolist() == list(range(300))


def test_churn_reuses_deleted_slots() -> None:
    ann = AnnIndex(DIM)
    used = []
    for round_ in range(20):  # labels are never reused: 0..199, 200..399, ...
        labels = np.arange(round_ * 200, round_ * 200 + 200)
        ann.add(labels, unit_vectors(200, seed=100 + round_))
        used.append(ann.settings["slots_used"])
        ann.delete(labels)
    assert ann.count() == 0
    assert used == [200] * 20  # deleting a whole round compacts the graph: the next starts empty
    assert ann.settings["capacity"] == 1024  # never had to grow
    fresh = unit_vectors(5, seed=99)
    ann.add(np.arange(10_000, 10_005), fresh)
    labels, _ = ann.search(fresh, k=5)
    assert sorted(labels[0].tolist()) == list(range(10_000, 10_005))
    assert labels[:, 0].tolist() == list(range(10_000, 10_005))


def test_settings(filled) -> None:
    ann, _ = filled
    assert ann.settings == {"M": 16, "ef_construction": 200, "capacity": 1024, "slots_used": 100}
    small = AnnIndex(DIM, M=8, ef_construction=50, capacity=3)
    assert small.settings == {"M": 8, "ef_construction": 50, "capacity": 16, "slots_used": 0}


def test_save_writes_atomically_and_returns_the_signature(filled, tmp_path: Path) -> None:
    ann, _ = filled
    path = tmp_path / "hnsw.bin"
    size, crc = ann.save(path)
    assert (size, crc) == file_signature(path)
    assert size == path.stat().st_size
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hnsw.bin"]  # no .tmp left behind


def test_save_load_round_trip(filled, tmp_path: Path) -> None:
    ann, vectors = filled
    ann.delete(np.array([3, 4]))
    path = tmp_path / "hnsw.bin"
    ann.save(path)
    loaded = AnnIndex.load(path, DIM, ef=100)
    loaded.live = 98  # the owner (Index) sets the live count from SQLite after load
    assert sorted(loaded.labels().tolist()) == list(range(100))  # deleted ones included
    before = ann.search(vectors, k=10)
    after = loaded.search(vectors, k=10)
    np.testing.assert_array_equal(before[0], after[0])
    np.testing.assert_allclose(before[1], after[1], atol=1e-6)
    assert not np.isin(after[0], [3, 4]).any()
    assert loaded.settings == ann.settings


def test_load_restores_count_and_search(filled, tmp_path: Path) -> None:
    ann, vectors = filled
    ann.delete(np.array([3, 4]))
    ann.save(tmp_path / "hnsw.bin")
    loaded = AnnIndex.load(tmp_path / "hnsw.bin", DIM, ef=100)
    assert loaded.count() == 98
    assert loaded.search(vectors[0], k=1)[0].tolist() == [[0]]


def test_load_truncated_file_raises_index_corrupt(filled, tmp_path: Path) -> None:
    ann, _ = filled
    path = tmp_path / "hnsw.bin"
    size, _ = ann.save(path)
    data = path.read_bytes()
    for cut in (0, 10, 100, size // 2, size - 1):
        path.write_bytes(data[:cut])
        with pytest.raises(IndexCorruptError, match="textsearch repair"):
            AnnIndex.load(path, DIM, ef=100)


def test_load_garbage_or_missing_file_raises_index_corrupt(tmp_path: Path) -> None:
    path = tmp_path / "hnsw.bin"
    path.write_bytes(b"not an hnsw file at all" * 100)
    with pytest.raises(IndexCorruptError):
        AnnIndex.load(path, DIM, ef=100)
    with pytest.raises(IndexCorruptError):
        AnnIndex.load(tmp_path / "missing.bin", DIM, ef=100)


def test_load_with_the_wrong_dimension_raises(filled, tmp_path: Path) -> None:
    ann, _ = filled
    ann.save(tmp_path / "hnsw.bin")
    with pytest.raises(IndexCorruptError, match="dimension 32, expected 64"):
        AnnIndex.load(tmp_path / "hnsw.bin", 64, ef=100)


def recall_at_10(found: np.ndarray, exact: np.ndarray) -> float:
    return float(np.mean([len(set(f) & set(e)) / 10 for f, e in zip(found, exact)]))


def test_recall_against_exact_search_survives_save_load(tmp_path: Path) -> None:
    """hnswlib's own recall test: HNSW top-10 vs brute force, before and after a reload."""
    data = unit_vectors(2_000, seed=42)
    queries = unit_vectors(200, seed=43)
    exact = np.argsort(-(queries @ data.T), axis=1)[:, :10]
    ann = AnnIndex(DIM, capacity=500)  # grows on the way
    for start in range(0, 2_000, 500):
        ann.add(np.arange(start, start + 500), data[start : start + 500])
    labels, scores = ann.search(queries, k=10)
    recall = recall_at_10(labels, exact)
    assert recall >= 0.95
    np.testing.assert_allclose(
        scores, np.take_along_axis(queries @ data.T, labels, axis=1), atol=1e-5
    )

    ann.save(tmp_path / "hnsw.bin")
    loaded = AnnIndex.load(tmp_path / "hnsw.bin", DIM, ef=100)
    loaded.live = 2_000  # set by the owner after load (see test_load_restores_count_and_search)
    reloaded, _ = loaded.search(queries, k=10)
    assert recall_at_10(reloaded, exact) == recall
    np.testing.assert_array_equal(reloaded, labels)
