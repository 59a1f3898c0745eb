"""Fuzzing the two doors user data comes in by: corpus files, and search queries and filters.

Corpus: a known good folder is indexed, then fuzzed files are put next to it (random bytes, mixed
encodings, control characters, malformed rows, names that are not UTF-8, a huge line, deep
folders, symlink loops) and the folder is indexed again. ``index_folder`` must succeed and list
every bad file in ``skipped_files`` (or raise a TextsearchError with a one-line message, never
another exception); the good documents keep their content and their hits; the index reopens and
searches. Queries and filters: every mode returns hits, or raises InvalidArgumentError (empty
query) / a TextsearchError (bad filter), and the store still holds every document afterwards.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from textsearch import Index
from textsearch.check import check
from textsearch.errors import InvalidArgumentError, TextsearchError
from textsearch.search.filters import OPERATORS
from textsearch.index import Summary
from textsearch.testing import KeywordEncoder

FUZZ = settings(
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.large_base_example,
    ],
)
GOOD_IDS = [
    "good/cat.txt",
    "good/dog.md",
    "good/food.jsonl#f1",
    "good/food.jsonl#f2",
    "good/toys.csv#t1",
    "good/toys.csv#t2",
    "good/天气.txt",
]
PROBES = ["cat", "dog water", "apple", "happy weather", "red toy train", "天气 公园", "baby fish"]
ONLY_GOOD = {"path": {"$prefix": "good/"}}  # fuzzed documents may outrank the good ones
ANY_CHAR = st.characters(exclude_categories=())  # every Unicode category, lone surrogates too


def write_good(folder: Path) -> None:
    """Seven documents in five files: UTF-8 .txt and .md, a GBK .txt, .jsonl rows, .csv rows."""
    good = folder / "good"
    good.mkdir(parents=True)
    (good / "cat.txt").write_text("The cat sleeps in the sun.", encoding="utf-8")
    (good / "dog.md").write_text("# Dog\n\nThe dog likes water and the rain.", encoding="utf-8")
    (good / "天气.txt").write_bytes("天气很好，我们去公园。the weather is happy".encode("gbk"))
    (good / "food.jsonl").write_text(
        '{"id": "f1", "text": "a red apple", "topic": "food", "year": 2021}\n'
        '{"id": "f2", "text": "a banana tree", "topic": "food", "year": 2019}\n',
        encoding="utf-8",
    )
    (good / "toys.csv").write_text(
        "id,text,topic\nt1,a red toy train,toys\nt2,a baby fish in water,pets\n", encoding="utf-8"
    )


def snapshot(idx: Index) -> dict[str, Any]:
    """What must survive any fuzzed input: the good documents' content hashes, their dense hits
    (ids, cosines and passages: independent of other documents) and their keyword hit ids (BM25
    scores move with the corpus statistics)."""
    hashes = idx.store.hashes(GOOD_IDS)
    dense = {q: [(h.doc_id, h.score, h.text) for h in idx.search(q, k=20, filter=ONLY_GOOD)]
             for q in PROBES}
    keyword = {q: sorted(h.doc_id for h in idx.search(q, k=20, mode="keyword", filter=ONLY_GOOD))
               for q in PROBES}
    return {"hashes": hashes, "dense": dense, "keyword": keyword}


def build(root: Path) -> tuple[Index, Path, dict[str, Any]]:
    folder, path = root / "corpus", root / "index"
    write_good(folder)
    idx = Index.create(path, encoder=KeywordEncoder())
    idx.index_folder(folder)
    baseline = snapshot(idx)
    assert sorted(baseline["hashes"]) == GOOD_IDS
    assert baseline["dense"]["cat"][0][0] == "good/cat.txt"  # the baseline itself is sane
    return idx, folder, baseline


@pytest.fixture
def good(tmp_path: Path) -> Iterator[tuple[Index, Path, dict[str, Any]]]:
    idx, folder, baseline = build(tmp_path)
    yield idx, folder, baseline
    idx.close()


def reindex(idx: Index, folder: Path) -> Summary | None:
    """index_folder, which may only fail with a TextsearchError whose message is one line."""
    try:
        return idx.index_folder(folder)
    except TextsearchError as exc:
        assert str(exc) and "\n" not in str(exc)
        return None


def assert_intact(idx: Index, baseline: dict[str, Any]) -> None:
    """The good documents and their hits are unchanged, also after reopening the index."""
    assert snapshot(idx) == baseline
    with Index.open(idx.path, encoder=KeywordEncoder()) as again:
        assert snapshot(again) == baseline
        for mode in ("dense", "keyword", "hybrid"):
            assert isinstance(again.search("cat 天气", mode=mode), list)
    assert check(idx.path).ok


def assert_accounted(idx: Index, summary: Summary, names: list[str]) -> None:
    """Every fuzzed file became documents or is listed as skipped with a one-line reason; no
    good file is skipped."""
    sources = {r[0] for r in idx.store.db.execute("SELECT DISTINCT source FROM documents")}
    skipped = {path for path, _ in summary.skipped_files}
    for path, reason in summary.skipped_files:
        assert reason and "\n" not in reason and not path.startswith("good/")
    for name in names:
        assert name in sources or name in skipped, name


# --- corpus fuzzing ---------------------------------------------------------------------------

SCRIPTS = ["the cat and dog ", "天气很好，", "繁體中文。", "مرحبا بالعالم ", "こんにちは。",
           "😀👨‍👩‍👧🇨🇳 ", "café ", "e\u0301 ", "water. "]
CONTROLS = ["\x00", "\x1b", "\r", "\x0c", "\x85", "\u2028", "\ud800", "\udfff", "\ufeff",
            "\t", "\n"]
ENCODINGS = ["utf-8", "utf-8-sig", "gbk", "gb18030", "big5", "utf-16", "utf-16-le", "utf-16-be"]

words = st.lists(st.sampled_from(SCRIPTS), min_size=1, max_size=6).map("".join)
mixed_encodings = st.lists(
    st.tuples(words, st.sampled_from(ENCODINGS)), min_size=1, max_size=4
).map(lambda parts: b"".join(text.encode(enc, "replace") for text, enc in parts))
with_controls = st.builds(
    lambda text, padding, encoding: (padding + text).encode(encoding, "surrogatepass"),
    st.lists(st.sampled_from(SCRIPTS + CONTROLS), min_size=1, max_size=40).map("".join),
    st.sampled_from(["", "the cat by the water " * 30]),  # a few controls in a long text pass
    st.sampled_from(["utf-8", "utf-16"]),
)
odd_but_valid = st.builds(  # every printable category, as UTF-8: these should be indexed
    lambda text, extra: (text + extra).encode("utf-8"),
    words,
    st.text(st.characters(exclude_categories=("Cs", "Cc")), min_size=1, max_size=200),
)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(ANY_CHAR, max_size=8),
    lambda inner: st.lists(inner, max_size=3)
    | st.dictionaries(st.text(max_size=4), inner, max_size=3),
    max_leaves=6,
)
json_rows = st.fixed_dictionaries(
    {"text": st.one_of(words, st.text(ANY_CHAR, max_size=20), json_values)},
    optional={"id": json_values, "year": json_values, "lang": json_values, "path": json_values},
).map(lambda row: json.dumps(row, ensure_ascii=False))
jsonl_lines = st.one_of(
    json_rows,
    st.text(ANY_CHAR, max_size=30),  # not JSON
    st.sampled_from(["[1, 2]", '"text"', "null", "{", '{"text": "x", "n": NaN}',
                     '{"text": "x", "n": 1e400}', '{"text": "x\\ud800"}']),
    st.integers(1, 3000).map(lambda n: '{"text": "deep", "m": ' + "[" * n + "]" * n + "}"),
)
jsonl_files = st.tuples(
    st.lists(jsonl_lines, max_size=6), st.sampled_from(["\n", "\r\n", "\r", "\u2028", "\x85"])
).map(lambda t: t[1].join(t[0]).encode("utf-8", "surrogatepass"))


def _csv_text(header: list[str], rows: list[list[str]], tail: str) -> bytes:
    out = io.StringIO()
    csv.writer(out).writerows([header, *rows])
    return (out.getvalue() + tail).encode("utf-8")


csv_files = st.builds(
    _csv_text,
    st.lists(st.sampled_from(["id", "text", "year", "lang", "", " text"]), max_size=4),
    st.lists(st.lists(st.one_of(words, st.text(max_size=10)), max_size=4), max_size=5),
    st.sampled_from(["", '1,"unclosed quote\n', "a,b,c,d,e,f\n", "\n\n"]),
)
fuzz_files = st.lists(
    st.tuples(
        st.sampled_from([False] * 5 + [True]),  # a name that is not UTF-8, now and then
        st.sampled_from(["", "sub/", "sub/deeper/", "x y/"]),
        st.one_of(
            st.tuples(st.sampled_from([".txt", ".md", ".jsonl", ".csv", ".tsv", ".bin", "", ".pdf", ".docx",
                                       ".epub", ".html"]),
                      st.binary(min_size=1, max_size=3000)),
            st.tuples(st.sampled_from([".txt", ".md", ".html"]), mixed_encodings | with_controls),
            st.tuples(st.sampled_from([".txt", ".md", ".html"]), odd_but_valid),
            st.tuples(st.just(".jsonl"), jsonl_files),
            st.tuples(st.sampled_from([".csv", ".tsv"]), csv_files),
            st.tuples(st.sampled_from([".txt", ".jsonl", ".csv"]), st.just(b"")),
        ),
    ),
    min_size=1,
    max_size=5,
)


def write_fuzz(folder: Path, files: list[tuple[bool, str, tuple[str, bytes]]]) -> list[str]:
    """Replace folder/fuzz with these files; their paths as skipped_files would show them."""
    fuzz = folder / "fuzz"
    shutil.rmtree(fuzz, ignore_errors=True)
    names = []
    for i, (bad_name, sub, (suffix, data)) in enumerate(files):
        name = (b"\xff" if bad_name else b"") + f"f{i}{suffix}".encode()
        parent = os.fsencode(fuzz / sub)
        os.makedirs(parent, exist_ok=True)
        with open(os.path.join(parent, name), "wb") as fh:
            fh.write(data)
        names.append(f"fuzz/{sub}" + name.decode("utf-8", "backslashreplace"))
    return names


@settings(FUZZ, max_examples=60)
@given(files=fuzz_files)
def test_fuzzed_files_are_indexed_or_skipped_and_lose_nothing(good, files: list) -> None:
    """Random bytes, mixed encodings, control characters, bad rows and bad names next to a good
    corpus: every file is indexed or skipped with a reason, the good documents and hits stay."""
    idx, folder, baseline = good
    names = write_fuzz(folder, files)
    summary = idx.index_folder(folder)  # the good files are there: it has documents to index
    assert_accounted(idx, summary, names)
    reindex(idx, folder / "fuzz")  # alone, the fuzzed files may all be bad: a CorpusError then
    assert_intact(idx, baseline)


@pytest.mark.parametrize(
    ("name", "data", "reason"),
    [
        ("nan.jsonl", b'{"text": "x", "n": NaN}', "line 1: holds NaN or Infinity"),
        ("inf.jsonl", b'{"text": "x", "n": 1e400}', "line 1: holds NaN or Infinity"),
        ("surrogate.jsonl", b'{"text": "x \\ud800"}', "line 1: holds a lone surrogate"),
        ("surrogate-meta.jsonl", b'{"text": "x", "m": "\\udc00"}',
         "line 1: holds a lone surrogate"),
        ("big.jsonl", b'{"text": "x", "n": 1' + b"0" * 5000 + b"}", "line 1: not a JSON object"),
        ("deep.jsonl", b'{"text": "x", "m": ' + b"[" * 5000 + b"]" * 5000 + b"}",
         "line 1: JSON nested too deeply"),
        ("long-field.csv", b"id,text\n1," + b"word " * 30_000 + b"\n2,fine\n",
         "line 2: unreadable CSV (field larger than field limit (131072))"),
        ("blank.jsonl", b"\n  \n", "no rows"),
        ("header.csv", b"id,text\n", "no rows"),
        (b"\xff\xfe.txt", b"the cat", "name is not valid UTF-8"),
        (b"\xff-dir/a.txt", b"the cat", "name is not valid UTF-8"),
    ],
    ids=["nan", "infinity", "surrogate", "surrogate-meta", "5000-digits", "deep", "csv-field",
         "blank-jsonl", "header-only", "bad-file-name", "bad-folder-name"],
)
def test_bad_input_that_used_to_crash_is_skipped(
    good, name: str | bytes, data: bytes, reason: str
) -> None:
    """Each of these raised a raw exception out of index_folder (or stored JSON that SQLite then
    refused in every filtered search); now each is skipped with a reason."""
    idx, folder, baseline = good
    target = os.path.join(os.fsencode(folder / "fuzz"), os.fsencode(name))
    os.makedirs(os.path.dirname(target), exist_ok=True)
    with open(target, "wb") as fh:
        fh.write(data)
    summary = idx.index_folder(folder)
    assert [r for _, r in summary.skipped_files if r.startswith(reason)], summary.skipped_files
    assert_intact(idx, baseline)
    assert idx.search("cat", filter={"year": {"$gte": 2020}})[0].doc_id == "good/food.jsonl#f1"


def test_jsonl_rows_holding_line_separators_are_kept(good) -> None:
    """U+2028 and \\x85 are legal inside JSON strings (json.dumps(ensure_ascii=False) writes them
    raw); str.splitlines() used to cut the row there and lose it."""
    idx, folder, baseline = good
    long = " and the tree by the water" * 5  # one \x85 in a short file reads as binary
    rows = [{"id": "a", "text": "cat\u2028dog" + long}, {"id": "b", "text": "sun\x85rain" + long}]
    (folder / "seps.jsonl").write_text(
        "\r\n".join(json.dumps(r, ensure_ascii=False) for r in rows), encoding="utf-8"
    )
    summary = idx.index_folder(folder)
    assert summary.added == 2 and summary.skipped_files == []
    ids = ["seps.jsonl#a", "seps.jsonl#b"]
    assert sorted(idx.store.hashes(ids)) == ids
    assert_intact(idx, baseline)


def test_huge_single_line_and_the_size_limit(good) -> None:
    """A 2 MB line without a sentence end is split into passages; a file over max_file_bytes is
    skipped unread with its size in the reason."""
    idx, folder, baseline = good
    (folder / "huge.txt").write_text("tree 天气 water, " * 120_000, encoding="utf-8")  # 2.4 MB
    (folder / "bigger.txt").write_bytes(b"cat " * 800_000)  # 3.2 MB
    summary = idx.index_folder(folder, max_file_bytes=3_000_000)
    assert summary.added == 1 and summary.passages > 1_000
    assert summary.skipped_files == [
        ("bigger.txt",
         "3,200,000 bytes is over the 3,000,000-byte limit (raise it with --max-file-mb)")
    ]
    assert idx.search("water tree", mode="keyword")[0].doc_id == "huge.txt"
    assert_intact(idx, baseline)


def test_deep_folders(good) -> None:
    """A file 60 folders down is found and indexed under its full relative path."""
    idx, folder, baseline = good
    deep = folder.joinpath(*[f"level{i:02d}" for i in range(60)])
    deep.mkdir(parents=True)
    (deep / "bottom.txt").write_text("a happy dog at the bottom", encoding="utf-8")
    summary = idx.index_folder(folder)
    doc_id = "/".join(f"level{i:02d}" for i in range(60)) + "/bottom.txt"
    assert summary.added == 1 and idx.store.hashes([doc_id]).keys() == {doc_id}
    assert_intact(idx, baseline)


def test_symlink_loops_and_links_outside(good, tmp_path: Path) -> None:
    """Folder links to an ancestor or to themselves, file link loops, broken links and links out
    of the root: indexing ends, and the bad file links are skipped with a reason."""
    idx, folder, baseline = good
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("outside cat", encoding="utf-8")
    (folder / "good" / "up").symlink_to("..", target_is_directory=True)
    (folder / "self").symlink_to("self")
    (folder / "loop_a.txt").symlink_to("loop_b.txt")
    (folder / "loop_b.txt").symlink_to("loop_a.txt")
    (folder / "broken.txt").symlink_to("missing.txt")
    (folder / "out.txt").symlink_to(outside / "secret.txt")
    (folder / "out_dir").symlink_to(outside, target_is_directory=True)
    (folder / "in.txt").symlink_to(folder / "good" / "cat.txt")
    summary = idx.index_folder(folder)
    assert sorted(summary.skipped_files) == [
        ("broken.txt", "broken symlink or symlink loop"),
        ("loop_a.txt", "broken symlink or symlink loop"),
        ("loop_b.txt", "broken symlink or symlink loop"),
        ("out.txt", "symlink pointing outside the corpus folder"),
        ("self", "broken symlink or symlink loop"),
    ]
    assert summary.added == 1  # in.txt, a link inside the root
    assert_intact(idx, baseline)


# Index the folder in a child process that cannot read a file of mode 000: as root, setpriv takes
# away the two capabilities (dac_override, dac_read_search) that let root read whatever the mode.
CHILD_INDEX = """
import json, sys
from textsearch import Index
from textsearch.testing import KeywordEncoder
with Index.open(sys.argv[1], encoder=KeywordEncoder()) as idx:
    print(json.dumps(idx.index_folder(sys.argv[2]).skipped_files))
"""
NO_DAC = ["setpriv", "--bounding-set=-dac_override,-dac_read_search"] if os.geteuid() == 0 else []


def test_unreadable_file_and_folder(good) -> None:
    """chmod 000 on a file and on a folder: both are listed as skipped (root too, its override
    taken away), nothing else changes."""
    idx, folder, baseline = good
    (folder / "locked.txt").write_text("the cat", encoding="utf-8")
    (folder / "locked").mkdir()
    (folder / "locked" / "inner.txt").write_text("the dog", encoding="utf-8")
    os.chmod(folder / "locked.txt", 0)
    os.chmod(folder / "locked", 0)
    try:
        command = [*NO_DAC, sys.executable, "-c", CHILD_INDEX, str(idx.path), str(folder)]
        run = subprocess.run(command, capture_output=True, text=True, check=False, timeout=120)
    finally:
        os.chmod(folder / "locked", 0o755)
    assert run.returncode == 0, run.stderr
    assert sorted(map(tuple, json.loads(run.stdout))) == [
        ("locked", "unreadable folder (Permission denied)"),
        ("locked.txt", "unreadable (Permission denied)"),
    ]
    assert_intact(idx, baseline)


# --- query and filter fuzzing -----------------------------------------------------------------


@pytest.fixture(scope="module")
def searchable(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Index, dict[str, Any]]]:
    idx, _, baseline = build(tmp_path_factory.mktemp("fuzz-search"))
    yield idx, baseline
    idx.close()


def check_query(idx: Index, query: str, **options: Any) -> None:
    """In every mode: an empty query is an InvalidArgumentError, any other gives a list of hits
    on stored documents with finite scores."""
    for mode in ("dense", "keyword", "hybrid"):
        if not query.strip():
            with pytest.raises(InvalidArgumentError, match="the query is empty"):
                idx.search(query, mode=mode, **options)
            continue
        hits = idx.search(query, mode=mode, **options)
        assert isinstance(hits, list)
        assert all(h.doc_id in GOOD_IDS and math.isfinite(h.score) for h in hits)


QUERIES = {
    "empty": "",
    "spaces": "   ",
    "tab-newline": "\t\n",
    "unicode-space": "\u3000\u2028\xa0",
    "100k-chars": ("cat 天气很好 مرحبا " * 7_000)[:100_000],
    "100k-han": "北京大学生物系" * 14_286,
    "emoji": "🐱 👨‍👩‍👧‍👦 🏳️‍🌈 🇨🇳🇺🇸 👍🏽",
    "mixed-scripts": "cat 天气 مرحبا こんにちは 한국어 Ελληνικά",
    "nul": "cat\x00dog\x00",
    "only-nul": "\x00",
    "lone-surrogates": "cat \ud800 \udfff dog",
    "fts5-syntax": '"a" OR b* NEAR( cat AND ^dog : col:x -',
    "sql": "'; DROP TABLE documents; --",
    "controls": "\x1b[31mcat\x1b[0m\r\x0c",
}


@pytest.mark.parametrize("query", list(QUERIES.values()), ids=list(QUERIES))
def test_query_examples(searchable, query: str) -> None:
    """Empty and whitespace queries are refused clearly; long, emoji, mixed-script, NUL,
    surrogate, FTS5 and SQL queries search as plain text; the store keeps every document."""
    idx, baseline = searchable
    check_query(idx, query)
    assert idx.count() == len(GOOD_IDS) and snapshot(idx) == baseline


@settings(FUZZ, max_examples=300)
@given(query=st.text(ANY_CHAR, max_size=200))
def test_random_queries(searchable, query: str) -> None:
    """Any Unicode text, lone surrogates included, in every mode: hits or the empty-query error."""
    idx, _ = searchable
    check_query(idx, query, k=3)
    assert idx.count() == len(GOOD_IDS)


FIELDS = ["lang", "year", "topic", "path", "id", "type"]


def mostly(often: st.SearchStrategy, rarely: st.SearchStrategy) -> st.SearchStrategy:
    """``often`` four times in five (one_of alone would draw each branch equally)."""
    return st.sampled_from([False] * 4 + [True]).flatmap(lambda rare: rarely if rare else often)


filter_values = st.recursive(
    st.one_of(
        st.sampled_from(["en", "zh", "food", "toys", 2019, 2021.0, "2021", "good/", True]),
        st.sampled_from([10**400, -(10**400), math.inf, math.nan, "\ud800", "a\x00b"]),
        st.none(), st.integers(), st.floats(), st.binary(max_size=3), st.text(ANY_CHAR, max_size=6),
    ),
    lambda inner: st.dictionaries(st.sampled_from(OPERATORS), inner, min_size=1, max_size=2)
    | st.lists(inner, max_size=3)
    | st.dictionaries(st.sampled_from(["$like", "$not", "$and", "", "eq", 1]), inner, max_size=2),
    max_leaves=6,
)
field_filters = st.dictionaries(
    mostly(st.sampled_from(FIELDS), st.sampled_from(["nope", "", "$nope", 1, "\ud800"])
           | st.text(ANY_CHAR, max_size=4)),
    filter_values,
    max_size=3,
)
filters = st.recursive(
    field_filters,
    lambda inner: st.dictionaries(
        mostly(st.sampled_from(["$and", "$or"]), st.just("$not")),
        mostly(st.lists(inner, min_size=1, max_size=3), st.just([]) | inner),
        min_size=1,
        max_size=2,
    ),
    max_leaves=8,
)
not_dicts = st.one_of(st.text(max_size=5), st.integers(), st.lists(field_filters, max_size=2))


scalars = st.one_of(
    st.sampled_from(["en", "zh", "food", "toys", "good/", "2021", 2019]),
    st.integers(-(2**63), 2**63), st.floats(allow_nan=False), st.text(max_size=6), st.booleans(),
)
conditions = st.one_of(
    scalars,
    st.dictionaries(st.sampled_from(["$eq", "$ne", "$gt", "$gte", "$lt", "$lte"]), scalars,
                    min_size=1, max_size=2),
    st.builds(lambda op, values: {op: values}, st.sampled_from(["$in", "$nin"]),
              st.lists(scalars, max_size=4)),
    st.builds(lambda prefix: {"$prefix": prefix},
              st.sampled_from(["good/", "go", ""]) | st.text(max_size=3)),
)
valid_filters = st.recursive(
    st.dictionaries(st.sampled_from(FIELDS), conditions, max_size=3),
    lambda inner: st.builds(lambda key, parts: {key: parts}, st.sampled_from(["$and", "$or"]),
                            st.lists(inner, min_size=1, max_size=3)),
    max_leaves=8,
)


@settings(FUZZ, max_examples=150)
@given(filter=valid_filters)
def test_random_well_formed_filters_work(searchable, filter: dict) -> None:
    """Any well-formed filter over the index's fields (nested $and/$or, every operator, numbers
    of any size a float holds, any text) runs in every mode and returns stored documents."""
    idx, _ = searchable
    for mode in ("dense", "keyword", "hybrid"):
        hits = idx.search("cat apple water", mode=mode, filter=filter)
        assert all(h.doc_id in GOOD_IDS for h in hits)


@settings(FUZZ, max_examples=200)
@given(filter=mostly(filters, not_dicts))
def test_random_malformed_filters(searchable, filter: Any) -> None:
    """Random filters (unknown fields and operators, values of every type, huge ints, NaN,
    surrogates, non-dicts): hits on stored documents, or a TextsearchError of one line."""
    idx, _ = searchable
    for mode in ("dense", "keyword", "hybrid"):
        try:
            hits = idx.search("cat apple water", mode=mode, filter=filter)
        except TextsearchError as exc:
            assert str(exc) and "\n" not in str(exc)
            continue
        assert all(h.doc_id in GOOD_IDS for h in hits)
    assert idx.count() == len(GOOD_IDS)


@pytest.mark.parametrize(
    ("filter", "message"),
    [
        ({"year": 10**400}, "got a number too large"),
        ({"year": {"$in": [2019, -(10**400)]}}, "got a number too large"),
        ({"topic": "\ud800"}, "got a lone surrogate"),
        ({"path": {"$prefix": "good/\udfff"}}, "got a lone surrogate"),
    ],
    ids=["huge-int", "huge-int-in-list", "surrogate", "surrogate-prefix"],
)
def test_filter_values_that_used_to_crash(searchable, filter: dict, message: str) -> None:
    """OverflowError (int → float) and UnicodeEncodeError (SQLite parameter) are now
    InvalidArgumentErrors that say which value is wrong."""
    idx, _ = searchable
    with pytest.raises(InvalidArgumentError, match=message):
        idx.search("cat", filter=filter)


def test_deep_and_wide_filters(searchable) -> None:
    """Nesting $and 1,000 deep used to overflow Python's stack, and a $or of 1,500 conditions
    SQLite's expression depth; the first is refused, the second runs (joined as a balanced tree)."""
    idx, _ = searchable
    deep: dict[str, Any] = {"topic": "food"}
    for _ in range(1_000):
        deep = {"$and": [deep]}
    with pytest.raises(InvalidArgumentError, match="nested more than 32 levels"):
        idx.search("cat", filter=deep)
    wide = {"$or": [{"year": year} for year in range(1_000, 2_500)]}
    for mode in ("dense", "keyword", "hybrid"):
        hits = idx.search("apple banana", mode=mode, filter=wide)
        assert {h.doc_id for h in hits} == {"good/food.jsonl#f1", "good/food.jsonl#f2"}
