"""`check` finds each kind of damage an index can suffer, and `repair` mends what it can.

Indexes are built with the KeywordEncoder fake (exact, no model); each test damages one thing the
way a crash, a bad disk or a careless user would, and asserts the report names it.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from textsearch.storage.ann import ANN_FILE
from textsearch.check import check, repair
from textsearch.errors import IndexCorruptError, IndexNotFoundError, ModelMismatchError
from textsearch.index import Index
from textsearch.storage.store import DB_FILE, Store
from textsearch.testing import KeywordEncoder

DOCS = [
    {"id": "c", "text": "cat"},
    {"id": "d", "text": "dog"},
    {"id": "f", "text": "fish"},
    {"id": "long", "text": ". ".join(["apple banana cat dog fish house night rain"] * 6)},
]
QUERIES = ("cat", "dog", "fish", "apple rain")


@pytest.fixture
def built(tmp_path: Path) -> Path:
    path = tmp_path / "idx"
    with Index.create(path, encoder=KeywordEncoder(), max_passage_tokens=10, overlap_tokens=0) as idx:
        idx.add(DOCS)
        assert idx.store.passage_count() > len(DOCS)  # "long" has several passages
    return path


def results(path: Path) -> list[list[tuple[str, float]]]:
    with Index.open(path, encoder=KeywordEncoder()) as idx:
        # ties (score 0 for unrelated words) may come in any order once labels change
        return [sorted(((h.doc_id, h.score) for h in idx.search(q, min_score=-1)), key=lambda x: (-x[1], x[0]))
                for q in QUERIES]


def sql(path: Path, statement: str, params: tuple = ()) -> None:
    conn = sqlite3.connect(path / DB_FILE)
    with conn:
        conn.execute(statement, params)
    conn.close()


def test_a_healthy_index_and_an_empty_one_pass(built: Path, tmp_path: Path) -> None:
    """A freshly built index and one never written to both check clean."""
    report = check(built)
    assert report.ok and not report.notes
    assert report.documents == 4 and report.passages > 4
    Index.create(tmp_path / "empty", encoder=KeywordEncoder()).close()
    assert check(tmp_path / "empty").ok


def test_a_graph_behind_the_database_is_a_note_not_a_problem(built: Path, monkeypatch) -> None:
    """A kill between the SQLite commit and the HNSW save leaves a lagging graph: consistent,
    because opening replays it."""
    monkeypatch.setattr(Index, "_save_ann", lambda self: None)
    with Index.open(built, encoder=KeywordEncoder()) as idx:
        idx.add([{"id": "t", "text": "tree"}])
        idx.delete(["c"])
    report = check(built)
    assert report.ok and "2 write(s) behind" in report.notes[0]
    monkeypatch.undo()
    with Index.open(built, encoder=KeywordEncoder()) as idx:
        assert idx.search("tree")[0].doc_id == "t" and "c" not in {h.doc_id for h in idx.search("cat")}


def test_truncated_graph_is_found_and_rebuilt(built: Path) -> None:
    before = results(built)
    data = (built / ANN_FILE).read_bytes()
    (built / ANN_FILE).write_bytes(data[: len(data) // 3])
    assert "not the one the database recorded" in " | ".join(check(built).problems)
    report = repair(built)
    assert report.ok and any("HNSW graph rebuilt" in d for d in report.repaired)
    assert results(built) == before


def test_graph_that_disagrees_with_the_database_is_found(built: Path, tmp_path: Path) -> None:
    """A graph file whose signature was recorded but whose labels are not the passages'."""
    with Index.create(tmp_path / "other", encoder=KeywordEncoder()) as other:
        other.add([{"id": "x", "text": "sun"}])
    shutil.copy(tmp_path / "other" / ANN_FILE, built / ANN_FILE)
    with Index.open(tmp_path / "other", encoder=KeywordEncoder()) as other:
        signature = other.store.get_meta("ann_sig").split("@")[0]
    store = Store(built / DB_FILE)
    store.set_meta(ann_sig=f"{signature}@{store.seq}")
    store.close()
    assert "disagree" in " | ".join(check(built).problems)
    assert repair(built).ok and check(built).ok


def test_bad_vectors_are_found_and_re_embedded(built: Path) -> None:
    before = results(built)
    sql(built, "UPDATE passages SET vector = ? WHERE label = 0", (np.zeros(len(KeywordEncoder().vocab), np.float32).tobytes(),))
    sql(built, "UPDATE passages SET vector = ? WHERE label = 1", (b"\x00\x01",))
    assert "2 stored vectors are not float32 unit vectors" in " | ".join(check(built).problems)
    report = repair(built, encoder=KeywordEncoder())
    assert report.ok and "re-embedded 2 passages" in report.repaired
    assert results(built) == before


def test_re_embedding_refuses_another_model(built: Path) -> None:
    with pytest.raises(ModelMismatchError):
        repair(built, reembed=True, encoder=KeywordEncoder("lumps", ["<other>", "cat"]))
    assert check(built).ok


def test_keyword_table_out_of_step_is_rebuilt(built: Path) -> None:
    sql(built, "DELETE FROM passages_fts WHERE rowid = 0")
    assert "keyword index out of step" in " | ".join(check(built).problems)
    assert repair(built).ok
    with Index.open(built, encoder=KeywordEncoder()) as idx:
        assert [h.doc_id for h in idx.search("cat", mode="keyword")][0] == "c"


def test_torn_document_is_dropped_and_comes_back_on_reindex(built: Path) -> None:
    """A document missing one of its passages is removed (the report says to re-index)."""
    sql(built, "DELETE FROM passages WHERE label = (SELECT max(label) FROM passages WHERE doc_id = 'long')")
    assert "missing or extra: long" in " | ".join(check(built).problems)
    report = repair(built)
    assert report.ok and report.documents == 3
    assert any("torn documents (long); re-index" in d for d in report.repaired)
    with Index.open(built, encoder=KeywordEncoder()) as idx:
        assert idx.add(DOCS).added == 1
    assert check(built).ok


def test_orphan_passages_are_removed(built: Path) -> None:
    sql(built, "DELETE FROM documents WHERE id = 'c'")
    assert "1 passages belong to no document" in check(built).problems
    report = repair(built)
    assert report.ok and report.documents == 3
    assert "c" not in {doc for hits in results(built) for doc, _ in hits}


def test_leftovers_are_notes_and_world_writable_files_problems(built: Path) -> None:
    (built / (ANN_FILE + ".new")).write_bytes(b"half a graph")
    os.chmod(built / DB_FILE, 0o666)
    report = check(built)
    assert report.problems == [f"{DB_FILE} is world-writable"]
    assert "leftover temporary file hnsw.bin.new" in report.notes[0]
    fixed = repair(built)
    assert fixed.ok and not fixed.notes and not (built / (ANN_FILE + ".new")).exists()
    assert not (built / DB_FILE).stat().st_mode & 0o002


def test_damaged_database_cannot_be_repaired(built: Path) -> None:
    data = bytearray((built / DB_FILE).read_bytes())
    data[100:4096] = bytes(range(256)) * 15 + bytes(range(156))  # the first page holds the schema
    (built / DB_FILE).write_bytes(bytes(data))
    for wal in built.glob(DB_FILE + "-*"):
        wal.unlink()
    report = check(built)
    assert report.fatal and not report.ok
    with pytest.raises(IndexCorruptError, match="rebuild it from its corpus"):
        repair(built)


def test_check_of_a_missing_index(tmp_path: Path) -> None:
    with pytest.raises(IndexNotFoundError):
        check(tmp_path / "nothing")


def test_report_serialises(built: Path) -> None:
    data = json.loads(json.dumps(check(built).to_dict()))
    assert data["ok"] is True and data["documents"] == 4


def test_a_graph_never_saved_is_a_note(tmp_path: Path, monkeypatch) -> None:
    """Killed after the first commit, before the first graph save: the database alone is
    consistent, and opening builds the graph."""
    monkeypatch.setattr(Index, "_save_ann", lambda self: None)
    with Index.create(tmp_path / "idx", encoder=KeywordEncoder()) as idx:
        idx.add(DOCS)
    report = check(tmp_path / "idx")
    assert report.ok and "not written yet" in report.notes[0]
