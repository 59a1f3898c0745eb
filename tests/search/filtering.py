"""What both filter suites (SQL and Milvus) build on: a store of documents with given metadata,
the documents an SQL filter selects in it, and the cases both run: malformed filters, and filters
that carry one value in every place a value can go."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from textsearch.documents.corpus import Document, Passage
from textsearch.search.filters import parse_where, to_sql
from textsearch.storage.store import Store


def metadata_store(path: Path, metadata: dict[str, dict[str, Any]]) -> Store:
    """A store at ``path`` with one one-passage document per id, carrying that metadata."""
    store = Store(path)
    docs = [(Document(i, f"text {i}", m), [Passage(f"text {i}", 0, 6)]) for i, m in metadata.items()]
    store.write(docs, np.zeros((len(docs), 4), dtype=np.float32))
    return store


def sql_ids(store: Store, filter: dict[str, Any] | str) -> set[str]:
    """The documents a filter (dict or CLI string) selects through ``to_sql``."""
    if isinstance(filter, str):
        filter = parse_where(filter)
    sql, params = to_sql(filter, store.metadata_fields())
    assert sql.count("?") == len(params)  # every value is a parameter
    return {r[0] for r in store.db.execute(f"SELECT d.id FROM documents d WHERE {sql}", params)}


# Filters that both translations refuse with a one-line error showing the form ("e.g. {...}").
MALFORMED: list[Any] = [
    "lang = zh",  # a string is not a filter dict: parse it with parse_where first
    ["lang"],
    {"lang": {"$like": "z%"}},
    {"lang": {}},
    {"lang": None},
    {"lang": ["zh", "en"]},
    {"lang": {"$eq": {"nested": 1}}},
    {"topic": {"$in": "food"}},
    {"topic": {"$in": [["food"]]}},
    {"path": {"$prefix": 3}},
    {"year": {"$gt": float("nan")}},
    {"$and": {"lang": "zh"}},
    {"$and": []},
    {"$and": ["lang = zh"]},
    {"$not": {"lang": "zh"}},
    {"": "x"},
    {1: "x"},
]


def with_value(value: str) -> list[dict[str, Any]]:
    """Filters holding ``value`` as an equal value, in a list, as a prefix, as an id and as a bound;
    none of them selects a document whose fields do not hold it."""
    return [
        {"lang": value},
        {"lang": {"$in": [value, "fr"]}},
        {"path": {"$prefix": value}},
        {"id": value},
        {"id": {"$in": [value, "fr"]}},
        {"lang": {"$gt": value, "$lt": "\x00"}},
    ]
