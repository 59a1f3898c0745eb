"""store.py: schema migrations, labels, passages, vectors, seq, and atomic writes."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import numpy as np
import pytest
import sqlite_utils

from textsearch.documents.corpus import Document, Passage
from textsearch.errors import IndexCorruptError, InvalidArgumentError
from textsearch.search.filters import to_sql
from textsearch.search.keyword import match_expression
from textsearch.storage.store import MIGRATIONS, SCHEMA_VERSION, PassageRow, Store

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
        store.db.execute(f"SELECT rowid, * FROM {t} ORDER BY 1").fetchall()
        for t in ("meta", "documents", "passages", "passages_fts")
    )


def test_migrations_set_user_version(tmp_path: Path) -> None:
    store = Store(tmp_path / "store.db")
    assert SCHEMA_VERSION == len(MIGRATIONS) == 3
    assert store.db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    names = [r[0] for r in store.db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
    tables = {t for t in names if not t.startswith("passages_fts_")}  # FTS5's own
    assert tables == {"meta", "documents", "passages", "passages_fts", "files"}
    assert store.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert store.seq == 0
    store.close()
    again = Store(tmp_path / "store.db")  # reopening runs no migration twice
    assert again.db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    again.close()


def test_an_index_of_schema_2_gains_locations_and_file_stats(tmp_path: Path) -> None:
    """An index written before passages had locations opens as it was: its passages have none,
    no file is known (each is read once more), and new passages keep theirs."""
    db = sqlite_utils.Database(tmp_path / "store.db")
    for migrate in MIGRATIONS[:2]:
        migrate(db)
    db.execute("INSERT INTO documents VALUES ('a', '/r', 'a.txt', 'h', '{}', 1, 'now')")
    db.execute("INSERT INTO passages VALUES (0, 'a', 0, 0, 3, 'old', x'00')")
    db.execute("PRAGMA user_version = 2")
    db.conn.commit()
    db.close()
    store = Store(tmp_path / "store.db")
    assert store.passages([0])[0].location is None
    assert store.file_stats("/r") == {}
    store.record_files("/r", {"a.txt": (3, 7)})
    assert store.file_stats("/r") == {"a.txt": (3, 7)}
    store.record_files("/r", {}, gone=["a.txt"])
    assert store.file_stats("/r") == {}
    store.close()


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
    assert not store.db.in_transaction
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


# --- keyword index (passages_fts) ---------------------------------------------------------------
def found(store: Store, query: str, where: tuple | None = None) -> list[int]:
    expression = match_expression(query)
    assert expression is not None
    return [label for label, _ in store.keyword_search(expression, 10, where)]


def assert_fts_in_sync(store: Store) -> None:
    """One FTS row per passage, under the passage's label: no orphan, no gap."""
    fts = [r[0] for r in store.db.execute("SELECT rowid FROM passages_fts ORDER BY rowid")]
    assert fts == sorted(store.labels().tolist())
    assert store.keyword_count() == store.passage_count()


def test_keyword_rows_follow_update_and_delete(store: Store) -> None:
    store.write([doc("a", "old apple text", 1), doc("b", "banana bread", 1)], vecs(2))
    assert found(store, "apple") == [0] and found(store, "banana") == [1]
    assert_fts_in_sync(store)
    new, removed = store.write([doc("a", "fresh cherry", 1)], vecs(1))  # upsert a
    assert new.tolist() == [2] and removed.tolist() == [0]
    assert found(store, "apple") == []  # the old text's terms are gone
    assert found(store, "cherry") == [2]
    assert_fts_in_sync(store)
    store.write([doc("c", "cherry cake", 1)], vecs(1), delete_ids=["b"])
    assert found(store, "banana") == []
    assert_fts_in_sync(store)
    store.delete(["a", "c"])
    assert found(store, "cherry") == []
    assert_fts_in_sync(store)
    assert store.keyword_count() == 0


def test_migration_from_version_1_builds_the_keyword_index(tmp_path: Path) -> None:
    import sqlite_utils

    db = sqlite_utils.Database(tmp_path / "store.db")  # an index built before keyword search
    MIGRATIONS[0](db)
    db.execute("PRAGMA user_version = 1")
    db["documents"].insert({"id": "a", "content_hash": "h", "metadata": "{}", "n_passages": 2})
    for label, text in ((0, "北京大学生物系"), (1, "The runner runs")):
        db["passages"].insert(
            {"label": label, "doc_id": "a", "position": label, "start": 0, "end": 1, "text": text}
        )
    db["meta"].insert({"key": "next_label", "value": "2"})
    db.conn.commit()
    db.close()
    store = Store(tmp_path / "store.db")
    assert store.db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert found(store, "生物") == [0]
    assert found(store, "running") == [1]
    assert_fts_in_sync(store)
    new, _ = store.write([doc("b", "生物学", 1)], vecs(1))  # and it keeps up with new writes
    assert sorted(found(store, "生物")) == [0, *new.tolist()]
    store.close()


def test_failed_write_leaves_the_keyword_index_unchanged(store: Store) -> None:
    store.write([doc("a", "apple", 1)], vecs(1))
    with pytest.raises(TypeError):
        store.write([doc("a", "banana", 1, when=object())], vecs(1))
    assert found(store, "apple") == [0] and found(store, "banana") == []
    assert_fts_in_sync(store)


def test_keyword_search_scores_and_order(store: Store) -> None:
    store.write(
        [doc("a", "red apple", 1), doc("b", "red apple pie", 1), doc("c", "green pear", 1)],
        vecs(3),
    )
    hits = store.keyword_search(match_expression("apple pie"), 10)
    # b holds both terms, a only "apple"; c neither. Scores are -bm25: positive, higher is better
    assert [label for label, _ in hits] == [1, 0]
    assert hits[0][1] > hits[1][1] > 0
    assert len(store.keyword_search(match_expression("red apple pie"), 1)) == 1  # limit holds


def test_keyword_search_rejects_bad_input(store: Store) -> None:
    store.write([doc("a", "apple", 1)], vecs(1))
    with pytest.raises(InvalidArgumentError, match="match_expression"):
        store.keyword_search("apple AND (", 5)  # raw FTS5 that does not parse
    with pytest.raises(InvalidArgumentError, match="limit"):
        store.keyword_search('"apple"', 0)


def meta_docs() -> list[tuple[Document, list[Passage]]]:
    return [
        doc("a", "apple one", 1, lang="en", year=2020, path="family/a.txt"),
        doc("b", "apple a apple b", 2, lang="zh", year="2021", path="family/b.txt", topic="food"),
        doc("c", "apple three", 1, lang="zh", path="work/c.txt"),
    ]


def test_keyword_search_with_where_keeps_only_matching_documents(store: Store) -> None:
    store.write(meta_docs(), vecs(4))  # labels: a 0, b 1 2, c 3
    fields = store.metadata_fields()
    assert sorted(found(store, "apple")) == [0, 1, 2, 3]
    assert sorted(found(store, "apple", to_sql({"lang": "zh"}, fields))) == [1, 2, 3]
    assert sorted(found(store, "apple", to_sql({"year": {"$gte": 2021}}, fields))) == [1, 2]
    assert found(store, "apple", to_sql({"topic": {"$in": []}}, fields)) == []
    assert found(store, "pear", to_sql({}, fields)) == []


def test_filtered_labels_count_and_fields(store: Store) -> None:
    assert store.metadata_fields() == {"id"}  # empty index: only the document id
    store.write(meta_docs(), vecs(4))
    assert store.metadata_fields() == {"id", "lang", "year", "path", "topic"}
    fields = store.metadata_fields()
    where = to_sql({"path": {"$prefix": "family/"}}, fields)
    labels = store.filtered_labels(where)
    assert labels.dtype == np.int64 and labels.tolist() == [0, 1, 2]
    assert store.count_filtered(where) == 3  # passages, not documents (b has two)
    assert store.filtered_labels(to_sql({"id": "c"}, fields)).tolist() == [3]
    assert store.count_filtered(to_sql({}, fields)) == store.passage_count() == 4
    assert store.filtered_labels(to_sql({"lang": "fr"}, fields)).tolist() == []


def test_a_sentence_unit_is_embedded_again_from_its_sentence(tmp_path: Path) -> None:
    """A sentence unit stores the passage it shows; re-embedding (repair) reads its sentence."""
    store = Store(tmp_path / "store.db")
    text = "cat cat. dog dog."
    passage = Passage(text, 0, 17)
    sentence = Passage("dog dog.", 9, 17, within=passage)
    labels, _ = store.write([(Document("a", text), [passage, sentence])], np.zeros((2, 4), dtype=np.float32))
    assert store.texts(labels) == ["cat cat. dog dog.", "dog dog."]
    assert store.passages(labels)[int(labels[1])].match == [9, 17]
    store.close()
