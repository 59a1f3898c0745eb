"""The storage backend contract, run on both backends: the default (SQLite + hnswlib in the index
directory) and Milvus (Milvus Lite here; a server takes the same code path). Each test is one
behaviour a user relies on, whichever backend holds the passages."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from textsearch import Index
from textsearch.check import check, repair
from textsearch.errors import InvalidArgumentError, MissingExtraError
from textsearch.testing import HashEncoder, KeywordEncoder

BACKENDS = ["local", pytest.param("milvus", marks=[pytest.mark.engine, pytest.mark.skipif(
    not all(__import__("importlib").util.find_spec(m) for m in ("pymilvus", "milvus_lite")),
    reason="the milvus extra is not installed: pip install 'textsearch-zh[milvus]'")])]

DOCS = [
    {"id": "a", "text": "cat sleeps in the sun", "lang": "en", "year": 2021, "path": "pets/a.txt"},
    {"id": "b", "text": "dog in the rain", "lang": "en", "year": 2019, "path": "pets/b.txt"},
    {"id": "c", "text": "红色的 apple tree", "lang": "zh", "year": 2023, "path": "garden/c.txt"},
    {"id": "d", "text": "happy baby with a red toy", "lang": "en", "path": "family/d.txt"},
]


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def index(tmp_path: Path, backend: str) -> Iterator[Index]:
    with Index.create(tmp_path / "idx", encoder=KeywordEncoder(), backend=backend) as idx:
        idx.add(DOCS)
        yield idx


def ids(hits: list) -> list[str]:  # type: ignore[type-arg]
    return [h.doc_id for h in hits]


def test_add_search_and_the_hit_fields(index: Index, backend: str) -> None:
    assert index.count() == 4
    (hit,) = index.search("cat", k=1)
    assert (hit.doc_id, hit.text, hit.passage, hit.passages, hit.start, hit.end) == (
        "a", "cat sleeps in the sun", 0, 1, 0, 21)
    assert hit.metadata == {"lang": "en", "year": 2021, "path": "pets/a.txt"}
    # "cat sleeps in the sun": cat, sun and three words outside the vocabulary (one dimension)
    assert hit.score == pytest.approx(11 ** -0.5, abs=1e-5)
    assert index.info()["backend"] == backend
    assert (index.info()["documents"], index.info()["passages"]) == (4, 4)


def test_upsert_replaces_and_unchanged_is_skipped(index: Index) -> None:
    summary = index.add([{"id": "a", "text": "fish in water", "lang": "en"}, DOCS[1]])
    assert (summary.added, summary.updated, summary.unchanged) == (0, 1, 1)
    assert index.count() == 4
    assert ids(index.search("fish", k=1)) == ["a"]
    assert "a" not in ids(index.search("sun", mode="keyword", k=4))


def test_delete_counts_what_existed(index: Index) -> None:
    assert index.delete(["a", "nope", "a"]) == 1
    assert index.count() == 3
    assert "a" not in ids(index.search("cat", k=4, include_low_confidence=True))


@pytest.mark.parametrize(("filter", "expected"), [
    ({"lang": "zh"}, ["c"]),
    ({"year": {"$gte": 2020}}, ["a", "c"]),
    ({"year": {"$ne": 2021}}, ["b", "c", "d"]),  # $ne also matches a document without the field
    ({"path": {"$prefix": "pets/"}}, ["a", "b"]),
    ({"lang": {"$in": ["zh", "fr"]}}, ["c"]),
    ({"id": {"$nin": ["a", "b"]}}, ["c", "d"]),
    ({"$or": [{"lang": "zh"}, {"year": {"$lt": 2020}}]}, ["b", "c"]),
])
def test_filters(index: Index, filter: dict, expected: list[str]) -> None:  # type: ignore[type-arg]
    for mode in ("dense", "keyword", "hybrid"):
        query = "cat dog apple red sun rain tree baby"
        found = index.search(query, k=10, mode=mode, filter=filter, include_low_confidence=True)
        assert sorted(ids(found)) == expected, mode


def test_a_bad_filter_is_one_clear_error(index: Index) -> None:
    with pytest.raises(InvalidArgumentError, match="unknown filter field 'colour'"):
        index.search("cat", filter={"colour": "red"})


def test_keyword_and_hybrid(index: Index) -> None:
    assert ids(index.search("rain", mode="keyword", k=1)) == ["b"]
    assert ids(index.search("apple", mode="hybrid", k=1)) == ["c"]
    assert index.search("zebra", mode="keyword") == []


def test_no_confident_match(index: Index) -> None:
    assert index.search("cat", min_score=0.9) == []
    assert ids(index.search("cat", k=1, min_score=0.9, include_low_confidence=True)) == ["a"]


def test_reopened_index_answers_the_same(index: Index) -> None:
    before = index.search("red toy", k=3, include_low_confidence=True)
    index.close()
    with Index.open(index.path, encoder=KeywordEncoder()) as again:
        assert again.count() == 4
        assert again.search("red toy", k=3, include_low_confidence=True) == before


def test_incremental_folder_indexing(tmp_path: Path, backend: str) -> None:
    folder = tmp_path / "corpus"
    (folder / "sub").mkdir(parents=True)
    (folder / "one.txt").write_text("cat in the sun", encoding="utf-8")
    (folder / "two.txt").write_text("dog in the rain", encoding="utf-8")
    (folder / "sub" / "rows.jsonl").write_text('{"id": "r1", "text": "apple tree"}\n', encoding="utf-8")
    encoder = KeywordEncoder()
    with Index.create(tmp_path / "idx", encoder=encoder, backend=backend) as idx:
        first = idx.index_folder(folder)
        assert (first.added, first.unchanged, idx.count()) == (3, 0, 3)
        embedded = encoder.calls
        again = idx.index_folder(folder)
        assert (again.added, again.updated, again.unchanged, again.deleted) == (0, 0, 3, 0)
        assert encoder.calls == embedded  # nothing unchanged is embedded again
        (folder / "two.txt").write_text("fish in water", encoding="utf-8")
        (folder / "one.txt").unlink()
        third = idx.index_folder(folder)
        assert (third.added, third.updated, third.unchanged, third.deleted) == (0, 1, 1, 1)
        assert sorted(ids(idx.search("fish apple cat", k=5, include_low_confidence=True))) == [
            "sub/rows.jsonl#r1", "two.txt"]
        assert idx.search("water", k=1)[0].metadata["path"] == "two.txt"
    assert check(tmp_path / "idx").ok


@pytest.mark.engine
def test_both_backends_give_the_same_hits(tmp_path: Path) -> None:
    pytest.importorskip("milvus_lite")
    docs = [{"id": f"d{i}", "text": f"text number {i} about {w}"} for i, w in
            enumerate(["cats", "dogs", "trains", "rain", "apples"] * 8)]
    found = []
    for backend in ("local", "milvus"):
        with Index.create(tmp_path / backend, encoder=HashEncoder(), backend=backend) as idx:
            idx.add(docs)
            found.append([[(h.doc_id, h.text, round(h.score, 5)) for h in
                           idx.search(q, k=5, include_low_confidence=True)]
                          for q in ("text number 3 about trains", "dogs", "text number 17 about trains")])
    assert found[0] == found[1]


def test_check_reports_ok_and_info_names_the_backend(index: Index, backend: str) -> None:
    report = check(index.path)
    assert report.ok and (report.documents, report.passages) == (4, 4)
    assert index.info()["backend"] == backend


def test_destroy_removes_everything(tmp_path: Path, backend: str) -> None:
    Index.create(tmp_path / "gone", encoder=KeywordEncoder(), backend=backend).close()
    Index.destroy(tmp_path / "gone")
    assert not (tmp_path / "gone").exists()


def test_a_uri_needs_the_milvus_backend(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgumentError, match="a URI is for the milvus backend"):
        Index.create(tmp_path / "x", encoder=KeywordEncoder(), uri="x.db")
    with pytest.raises(InvalidArgumentError, match="unknown backend 'faiss'"):
        Index.create(tmp_path / "x", encoder=KeywordEncoder(), backend="faiss")
    assert not (tmp_path / "x").exists()


def test_the_backend_is_chosen_at_creation(tmp_path: Path) -> None:
    Index.create(tmp_path / "idx", encoder=KeywordEncoder()).close()
    with pytest.raises(InvalidArgumentError, match="keeps its passages in local; the backend is chosen"):
        Index.open_or_create(tmp_path / "idx", encoder=KeywordEncoder(), backend="milvus")


# --- Milvus only ---------------------------------------------------------------------------------
milvus_only = pytest.mark.skipif(not all(__import__("importlib").util.find_spec(m) for m in ("pymilvus", "milvus_lite")),
                                 reason="the milvus extra is not installed")


@milvus_only
@pytest.mark.engine
def test_milvus_lite_uri_is_a_db_file(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgumentError, match=r"ends in \.db"):
        Index.create(tmp_path / "x", encoder=KeywordEncoder(), backend="milvus", uri="data/milvus")
    assert not (tmp_path / "x").exists()
    shared = tmp_path / "shared.db"
    with Index.create(tmp_path / "a", encoder=KeywordEncoder(), backend="milvus", uri=str(shared)) as a, \
            Index.create(tmp_path / "b", encoder=KeywordEncoder(), backend="milvus", uri=str(shared)) as b:
        a.add(DOCS[:2])
        b.add(DOCS[2:])
        assert (a.count(), b.count()) == (2, 2)  # one Milvus, one collection per index
        assert a.config.collection != b.config.collection


@milvus_only
@pytest.mark.engine
def test_milvus_crash_between_requests_is_repaired_by_the_next_run(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """A batch is three requests: delete the old rows, upsert the later passages, upsert the first
    ones (which carry the content hash). A crash after the second leaves documents that the next
    run does not trust, and rewrites."""
    from textsearch.storage import milvus

    folder = tmp_path / "corpus"
    folder.mkdir()
    long = " ".join(f"Sentence {i} is about the cat and the dog." for i in range(40))
    (folder / "long.txt").write_text(long, encoding="utf-8")
    (folder / "short.txt").write_text("apple tree", encoding="utf-8")
    with Index.create(tmp_path / "idx", encoder=HashEncoder(), backend="milvus") as idx:
        upserts = 0
        call = milvus.MilvusBackend._call

        def crashing(self, method, *args, **kwargs):  # type: ignore[no-untyped-def]
            nonlocal upserts
            if method == "upsert":
                upserts += 1
                if upserts == 2:
                    raise RuntimeError("killed")
            return call(self, method, *args, **kwargs)

        monkeypatch.setattr(milvus.MilvusBackend, "_call", crashing)
        with pytest.raises(RuntimeError, match="killed"):
            idx.index_folder(folder)
        monkeypatch.setattr(milvus.MilvusBackend, "_call", call)
        report = check(idx.path)
        assert not report.ok and "long.txt" in report.problems[0]  # later passages without their first
        assert idx.backend.hashes(["long.txt", "short.txt"]) == {}  # neither is marked up to date
        summary = idx.index_folder(folder)
        assert (summary.added, summary.unchanged) == (2, 0)
        assert check(idx.path).ok
        assert idx.count() == 2 and idx.info()["passages"] > 2
    assert repair(tmp_path / "idx").ok


@milvus_only
@pytest.mark.engine
def test_a_milvus_index_is_served(tmp_path: Path) -> None:
    from textsearch.server import create_app, running

    with Index.create(tmp_path / "indexes" / "pets", encoder=KeywordEncoder(), backend="milvus") as idx:
        idx.add(DOCS)
    with running(create_app(tmp_path / "indexes", encoder=KeywordEncoder())) as url:
        hits = httpx.post(f"{url}/indexes/pets/search", json={"query": "rain", "k": 1}).json()["hits"]
        assert [h["doc_id"] for h in hits] == ["b"]
        filtered = httpx.post(f"{url}/indexes/pets/search", json={
            "query": "apple", "where": ["lang = zh"], "include_low_confidence": True}).json()["hits"]
        assert [h["doc_id"] for h in filtered] == ["c"]
        added = httpx.put(f"{url}/indexes/pets/documents", json=[{"id": "e", "text": "fish in water"}]).json()
        assert (added["added"], added["documents"]) == (1, 5)
        assert httpx.delete(f"{url}/indexes/pets/documents/e").json() == {"deleted": "e", "documents": 4}
        assert httpx.get(f"{url}/indexes/pets").json()["backend"] == "milvus"


def test_a_missing_extra_names_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    find = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "pymilvus" else find(name, *a))
    with pytest.raises(MissingExtraError, match=r"pip install 'textsearch-zh\[milvus\]'"):
        Index.create(tmp_path / "x", encoder=KeywordEncoder(), backend="milvus")
    assert not (tmp_path / "x").exists()


def test_writing_a_batch_again_stores_nothing_twice(index: Index) -> None:
    """What a retried write (a Ray task run again) does: the same documents, replaced."""
    from textsearch.documents.corpus import Document, Passage

    doc = Document("z", "fish in water. red fish.", {"lang": "en"})
    batch = [(doc, [Passage("fish in water.", 0, 14), Passage("red fish.", 15, 24)])]
    vectors = KeywordEncoder().encode_passages([p.text for p in batch[0][1]])
    for _ in range(2):
        index.backend.write(batch, vectors, None)
        index.backend.save()
    assert index.backend.counts() == (5, 6)
    assert [h.passage for h in index.search("fish", k=5, group=False, filter={"id": "z"})] == [1, 0]


@milvus_only
@pytest.mark.engine
def test_a_milvus_without_bm25_says_keyword_search_is_unsupported(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    from textsearch.storage import milvus

    make = milvus.MilvusBackend._create_collection

    def older(self, keyword):  # type: ignore[no-untyped-def]
        if keyword:  # what a Milvus before 2.5 answers a schema with a BM25 function
            raise milvus.BackendError("Milvus create_collection failed: function type BM25 is not supported")
        return make(self, keyword)

    monkeypatch.setattr(milvus.MilvusBackend, "_create_collection", older)
    with Index.create(tmp_path / "idx", encoder=KeywordEncoder(), backend="milvus") as idx:
        idx.add(DOCS)
        assert ids(idx.search("rain", k=1)) == ["b"]  # dense search works
        for mode in ("keyword", "hybrid"):
            with pytest.raises(InvalidArgumentError, match="need BM25.*--mode dense"):
                idx.search("rain", mode=mode)


@milvus_only
@pytest.mark.engine
def test_a_milvus_lite_file_open_elsewhere_is_one_clear_error(tmp_path: Path) -> None:
    import subprocess
    import sys

    with Index.create(tmp_path / "idx", encoder=KeywordEncoder(), backend="milvus") as idx:
        idx.add(DOCS)
        run = subprocess.run([sys.executable, "-m", "textsearch", "info", str(tmp_path / "idx")], check=False,
                             capture_output=True, text=True, timeout=120)
    assert run.returncode == 1
    assert run.stderr.strip().splitlines()[-1].startswith("error: Milvus Lite file ")
    assert "is open in another process" in run.stderr


@milvus_only
@pytest.mark.engine
def test_a_field_another_writer_added_is_filterable_here(tmp_path: Path) -> None:
    """The Milvus backend keeps its state file in memory between searches and reads it again
    once another writer replaced it."""
    with Index.create(tmp_path / "idx", encoder=KeywordEncoder(), backend="milvus") as reader:
        reader.add(DOCS)
        with pytest.raises(InvalidArgumentError, match="unknown filter field 'colour'"):
            reader.search("fish", filter={"colour": "red"})
        with Index.open(tmp_path / "idx", encoder=KeywordEncoder()) as writer:
            writer.add([{"id": "e", "text": "red fish", "colour": "red"}])
        assert ids(reader.search("fish", filter={"colour": "red"}, include_low_confidence=True)) == ["e"]


def test_the_cut_is_measured_over_whole_passages_not_sentence_units(tmp_path: Path, backend: str) -> None:
    long = " ".join(f"sentence number {i} talks about the {w}." for i, w in enumerate(["cat", "dog", "sun"] * 4))
    with Index.create(tmp_path / "idx", encoder=KeywordEncoder(), backend=backend, max_passage_tokens=24,
                      overlap_tokens=0) as idx:
        idx.add([{"id": "long", "text": long}, *DOCS])
        documents, units = idx.backend.counts()
        passages = [h for h in idx.search("cat dog sun sentence", k=50, group=False, include_low_confidence=True)]
        vectors, _ = idx.backend.neighbours(1000)
        whole = idx.encoder.encode_passages([d["text"] for d in DOCS])
        # 4 one-passage documents and the long one's passages; its sentence units are not sampled
        assert documents == 5 and units > len(vectors) > 4 and len(passages) > 0
        assert all(any(np.allclose(v, w) for v in vectors) for w in whole)
        sentence = idx.encoder.encode_passages(["sentence number 0 talks about the cat."])[0]
        assert not any(np.allclose(v, sentence) for v in vectors)
