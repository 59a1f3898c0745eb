"""filters.py: CLI conditions and filter dicts → parameterised SQL, checked against a real Store."""

from __future__ import annotations

from pathlib import Path

import pytest
from filtering import MALFORMED, metadata_store, with_value
from filtering import sql_ids as ids  # the documents a filter (dict or CLI string) selects

from textsearch.errors import InvalidArgumentError
from textsearch.search.filters import combine, parse_where, to_sql
from textsearch.storage.store import Store

METADATA = {
    "a": {"path": "family/mom.txt", "type": "txt", "lang": "zh", "year": 2020},
    "b": {"path": "family/dad.md", "type": "md", "lang": "en", "year": "2021"},  # year as text
    "c": {"path": "work/notes.txt", "type": "txt", "lang": "en", "year": 2018.5},
    "d": {
        "path": "rows.jsonl",
        "type": "jsonl",
        "lang": "zh",
        "topic": "food",
        "year": 2023,
        "reviewed": True,
    },
    "e": {
        "path": "rows.jsonl",
        "type": "jsonl",
        "lang": "en",
        "topic": "travel",
        "reviewed": False,
    },  # no year
    "f": {
        "path": "fam%_x/odd.txt",
        "type": "txt",
        "lang": "zh",
        "year": "unknown",
        'we"ird.key': "yes",
        "tags": ["t"],
    },
}
ALL = set(METADATA)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory):
    s = metadata_store(tmp_path_factory.mktemp("filters") / "store.db", METADATA)
    yield s
    s.close()


def intact(store: Store) -> bool:
    return store.document_count() == len(METADATA) == store.passage_count() == store.keyword_count()


# --- parse_where ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("lang = zh", {"lang": {"$eq": "zh"}}),
        ("lang==zh", {"lang": {"$eq": "zh"}}),
        ("type != jsonl", {"type": {"$ne": "jsonl"}}),
        ("year >= 2020", {"year": {"$gte": 2020}}),
        ("year>2020", {"year": {"$gt": 2020}}),
        ("year < 2020.5", {"year": {"$lt": 2020.5}}),
        ("year <= -1e3", {"year": {"$lte": -1000.0}}),
        ("topic in (food, travel)", {"topic": {"$in": ["food", "travel"]}}),
        ("topic IN (food)", {"topic": {"$in": ["food"]}}),
        ("year not in (2020, '2021', x)", {"year": {"$nin": [2020, "2021", "x"]}}),
        ("topic in ()", {"topic": {"$in": []}}),
        ("topic in ('a, b', \"c\")", {"topic": {"$in": ["a, b", "c"]}}),
        ("path ^= family/", {"path": {"$prefix": "family/"}}),
        ("path ^= 2023", {"path": {"$prefix": "2023"}}),  # a prefix is always text
        ("year = '2020'", {"year": {"$eq": "2020"}}),  # quoted: text, not a number
        ('title = "a = b"', {"title": {"$eq": "a = b"}}),
        ("  lang   =   zh  ", {"lang": {"$eq": "zh"}}),
    ],
)
def test_parse_where(expr: str, expected: dict) -> None:
    assert parse_where(expr) == expected


@pytest.mark.parametrize(
    "expr",
    [
        "",
        "   ",
        "lang",
        "lang zh",
        "lang =",
        "= zh",
        "topic in food",
        "topic in (a,,b)",
        "topic in (a,)",
        "topic in ((a), b)",
    ],
)
def test_parse_where_rejects_malformed(expr: str) -> None:
    with pytest.raises(InvalidArgumentError, match="FIELD OP VALUE|write it as") as info:
        parse_where(expr)
    assert "\n" not in str(info.value)


def test_combine() -> None:
    assert combine([]) == {}
    assert combine([{"a": 1}]) == {"a": 1}
    assert combine([{"a": 1}, {}, {"b": 2}]) == {"$and": [{"a": 1}, {"b": 2}]}
    with pytest.raises(InvalidArgumentError, match="must be a dict"):
        combine(["lang = zh"])  # type: ignore[list-item]


# --- every operator ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("filter", "expected"),
    [
        ({}, ALL),
        ({"lang": "zh"}, {"a", "d", "f"}),
        ({"lang": {"$eq": "en"}}, {"b", "c", "e"}),
        ({"type": {"$ne": "jsonl"}}, {"a", "b", "c", "f"}),
        ({"topic": {"$ne": "food"}}, ALL - {"d"}),  # a missing field is "not food"
        # numbers compare numerically whether stored as 2020 or "2021"; "unknown" is no number
        ({"year": 2021}, {"b"}),
        ({"year": {"$gt": 2020}}, {"b", "d"}),
        ({"year": {"$gte": 2020}}, {"a", "b", "d"}),
        ({"year": {"$lt": 2020}}, {"c"}),
        ({"year": {"$lte": 2020}}, {"a", "c"}),
        ({"year": {"$gte": 2019, "$lt": 2023}}, {"a", "b"}),  # two operators on one field: AND
        ({"year": {"$ne": 2020}}, ALL - {"a"}),
        ({"year": "2020"}, {"a"}),  # a string compares as text: CAST(2020 AS TEXT) = '2020'
        ({"year": {"$gt": "2020"}}, {"b", "d", "f"}),  # text order: "2021" "2023" "unknown"
        ({"topic": {"$in": ["food", "travel"]}}, {"d", "e"}),
        ({"year": {"$in": [2020, 2021, "unknown"]}}, {"a", "b", "f"}),
        ({"topic": {"$in": []}}, set()),  # an empty list matches nothing
        ({"topic": {"$nin": ["food"]}}, ALL - {"d"}),
        ({"topic": {"$nin": []}}, ALL),
        ({"path": {"$prefix": "family/"}}, {"a", "b"}),
        ({"path": {"$prefix": "fam"}}, {"a", "b", "f"}),
        ({"path": {"$prefix": "fam%"}}, {"f"}),  # % and _ are literal, not LIKE wildcards
        ({"path": {"$prefix": "fam_"}}, set()),
        ({"path": {"$prefix": "FAMILY/"}}, set()),  # case matters
        ({"id": "c"}, {"c"}),
        ({"id": {"$in": ["a", "e", "zz"]}}, {"a", "e"}),
        ({"id": {"$prefix": "b"}}, {"b"}),
        ({"reviewed": True}, {"d"}),  # JSON true is 1 as a number ...
        ({"reviewed": "false"}, {"e"}),  # ... and 'false' as text
        ({'we"ird.key': "yes"}, {"f"}),  # quotes and dots in a key need no JSON path
    ],
)
def test_operators(store: Store, filter: dict, expected: set[str]) -> None:
    assert ids(store, filter) == expected


def test_and_of_several(store: Store) -> None:
    both = {"lang": "zh", "type": "txt"}
    assert ids(store, both) == {"a", "f"}
    assert ids(store, {"$and": [{"lang": "zh"}, {"type": "txt"}]}) == {"a", "f"}
    assert ids(store, combine([parse_where("lang = zh"), parse_where("type = txt")])) == {"a", "f"}
    mixed = {"$and": [{"lang": "zh"}, {"year": {"$gte": 2021}}], "type": "jsonl"}
    assert ids(store, mixed) == {"d"}
    assert ids(store, {"$or": [{"lang": "zh"}, {"topic": "travel"}]}) == {"a", "d", "e", "f"}


@pytest.mark.parametrize(
    ("expr", "filter"),
    [
        ("lang = zh", {"lang": "zh"}),
        ("type != jsonl", {"type": {"$ne": "jsonl"}}),
        ("year >= 2020", {"year": {"$gte": 2020}}),
        ("year < 2020", {"year": {"$lt": 2020}}),
        ("year = 2021", {"year": 2021}),
        ("topic in (food, travel)", {"topic": {"$in": ["food", "travel"]}}),
        ("topic not in (food)", {"topic": {"$nin": ["food"]}}),
        ("path ^= family/", {"path": {"$prefix": "family/"}}),
        ("id = b", {"id": "b"}),
    ],
)
def test_string_and_dict_forms_agree(store: Store, expr: str, filter: dict) -> None:
    assert ids(store, expr) == ids(store, filter)
    assert ids(store, expr)  # and the case is not trivially empty


def test_complements(store: Store) -> None:
    for field, value in (("lang", "zh"), ("topic", "food"), ("year", 2020), ("year", "2021")):
        eq, ne = ids(store, {field: value}), ids(store, {field: {"$ne": value}})
        assert eq | ne == ALL and not eq & ne


# --- errors -----------------------------------------------------------------------------------
def test_unknown_field_names_it_and_lists_the_known(store: Store) -> None:
    with pytest.raises(InvalidArgumentError, match="'colour'") as info:
        ids(store, {"colour": "red"})
    message = str(info.value)
    for known in ("id", "lang", "path", "topic", "type", "year"):
        assert known in message
    with pytest.raises(InvalidArgumentError, match="unknown filter field 'colour'"):
        ids(store, "colour = red")


@pytest.mark.parametrize("filter", MALFORMED)
def test_malformed_filters(store: Store, filter: object) -> None:
    with pytest.raises(InvalidArgumentError) as info:
        to_sql(filter, store.metadata_fields())  # type: ignore[arg-type]
    assert "\n" not in str(info.value) and "e.g. {" in str(info.value)  # one line, the form


# --- injection --------------------------------------------------------------------------------
EVIL = [
    "zh'; DROP TABLE documents; --",
    '") OR 1=1 --',
    "' OR '1'='1",
    "zh%",
    "$.lang",
    "x\x00y",
]


@pytest.mark.parametrize("value", EVIL)
def test_values_are_data(store: Store, value: str) -> None:
    for filter in with_value(value):
        assert ids(store, filter) == set()
    assert ids(store, {"lang": {"$ne": value}}) == ALL
    assert intact(store)


@pytest.mark.parametrize("field", [*EVIL, 'lang"', "lang.x", 'lang"] OR 1=1', "d.id"])
def test_field_names_are_checked(store: Store, field: str) -> None:
    with pytest.raises(InvalidArgumentError, match="unknown filter (field|key)"):
        ids(store, {field: "zh"})
    assert intact(store)


def test_cli_strings_with_sql_are_data(store: Store) -> None:
    assert ids(store, "lang = zh'; DROP TABLE documents; --") == set()
    assert ids(store, 'lang = ") OR 1=1 --') == set()
    assert ids(store, "lang in ('zh), (1=1')") == set()  # one quoted item, nothing matches
    with pytest.raises(InvalidArgumentError, match="bad list"):
        ids(store, "lang in (zh'), (1=1)")
    with pytest.raises(InvalidArgumentError, match="FIELD OP VALUE"):
        ids(store, "lang; DROP TABLE documents = zh")
    assert intact(store)


def test_filters_need_no_model_and_a_fresh_store_knows_only_id(tmp_path: Path) -> None:
    store = Store(tmp_path / "store.db")
    assert store.metadata_fields() == {"id"}
    with pytest.raises(InvalidArgumentError, match="this index has: id"):
        to_sql({"lang": "zh"}, store.metadata_fields())
    store.close()
