"""Where a hit is, for a person: the line of a text file (path:line, as grep prints it), the
page or heading a reader found, on both backends; and an unchanged file is not opened again."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from textsearch.documents.corpus import Document, Passage, locate
from textsearch.index import Index
from textsearch.testing import KeywordEncoder

BACKENDS = ["local", pytest.param("milvus", marks=[pytest.mark.engine, pytest.mark.skipif(
    not all(__import__("importlib").util.find_spec(m) for m in ("pymilvus", "milvus_lite")),
    reason="the milvus extra is not installed")])]


def test_locate_gives_the_line_of_a_text_file_and_the_readers_location() -> None:
    text = "cat\ndog\n\nfish apple\nwater"
    doc = Document("a.txt", text, {"type": "txt"}, source="a.txt")
    passages = locate(doc, [Passage("cat", 0, 3), Passage("fish apple", 10, 20), Passage("water", 21, 26)])
    assert [p.location for p in passages] == [{"line": 1}, {"line": 4}, {"line": 5}]
    report = Document("r.pdf", "page one. page two.", {"type": "pdf"}, source="r.pdf",
                      locations=[(0, {"page": 1}), (10, {"page": 2})])
    assert [p.location for p in locate(report, [Passage("page one.", 0, 9), Passage("page two.", 10, 19)])] == [
        {"page": 1}, {"page": 2}]
    notes = Document("n.md", "# A\ncat\n## B\ndog", {"type": "md"}, source="n.md",
                     locations=[(0, {"heading": "A"}), (8, {"heading": "A › B"})])
    assert [p.location for p in locate(notes, [Passage("# A\ncat", 0, 7), Passage("## B\ndog", 8, 16)])] == [
        {"heading": "A", "line": 1}, {"heading": "A › B", "line": 3}]
    added = Document("x", "cat\ndog")  # given to add(): no file, no line
    assert locate(added, [Passage("dog", 4, 7)])[0].location is None


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_hit_says_its_line(tmp_path: Path, backend: str) -> None:
    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "a.txt").write_text("cat\n\n\nwater fish\n", encoding="utf-8")
    with Index.create(tmp_path / "idx", encoder=KeywordEncoder(), backend=backend) as idx:
        idx.index_folder(folder)
        hit = idx.search("water", k=1)[0]
    assert (hit.doc_id, hit.location) == ("a.txt", {"line": 1})  # one short file: one passage, from line 1
    assert hit.to_dict()["location"] == {"line": 1}


def test_an_unchanged_file_is_not_opened_again(tmp_path: Path) -> None:
    """Same size and mtime: the file is not read (its new bytes are not seen) and its documents
    stay; a changed mtime reads it again; a deleted file's documents go."""
    folder = tmp_path / "notes"
    folder.mkdir()
    a, b = folder / "a.txt", folder / "b.txt"
    a.write_text("cat", encoding="utf-8")
    b.write_text("dog", encoding="utf-8")
    with Index.create(tmp_path / "idx", encoder=KeywordEncoder()) as idx:
        first = idx.index_folder(folder)
        assert (first.added, first.unchanged) == (2, 0)
        stat = a.stat()
        a.write_text("sun", encoding="utf-8")  # same size; the old mtime put back
        os.utime(a, ns=(stat.st_atime_ns, stat.st_mtime_ns))
        again = idx.index_folder(folder)
        assert (again.added, again.updated, again.unchanged, again.deleted) == (0, 0, 2, 0)
        assert [h.text for h in idx.search("cat", k=1)] == ["cat"]  # not opened: the old text stays
        os.utime(a, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
        changed = idx.index_folder(folder)
        assert (changed.updated, changed.unchanged) == (1, 1)
        assert [h.text for h in idx.search("sun", k=1)] == ["sun"]
        b.unlink()
        gone = idx.index_folder(folder)
        assert (gone.deleted, gone.unchanged) == (1, 1)
        assert idx.backend.file_stats(str(folder.resolve())).keys() == {"a.txt"}


def test_the_table_shows_where_each_hit_is() -> None:
    from textsearch.cli import _where
    from textsearch.hits import Hit

    def hit(location: dict | None, passage: int = 0, passages: int = 1) -> Hit:
        return Hit("docs/a.txt", 0.5, "text", {}, passage, passages, 0, 4, location=location)

    assert [_where(hit({"line": 12})), _where(hit({"page": 3})), _where(hit({"heading": "A › B", "line": 4})),
            _where(hit(None, 1, 3)), _where(hit(None))] == [
        "docs/a.txt:12", "docs/a.txt p.3", "docs/a.txt:4 › A › B", "docs/a.txt [2/3]", "docs/a.txt"]


def test_a_long_document_is_searched_to_the_sentence(tmp_path: Path) -> None:
    """Each sentence of a document of several passages is a unit of its own: the best unit is
    the sentence, the hit shows the passage that holds it with ``match`` on the sentence."""
    text = "cat cat cat. dog dog dog. fish fish fish. tree tree tree. sun sun sun. rain rain rain."
    # 4 tokens a sentence: passages of 8 tokens hold two sentences each, so 3 passages + 6 sentences
    with Index.create(tmp_path / "idx", encoder=KeywordEncoder(), max_passage_tokens=8, overlap_tokens=0) as index:
        summary = index.add([{"id": "long", "text": text}, {"id": "short", "text": "train"}])
        assert summary.passages == 3 + 6 + 1  # a one-passage document gets no sentence units
        (best,) = index.search("cat", k=1)
        # the sentence "cat cat cat." scores 1.0; its passage (cat + dog) would score 0.707107
        assert (best.doc_id, best.score, best.text, best.match) == ("long", 1.0, "cat cat cat. dog dog dog.", [0, 12])
        assert best.text[best.match[0]:best.match[1]] == "cat cat cat."
        (short,) = index.search("train", k=1)
        assert (short.doc_id, short.match) == ("short", None)


def test_an_index_from_before_sentence_units_keeps_its_units(tmp_path: Path) -> None:
    import json

    from textsearch.config import CONFIG_FILE

    with Index.create(tmp_path / "idx", encoder=KeywordEncoder()):
        pass
    config = tmp_path / "idx" / CONFIG_FILE
    data = json.loads(config.read_text(encoding="utf-8"))
    assert data["sentences"] is True
    del data["sentences"]
    config.write_text(json.dumps(data), encoding="utf-8")
    with Index.open(tmp_path / "idx", encoder=KeywordEncoder()) as index:
        assert index.config.sentences is False
        assert index.add([{"id": "a", "text": "cat cat. dog dog. " * 20}]).passages == 3
