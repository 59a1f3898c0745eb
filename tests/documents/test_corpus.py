"""corpus.py: decoding, walking a folder into documents (splitting them: test_split.py)."""

from __future__ import annotations

import codecs
import logging
import random
from pathlib import Path

import pytest

from textsearch.documents.corpus import (
    Corpus,
    Document,
    Skipped,
    UndecodableError,
    decode_text,
    detect_lang,
)
from textsearch.errors import CorpusError

# --- decode_text ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ("天气很好 hello".encode(), "天气很好 hello"),
        (codecs.BOM_UTF8 + "天气很好 hello".encode(), "天气很好 hello"),
        (codecs.BOM_UTF16_LE + "天气很好 hello".encode("utf-16-le"), "天气很好 hello"),
        (codecs.BOM_UTF16_BE + "天气很好 hello".encode("utf-16-be"), "天气很好 hello"),
        ("天气很好".encode("gbk"), "天气很好"),
        ("天气很好，我们去公园。".encode("gbk"), "天气很好，我们去公园。"),
        # GB18030 beyond GBK: a 4-byte CJK Extension B character and the euro sign
        ("天气很好𠀀€".encode("gb18030"), "天气很好𠀀€"),
        (b"", ""),
    ],
    ids=[
        "utf8",
        "utf8-bom",
        "utf16-le-bom",
        "utf16-be-bom",
        "gbk",
        "gbk-punct",
        "gb18030",
        "empty",
    ],
)
def test_decode_text_known_encodings(data: bytes, expected: str) -> None:
    assert decode_text(data) == expected


def test_decode_text_strips_the_bom() -> None:
    assert decode_text(codecs.BOM_UTF8 + b"abc") == "abc"
    assert decode_text("abc".encode("utf-16")) == "abc"  # Python writes the native-order BOM


@pytest.mark.parametrize(
    "data",
    [
        b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR",  # NUL bytes
        "hello".encode("utf-16-le"),  # UTF-16 without a BOM reads as NUL-laden binary
        b"abc\x01\x02\x03\x04\x05",  # control characters
        b"caf\xe9 au lait",  # latin-1: invalid UTF-8, and \xe9 + space is no GBK pair
        random.Random(1234).randbytes(4096),
        bytes(b for b in random.Random(99).randbytes(4096) if b),  # random, NUL bytes removed
    ],
    ids=["nul", "utf16-no-bom", "control", "latin1", "random", "random-no-nul"],
)
def test_decode_text_refuses_binary_and_unknown(data: bytes) -> None:
    with pytest.raises(UndecodableError):
        decode_text(data)


def test_undecodable_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="NUL"):
        decode_text(b"a\x00b")


# --- detect_lang ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "lang"),
    [
        ("天气很好", "zh"),
        ("The weather is nice", "en"),
        ("", "en"),
        ("12345 !!!", "en"),  # no letters at all
        # 4 Han of 4 + 5 = 9 letters: 4 * 5 = 20 >= 9
        ("天气很好 hello", "zh"),
        # 2 Han of 2 + 2 + 4 + 5 = 13 letters: 2 * 5 = 10 < 13
        ("天气 is good today", "en"),
        # exactly a fifth: 1 Han of 1 + 4 = 5 letters: 1 * 5 = 5 >= 5
        ("天 abcd", "zh"),
    ],
)
def test_detect_lang(text: str, lang: str) -> None:
    assert detect_lang(text) == lang


def test_document_from_dict_merges_metadata_and_detects_lang() -> None:
    doc = Document.from_dict({"id": 7, "text": "天气很好", "metadata": {"a": 1}, "b": 2})
    assert doc == Document(id="7", text="天气很好", metadata={"a": 1, "b": 2, "lang": "zh"})
    with pytest.raises(TypeError):
        Document.from_dict(["not", "a", "dict"])  # type: ignore[arg-type]


# --- Corpus on the tiny corpus ----------------------------------------------------------------


def test_tiny_corpus_documents(tiny_corpus: Path) -> None:
    corpus = Corpus(tiny_corpus)
    docs = list(corpus.documents())
    # sorted walk: root files first (food.jsonl, gbk.txt, image.png), then pets/
    assert [d.id for d in docs] == [
        "food.jsonl#f1",
        "food.jsonl#f2",
        "gbk.txt",
        "pets/cat.txt",
        "pets/dog.md",
    ]
    by_id = {d.id: d for d in docs}
    assert by_id["food.jsonl#f1"].text == "a red apple"
    assert by_id["food.jsonl#f1"].metadata == {
        "lang": "en",
        "year": 2021,
        "path": "food.jsonl",
        "type": "jsonl",
    }
    assert by_id["food.jsonl#f2"].metadata == {
        "year": 2019,
        "path": "food.jsonl",
        "type": "jsonl",
        "lang": "en",
    }
    assert by_id["food.jsonl#f2"].source == "food.jsonl"
    assert by_id["gbk.txt"].text == "天气很好，我们去公园。the weather is happy"
    # 9 Han of 9 + 3 + 7 + 2 + 5 = 26 letters: 45 >= 26
    assert by_id["gbk.txt"].metadata == {"path": "gbk.txt", "type": "txt", "lang": "zh"}
    assert by_id["pets/cat.txt"] == Document(
        id="pets/cat.txt",
        text="The cat sleeps in the sun.",
        metadata={"path": "pets/cat.txt", "type": "txt", "lang": "en"},
        source="pets/cat.txt",
    )
    assert by_id["pets/dog.md"].text == "# Dog\n\nThe dog likes water."
    assert by_id["pets/dog.md"].metadata["type"] == "md"
    assert corpus.skipped == [Skipped("image.png", "unsupported file type '.png'")]


def test_unsupported_type_is_skipped_without_a_warning(tiny_corpus: Path, caplog) -> None:
    with caplog.at_level(logging.WARNING, logger="textsearch.documents.corpus"):
        list(Corpus(tiny_corpus).documents())
    assert caplog.records == []


def test_content_hash_changes_with_text_and_metadata() -> None:
    a = Document("x", "cat", {"year": 1})
    assert a.content_hash == Document("other-id", "cat", {"year": 1}).content_hash
    assert a.content_hash != Document("x", "cat ", {"year": 1}).content_hash
    assert a.content_hash != Document("x", "cat", {"year": 2}).content_hash


@pytest.mark.parametrize(
    ("name", "data", "reason"),
    [
        ("zero.txt", b"", "empty file"),
        ("blank.md", b"  \n\t\n  ", "empty file"),
        ("binary.txt", b"abc\x00\x01\x02def", "binary file (NUL bytes)"),
        (
            "latin1.txt",
            b"caf\xe9 au lait",
            "not valid UTF-8, UTF-16 (with BOM) or GB18030/GBK text",
        ),
    ],
)
def test_bad_files_are_skipped_with_a_warning(
    tmp_path: Path, caplog, name: str, data: bytes, reason: str
) -> None:
    (tmp_path / "good.txt").write_text("fine text", encoding="utf-8")
    (tmp_path / name).write_bytes(data)
    corpus = Corpus(tmp_path)
    with caplog.at_level(logging.WARNING, logger="textsearch.documents.corpus"):
        docs = list(corpus.documents())
    assert [d.id for d in docs] == ["good.txt"]
    assert corpus.skipped == [Skipped(name, reason)]
    assert [r.getMessage() for r in caplog.records] == [f"skipped {name}: {reason}"]
    assert caplog.records[0].levelno == logging.WARNING


def test_file_over_the_size_limit_is_skipped_unread(tmp_path: Path, monkeypatch, caplog) -> None:
    big = tmp_path / "big.txt"
    with open(big, "wb") as fh:  # 50 MB on one line
        fh.write(b"a" * 50_000_000)
    (tmp_path / "small.txt").write_text("small", encoding="utf-8")
    read: list[str] = []
    real_read_bytes = Path.read_bytes

    def spy(self: Path) -> bytes:  # records which files get read, reads them as before
        read.append(self.name)
        return real_read_bytes(self)

    monkeypatch.setattr(Path, "read_bytes", spy)
    corpus = Corpus(tmp_path)  # max_file_bytes defaults to 10 MB
    with caplog.at_level(logging.WARNING, logger="textsearch.documents.corpus"):
        docs = list(corpus.documents())
    assert [d.id for d in docs] == ["small.txt"]
    assert read == ["small.txt"]  # the big file was never read
    reason = "50,000,000 bytes is over the 10,000,000-byte limit (raise it with --max-file-mb)"
    assert corpus.skipped == [Skipped("big.txt", reason)]
    assert "big.txt" in caplog.text


def test_max_file_bytes_is_configurable(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("x" * 2_000, encoding="utf-8")
    corpus = Corpus(tmp_path, max_file_bytes=1_000)
    assert list(corpus.documents()) == []
    assert corpus.skipped == [
        Skipped("a.txt", "2,000 bytes is over the 1,000-byte limit (raise it with --max-file-mb)")
    ]
    assert [d.id for d in Corpus(tmp_path, max_file_bytes=2_000).documents()] == ["a.txt"]


def test_jsonl_bad_rows_are_skipped_and_the_rest_kept(tmp_path: Path, caplog) -> None:
    (tmp_path / "rows.jsonl").write_text(
        '{"id": "a", "text": "first"}\n'
        "{not json\n"
        "\n"  # blank lines are not rows
        '["a", "list"]\n'
        '{"id": "b"}\n'
        '{"id": "c", "text": "   "}\n'
        '{"id": "d", "text": 42}\n'
        '{"id": "a", "text": "duplicate"}\n'
        '{"text": "no id: the line number is the id"}\n'
        '{"id": "e", "text": "last", "tags": ["x", "y"]}\n',
        encoding="utf-8",
    )
    corpus = Corpus(tmp_path)
    with caplog.at_level(logging.WARNING, logger="textsearch.documents.corpus"):
        docs = list(corpus.documents())
    assert [(d.id, d.text) for d in docs] == [
        ("rows.jsonl#a", "first"),
        ("rows.jsonl#9", "no id: the line number is the id"),
        ("rows.jsonl#e", "last"),
    ]
    assert docs[2].metadata == {
        "tags": ["x", "y"],
        "path": "rows.jsonl",
        "type": "jsonl",
        "lang": "en",
    }
    assert [s.reason for s in corpus.skipped] == [
        "line 2: not a JSON object",
        "line 4: not a JSON object",
        "line 5: no 'text' text",
        "line 6: no 'text' text",
        "line 7: no 'text' text",
        "line 8: duplicate id 'a'",
    ]
    assert {s.path for s in corpus.skipped} == {"rows.jsonl"}
    assert len(caplog.records) == 6
    assert all("rows.jsonl" in r.getMessage() for r in caplog.records)


def test_jsonl_id_zero_is_kept(tmp_path: Path) -> None:
    (tmp_path / "rows.jsonl").write_text(
        '{"id": 0, "text": "zero"}\n{"id": 1, "text": "one"}\n', encoding="utf-8"
    )
    corpus = Corpus(tmp_path)
    assert [d.id for d in corpus.documents()] == ["rows.jsonl#0", "rows.jsonl#1"]
    assert corpus.skipped == []


@pytest.mark.parametrize(("suffix", "sep"), [(".csv", ","), (".tsv", "\t")])
def test_csv_and_tsv_rows(tmp_path: Path, suffix: str, sep: str) -> None:
    lines = [
        ["id", "text", "year"],
        ["r1", "red apple", "2021"],
        ["r2", "", "2020"],
        ["", "no id", "2019"],
        ["r4", "天气很好", "2018"],
    ]
    (tmp_path / f"t{suffix}").write_text(
        "\n".join(sep.join(c) for c in lines) + "\n", encoding="utf-8"
    )
    corpus = Corpus(tmp_path)
    docs = list(corpus.documents())
    # row numbers count the header as line 1
    assert [(d.id, d.text) for d in docs] == [
        (f"t{suffix}#r1", "red apple"),
        (f"t{suffix}#4", "no id"),
        (f"t{suffix}#r4", "天气很好"),
    ]
    kind = suffix[1:]
    assert docs[0].metadata == {"year": "2021", "path": f"t{suffix}", "type": kind, "lang": "en"}
    assert docs[2].metadata["lang"] == "zh"
    assert corpus.skipped == [Skipped(f"t{suffix}", "line 3: no 'text' text")]


def test_custom_id_and_text_fields(tmp_path: Path) -> None:
    (tmp_path / "t.csv").write_text("key,body,text\nk1,the body,not this\n", encoding="utf-8")
    (tmp_path / "t.jsonl").write_text('{"key": "k2", "body": "json body", "id": "ignored"}\n')
    docs = list(Corpus(tmp_path, id_field="key", text_field="body").documents())
    assert [(d.id, d.text) for d in docs] == [("t.csv#k1", "the body"), ("t.jsonl#k2", "json body")]
    # the default fields are now ordinary metadata
    assert docs[0].metadata == {"text": "not this", "path": "t.csv", "type": "csv", "lang": "en"}
    assert docs[1].metadata == {"id": "ignored", "path": "t.jsonl", "type": "jsonl", "lang": "en"}


def test_missing_folder_and_file_instead_of_folder(tmp_path: Path) -> None:
    with pytest.raises(CorpusError, match="does not exist"):
        Corpus(tmp_path / "nope")
    (tmp_path / "file.txt").write_text("x", encoding="utf-8")
    with pytest.raises(CorpusError, match="is not a folder"):
        Corpus(tmp_path / "file.txt")


def test_hidden_files_and_folders_are_ignored(tmp_path: Path) -> None:
    (tmp_path / ".hidden.txt").write_text("secret", encoding="utf-8")
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "notes.txt").write_text("git stuff", encoding="utf-8")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / ".env.md").write_text("more", encoding="utf-8")
    (tmp_path / "sub" / "seen.txt").write_text("visible", encoding="utf-8")
    corpus = Corpus(tmp_path)
    assert [d.id for d in corpus.documents()] == ["sub/seen.txt"]
    assert corpus.skipped == []


def test_symlinks_inside_are_read_outside_are_skipped(tmp_path: Path, caplog) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("outside text", encoding="utf-8")
    root = tmp_path / "root"
    (root / "real").mkdir(parents=True)
    (root / "real" / "a.txt").write_text("inside text", encoding="utf-8")
    (root / "link_in.txt").symlink_to(root / "real" / "a.txt")
    (root / "link_out.txt").symlink_to(outside / "secret.txt")
    (root / "dir_out").symlink_to(outside, target_is_directory=True)  # not descended into
    corpus = Corpus(root)
    with caplog.at_level(logging.WARNING, logger="textsearch.documents.corpus"):
        docs = list(corpus.documents())
    assert [(d.id, d.text) for d in docs] == [
        ("link_in.txt", "inside text"),
        ("real/a.txt", "inside text"),
    ]
    assert corpus.skipped == [Skipped("link_out.txt", "symlink pointing outside the corpus folder")]
    assert "link_out.txt" in caplog.text
