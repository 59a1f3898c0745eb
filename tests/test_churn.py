"""Churn: deleting and re-adding the same documents round after round leaves the index bounded.

A CI-sized version of benchmarks/bench_churn.py (100 rounds x 1,000 documents there): 20 rounds
x 200 documents through the API, 10 rounds x 100 files through index_folder, with the hash
encoder (a random unit vector per text: storage, not meaning); and the graph's compaction
(ann.py) under mixed churn.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from textsearch import Index
from textsearch.storage.ann import AnnIndex
from textsearch.testing import HashEncoder

DOCS = 200
ROUNDS = 20
IDS = [f"d{i}" for i in range(DOCS)]


def text(i: int, round_: int) -> str:
    """Different every round, so each re-add is embedded again rather than skipped as unchanged."""
    return f"document {i} as written in round {round_}"


def recall_at_10(idx: Index, queries: np.ndarray, ef: int | None = None) -> float:
    """HNSW top-10 against brute force over the vectors of the live passages in SQLite."""
    labels = idx.store.labels()
    vectors = idx.store.vectors(labels, idx.config.dimension)
    exact = labels[np.argsort(-(queries @ vectors.T), axis=1)[:, :10]]
    found, _ = idx.ann.search(queries, 10, ef=ef)
    return float(np.mean([len(set(f) & set(e)) / 10 for f, e in zip(found, exact)]))


def measure(idx: Index) -> dict[str, Any]:
    db = idx.store.db
    page_size = db.execute("PRAGMA page_size").fetchone()[0]
    pages = db.execute("PRAGMA page_count").fetchone()[0]  # main file + pages still in the WAL
    wal = idx.path / "store.db-wal"
    return {
        **idx.ann.settings,
        "hnsw_bytes": (idx.path / "hnsw.bin").stat().st_size,
        "db_bytes": pages * page_size,
        "db_pages": pages,
        "wal_bytes": wal.stat().st_size if wal.exists() else 0,
        "page_size": page_size,
        "documents": idx.count(),
        "passages": idx.store.passage_count(),
        "keyword_rows": idx.store.keyword_count(),
        "live": idx.ann.count(),
    }


@pytest.fixture(scope="module")
def churned(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Build 200 documents (round 0), then 20 rounds of delete-all + add-all under the same ids."""
    encoder = HashEncoder()
    queries = encoder.encode_queries([f"query {j}" for j in range(100)])
    path = tmp_path_factory.mktemp("churn") / "idx"
    idx = Index.create(path, encoder=encoder)
    idx.add({"id": d, "text": text(i, 0)} for i, d in enumerate(IDS))
    rounds = [measure(idx)]
    recall = {0: (recall_at_10(idx, queries), recall_at_10(idx, queries, ef=10))}
    for round_ in range(1, ROUNDS + 1):
        assert idx.delete(IDS) == DOCS
        summary = idx.add({"id": d, "text": text(i, round_)} for i, d in enumerate(IDS))
        assert (summary.added, summary.unchanged) == (DOCS, 0)
        rounds.append(measure(idx))
        if round_ in (1, ROUNDS):
            recall[round_] = (recall_at_10(idx, queries), recall_at_10(idx, queries, ef=10))
    autocheckpoint = idx.store.db.execute("PRAGMA wal_autocheckpoint").fetchone()[0]
    idx.close()
    with Index.open(path, encoder=encoder) as again:
        reopened = (recall_at_10(again, queries), again.count(), again.ann.count())
    return {
        "rounds": rounds,
        "recall": recall,
        "reopened": reopened,
        "autocheckpoint": autocheckpoint,
    }


def test_graph_slots_capacity_and_file_do_not_grow(churned) -> None:
    """Deleted HNSW slots are reclaimed: slots, capacity and hnsw.bin stay as after the build."""
    rounds = churned["rounds"]
    assert [r["slots_used"] for r in rounds] == [DOCS] * (ROUNDS + 1)
    # deleting all 200 compacts the graph to 0 slots: the re-add fits the initial 1,024
    assert {r["capacity"] for r in rounds} == {1024}
    assert {r["hnsw_bytes"] for r in rounds} == {rounds[0]["hnsw_bytes"]}


def test_sqlite_size_stays_bounded(churned) -> None:
    """store.db reuses freed pages and the WAL restarts after each checkpoint."""
    rounds = churned["rounds"]
    # measured: 47 pages after round 2, 62 from round 7 to 20 (1.32x): freed pages are reused
    # once the FTS5 segments settle; growth at the early rate (3 pages a round) would give 2.1x
    assert rounds[-1]["db_bytes"] <= 1.5 * rounds[2]["db_bytes"]
    assert rounds[-1]["db_pages"] <= rounds[10]["db_pages"] + 4  # measured: + 0
    # a WAL holds at most the frames before an autocheckpoint (1,000) plus one transaction (never
    # more pages than the database has); each frame is a page plus a 24-byte header, after a
    # 32-byte file header. Measured: 4.25 MB (1,032 frames), reached at round 12 and kept.
    frame = rounds[-1]["page_size"] + 24
    limit = 32 + frame * (churned["autocheckpoint"] + rounds[-1]["db_pages"])
    assert max(r["wal_bytes"] for r in rounds) <= limit


def test_counts_stay_exact(churned) -> None:
    """Every round ends with exactly 200 documents, passages, keyword rows and live graph labels."""
    for r in churned["rounds"]:
        assert (r["documents"], r["passages"], r["keyword_rows"], r["live"]) == (DOCS,) * 4
    assert churned["reopened"][1:] == (DOCS, DOCS)


def test_recall_is_unchanged_by_churn(churned) -> None:
    """Recall@10 vs exact stays ≥ 0.98 and within 0.02 of round 1, also after reopening; at
    ef=10 it stays as after the build (the graph is rebuilt, not patched)."""
    recall = churned["recall"]
    first, last = recall[1][0], recall[ROUNDS][0]
    assert last >= 0.98
    assert last >= first - 0.02
    assert churned["reopened"][0] == last  # the saved graph is the one searched in memory
    # ef=10 shows a degraded graph first. Measured (4 runs): 0.874-0.875 after the build,
    # 0.856-0.859 after round 20. Refilling deleted slots in place instead of compacting gave
    # 0.78-0.80 from round 1 on (-0.08)
    assert recall[ROUNDS][1] >= recall[0][1] - 0.04


def test_folder_churn_removing_and_restoring_files(tmp_path: Path) -> None:
    """index_folder over files removed and written back (new text) keeps slots and counts fixed."""
    folder = tmp_path / "corpus"
    folder.mkdir()
    files = [folder / f"f{i:03}.txt" for i in range(100)]
    for i, f in enumerate(files):
        f.write_text(text(i, 0))
    idx = Index.create(tmp_path / "idx", encoder=HashEncoder())
    idx.index_folder(folder)
    for round_ in range(1, 11):
        half = files[:50] if round_ % 2 else files[50:]
        for f in half:
            f.unlink()
        assert idx.index_folder(folder).deleted == 50
        assert idx.count() == 50
        for f in half:
            f.write_text(text(files.index(f), round_))
        assert idx.index_folder(folder).added == 50
        assert idx.ann.settings["slots_used"] == 100
        assert (idx.count(), idx.store.passage_count(), idx.ann.count()) == (100, 100, 100)
    assert idx.ann.settings["capacity"] == 1024
    idx.close()


def unit_vectors(n: int, seed: int, dimension: int = 32) -> np.ndarray:
    v = np.random.default_rng(seed).standard_normal((n, dimension)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def finds_itself(ann: AnnIndex, labels: np.ndarray, vectors: np.ndarray) -> bool:
    found, _ = ann.search(vectors, k=1)
    return found[:, 0].tolist() == labels.tolist()


def test_graph_compacts_when_half_its_slots_are_deleted() -> None:
    """Deleting half the graph rebuilds it from the live vectors: slots shrink, search intact."""
    ann = AnnIndex(32)
    vectors = unit_vectors(100, seed=1)
    ann.add(np.arange(100), vectors)
    ann.delete(np.arange(49))  # 49 of 100 slots deleted: kept as they are
    assert ann.settings["slots_used"] == 100
    ann.delete(np.array([49]))  # 50 of 100: rebuilt from the 50 live vectors
    assert ann.settings == {"M": 16, "ef_construction": 200, "capacity": 1024, "slots_used": 50}
    assert ann.count() == 50
    assert sorted(ann.labels().tolist()) == list(range(50, 100))
    assert finds_itself(ann, np.arange(50, 100), vectors[50:])


def test_partial_updates_stay_within_twice_the_live_slots_and_stay_reachable() -> None:
    """Replacing 30 of 100 vectors per round: deleted slots pile up to half the graph, then it is
    rebuilt; slots never exceed twice the live count plus a batch, and every live vector still
    finds itself (in-place slot refills lost elements this way: benchmarks/bench_crash.py)."""
    ann = AnnIndex(32)
    ann.add(np.arange(100), unit_vectors(100, seed=2))
    vectors = dict(zip(range(100), unit_vectors(100, seed=2)))
    next_label, slots = 100, []
    for round_ in range(30):
        old = sorted(vectors)[:30]
        ann.delete(np.asarray(old))
        for label in old:
            del vectors[label]
        new = unit_vectors(30, seed=10 + round_)
        ann.add(np.arange(next_label, next_label + 30), new)
        vectors.update(zip(range(next_label, next_label + 30), new))
        next_label += 30
        slots.append(ann.settings["slots_used"])
    assert ann.count() == 100 and max(slots) <= 2 * 100 + 30 and min(slots) == 100
    labels = np.asarray(sorted(vectors))
    assert finds_itself(ann, labels, np.stack([vectors[i] for i in labels]))


def test_deleted_slots_are_known_again_after_load(tmp_path: Path) -> None:
    """A reloaded graph knows its deleted slots (from the file's flags) and compacts on time."""
    ann = AnnIndex(32)
    vectors = unit_vectors(100, seed=3)
    ann.add(np.arange(100), vectors)
    ann.delete(np.arange(40))
    ann.save(tmp_path / "hnsw.bin")
    loaded = AnnIndex.load(tmp_path / "hnsw.bin", 32, ef=200)
    assert loaded.count() == 60
    loaded.delete(np.arange(40, 49))  # 49 deleted
    assert loaded.settings["slots_used"] == 100
    loaded.delete(np.array([49]))  # 50 deleted: rebuilt
    assert loaded.settings["slots_used"] == loaded.count() == 50
    assert finds_itself(loaded, np.arange(50, 100), vectors[50:])
