"""Metadata filters: a CLI condition string or a Python dict → a parameterised SQL expression.

Python filters are dicts in the style of Chroma::

    {"lang": "zh", "year": {"$gte": 2020}, "topic": {"$in": ["food", "travel"]},
     "path": {"$prefix": "family/"}}

Several keys are ANDed; ``{"$and": [...]}`` and ``{"$or": [...]}`` combine whole filters. The CLI
form ``FIELD OP VALUE`` (:func:`parse_where`) gives the same dicts. :func:`to_sql` turns a filter
into an SQL boolean expression over the documents table aliased ``d``; field names are checked
against the fields the index holds and every name and value travels as a ``?`` parameter.

:func:`to_milvus` turns the same dicts into a Milvus filter expression over a JSON field.

Comparison rules: a number compares numerically with a value stored as a number or as numeric
text (2020 and "2020" alike); a string compares as text. ``$ne`` and ``$nin`` also match documents
that lack the field (the exact complement of ``$eq`` and ``$in``); every other operator needs it.
"""

from __future__ import annotations

import math
import re
import sys
from collections.abc import Sequence
from typing import Any

from ..documents.corpus import is_utf8
from ..errors import InvalidArgumentError

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
    _require_filter(filter, depth)
    parts: list[Sql] = []
    for key, cond in filter.items():
        if key in ("$and", "$or"):
            parts.append(_combination(key, cond, known_fields, depth + 1))
        else:
            parts.append(_field(_check_key(key, known_fields), cond))
    return _join(parts, "AND", empty="1")


def _require_dict(filter: Any) -> None:
    if not isinstance(filter, dict):
        raise InvalidArgumentError(
            f"a filter must be a dict, got {type(filter).__name__} — {_DICT_FORM}"
        )


def _require_filter(filter: Any, depth: int) -> None:
    _require_dict(filter)
    if depth > MAX_DEPTH:
        raise InvalidArgumentError(
            f"filter nested more than {MAX_DEPTH} levels deep in $and/$or — flatten it"
        )


def _check_key(key: Any, known: set[str]) -> str:
    """A filter key other than $and/$or: a known field."""
    if isinstance(key, str) and key.startswith("$"):
        raise InvalidArgumentError(
            f"unknown filter key {key!r} — use $and/$or or a field, {_DICT_FORM}"
        )
    return _check_field(key, known)


def _require_filters(key: str, cond: Any) -> list[Any]:
    if not isinstance(cond, list) or not cond:
        raise InvalidArgumentError(
            f"{key} takes a non-empty list of filters, e.g. {{{key!r}: [{{...}}, {{...}}]}}"
        )
    return cond


def _combination(key: str, cond: Any, known: set[str], depth: int) -> Sql:
    parts = [_filter_sql(sub, known, depth) for sub in _require_filters(key, cond)]
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
    conditions = _conditions(field, cond)
    return _join([_condition(field, op, value) for op, value in conditions], "AND", empty="1")


def _conditions(field: str, cond: Any) -> list[tuple[Any, Any]]:
    """``{"$gte": 1, "$lt": 3}`` → its (operator, value) pairs; a bare value is ``$eq``."""
    if not isinstance(cond, dict):
        return [("$eq", cond)]
    if not cond:
        raise InvalidArgumentError(f"empty condition for {field!r} — {_DICT_FORM}")
    return list(cond.items())


def _require_operator(field: str, op: Any) -> None:
    if op not in OPERATORS:
        raise InvalidArgumentError(f"unknown filter operator {op!r} for {field!r} — {_DICT_FORM}")


def _require_list(field: str, op: str, value: Any) -> list[Any] | tuple[Any, ...]:
    if not isinstance(value, (list, tuple)):
        raise InvalidArgumentError(
            f"{op} for {field!r} takes a list, e.g. {{{field!r}: {{{op!r}: ['a', 'b']}}}}"
        )
    return value


def _require_prefix(field: str, value: Value) -> str:
    if not isinstance(value, str):
        raise InvalidArgumentError(
            f"$prefix for {field!r} takes a string, e.g. {{{field!r}: {{'$prefix': 'family/'}}}}"
        )
    return value


def _condition(field: str, op: Any, value: Any) -> Sql:
    _require_operator(field, op)
    if op in ("$in", "$nin"):
        sql = _membership(field, [_scalar(field, op, v) for v in _require_list(field, op, value)])
        return _negate(sql) if op == "$nin" else sql
    value = _scalar(field, op, value)
    if op == "$prefix":
        value = _require_prefix(field, value)
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


# --- Milvus -----------------------------------------------------------------------------------
# An expression, or True/False where an empty $in/$nin (or {}) decided it; folded away by _fold.
Milvus = str | bool
_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_KEY_ESCAPES = str.maketrans({"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t"})
_INT64 = 2**63


def to_milvus(
    filter: dict[str, Any],
    known_fields: set[str],
    json_field: str = "meta",
    id_field: str = "doc_id",
) -> tuple[str, dict[str, Any]]:
    """A Milvus boolean expression and its ``filter_params``, for pymilvus
    ``MilvusClient.search/query/delete(..., filter=expr, filter_params=params)``.

    Metadata is read from the JSON field ``json_field`` (``meta["lang"]``), the field "id" from the
    VARCHAR field ``id_field``. Field names are checked as in :func:`to_sql` and quoted as JSON
    keys; every value travels as a ``{p0}``, ``{p1}`` ... placeholder. {} gives an expression that
    matches every document. Raises the same InvalidArgumentError as :func:`to_sql` for bad input.

    Where Milvus cannot follow to_sql:

    - a number matches JSON numbers only, not numeric text ({"year": 2021} misses "2021");
    - a string matches JSON strings only, not the text of a number, boolean, array or object, in
      $eq/$ne/$in/$nin, $prefix and ranges alike ({"year": "2020"} misses 2020);
    - a boolean in $eq/$ne/$in/$nin goes as a JSON boolean, not as the 1/0 that to_sql compares
      (Milvus Lite 3.2.2, comparing in Python, still matches true with 1 and 1.0 but not "1");
    - an integer stays exact, where to_sql rounds one beyond 2**53 to a float (and misses it);
    - a number on "id" compares as its decimal text (7 and 7.0 match "7", not "07"), and in
      $gt/$gte/$lt/$lte raises InvalidArgumentError, as Milvus compares a VARCHAR as text only.

    Milvus Lite 3.2.2 ignores ``filter_params`` (``{p0}`` is a parse error there): put the values
    into the text as Milvus literals first, as tests/search/test_filters_milvus.py does."""
    for name in (json_field, id_field):
        if not _NAME_RE.fullmatch(name):
            raise ValueError(f"a Milvus field name must be an identifier, got {name!r}")
    query = _MilvusQuery(json_field, id_field)
    expr = _filter_milvus(filter, known_fields, 0, query)
    if isinstance(expr, bool):  # Milvus has no boolean constant usable as a whole filter
        expr = f"not ({id_field} in [])" if expr else f"{id_field} in []"
    return expr, query.params


class _MilvusQuery:
    """The two Milvus fields a filter reads, and the placeholder values collected so far."""

    def __init__(self, json_field: str, id_field: str) -> None:
        self.json_field, self.id_field = json_field, id_field
        self.params: dict[str, Any] = {}

    def param(self, value: Any) -> str:
        name = f"p{len(self.params)}"
        self.params[name] = value
        return "{" + name + "}"

    def fold(self, since: int, parts: Sequence[Milvus], word: str) -> Milvus:
        """:func:`_fold` of parts built since ``len(params)`` was ``since``; where it gives a
        constant, the placeholders of the parts it dropped go too."""
        expr = _fold(parts, word)
        if isinstance(expr, bool):
            for n in range(since, len(self.params)):
                del self.params[f"p{n}"]
        return expr

    def column(self, field: str) -> str:
        """``doc_id`` for "id", else ``meta["field"]`` with the key quoted as a string literal."""
        if field == "id":
            return self.id_field
        return f'{self.json_field}["{field.translate(_KEY_ESCAPES)}"]'


def _filter_milvus(filter: dict[str, Any], known: set[str], depth: int, q: _MilvusQuery) -> Milvus:
    _require_filter(filter, depth)
    start = len(q.params)
    parts: list[Milvus] = []
    for key, cond in filter.items():
        since = len(q.params)
        if key in ("$and", "$or"):
            subs = [_filter_milvus(sub, known, depth + 1, q) for sub in _require_filters(key, cond)]
            parts.append(q.fold(since, subs, "and" if key == "$and" else "or"))
        else:
            field = _check_key(key, known)
            conditions = _conditions(field, cond)
            conds = [_condition_milvus(field, op, v, q) for op, v in conditions]
            parts.append(q.fold(since, conds, "and"))
    return q.fold(start, parts, "and")


def _condition_milvus(field: str, op: Any, value: Any, q: _MilvusQuery) -> Milvus:
    _require_operator(field, op)
    if op in ("$in", "$nin"):
        values = [_milvus_scalar(field, op, v) for v in _require_list(field, op, value)]
        expr = _any_equal(field, values, q)
        return _not_milvus(field, expr, q) if op == "$nin" else expr
    scalar = _scalar(field, op, value)  # booleans as 1/0, as in to_sql
    if op == "$prefix":
        return _prefix_milvus(field, _require_prefix(field, scalar), q)
    if op in ("$eq", "$ne"):
        expr = _any_equal(field, [_milvus_scalar(field, op, value)], q)
        return _not_milvus(field, expr, q) if op == "$ne" else expr
    if field == "id" and _is_number(scalar):
        raise InvalidArgumentError(
            f"{op} for 'id' takes a string here: Milvus compares document ids as text only,"
            f" e.g. {{'id': {{{op!r}: 'b'}}}}"
        )
    return f"{q.column(field)} {_RANGE[op]} {q.param(_milvus_value(field, scalar))}"


def _milvus_scalar(field: str, op: str, value: Any) -> Value | bool:
    """:func:`_scalar`'s checks, a boolean kept as one (a JSON boolean on Milvus)."""
    checked = _scalar(field, op, value)
    return value if isinstance(value, bool) else checked


def _milvus_value(field: str, value: Value | bool) -> Value | bool:
    """The parameter for a value: an int as itself where it fits Milvus's int64, any other number
    as a float; a number on "id" as its decimal text."""
    if field == "id" and not isinstance(value, str):
        number = float(value)
        return str(int(number)) if number.is_integer() else repr(number)
    if _is_number(value):
        return value if isinstance(value, int) and abs(value) < _INT64 else float(value)
    return value


def _any_equal(field: str, values: list[Value | bool], q: _MilvusQuery) -> Milvus:
    """The field equals one of the values; [] matches nothing. A JSON field takes ``==`` per value
    (Milvus Lite has no ``in`` on a JSON key); the id one ``in`` with a list of strings."""
    if not values:
        return False
    x = q.column(field)
    if field == "id":
        texts = list(dict.fromkeys(str(_milvus_value(field, v)) for v in values))
        return f"{x} == {q.param(texts[0])}" if len(texts) == 1 else f"{x} in {q.param(texts)}"
    return _fold([f"{x} == {q.param(_milvus_value(field, v))}" for v in values], "or")


def _not_milvus(field: str, expr: Milvus, q: _MilvusQuery) -> Milvus:
    """NOT that also holds where the document lacks the field: Milvus, like SQL, leaves a
    comparison with a missing JSON key unknown, and ``not`` of unknown is no match."""
    if isinstance(expr, bool):
        return not expr
    if field == "id":
        return f"not ({expr})"
    return f"(not (exists {q.column(field)})) or (not ({expr}))"


def _prefix_milvus(field: str, prefix: str, q: _MilvusQuery) -> Milvus:
    """``x >= prefix and x < successor(prefix)``: exact in code-point order (what Milvus and
    UTF-8 bytes sort by), where ``like`` would need escapes that Milvus Lite 3.2.2 lacks."""
    if not prefix and field == "id":
        return True
    x = q.column(field)
    lower = f"{x} >= {q.param(prefix)}"
    upper = _successor(prefix)
    return lower if upper is None else f"({lower}) and ({x} < {q.param(upper)})"


def _successor(prefix: str) -> str | None:
    """The least string above every string that starts with ``prefix``; None where there is none
    (prefix "" or all U+10FFFF). Skips the surrogates, which no stored text holds."""
    stripped = prefix.rstrip("\U0010ffff")
    if not stripped:
        return None
    code = ord(stripped[-1]) + 1
    return stripped[:-1] + chr(0xE000 if 0xD800 <= code <= 0xDFFF else code)


def _fold(parts: Sequence[Milvus], word: str) -> Milvus:
    """Parts joined by ``and``/``or`` as a balanced tree (as :func:`_join`), True/False folded away:
    an empty ``and`` is True, an empty ``or`` False."""
    absorbing = word == "or"  # True absorbs an or, False an and
    if absorbing in parts:
        return absorbing
    exprs = [p for p in parts if not isinstance(p, bool)]
    if not exprs:
        return not absorbing
    if len(exprs) == 1:
        return exprs[0]
    half = len(exprs) // 2
    return f"({_fold(exprs[:half], word)}) {word} ({_fold(exprs[half:], word)})"
