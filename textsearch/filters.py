"""Metadata filters: a CLI condition string or a Python dict → a parameterised SQL expression.

Python filters are dicts in the style of Chroma::

    {"lang": "zh", "year": {"$gte": 2020}, "topic": {"$in": ["food", "travel"]},
     "path": {"$prefix": "family/"}}

Several keys are ANDed; ``{"$and": [...]}`` and ``{"$or": [...]}`` combine whole filters. The CLI
form ``FIELD OP VALUE`` (:func:`parse_where`) gives the same dicts. :func:`to_sql` turns a filter
into an SQL boolean expression over the documents table aliased ``d``; field names are checked
against the fields the index holds and every name and value travels as a ``?`` parameter.

Comparison rules: a number compares numerically with a value stored as a number or as numeric
text (2020 and "2020" alike); a string compares as text. ``$ne`` and ``$nin`` also match documents
that lack the field (the exact complement of ``$eq`` and ``$in``); every other operator needs it.
"""

from __future__ import annotations

import math
import re
import sys
from typing import Any

from .corpus import is_utf8
from .errors import InvalidArgumentError

OPERATORS = ("$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$in", "$nin", "$prefix")
_RANGE = {"$gt": ">", "$gte": ">=", "$lt": "<", "$lte": "<="}
_CLI_OPS = {
    "=": "$eq",
    "==": "$eq",
    "!=": "$ne",
    "<": "$lt",
    "<=": "$lte",
    ">": "$gt",
    ">=": "$gte",
    "^=": "$prefix",
    "in": "$in",
    "not in": "$nin",
}
_WHERE_FORM = (
    "write FIELD OP VALUE with OP one of = == != < <= > >= in, not in, ^= "
    "(e.g. 'lang = zh', 'year >= 2020', 'topic in (food, travel)', 'path ^= family/')"
)
_DICT_FORM = (
    'e.g. {"lang": "zh", "year": {"$gte": 2020}, "topic": {"$in": ["food", "travel"]}} '
    "with operators " + " ".join(OPERATORS)
)
_IN_RE = re.compile(r"^\s*(\S+?)\s+(not\s+in|in)\s*(\(.*\))\s*$", re.IGNORECASE | re.DOTALL)
_OP_RE = re.compile(r"^\s*(\S+?)\s*(==|!=|<=|>=|\^=|=|<|>)\s*(.*?)\s*$", re.DOTALL)
_NUMBER_RE = re.compile(r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?")
_ITEM_RE = re.compile(r"""\s*("[^"]*"|'[^']*'|[^,]*?)\s*(?:,|$)""")

# the value of one metadata field; NULL when the document lacks it. JSON true/false read as text
# 'true'/'false' and as numbers 1/0.
_JSON_VALUE = "(SELECT j.value FROM json_each(d.metadata) j WHERE j.key = ?)"
_JSON_TEXT = (
    "(SELECT CASE j.type WHEN 'true' THEN 'true' WHEN 'false' THEN 'false'"
    " WHEN 'null' THEN NULL ELSE CAST(j.value AS TEXT) END"
    " FROM json_each(d.metadata) j WHERE j.key = ?)"
)
# numeric view of a value: numbers as they are, numeric text converted, anything else NULL
# (``x = CAST(x AS NUMERIC)`` holds for text only when the whole text is a number)
_NUMERIC = (
    "CASE WHEN typeof({x}) IN ('integer', 'real') THEN {x}"
    " WHEN typeof({x}) = 'text' AND {x} = CAST({x} AS NUMERIC) THEN CAST({x} AS REAL) END"
)
_JSON_NUMBER = (
    "(SELECT " + _NUMERIC.format(x="j.value") + " FROM json_each(d.metadata) j WHERE j.key = ?)"
)

MAX_DEPTH = 32  # $and/$or nesting levels (Python recursion and SQLite's expression depth)
_MAX_INT = int(sys.float_info.max)
Value = str | int | float
Sql = tuple[str, list[Any]]


# --- CLI strings ------------------------------------------------------------------------------
def parse_where(expr: str) -> dict[str, Any]:
    """``'year >= 2020'`` → ``{"year": {"$gte": 2020}}`` (see the module doc for the grammar)."""
    if not isinstance(expr, str) or not expr.strip():
        raise InvalidArgumentError(f"empty --where condition — {_WHERE_FORM}")
    match = _IN_RE.match(expr)
    if match:
        field, op, raw = match.groups()
        op = "not in" if op.lower().startswith("not") else "in"
        return {field: {_CLI_OPS[op]: _parse_list(raw, expr)}}
    match = _OP_RE.match(expr)
    if not match:
        raise InvalidArgumentError(f"cannot read --where {expr!r} — {_WHERE_FORM}")
    field, op, raw = match.groups()
    if not raw:
        raise InvalidArgumentError(f"--where {expr!r} has no value — {_WHERE_FORM}")
    if op == "^=":
        return {field: {"$prefix": _unquote(raw)}}
    return {field: {_CLI_OPS[op]: _parse_value(raw)}}


def _unquote(raw: str) -> str:
    if len(raw) >= 2 and raw[0] == raw[-1] and raw[0] in "'\"":
        return raw[1:-1]
    return raw


def _parse_value(raw: str) -> Value:
    """A number when the text is one (unquoted), else the text with its quotes stripped."""
    if _NUMBER_RE.fullmatch(raw):
        number = float(raw)
        return int(raw) if re.fullmatch(r"[-+]?\d+", raw) else number
    return _unquote(raw)


def _parse_list(raw: str, expr: str) -> list[Value]:
    inner = raw.strip()[1:-1]
    if not inner.strip():
        return []
    bad = InvalidArgumentError(
        f"--where {expr!r} has a bad list — write it as (a, b, c), e.g. 'topic in (food, travel)'"
    )
    if inner.rstrip().endswith(","):
        raise bad
    items: list[Value] = []
    for match in _ITEM_RE.finditer(inner):
        if match.start() == len(inner):
            break
        item = match.group(1)
        if not item or (item[0] not in "'\"" and ("(" in item or ")" in item)):
            raise bad
        items.append(_parse_value(item))
    return items


def combine(filters: list[dict[str, Any]]) -> dict[str, Any]:
    """AND several filters (e.g. one per ``--where``) into one; [] gives {} (everything)."""
    for f in filters:
        _require_dict(f)
    filters = [f for f in filters if f]
    if not filters:
        return {}
    return filters[0] if len(filters) == 1 else {"$and": list(filters)}


# --- SQL --------------------------------------------------------------------------------------
def to_sql(filter: dict[str, Any], known_fields: set[str]) -> Sql:
    """An SQL boolean expression over ``d`` (documents) with ``?`` parameters only.

    {} matches every document. Raises InvalidArgumentError for an unknown field or a malformed
    filter, the message showing the expected form."""
    return _filter_sql(filter, known_fields, 0)


def _filter_sql(filter: dict[str, Any], known_fields: set[str], depth: int) -> Sql:
    _require_dict(filter)
    if depth > MAX_DEPTH:
        raise InvalidArgumentError(
            f"filter nested more than {MAX_DEPTH} levels deep in $and/$or — flatten it"
        )
    parts: list[Sql] = []
    for key, cond in filter.items():
        if key in ("$and", "$or"):
            parts.append(_combination(key, cond, known_fields, depth + 1))
        elif isinstance(key, str) and key.startswith("$"):
            raise InvalidArgumentError(
                f"unknown filter key {key!r} — use $and/$or or a field, {_DICT_FORM}"
            )
        else:
            parts.append(_field(_check_field(key, known_fields), cond))
    return _join(parts, "AND", empty="1")


def _require_dict(filter: Any) -> None:
    if not isinstance(filter, dict):
        raise InvalidArgumentError(
            f"a filter must be a dict, got {type(filter).__name__} — {_DICT_FORM}"
        )


def _combination(key: str, cond: Any, known: set[str], depth: int) -> Sql:
    if not isinstance(cond, list) or not cond:
        raise InvalidArgumentError(
            f"{key} takes a non-empty list of filters, e.g. {{{key!r}: [{{...}}, {{...}}]}}"
        )
    parts = [_filter_sql(sub, known, depth) for sub in cond]
    return _join(parts, "AND" if key == "$and" else "OR", empty="1")


def _check_field(field: Any, known: set[str]) -> str:
    if not isinstance(field, str) or not field:
        raise InvalidArgumentError(
            f"a filter field must be a non-empty string, got {field!r} — {_DICT_FORM}"
        )
    if field not in known:
        listed = ", ".join(sorted(known)) or "(none: the index is empty)"
        raise InvalidArgumentError(f"unknown filter field {field!r} — this index has: {listed}")
    return field


def _field(field: str, cond: Any) -> Sql:
    if isinstance(cond, dict):
        if not cond:
            raise InvalidArgumentError(f"empty condition for {field!r} — {_DICT_FORM}")
        return _join([_condition(field, op, value) for op, value in cond.items()], "AND", empty="1")
    return _condition(field, "$eq", cond)


def _condition(field: str, op: Any, value: Any) -> Sql:
    if op not in OPERATORS:
        raise InvalidArgumentError(f"unknown filter operator {op!r} for {field!r} — {_DICT_FORM}")
    if op in ("$in", "$nin"):
        if not isinstance(value, (list, tuple)):
            raise InvalidArgumentError(
                f"{op} for {field!r} takes a list, e.g. {{{field!r}: {{{op!r}: ['a', 'b']}}}}"
            )
        sql = _membership(field, [_scalar(field, op, v) for v in value])
        return _negate(sql) if op == "$nin" else sql
    value = _scalar(field, op, value)
    if op == "$prefix":
        if not isinstance(value, str):
            raise InvalidArgumentError(
                f"$prefix for {field!r} takes a string,"
                f" e.g. {{{field!r}: {{'$prefix': 'family/'}}}}"
            )
        x, params = _text(field)
        return f"substr({x}, 1, length(?)) = ?", [*params, value, value]
    x, params = _number(field) if _is_number(value) else _text(field)
    sql = (f"{x} {_RANGE.get(op, '=')} ?", [*params, _sql_value(value)])
    return _negate(sql) if op == "$ne" else sql


def _membership(field: str, values: list[Value]) -> Sql:
    numbers = [float(v) for v in values if _is_number(v)]
    texts = [v for v in values if not _is_number(v)]
    parts: list[Sql] = []
    for subset, view in ((numbers, _number), (texts, _text)):
        if subset:
            x, params = view(field)
            parts.append((f"{x} IN ({', '.join('?' * len(subset))})", [*params, *subset]))
    return _join(parts, "OR", empty="0")  # an empty list matches nothing


def _scalar(field: str, op: str, value: Any) -> Value:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, float) and math.isnan(value):
        raise InvalidArgumentError(f"{op} for {field!r} got NaN — give a number, {_DICT_FORM}")
    if isinstance(value, int) and abs(value) > _MAX_INT:  # compared as a float, which overflows
        raise InvalidArgumentError(f"{op} for {field!r} got a number too large — {_DICT_FORM}")
    if isinstance(value, str) and not is_utf8(value):
        raise InvalidArgumentError(
            f"{op} for {field!r} got a lone surrogate (\\ud800-\\udfff), not text — {_DICT_FORM}"
        )
    if isinstance(value, (str, int, float)):
        return value
    raise InvalidArgumentError(
        f"{op} for {field!r} takes a string or a number, got {type(value).__name__} — {_DICT_FORM}"
    )


def _is_number(value: Value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _sql_value(value: Value) -> Value:
    return float(value) if _is_number(value) else value


def _text(field: str) -> Sql:
    return ("d.id", []) if field == "id" else (_JSON_TEXT, [field])


def _number(field: str) -> Sql:
    if field == "id":
        return "(" + _NUMERIC.format(x="d.id") + ")", []
    return _JSON_NUMBER, [field]


def _negate(part: Sql) -> Sql:
    """NOT that also holds where the field is missing (the condition is then NULL)."""
    return f"NOT coalesce({part[0]}, 0)", part[1]


def _join(parts: list[Sql], word: str, empty: str) -> Sql:
    """Parts joined as a balanced tree: SQLite refuses an expression over 1000 levels deep, which
    a flat ``a OR b OR c ...`` of a thousand conditions already is."""
    if not parts:
        return empty, []
    if len(parts) == 1:
        return parts[0]
    half = len(parts) // 2
    left, right = _join(parts[:half], word, empty), _join(parts[half:], word, empty)
    return f"({left[0]}) {word} ({right[0]})", [*left[1], *right[1]]
