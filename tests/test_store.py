"""store.py: schema migrations, labels, passages, vectors, seq, and atomic writes."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from textsearch.corpus import Document, Passage
from textsearch.errors import IndexCorruptError
from textsearch.store import MIGRATIONS, SCHEMA_VERSION, PassageRow, Store

DIM = 4


@pytest.fixture
def store(tmp_path: Path):
    s = Store(tmp_path / "store.db")
    yield s
    s.close()


def doc(
    doc_id: str, text: str, n: int, source: str | None = None, **meta
) -> tuple[Document, list[Passage]]:
    """A document whose text is cut into ``n`` equal passages."""
    width = len(text) // n
    passages = [
        Passage(text[i * width : (i + 1) * width], i * width, (i + 1) * width) for i in range(n)
    ]
    return Document(doc_id, text, dict(meta), source=source), passages


def vecs(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, DIM)).astype(np.float32)


def snapshot(store: Store) -> tuple:
    """Every row of every table: equal snapshots mean an unchanged database."""
    return tuple(
        store.db.execute(f"SELECT * FROM {t} ORDER BY 1").fetchall()
        for t in ("meta", "documents", "passages")
    )


def test_migrations_set_user_version(tmp_path: Path) -> None:
    store = Store(tmp_path / "store.db")
    assert SCHEMA_VERSION == len(MIGRATIONS) == 1
    assert store.db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert set(store.db.table_names()) == {"meta", "documents", "passages"}
    assert store.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert store.seq == 0
    store.close()
    again = Store(tmp_path / "store.db")  # reopening runs no migration twice
    assert again.db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    again.close()


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    Store(tmp_path / "store.db").close()
    conn = sqlite3.connect(tmp_path / "store.db")
    conn.execute("PRAGMA user_version = 99")
    conn.close()
    with pytest.raises(IndexCorruptError, match="schema version 99, newer .* upgrade textsearch"):
        Store(tmp_path / "store.db")


def test_garbage_database_is_corrupt(tmp_path: Path) -> None:
    (tmp_path / "store.db").write_bytes(b"this is not sqlite " * 500)
    with pytest.raises(IndexCorruptError, match="unreadable"):
        Store(tmp_path / "store.db")


def test_write_assigns_increasing_labels(store: Store) -> None:
    new, removed = store.write([doc("a", "aaaa", 2), doc("b", "bb", 1)], vecs(3))
    assert new.dtype == np.int64
    assert new.tolist() == [0, 1, 2] and removed.tolist() == []
    new, removed = store.write([doc("c", "cc", 1)], vecs(1))
    assert new.tolist() == [3] and removed.tolist() == []
    assert store.get_meta("next_label") == "4"
    assert store.document_count() == 3 and store.passage_count() == 4


def test_delete_returns_labels_and_labels_are_not_reused(store: Store) -> None:
    store.write([doc("a", "aaaa", 2), doc("b", "bb", 1)], vecs(3))
    deleted, removed = store.delete(["a", "missing"])
    assert deleted == 1
    assert sorted(removed.tolist()) == [0, 1]
    new, removed = store.write([doc("c", "cccccc", 3)], vecs(3))
    assert new.tolist() == [3, 4, 5]  # 0 and 1 are gone for good
    assert removed.tolist() == []
    assert sorted(store.labels().tolist()) == [2, 3, 4, 5]


def test_upsert_replaces_passages_under_new_labels(store: Store) -> None:
    store.write([doc("a", "aaaa", 2)], vecs(2))
    new, removed = store.write([doc("a", "xyz", 1)], vecs(1, seed=1))
    assert new.tolist() == [2]
    assert sorted(removed.tolist()) == [0, 1]
    assert store.document_count() == 1 and store.passage_count() == 1
    assert store.passages([2])[2].text == "xyz"


def test_write_can_delete_in_the_same_transaction(store: Store) -> None:
    store.write([doc("a", "aa", 1), doc("b", "bb", 1)], vecs(2))
    new, removed = store.write([doc("c", "cc", 1)], vecs(1), delete_ids=["a"])
    assert new.tolist() == [2] and removed.tolist() == [0]
    assert store.hashes(["a", "b", "c"]).keys() == {"b", "c"}


def test_passages_return_text_and_metadata(store: Store) -> None:
    a = doc("a", "abcdef", 2, source="x/a.txt", year=2021, lang="zh", tags=["t"])
    store.write([a, doc("b", "bb", 1)], vecs(3))
    rows = store.passages([1, 2, 99])  # 99 does not exist
    assert rows == {
        1: PassageRow(
            label=1,
            doc_id="a",
            position=1,
            start=3,
            end=6,
            text="def",
            metadata={"year": 2021, "lang": "zh", "tags": ["t"]},
            n_passages=2,
        ),
        2: PassageRow(
            label=2, doc_id="b", position=0, start=0, end=2, text="bb", metadata={}, n_passages=1
        ),
    }
    assert store.passages([]) == {}


def test_vectors_round_trip_float32_exactly(store: Store) -> None:
    original = vecs(3, seed=5)
    original[1, 2] = np.float32(1e-38)  # subnormal-adjacent and extreme values survive too
    original[2, 0] = np.finfo(np.float32).max
    store.write([doc("a", "aaa", 3)], original)
    back = store.vectors([2, 0, 1], DIM)  # any order asked for is the order returned
    assert back.dtype == np.float32
    np.testing.assert_array_equal(back, original[[2, 0, 1]])
    assert store.vectors([7], DIM).tolist() == [[0.0] * DIM]  # unknown labels stay zero


def test_many_labels_cross_the_chunk_size(store: Store) -> None:
    docs = [doc(f"d{i}", "xy", 1) for i in range(1_200)]  # more than 2 chunks of 500
    original = vecs(1_200, seed=6)
    store.write(docs, original)
    labels = list(range(1_200))
    np.testing.assert_array_equal(store.vectors(labels, DIM), original)
    assert len(store.passages(labels)) == 1_200
    assert len(store.hashes([f"d{i}" for i in range(1_200)])) == 1_200
    deleted, removed = store.delete([f"d{i}" for i in range(1_200)])
    assert deleted == 1_200 and sorted(removed.tolist()) == labels


def test_seq_increments_per_write(store: Store) -> None:
    assert store.seq == 0
    store.write([doc("a", "aa", 1)], vecs(1))
    assert store.seq == 1
    store.write([doc("b", "bb", 1), doc("c", "cc", 1)], vecs(2))
    assert store.seq == 2  # one write call, one step
    store.delete(["missing"])
    assert store.seq == 2  # nothing deleted: no new state
    store.delete(["a"])
    assert store.seq == 3


def test_hashes_and_roots(store: Store) -> None:
    a, b, c = (
        doc("a", "aa", 1, source="a.txt"),
        doc("b", "bb", 1, source="b.txt"),
        doc("c", "cc", 1),
    )
    store.write([a, b], vecs(2), root="/corpus")
    store.write([c], vecs(1))  # added by API: no root
    assert store.hashes_for_root("/corpus") == {"a": a[0].content_hash, "b": b[0].content_hash}
    assert store.hashes_for_root("/other") == {}
    assert store.hashes(["c", "zzz"]) == {"c": c[0].content_hash}
    row = store.db.execute(
        "SELECT root, source, n_passages, metadata FROM documents WHERE id='a'"
    ).fetchone()
    assert row == ("/corpus", "a.txt", 1, json.dumps({}))


def test_meta_round_trip(store: Store) -> None:
    store.set_meta(x=1, y="two")
    assert (store.get_meta("x"), store.get_meta("y"), store.get_meta("z", "d")) == ("1", "two", "d")
    store.set_meta(x=None)
    assert store.get_meta("x", "default") is None  # a stored NULL is not the default


def test_failed_write_leaves_the_database_unchanged(store: Store) -> None:
    store.write([doc("a", "aaaa", 2, year=1)], vecs(2))
    before = snapshot(store)
    bad = doc("a", "new text", 1, when=object())  # metadata that JSON cannot hold
    with pytest.raises(TypeError, match="not JSON serializable"):
        # the upsert first removes the old "a": that removal must be rolled back too
        store.write([doc("b", "bb", 1), bad], vecs(2), delete_ids=["a"])
    assert snapshot(store) == before
    assert store.seq == 1 and store.document_count() == 1 and store.passage_count() == 2
    assert not store.db.conn.in_transaction
    new, _ = store.write([doc("c", "cc", 1)], vecs(1))  # the store still works
    assert new.tolist() == [2]


def test_write_with_too_few_vectors_raises_and_changes_nothing(store: Store) -> None:
    store.write([doc("a", "aaaa", 2)], vecs(2))
    before = snapshot(store)
    with pytest.raises(ValueError):
        store.write([doc("b", "bbbb", 2)], vecs(1))
    assert snapshot(store) == before


def test_a_second_connection_sees_only_committed_writes(tmp_path: Path) -> None:
    writer = Store(tmp_path / "store.db")
    reader = Store(tmp_path / "store.db")
    writer.write([doc("a", "aa", 1)], vecs(1))
    assert reader.document_count() == 1 and reader.seq == 1
    with pytest.raises(RuntimeError), writer.transaction():
        writer.db.execute("DELETE FROM documents")
        assert reader.document_count() == 1  # WAL: the reader is not blocked, sees the old state
        raise RuntimeError("abort")
    assert writer.document_count() == reader.document_count() == 1
    writer.close()
    reader.close()
