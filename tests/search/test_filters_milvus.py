"""filters.to_milvus: filter dicts → Milvus expressions, run on Milvus Lite and checked against what
to_sql selects from the same documents in a real Store."""

import pytest

pytest.importorskip("pymilvus")
pytest.importorskip("milvus_lite")
pytestmark = pytest.mark.engine  # a real Milvus Lite

import json
import re
from collections.abc import Iterator
from typing import Any

from filtering import MALFORMED, metadata_store, sql_ids, with_value
from pymilvus import DataType, MilvusClient

from textsearch.errors import InvalidArgumentError
from textsearch.search.filters import MAX_DEPTH, parse_where, to_milvus, to_sql
from textsearch.storage.milvus import render
from textsearch.storage.store import Store

ODD_KEY = 'we"ird\\key'  # a quote and a backslash to escape inside meta["..."]
TRAP_KEY = 'x"] or not (doc_id in []) or meta["{p0}'  # breaks out of meta["..."] if not quoted
METADATA: dict[str, dict[str, Any]] = {
    "a1": {"path": "family/mom.txt", "lang": "zh", "year": 2020, "topic": "food", "ok": True},
    "a2": {"path": "family/dad.md", "lang": "en", "year": 2021, "ok": False},
    "b1": {"path": "work/notes.txt", "lang": "en", "year": 2018.5, "topic": "travel"},
    "b2": {"path": "fam%_x/odd.txt", "lang": "zh", "topic": "food", ODD_KEY: "yes"},  # no year
    "c1": {"path": "fam_y/odd.txt", "lang": "en", "year": 2023, TRAP_KEY: "v"},
    "c2": {"path": "famxy/z.txt", "lang": "zh", "year": 2020.0, "tags": ["t"], "ok": True},
    "d1": {"path": "日本/東京.txt", "year": -5, "note": None},  # no lang, a JSON null
    "7": {"path": "rows.jsonl", "lang": "zh-TW", "year": 1999, "topic": "travel"},
    # values whose types to_sql mixes and Milvus keeps apart, only in the field "num"
    "n1": {"num": "2021"},
    "n2": {"num": 2021},
    "n3": {"num": 1},
    "n4": {"num": True},
    "n5": {"num": "1"},
    "n6": {"big": 2**62 + 1},
    "e1": {"path": "\ud7ff\U0010ffff", "topic": "\U0010ffffq"},  # for the prefix's upper bound
}
ALL = set(METADATA)
NUMS = {i for i, m in METADATA.items() if "num" in m}


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    s = metadata_store(tmp_path_factory.mktemp("sqlite") / "store.db", METADATA)
    yield s
    s.close()


@pytest.fixture(scope="module")
def milvus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MilvusClient]:
    client = MilvusClient(str(tmp_path_factory.mktemp("milvus") / "m.db"))
    schema = client.create_schema(auto_id=False)
    schema.add_field("label", DataType.INT64, is_primary=True)
    schema.add_field("doc_id", DataType.VARCHAR, max_length=256)
    schema.add_field("meta", DataType.JSON)
    schema.add_field("vector", DataType.FLOAT_VECTOR, dim=4)
    index = client.prepare_index_params()
    index.add_index("vector", index_type="FLAT", metric_type="L2")
    client.create_collection("docs", schema=schema, index_params=index)
    rows = [
        {"label": n, "doc_id": i, "meta": m, "vector": [0.0, 0.0, 0.0, float(n)]}
        for n, (i, m) in enumerate(METADATA.items())
    ]
    client.insert("docs", rows)
    yield client
    client.close()


def inline(expr: str, params: dict[str, Any]) -> str:
    """Milvus Lite 3.2.2 ignores filter_params (``{p0}`` does not even parse there): the backend
    writes the values in as literals (``milvus.render``); every parameter must be used."""
    assert set(re.findall(r"\{(p\d+)\}", re.sub(r'"(?:[^"\\]|\\.)*"', "", expr))) == set(params)
    return render(expr, params)


def milvus_ids(client: MilvusClient, filter: dict | str) -> set[str]:
    if isinstance(filter, str):
        filter = parse_where(filter)
    expr, params = to_milvus(filter, fields())
    rows = client.query("docs", filter=inline(expr, params), output_fields=["doc_id"], limit=100)
    return {r["doc_id"] for r in rows}


def fields() -> set[str]:
    return {k for m in METADATA.values() for k in m} | {"id"}


def test_the_store_knows_the_same_fields(store: Store) -> None:
    assert store.metadata_fields() == fields()


# --- the same documents as to_sql -------------------------------------------------------------
SAME: list[dict[str, Any]] = [
    {},
    {"lang": "zh"},
    {"lang": {"$eq": "en"}},
    {"lang": {"$ne": "zh"}},  # d1 lacks lang and still is "not zh"
    {"year": 2020},  # 2020 and 2020.0
    {"year": 2020.0},
    {"year": {"$ne": 2020}},  # includes every document without a year
    {"year": {"$gt": 2020}},
    {"year": {"$gte": 2020}},
    {"year": {"$lt": 2020}},
    {"year": {"$lte": 2018.5}},
    {"year": {"$gt": -10, "$lt": 0}},
    {"year": {"$gte": 2019, "$lt": 2023}},
    {"year": {"$gt": 1e300}},
    {"year": {"$lt": 2**70}},  # an int beyond int64 goes as a float
    {"lang": {"$gt": "en"}},  # text order
    {"lang": {"$lte": "zh"}},
    {"lang": {"$in": ["zh", "fr"]}},
    {"lang": {"$in": ["zh"]}},
    {"lang": {"$in": []}},  # matches nothing
    {"lang": {"$nin": ["zh", "en"]}},  # zh-TW, and everything without a lang
    {"lang": {"$nin": []}},  # matches everything
    {"year": {"$in": [2020, 2023, 1999.0]}},
    {"year": {"$nin": [2020, -5]}},
    {"topic": {"$ne": "food"}},
    {"topic": {"$nin": ["food", "travel"]}},
    {"ok": True},
    {"ok": False},
    {"ok": {"$ne": True}},
    {"ok": {"$in": [False]}},
    {"note": {"$ne": 1}},  # a JSON null counts as missing in both
    {"note": {"$nin": ["x"]}},
    {"path": {"$prefix": "family/"}},
    {"path": {"$prefix": "fam"}},
    {"path": {"$prefix": "fam%"}},  # % and _ are literal
    {"path": {"$prefix": "fam_"}},
    {"path": {"$prefix": "fam%_x/"}},
    {"path": {"$prefix": "FAMILY/"}},  # case matters
    {"path": {"$prefix": "日本/"}},
    {"path": {"$prefix": "日"}},
    {"path": {"$prefix": "family/dad.md"}},  # the whole value
    {"path": {"$prefix": "family/dad.mdx"}},
    {"path": {"$prefix": "\U0010ffff"}},  # no successor: only the lower bound
    {"topic": {"$prefix": "\U0010ffff"}},
    {"topic": {"$prefix": "\U0010ffffq"}},
    {"path": {"$prefix": "\ud7ff"}},  # the successor skips the surrogates
    {"path": {"$prefix": "\ud7ff\U0010ffff"}},
    {"path": {"$prefix": "\ud7fe"}},
    {"big": 2**62},
    {"id": "a1"},
    {"id": {"$ne": "a1"}},
    {"id": {"$in": ["a1", "c2", "zz"]}},
    {"id": {"$in": ["b1"]}},
    {"id": {"$nin": ["a1", "b1"]}},
    {"id": {"$in": []}},
    {"id": {"$prefix": "a"}},
    {"id": {"$prefix": ""}},
    {"id": {"$gt": "b"}},
    {"id": {"$lte": "b2"}},
    {"id": 7},  # a number on id: its decimal text
    {"id": {"$in": [7.0, "a2"]}},
    {"id": {"$nin": [7]}},
    {ODD_KEY: "yes"},
    {ODD_KEY: {"$ne": "yes"}},
    {TRAP_KEY: "v"},
    {TRAP_KEY: {"$ne": "v"}},
    {"lang": "zh", "year": 2020},  # several keys: AND
    {"lang": "zh", "topic": {"$ne": "food"}},
    {"$and": [{"lang": "zh"}, {"path": {"$prefix": "fam"}}]},
    {"$or": [{"lang": "en"}, {"topic": "food"}]},
    {"$or": [{"lang": {"$in": []}}, {"year": {"$lt": 0}}]},
    {"$or": [{"lang": {"$nin": []}}, {"year": {"$lt": 0}}]},
    {"$and": [{"lang": {"$nin": []}}, {"year": {"$lt": 0}}]},
    {"$and": [{"$or": [{"lang": "zh"}, {"lang": "en"}]}, {"$or": [{"year": 2020}, {"ok": False}]}]},
    {"$or": [{"$and": [{"lang": "zh"}, {"year": {"$ne": 2020}}]}, {"id": {"$prefix": "n"}}]},
    {"$and": [{"lang": {"$ne": "zh"}}, {"topic": {"$nin": ["travel"]}}], "year": {"$gte": 2000}},
    {"num": {"$ne": 5}},
    {"num": {"$nin": ["x", 3]}},
]


@pytest.mark.parametrize("filter", SAME, ids=[json.dumps(f, ensure_ascii=False) for f in SAME])
def test_same_documents_as_to_sql(store: Store, milvus: MilvusClient, filter: dict) -> None:
    assert milvus_ids(milvus, filter) == sql_ids(store, filter)


def test_cli_conditions(store: Store, milvus: MilvusClient) -> None:
    for expr in ("lang = zh", "year >= 2020", "topic not in (food)", "path ^= fam%", "id = 7"):
        assert milvus_ids(milvus, expr) == sql_ids(store, expr)
        assert milvus_ids(milvus, expr)


def test_complements(milvus: MilvusClient) -> None:
    cases = [("lang", "zh"), ("year", 2020), ("ok", True), ("tags", "t"), ("note", 1), ("id", "b1")]
    for field, value in cases:
        eq, ne = milvus_ids(milvus, {field: value}), milvus_ids(milvus, {field: {"$ne": value}})
        assert eq | ne == ALL and not eq & ne, field
        into = milvus_ids(milvus, {field: {"$in": [value]}})
        out = milvus_ids(milvus, {field: {"$nin": [value]}})
        assert (into, out) == (eq, ne), field


def test_parameters_are_typed_template_values() -> None:
    """What pymilvus sends a Milvus server: a scalar, or a list of strings for the id; never a
    mixed list, which pymilvus would send as JSON."""
    from pymilvus.client.prepare import Prepare

    kinds = set()
    for filter in SAME:
        _, params = to_milvus(filter, fields())
        for value in Prepare.prepare_expression_template(params).values():
            kind = value.WhichOneof("val")
            if kind == "array_val":
                kind += "." + value.array_val.WhichOneof("data")
            kinds.add(kind)
    assert kinds == {"string_val", "int64_val", "float_val", "bool_val", "array_val.string_data"}


# --- where Milvus differs from to_sql (the docstring of to_milvus) ----------------------------
DIFFERENT = [
    # (filter, what to_sql selects, what Milvus selects)
    ({"num": 2021}, {"n1", "n2"}, {"n2"}),  # a number misses numeric text
    ({"num": {"$gte": 2000}}, {"n1", "n2"}, {"n2"}),
    ({"num": "2021"}, {"n1", "n2"}, {"n1"}),  # a string misses the text of a number
    ({"num": {"$in": ["2021", "true"]}}, {"n1", "n2", "n4"}, {"n1"}),  # ... and of a boolean
    ({"num": {"$prefix": "20"}}, {"n1", "n2"}, {"n1"}),
    ({"num": {"$gt": "2"}}, {"n1", "n2", "n4"}, {"n1"}),  # "true" > "2" in to_sql's text order
    ({"tags": '["t"]'}, {"c2"}, set()),  # ... and the JSON text of an array
    # a boolean is a JSON boolean, not 1/0; Milvus Lite compares in Python, where True == 1
    ({"num": True}, {"n3", "n4", "n5"}, {"n3", "n4"}),
    ({"num": 1}, {"n3", "n4", "n5"}, {"n3", "n4"}),  # and 1 misses the text "1"
    ({"big": 2**62 + 1}, set(), {"n6"}),  # to_sql rounds the int to a float, Milvus keeps it
]


@pytest.mark.parametrize(("filter", "in_sqlite", "in_milvus"), DIFFERENT)
def test_differences(
    store: Store, milvus: MilvusClient, filter: dict, in_sqlite: set, in_milvus: set
) -> None:
    assert sql_ids(store, filter) == in_sqlite
    assert milvus_ids(milvus, filter) == in_milvus


@pytest.mark.parametrize("op", ["$gt", "$gte", "$lt", "$lte"])
def test_a_number_range_on_id_is_refused(store: Store, op: str) -> None:
    assert sql_ids(store, {"id": {op: 5}}) == ({"7"} if op.startswith("$gt") else set())
    with pytest.raises(InvalidArgumentError, match="compares document ids as text") as info:
        to_milvus({"id": {op: 5}}, fields())
    assert "\n" not in str(info.value) and "e.g. {" in str(info.value)


# --- the expression: names quoted, values as parameters ---------------------------------------
def test_expression_form() -> None:
    expr, params = to_milvus({"lang": "zh", "year": {"$gte": 2020}}, fields())
    assert expr == '(meta["lang"] == {p0}) and (meta["year"] >= {p1})'
    assert params == {"p0": "zh", "p1": 2020}
    expr, params = to_milvus({"topic": {"$nin": ["food"]}}, fields())
    assert expr == '(not (exists meta["topic"])) or (not (meta["topic"] == {p0}))'
    expr, params = to_milvus({"id": {"$in": ["a", "b", 7]}}, fields(), "m", "pk")
    assert (expr, params) == ("pk in {p0}", {"p0": ["a", "b", "7"]})
    expr, params = to_milvus({"path": {"$prefix": "ab%"}}, fields())
    assert expr == '(meta["path"] >= {p0}) and (meta["path"] < {p1})'
    assert params == {"p0": "ab%", "p1": "ab&"}
    assert to_milvus({ODD_KEY: 1}, fields())[0] == 'meta["we\\"ird\\\\key"] == {p0}'
    assert to_milvus({}, fields()) == ("not (doc_id in [])", {})
    assert to_milvus({"lang": {"$in": []}}, fields()) == ("doc_id in []", {})
    assert to_milvus({"ok": True}, fields())[1] == {"p0": True}  # a JSON boolean, not 1


EVIL = [
    'zh" or doc_id != "',
    "zh') or (true",
    "{p1}",
    "\\",
    '"',
    "zh%",
    "x\ny\tz",
    "x\x00y",
]


def in_every_place(value: str) -> list[dict]:
    return [*with_value(value), {"lang": {"$nin": [value]}}]


@pytest.mark.parametrize("value", EVIL)
def test_values_are_parameters(store: Store, milvus: MilvusClient, value: str) -> None:
    for filter, plain in zip(in_every_place(value), in_every_place("a"), strict=True):
        expr, params = to_milvus(filter, fields())
        assert expr == to_milvus(plain, fields())[0]  # the text does not depend on the value
        assert value in params.values() or [value, "fr"] in params.values()
        assert milvus_ids(milvus, filter) == sql_ids(store, filter)
    assert milvus_ids(milvus, {"lang": value}) == set()
    assert milvus_ids(milvus, {"lang": {"$ne": value}}) == ALL


# --- bad input: the same errors as to_sql -----------------------------------------------------
def nested(depth: int) -> dict:
    filter: dict = {"lang": "zh"}
    for _ in range(depth):
        filter = {"$and": [filter]}
    return filter


BAD = [
    *MALFORMED,
    {"colour": "red"},
    {"topic": {"$nin": ["ok", None]}},
    {"path": {"$prefix": True}},
    {"year": {"$gt": 10**400}},
    {"lang": "\ud800"},
    {"lang": "zh", "colour": "red"},
    {"$or": [{"lang": "zh"}, {"year": {"$gt": 1, "$foo": 2}}]},
    {'lang"]': "zh"},
    {"meta": "zh"},
    nested(MAX_DEPTH + 1),
]


@pytest.mark.parametrize("filter", BAD, ids=[repr(f)[:60] for f in BAD])
def test_same_errors_as_to_sql(filter: Any) -> None:
    with pytest.raises(InvalidArgumentError) as from_sql:
        to_sql(filter, fields())
    with pytest.raises(InvalidArgumentError) as from_milvus:
        to_milvus(filter, fields())
    assert str(from_milvus.value) == str(from_sql.value)


def test_deepest_allowed_nesting_runs(store: Store, milvus: MilvusClient) -> None:
    filter = nested(MAX_DEPTH)
    assert milvus_ids(milvus, filter) == sql_ids(store, filter) == {"a1", "b2", "c2"}


def test_a_long_in_list(store: Store, milvus: MilvusClient) -> None:
    filter = {"year": {"$in": list(range(1000, 2100))}}
    assert milvus_ids(milvus, filter) == sql_ids(store, filter)


def test_milvus_field_names_must_be_identifiers() -> None:
    with pytest.raises(ValueError, match="identifier"):
        to_milvus({"lang": "zh"}, fields(), json_field='meta["x"]')
    with pytest.raises(ValueError, match="identifier"):
        to_milvus({"lang": "zh"}, fields(), id_field="doc id")
