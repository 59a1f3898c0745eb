"""keyword.py: segmentation for FTS5 (Chinese words, English stems, codes, numbers) and safe
MATCH expressions, checked end to end through Store.keyword_search."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from textsearch.documents.corpus import Document, Passage
from textsearch.search import keyword
from textsearch.search.keyword import match_expression, segment
from textsearch.storage.store import Store

PASSAGES = [
    "北京大学生物系",  # 0
    "惹人喜欢的孩子",  # 1
    "The dog runs every morning",  # 2
    "新款型号XR-200已上市",  # 3
    "XR-300 with 200 watts",  # 4
    "相机A7的价格",  # 5
    "2023年的报告",  # 6
    "价格上涨3.5倍",  # 7
    "价格上涨35倍",  # 8
    "apple pie and applesauce",  # 9
    "NEAR the river, not far",  # 10
]


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory):
    s = Store(tmp_path_factory.mktemp("kw") / "store.db")
    docs = [(Document(f"d{i}", t), [Passage(t, 0, len(t))]) for i, t in enumerate(PASSAGES)]
    s.write(docs, np.zeros((len(docs), 4), dtype=np.float32))  # label i = PASSAGES[i]
    yield s
    s.close()


def search(store: Store, query: str) -> list[int]:
    expression = match_expression(query)
    if expression is None:
        return []
    return [label for label, _ in store.keyword_search(expression, 20)]


# --- segment ----------------------------------------------------------------------------------
def test_segment_cuts_chinese_in_search_mode() -> None:
    # search mode also yields the sub-words of a long word
    assert segment("北京大学生物系").split() == ["北京", "大学", "北京大学", "生物", "生物系"]
    assert segment("惹人喜欢的孩子") == "惹人 喜欢 的 孩子"


def test_tags_give_each_dictionary_word_its_part_of_speech() -> None:
    tags = keyword.tags()
    assert (tags["电脑"], tags["漂亮"], tags["知道"], tags["非常"]) == ("n", "a", "v", "d")


def test_segment_lowercases_keeps_codes_and_drops_punctuation() -> None:
    assert segment("Hello, World!  ¿Qué?") == "hello world qué"
    assert segment("型号XR-200，售价3.5万") == "型号 xr-200 xr200 售价 3.5 万"
    assert segment("A7 2023 e-mail") == "a7 2023 e-mail email"
    assert segment("ＸＲ－２００") == "xr-200 xr200"  # full-width forms read as their ASCII twins
    assert segment("2023-01-05") == "2023-01-05"  # pure numbers are never joined into one
    assert segment("") == segment(" ，。!? ") == segment("* ( ) : \" '") == ""


def test_segment_says_nothing_on_stdout_or_stderr() -> None:
    code = "from textsearch.search.keyword import segment; print(segment('北京大学'))"
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).parents[2],
    )
    assert done.stdout == "北京 大学 北京大学\n"  # jieba's "Building prefix dict" is silenced
    assert "prefix dict" not in done.stderr


# --- match_expression -------------------------------------------------------------------------
def test_match_expression_quotes_every_term_and_ors_them() -> None:
    assert match_expression("Red apple") == '"red" OR "apple"'
    assert match_expression("apple apple") == '"apple"'  # repeated terms once
    assert match_expression("XR-200") == '"xr-200" OR "xr200"'
    assert match_expression("") is None
    assert match_expression(" ，。?! * ") is None


@pytest.mark.parametrize(
    "query",
    [
        "NEAR(apple pie)",
        "apple*",
        "terms:apple",
        "apple AND NOT pie",
        "(apple OR",
        '"apple',
        'apple" OR "pie',
        "^apple",
        "apple + pie",
        "{terms}: apple",
        "'; DROP TABLE passages; --",
    ],
)
def test_user_text_never_becomes_fts5_syntax(store: Store, query: str) -> None:
    expression = match_expression(query)
    assert expression is not None
    for term in expression.split(" OR "):  # each piece is one quoted string with no inner quote
        assert term.startswith('"') and term.endswith('"') and '"' not in term[1:-1]
    hits = search(store, query)  # runs without an FTS5 syntax error
    assert set(hits) <= {9, 10}
    assert store.passage_count() == store.keyword_count() == len(PASSAGES)  # tables intact


def test_operators_are_plain_words(store: Store) -> None:
    assert search(store, "NOT") == [10]  # the word "not", not the operator
    assert search(store, "near") == [10]
    assert search(store, "apple*") == [9]  # no prefix query: "applesauce" alone would not match
    assert search(store, "applesauc*") == [9]  # "applesauce", as a whole word


def test_quote_inside_a_term_is_doubled() -> None:
    from textsearch.search.keyword import quote

    assert quote('a"b') == '"a""b"'


# --- end to end through FTS5 ------------------------------------------------------------------
def test_chinese_term_inside_a_longer_run(store: Store) -> None:
    assert search(store, "生物") == [0]
    assert search(store, "北京大学") == [0]
    assert search(store, "喜欢") == [1]
    assert search(store, "报告") == [6]


def test_english_stemming(store: Store) -> None:
    assert search(store, "running") == [2]  # porter: running → run ← runs
    assert search(store, "RUN") == [2]
    assert search(store, "mornings") == [2]


def test_codes(store: Store) -> None:
    hits = search(store, "XR-200")
    assert hits[0] == 3  # the exact code first; "XR-300 with 200 watts" only shares its parts
    assert search(store, "xr200")[0] == 3  # written without the hyphen
    assert search(store, "a7") == [5]
    assert search(store, "XR-300")[0] == 4


def test_numbers(store: Store) -> None:
    assert search(store, "2023") == [6]
    assert search(store, "3.5")[0] == 7
    assert 8 not in search(store, "3.5")  # 3.5 is not 35
    assert search(store, "35") == [8]
