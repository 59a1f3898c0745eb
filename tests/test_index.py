"""index.py: the Index facade with the keyword fake encoder — exact ids and scores.

KeywordEncoder embeds a text as its bag of known words (unknown words share ``<other>``),
normalised, so every score below is a cosine worked out by hand in a comment.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from textsearch.search import confidence
from textsearch.storage.ann import ANN_FILE
from textsearch.check import check, repair
from textsearch.errors import (
    CorpusError,
    IndexCorruptError,
    IndexExistsError,
    IndexNotFoundError,
    InvalidArgumentError,
    ModelMismatchError,
)
from textsearch.index import Hit, Index, Summary
from textsearch.storage.store import DB_FILE
from textsearch.testing import VOCAB, HashEncoder, KeywordEncoder

R2 = 0.707107  # 1 / sqrt(2), rounded to 6 places as Hit.score is


def hits(index: Index, query: str, k: int = 10, **kw) -> list[tuple[str, float]]:
    return [(h.doc_id, h.score) for h in index.search(query, k, **kw)]


def level(index: Index, query: str) -> float:
    """The query's background level (confidence.py), computed here the way search does."""
    return float(confidence.levels(index.encoder.encode_queries([query]), index.background)[0])


def positive(index: Index, query: str, k: int = 10, **kw) -> list[tuple[str, float]]:
    """Hits that share a word with the query (zero-score ties come in any order)."""
    return [(d, s) for d, s in hits(index, query, k, **kw) if s > 1e-6]


@pytest.fixture
def index(tmp_path: Path, encoder: KeywordEncoder):
    idx = Index.create(tmp_path / "idx", encoder=encoder)
    yield idx
    idx.close()


ANIMALS = [
    {"id": "cd", "text": "cat dog"},
    {"id": "d", "text": "dog"},
    {"id": "c", "text": "cat", "year": 2020},
    {"id": "f", "text": "fish"},
]


# --- create, add, search ----------------------------------------------------------------------


def test_add_then_search_exact_ids_and_scores(index: Index) -> None:
    summary = index.add(ANIMALS)
    assert (summary.added, summary.updated, summary.unchanged, summary.passages) == (4, 0, 0, 4)
    assert index.count() == 4
    # "cat" = e_cat: cos(c) = 1; cos(cd) = 1/sqrt(2); cos(d) = cos(f) = 0
    assert positive(index, "cat") == [("c", 1.0), ("cd", R2)]
    found = dict(hits(index, "cat"))
    assert found == {"c": 1.0, "cd": R2, "d": 0.0, "f": 0.0}
    # "cat dog" = (e_cat + e_dog)/sqrt(2): cos(cd) = 1; cos(c) = cos(d) = 1/sqrt(2)
    top = hits(index, "cat dog", k=3)
    assert top[0] == ("cd", 1.0)
    assert sorted(top[1:]) == [("c", R2), ("d", R2)]


def test_hit_carries_text_metadata_and_offsets(index: Index) -> None:
    index.add(ANIMALS)
    (hit,) = index.search("cat", k=1)
    assert hit == Hit(
        doc_id="c",
        score=1.0,
        text="cat",
        metadata={"year": 2020, "lang": "en"},
        passage=0,
        passages=1,
        start=0,
        end=3,
        margin=round(1.0 - level(index, "cat"), 6),  # the cosine minus the query's background level
        label=2,  # the third passage added
    )
    assert hit.to_dict()["doc_id"] == "c"


def test_k_limits_and_unknown_words(index: Index) -> None:
    index.add(ANIMALS)
    assert hits(index, "cat", k=1) == [("c", 1.0)]
    assert len(index.search("cat", k=100)) == 4  # more than there are: all of them
    # only unknown words: the query is e_other, which no document contains
    assert {s for _, s in hits(index, "zebra")} == {0.0}


def test_upsert_by_id_replaces_text(index: Index) -> None:
    index.add(ANIMALS)
    summary = index.add([{"id": "c", "text": "fish"}])
    assert (summary.added, summary.updated, summary.unchanged) == (0, 1, 0)
    assert index.count() == 4
    assert positive(index, "cat") == [("cd", R2)]  # c no longer says "cat"
    assert sorted(positive(index, "fish", collapse=False)) == [("c", 1.0), ("f", 1.0)]  # two copies of "fish"
    assert index.store.passage_count() == 4 and index.ann.count() == 4


def test_last_repeated_id_in_one_call_wins(index: Index) -> None:
    summary = index.add([{"id": "x", "text": "cat"}, {"id": "x", "text": "dog"}])
    assert (summary.added, index.count()) == (1, 1)
    assert positive(index, "dog") == [("x", 1.0)]


def test_readding_identical_docs_embeds_nothing(index: Index, encoder: KeywordEncoder) -> None:
    index.add(ANIMALS)
    calls = encoder.calls
    summary = index.add(ANIMALS)
    assert (summary.added, summary.updated, summary.unchanged, summary.passages) == (0, 0, 4, 0)
    assert encoder.calls == calls
    # a metadata change is a change: re-embedded
    summary = index.add([{**ANIMALS[2], "year": 2021}])
    assert (summary.updated, summary.passages, encoder.calls) == (1, 1, calls + 1)


def test_add_rejects_documents_without_id_or_text(index: Index) -> None:
    for bad in ({"id": "", "text": "cat"}, {"id": "x", "text": "  "}, {"text": "no id"}):
        with pytest.raises(InvalidArgumentError):
            index.add([ANIMALS[0], bad])
    assert index.count() == 0  # nothing of the rejected call was written


def test_delete_and_count(index: Index) -> None:
    index.add(ANIMALS)
    assert index.delete(["c", "missing", "c"]) == 1
    assert index.count() == 3
    assert "c" not in dict(hits(index, "cat"))
    assert positive(index, "cat") == [("cd", R2)]
    assert index.delete([]) == 0
    assert index.ann.count() == index.store.passage_count() == 3


def test_invalid_queries(index: Index) -> None:
    index.add(ANIMALS)
    for query in ("", "   ", "\n\t"):
        with pytest.raises(InvalidArgumentError, match="empty"):
            index.search(query)
    for k in (0, -1):
        with pytest.raises(InvalidArgumentError, match="k must be a number of results from 1 to 10000"):
            index.search("cat", k=k)


def test_search_an_empty_index(index: Index) -> None:
    assert index.search("cat") == []


def test_create_checks_chunking_options(tmp_path: Path, encoder: KeywordEncoder) -> None:
    with pytest.raises(InvalidArgumentError):
        Index.create(tmp_path / "a", encoder=encoder, max_passage_tokens=4)
    with pytest.raises(InvalidArgumentError):
        Index.create(tmp_path / "b", encoder=encoder, max_passage_tokens=16, overlap_tokens=16)


# --- open, save/load, mismatches --------------------------------------------------------------


def test_save_load_round_trip(tmp_path: Path, encoder: KeywordEncoder) -> None:
    path = tmp_path / "idx"
    with Index.create(path, encoder=encoder) as index:
        index.add(ANIMALS)
        index.delete(["f"])
        before = [index.search(q) for q in ("cat", "dog", "cat dog")]
    assert {p.name for p in path.iterdir()} >= {"textsearch.json", DB_FILE, ANN_FILE}
    with Index.open(path, encoder=KeywordEncoder()) as reopened:
        assert reopened.count() == 3
        assert reopened.ann.count() == 3
        assert [reopened.search(q) for q in ("cat", "dog", "cat dog")] == before
        info = reopened.info()
        assert (info["documents"], info["passages"], info["model"], info["dimension"]) == (
            3,
            3,
            "keyword-test",
            len(VOCAB),
        )


def test_create_on_an_existing_index_raises(tmp_path: Path, encoder: KeywordEncoder) -> None:
    Index.create(tmp_path / "idx", encoder=encoder).close()
    with pytest.raises(IndexExistsError, match="Index.open"):
        Index.create(tmp_path / "idx", encoder=encoder)


def test_open_a_missing_index_raises(tmp_path: Path) -> None:
    with pytest.raises(IndexNotFoundError, match="textsearch index"):
        Index.open(tmp_path / "nothing-here")
    (tmp_path / "plain").mkdir()
    with pytest.raises(IndexNotFoundError):
        Index.open(tmp_path / "plain")  # a folder, but no index in it


@pytest.mark.parametrize(
    "other",
    [
        KeywordEncoder(name="other", vocab=list(reversed(VOCAB))),  # same dimension, other space
        KeywordEncoder(name="other", vocab=VOCAB[:10]),  # other dimension
    ],
    ids=["same-dimension", "other-dimension"],
)
def test_open_with_a_different_encoder_raises(tmp_path: Path, encoder, other) -> None:
    Index.create(tmp_path / "idx", encoder=encoder).close()
    with pytest.raises(ModelMismatchError, match="keyword-test"):
        Index.open(tmp_path / "idx", encoder=other)


def test_same_model_under_another_name_is_accepted(tmp_path: Path, encoder) -> None:
    with Index.create(tmp_path / "idx", encoder=encoder) as index:
        index.add(ANIMALS)
    with Index.open(tmp_path / "idx", encoder=KeywordEncoder(name="renamed")) as index:
        assert positive(index, "cat") == [("c", 1.0), ("cd", R2)]


# --- index_folder -----------------------------------------------------------------------------


def test_index_folder_summary(index: Index, tiny_corpus: Path) -> None:
    summary = index.index_folder(tiny_corpus)
    assert isinstance(summary, Summary)
    assert (summary.added, summary.updated, summary.unchanged, summary.deleted) == (5, 0, 0, 0)
    assert (summary.skipped, summary.passages) == (1, 5)
    assert summary.skipped_files == [("image.png", "unsupported file type '.png'")]
    assert index.count() == 5
    # "apple" vs "a red apple" = other + red + apple: 1/sqrt(3) = 0.57735
    assert positive(index, "apple") == [("food.jsonl#f1", 0.57735)]
    hit = index.search("apple", k=1)[0]
    assert hit.metadata == {"lang": "en", "year": 2021, "path": "food.jsonl", "type": "jsonl"}


def test_index_folder_again_changes_nothing(index: Index, tiny_corpus: Path, encoder) -> None:
    index.index_folder(tiny_corpus)
    calls, seq = encoder.calls, index.store.seq
    summary = index.index_folder(tiny_corpus)
    assert (summary.added, summary.updated, summary.unchanged, summary.deleted) == (0, 0, 5, 0)
    assert summary.passages == 0
    assert encoder.calls == calls and index.store.seq == seq


def test_index_folder_follows_edits(index: Index, tiny_corpus: Path) -> None:
    index.index_folder(tiny_corpus)
    # "dog" vs "# Dog / The dog likes water." = 2 dog + 2 other + water: 2/sqrt(9) = 0.666667
    assert positive(index, "dog") == [("pets/dog.md", 0.666667)]
    (tiny_corpus / "pets" / "cat.txt").write_text("The cat likes fish.", encoding="utf-8")
    (tiny_corpus / "pets" / "dog.md").unlink()
    (tiny_corpus / "pets" / "tree.txt").write_text("a red tree", encoding="utf-8")
    summary = index.index_folder(tiny_corpus)
    assert (summary.added, summary.updated, summary.unchanged, summary.deleted) == (1, 1, 3, 1)
    assert summary.passages == 2
    assert index.count() == 5
    assert positive(index, "dog") == []
    # "fish" vs "The cat likes fish." = 2 other + cat + fish: 1/sqrt(6) = 0.408248
    assert positive(index, "fish") == [("pets/cat.txt", 0.408248)]
    # "tree" vs "a red tree" = other + red + tree: 1/sqrt(3) = 0.57735;
    # vs "a banana tree" = other + banana + tree: the same
    assert sorted(positive(index, "tree")) == [
        ("food.jsonl#f2", 0.57735),
        ("pets/tree.txt", 0.57735),
    ]
    assert index.ann.count() == index.store.passage_count() == 5


def test_index_folder_leaves_api_documents_alone(index: Index, tiny_corpus: Path) -> None:
    index.add([{"id": "mine", "text": "cat"}])
    index.index_folder(tiny_corpus)
    (tiny_corpus / "gbk.txt").unlink()
    summary = index.index_folder(tiny_corpus)
    assert summary.deleted == 1
    assert index.count() == 5  # 5 files' documents - gbk.txt + "mine"
    assert positive(index, "cat", k=1) == [("mine", 1.0)]


def test_empty_folder_raises_and_changes_nothing(
    index: Index, tiny_corpus: Path, tmp_path: Path
) -> None:
    index.index_folder(tiny_corpus)
    hnsw = (index.path / ANN_FILE).read_bytes()
    seq = index.store.seq
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "only.png").write_bytes(b"\x89PNG")
    with pytest.raises(CorpusError, match="no documents found"):
        index.index_folder(empty)
    assert index.count() == 5 and index.store.seq == seq
    assert (index.path / ANN_FILE).read_bytes() == hnsw


def test_index_folder_missing_folder(index: Index, tmp_path: Path) -> None:
    with pytest.raises(CorpusError, match="does not exist"):
        index.index_folder(tmp_path / "nope")


def test_long_document_is_split_and_grouped(tmp_path: Path, encoder: KeywordEncoder) -> None:
    text = "cat cat cat. dog dog dog. fish fish fish. tree tree tree. sun sun sun. rain rain rain."
    # 4 tokens a sentence ("cat cat cat ."): 8 tokens hold two, so three passages
    with Index.create(
        tmp_path / "idx", encoder=encoder, max_passage_tokens=8, overlap_tokens=0, sentences=False
    ) as index:
        summary = index.add([{"id": "long", "text": text}, {"id": "short", "text": "cat"}])
        assert summary.passages == 4
        # "cat" vs passage 0 = 3 cat + 3 dog: 3/sqrt(18) = 0.707107; passages 1 and 2 score 0
        assert positive(index, "cat", group=False) == [("short", 1.0), ("long", R2)]
        ungrouped = index.search("cat", group=False)
        assert [(h.doc_id, h.passage) for h in ungrouped[:2]] == [("short", 0), ("long", 0)]
        assert sorted((h.doc_id, h.passage) for h in ungrouped[2:]) == [("long", 1), ("long", 2)]
        grouped = index.search("cat")
        assert [(h.doc_id, h.score, h.passage) for h in grouped] == [
            ("short", 1.0, 0),
            ("long", R2, 0),
        ]
        # "fish tree" vs passage 1 = 3 fish + 3 tree: 6 / (sqrt(2) * sqrt(18)) = 1
        (best,) = index.search("fish tree", k=1)
        assert (best.doc_id, best.score, best.passage, best.passages) == ("long", 1.0, 1, 3)
        assert best.text == "fish fish fish. tree tree tree." == text[best.start : best.end]


def test_grouping_fetches_more_until_k_documents(tmp_path: Path, encoder: KeywordEncoder) -> None:
    # one document of 30 passages all about "cat", and 3 short documents that mention it less
    long_text = " ".join("cat cat cat." for _ in range(60))
    with Index.create(
        tmp_path / "idx", encoder=encoder, max_passage_tokens=8, overlap_tokens=0
    ) as index:
        index.add(
            [{"id": "long", "text": long_text}]
            + [{"id": f"s{i}", "text": "cat " + " ".join(["dog"] * (i + 1))} for i in range(3)]
        )
        # passages of long: 6 cat = 1.0; s_i = cat + (i+1) dog: 1/sqrt(1 + (i+1)^2)
        assert hits(index, "cat", k=4) == [
            ("long", 1.0),
            ("s0", R2),
            ("s1", 0.447214),
            ("s2", 0.316228),
        ]


# --- crash consistency ------------------------------------------------------------------------


def test_crash_between_commit_and_hnsw_save_is_replayed(tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "idx"
    index = Index.create(path, encoder=KeywordEncoder())
    index.add(ANIMALS)  # saved normally
    # a kill right after each SQLite commit, before the HNSW file is written
    monkeypatch.setattr(Index, "_save_ann", lambda self: None)
    index.add([{"id": "t", "text": "tree"}, {"id": "c", "text": "rain"}])  # new + changed
    index.delete(["d"])
    index.close()
    del index
    monkeypatch.undo()

    with Index.open(path, encoder=KeywordEncoder()) as reopened:
        assert reopened.count() == 4
        assert reopened.ann.count() == reopened.store.passage_count() == 4
        assert positive(reopened, "tree") == [("t", 1.0)]
        assert positive(reopened, "rain") == [("c", 1.0)]
        assert positive(reopened, "cat") == [("cd", R2)]  # old "c" and "d" are gone
        assert "d" not in dict(hits(reopened, "dog"))
        reopened.add([{"id": "s", "text": "sun"}])  # the next write saves the replayed graph
    with Index.open(path, encoder=KeywordEncoder()) as again:
        assert again.count() == again.ann.count() == 5
        assert positive(again, "sun") == [("s", 1.0)]


def test_crash_before_the_first_hnsw_save(tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "idx"
    monkeypatch.setattr(Index, "_save_ann", lambda self: None)
    with Index.create(path, encoder=KeywordEncoder()) as index:
        index.add(ANIMALS)
    monkeypatch.undo()
    assert not (path / ANN_FILE).exists()
    with Index.open(path, encoder=KeywordEncoder()) as reopened:
        assert reopened.count() == 4
        assert positive(reopened, "cat") == [("c", 1.0), ("cd", R2)]


def test_crash_before_the_hnsw_rename_keeps_the_old_file(tmp_path: Path, monkeypatch) -> None:
    """A kill after the pending signature is recorded but before the rename: the old file is
    still the recorded one, and the new state is replayed from SQLite."""
    path = tmp_path / "idx"
    with Index.create(path, encoder=KeywordEncoder()) as index:
        index.add(ANIMALS)

        real_replace = os.replace

        def replace(src, dst):  # only the final rename onto hnsw.bin is "killed"
            if Path(dst).name == ANN_FILE:
                raise OSError("killed before the rename")
            real_replace(src, dst)

        monkeypatch.setattr(os, "replace", replace)
        with pytest.raises(OSError, match="killed"):
            index.add([{"id": "t", "text": "tree"}])
    monkeypatch.undo()
    assert (path / (ANN_FILE + ".new")).exists()  # the new graph was written, not renamed
    with Index.open(path, encoder=KeywordEncoder()) as reopened:
        assert reopened.store.get_meta("ann_pending", "").endswith("@2")
        assert reopened.store.get_meta("ann_sig", "").endswith("@1")
        assert reopened.count() == reopened.ann.count() == 5
        assert positive(reopened, "tree") == [("t", 1.0)]


def test_crash_after_the_hnsw_rename_uses_the_new_file(tmp_path: Path, monkeypatch) -> None:
    """A kill after the rename but before the signature is confirmed: the file on disk matches
    the pending record and is used as is."""
    from textsearch.storage.store import Store

    path = tmp_path / "idx"
    with Index.create(path, encoder=KeywordEncoder()) as index:
        index.add(ANIMALS)
        real_set_meta = Store.set_meta

        def set_meta(self, **values):
            if "ann_sig" in values:
                raise OSError("killed before the confirmation")
            real_set_meta(self, **values)

        monkeypatch.setattr(Store, "set_meta", set_meta)
        with pytest.raises(OSError, match="killed"):
            index.add([{"id": "t", "text": "tree"}])
    monkeypatch.undo()
    with Index.open(path, encoder=KeywordEncoder()) as reopened:
        assert reopened.store.get_meta("ann_pending", "").endswith("@2")  # the recorded new file
        assert reopened.count() == reopened.ann.count() == 5
        assert positive(reopened, "tree") == [("t", 1.0)]


def test_two_crashes_in_a_row_around_the_hnsw_save(tmp_path: Path, monkeypatch) -> None:
    """Killed after a rename before its confirmation, then killed again before the next rename:
    the file on disk must still be one the records name, so the index opens."""
    from textsearch.storage.store import Store

    path = tmp_path / "idx"
    with Index.create(path, encoder=KeywordEncoder()) as index:
        index.add(ANIMALS)
    real_set_meta, real_replace = Store.set_meta, os.replace

    def set_meta(self, **values):
        if "ann_sig" in values and "ann_pending" in values:  # the confirmation
            raise OSError("killed before the confirmation")
        real_set_meta(self, **values)

    monkeypatch.setattr(Store, "set_meta", set_meta)
    with Index.open(path, encoder=KeywordEncoder()) as index, pytest.raises(OSError, match="killed"):
        index.add([{"id": "t", "text": "tree"}])
    monkeypatch.undo()

    def replace(src, dst):
        if str(dst).endswith(ANN_FILE):
            raise OSError("killed before the rename")
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    with Index.open(path, encoder=KeywordEncoder()) as index, pytest.raises(OSError, match="killed"):
        index.add([{"id": "r", "text": "rain"}])
    monkeypatch.undo()
    with Index.open(path, encoder=KeywordEncoder()) as reopened:
        assert reopened.count() == reopened.ann.count() == 6
        assert positive(reopened, "rain") == [("r", 1.0)]


def test_a_held_write_lock_times_out(tmp_path: Path, monkeypatch) -> None:
    import fcntl

    from textsearch.errors import IndexLockedError
    from textsearch.storage.graphfile import LOCK_FILE

    monkeypatch.setenv("TEXTSEARCH_LOCK_TIMEOUT", "0.2")
    with Index.create(tmp_path / "idx", encoder=KeywordEncoder()) as index:
        with open(tmp_path / "idx" / LOCK_FILE, "a+") as other_writer:
            fcntl.flock(other_writer, fcntl.LOCK_EX | fcntl.LOCK_NB)
            with pytest.raises(IndexLockedError, match="another process"):
                index.add(ANIMALS)
        assert index.count() == 0
        index.add(ANIMALS)  # the lock is free again
        assert index.count() == 4


def test_another_writer_is_seen_by_an_open_index(tmp_path: Path) -> None:
    path = tmp_path / "idx"
    reader = Index.create(path, encoder=KeywordEncoder())
    reader.add(ANIMALS)
    with Index.open(path, encoder=KeywordEncoder()) as writer:
        writer.add([{"id": "t", "text": "tree"}])
        writer.delete(["c"])
    assert positive(reader, "tree") == [("t", 1.0)]
    assert positive(reader, "cat") == [("cd", R2)]
    assert reader.ann.count() == 4
    reader.close()


def test_truncated_hnsw_file_is_refused_then_repaired(tmp_path: Path) -> None:
    path = tmp_path / "idx"
    with Index.create(path, encoder=KeywordEncoder()) as index:
        index.add(ANIMALS)
        before = [index.search(q) for q in ("cat", "dog", "fish")]
    data = (path / ANN_FILE).read_bytes()
    (path / ANN_FILE).write_bytes(data[: len(data) // 2])
    with pytest.raises(IndexCorruptError, match="textsearch repair"):
        Index.open(path, encoder=KeywordEncoder())
    report = repair(path)
    assert report.ok and (report.documents, report.passages) == (4, 4)
    with Index.open(path, encoder=KeywordEncoder()) as repaired:
        assert [repaired.search(q) for q in ("cat", "dog", "fish")] == before


def test_missing_hnsw_file_is_refused_then_repaired(tmp_path: Path) -> None:
    path = tmp_path / "idx"
    with Index.create(path, encoder=KeywordEncoder()) as index:
        index.add(ANIMALS)
    (path / ANN_FILE).unlink()
    with pytest.raises(IndexCorruptError, match="missing .*`textsearch repair"):
        Index.open(path, encoder=KeywordEncoder())
    assert repair(path).ok
    with Index.open(path, encoder=KeywordEncoder()) as repaired:
        assert positive(repaired, "cat") == [("c", 1.0), ("cd", R2)]


def test_hnsw_file_of_another_state_is_refused(tmp_path: Path) -> None:
    """An older copy of the graph put back must not be trusted, even one of the same size."""
    path = tmp_path / "idx"
    with Index.create(path, encoder=KeywordEncoder()) as index:
        index.add(ANIMALS)
        shutil.copy(path / ANN_FILE, tmp_path / "old.bin")
        index.delete(["c"])  # marked deleted: same slots, same size
    assert (tmp_path / "old.bin").stat().st_size == (path / ANN_FILE).stat().st_size
    shutil.copy(tmp_path / "old.bin", path / ANN_FILE)
    with pytest.raises(IndexCorruptError, match="does not match"):
        Index.open(path, encoder=KeywordEncoder())


def test_repair_of_a_missing_index(tmp_path: Path) -> None:
    with pytest.raises(IndexNotFoundError):
        repair(tmp_path / "nothing")


def test_garbage_store_is_corrupt(tmp_path: Path) -> None:
    path = tmp_path / "idx"
    with Index.create(path, encoder=KeywordEncoder()) as index:
        index.add(ANIMALS)
    for leftover in path.glob(DB_FILE + "-*"):  # WAL files, if any were left
        leftover.unlink()
    (path / DB_FILE).write_bytes(b"\x00garbage, not SQLite\xff" * 1000)
    with pytest.raises(IndexCorruptError, match="SQLite database .* unreadable"):
        Index.open(path, encoder=KeywordEncoder())


def test_destroy(tmp_path: Path, encoder: KeywordEncoder) -> None:
    Index.create(tmp_path / "idx", encoder=encoder).close()
    Index.destroy(tmp_path / "idx")
    assert not (tmp_path / "idx").exists()
    with pytest.raises(IndexNotFoundError):
        Index.destroy(tmp_path / "idx")


# --- recall through the API -------------------------------------------------------------------


def test_recall_against_exact_search(tmp_path: Path, encoder: KeywordEncoder) -> None:
    rng = np.random.default_rng(0)
    words = VOCAB[1:]
    docs = [
        {"id": f"d{i}", "text": " ".join(rng.choice(words, size=rng.integers(1, 6)))}
        for i in range(400)
    ]
    queries = [" ".join(rng.choice(words, size=2)) for _ in range(50)]
    with Index.create(tmp_path / "idx", encoder=encoder) as index:
        index.add(docs)
        doc_vectors = encoder.encode_passages([d["text"] for d in docs])
        query_vectors = encoder.encode_queries(queries)
        exact_scores = np.sort(query_vectors @ doc_vectors.T, axis=1)[:, ::-1][:, :10]
        # many documents tie, so ids are not comparable: a hit counts when its score reaches the
        # exact 10th best. The graph is built by several threads, so it differs from run to run;
        # with this many identical texts a run now and then misses a few of the 500 (hnswlib's own
        # recall test asks for 0.95; STYLE.md too)
        found = [[h.score for h in index.search(q, k=10, collapse=False)] for q in queries]  # copies and all
        assert all(len(hits) == 10 for hits in found)
        reached = np.asarray(found) >= exact_scores[:, -1:] - 1e-5
        assert reached.mean() >= 0.98


@pytest.mark.parametrize("bad", [
    {"id": "n", "text": "cat", "score": float("nan")},  # NaN would poison every later filter
    {"id": "s", "text": "cat \ud800"},  # a lone surrogate cannot be stored as UTF-8
    {"id": "m", "text": "cat", "metadata": "not a dict"},
    "just a string",
])
def test_add_refuses_what_cannot_be_stored(tmp_path: Path, bad: object) -> None:
    """A document SQLite or JSON cannot hold is a clear error, and the index stays whole."""
    with Index.create(tmp_path / "idx", encoder=KeywordEncoder()) as index:
        index.add(ANIMALS)
        with pytest.raises(InvalidArgumentError, match="cannot store document"):
            index.add([bad])
        assert index.count() == len(ANIMALS)
        assert index.search("cat", filter={"lang": "en"})[0].doc_id == "c"


def test_an_unreadable_file_keeps_its_documents(tmp_path: Path, monkeypatch) -> None:
    """A file that cannot be read this time (permissions, I/O error) is not a deleted file."""
    folder = tmp_path / "corpus"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.txt").write_text("cat", encoding="utf-8")
    (folder / "sub" / "b.txt").write_text("dog", encoding="utf-8")
    with Index.create(tmp_path / "idx", encoder=KeywordEncoder()) as index:
        index.index_folder(folder)
        real = Path.read_bytes

        def read_bytes(self: Path) -> bytes:
            if self.name == "b.txt":
                raise PermissionError(13, "Permission denied")
            return real(self)

        monkeypatch.setattr(Path, "read_bytes", read_bytes)
        b = folder / "sub" / "b.txt"
        os.utime(b, ns=(b.stat().st_atime_ns, b.stat().st_mtime_ns + 10**9))  # changed: it is read again
        summary = index.index_folder(folder)
        assert summary.deleted == 0 and summary.skipped_files == [("sub/b.txt", "unreadable (Permission denied)")]
        assert index.search("dog")[0].doc_id == "sub/b.txt"
        monkeypatch.undo()
        (folder / "sub" / "b.txt").unlink()
        assert index.index_folder(folder).deleted == 1  # once really gone, it goes


def test_query_with_lone_surrogates_and_nul_is_cleaned() -> None:
    from textsearch.index import clean_query

    assert clean_query("cat\x00dog\ud800") == "cat dog\ufffd"
    assert clean_query("猫\udcff").encode("utf-8") == "猫\ufffd".encode()  # what every tokenizer needs


def test_pipelined_batches_keep_each_vector_with_its_passage(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Batch i+1 embeds in a helper thread while batch i is written: with two-passage batches,
    every stored vector must still be the one its own text embeds to."""
    import textsearch.ingest.pipeline as ingest_module

    monkeypatch.setattr(ingest_module, "BATCH_PASSAGES", 2)
    encoder = HashEncoder()
    docs = [{"id": f"d{i}", "text": f"document number {i} about {VOCAB[i % len(VOCAB)]}"} for i in range(25)]
    with Index.create(tmp_path / "idx", encoder=encoder) as idx:
        summary = idx.add(docs)
        assert (summary.added, summary.passages) == (25, 25)
        labels = idx.store.labels()
        stored = idx.store.vectors(labels, encoder.dimension)
        assert np.allclose(stored, encoder.encode_passages(idx.store.texts(labels)), atol=1e-6)
        assert [h.doc_id for h in idx.search(docs[17]["text"], k=1, min_score=-1)] == ["d17"]
    assert check(tmp_path / "idx").ok


def test_an_encoder_failing_mid_run_keeps_the_batches_before(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import textsearch.ingest.pipeline as ingest_module

    class FailsThirdBatch(HashEncoder):
        calls = 0  # calls 1 and 2 are the probe and the background Index.create records

        def encode_passages(self, texts, show_progress=False):  # type: ignore[no-untyped-def]
            self.calls += 1
            if self.calls == 5:
                raise RuntimeError("out of memory")
            return super().encode_passages(texts, show_progress)

    monkeypatch.setattr(ingest_module, "BATCH_PASSAGES", 2)
    docs = [{"id": f"d{i}", "text": f"text {i}"} for i in range(10)]
    with Index.create(tmp_path / "idx", encoder=FailsThirdBatch()) as idx:
        with pytest.raises(RuntimeError, match="out of memory"):
            idx.add(docs)
        assert idx.count() == 4  # the two batches embedded before the failure, nothing after
    assert check(tmp_path / "idx").ok
    with Index.open(tmp_path / "idx", encoder=HashEncoder()) as idx:  # the rest, on a rerun
        summary = idx.add(docs)
        assert (summary.added, summary.unchanged, idx.count()) == (6, 4, 10)


def test_float16_vectors_halve_the_stored_bytes_and_still_serve(tmp_path: Path) -> None:
    docs = [{"id": f"d{i}", "text": f"text number {i}"} for i in range(40)]
    sizes = {}
    for dtype in ("float32", "float16"):
        with Index.create(tmp_path / dtype, encoder=HashEncoder(), vector_dtype=dtype) as idx:
            idx.add(docs)
            assert idx.config.vector_dtype == idx.info()["vector_dtype"] == dtype
            blobs = [len(b) for rows in idx.store.vector_rows() for _, b in rows]
            sizes[dtype] = set(blobs)
            stored = idx.store.vectors(idx.store.labels(), 64)
            assert stored.dtype == np.float32 and np.allclose(np.linalg.norm(stored, axis=1), 1, atol=1e-3)
            assert [h.doc_id for h in idx.search("text number 7", k=1, min_score=-1)] == ["d7"]
        report = check(tmp_path / dtype)
        assert report.ok, report.problems
    assert sizes == {"float32": {256}, "float16": {128}}  # 64 dimensions × 4 bytes, × 2 bytes
    # the graph rebuilt from float16 vectors still finds every passage
    with Index.open(tmp_path / "float16", encoder=HashEncoder()) as idx:
        idx.rebuild_graph()
        assert [h.doc_id for h in idx.search("text number 23", k=1, min_score=-1)] == ["d23"]
    # repair re-embeds into the index's dtype
    report = repair(tmp_path / "float16", reembed=True, encoder=HashEncoder())
    assert report.ok and any("re-embedded 40" in line for line in report.repaired)
    with Index.open(tmp_path / "float16", encoder=HashEncoder()) as idx:
        assert {len(b) for rows in idx.store.vector_rows() for _, b in rows} == {128}


def test_vector_dtype_is_chosen_at_creation(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgumentError, match="unknown vector dtype 'int4'"):
        Index.create(tmp_path / "bad", encoder=HashEncoder(), vector_dtype="int4")
    Index.create(tmp_path / "idx", encoder=HashEncoder()).close()
    with pytest.raises(InvalidArgumentError, match="keeps float32 vectors.*build a new index"):
        Index.open_or_create(tmp_path / "idx", encoder=HashEncoder(), vector_dtype="float16")
    assert Index.open_or_create(tmp_path / "idx", encoder=HashEncoder(), vector_dtype="float32").config.vector_dtype == "float32"


def test_documents_are_split_while_the_encoder_works(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Ingestion streams: the first batch is embedded (and written) before the later documents
    are split (for a folder, read and decoded too), so that work overlaps with encoding."""
    import textsearch.ingest.pipeline as ingest_module

    events: list[str] = []

    class Logging(HashEncoder):
        def encode_passages(self, texts, show_progress=False):  # type: ignore[no-untyped-def]
            vectors = super().encode_passages(texts, show_progress)
            events.append(f"encoded {len(texts)}")
            return vectors

    split = ingest_module.split_many

    def logged(texts, *args):  # type: ignore[no-untyped-def]
        events.extend(f"split {text}" for text in texts)
        return split(texts, *args)

    monkeypatch.setattr(ingest_module, "BATCH_PASSAGES", 2)
    monkeypatch.setattr(ingest_module, "split_many", logged)
    with Index.create(tmp_path / "idx", encoder=Logging()) as idx:
        events.clear()  # the probe
        summary = idx.add([{"id": f"d{i}", "text": f"text {i}"} for i in range(10)], show_progress=True)
        assert (summary.added, summary.passages, idx.count()) == (10, 10, 10)
    # batch 1 (d0, d1) is written, which waits for its vectors, before batch 3 (d4...) is split
    assert events.index("encoded 2") < events.index("split text 4")
    assert events.count("encoded 2") == 5


def test_an_unchanged_folder_reindexes_without_the_model(tmp_path: Path, encoder: KeywordEncoder) -> None:
    """Opened without an encoder, the index would load its model ("keyword-test", which no
    loader knows: asking for it fails) only if a document were new or changed."""
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.txt").write_text("the cat sleeps", encoding="utf-8")
    with Index.create(tmp_path / "idx", encoder=encoder) as idx:
        idx.index_folder(tmp_path / "docs")
    with Index.open(tmp_path / "idx") as idx:
        summary = idx.index_folder(tmp_path / "docs")
        assert (summary.added, summary.updated, summary.unchanged, summary.passages) == (0, 0, 1, 0)
        assert idx._encoder is None
