"""The Milvus backend: an index's passages, vectors and metadata in a Milvus collection. The only
module that imports pymilvus.

The URI is a Milvus Lite file (``*.db``: embedded, one process at a time; a relative path is taken
from the index directory) or a Milvus server (``http://host:19530``, standalone or distributed;
``TEXTSEARCH_MILVUS_TOKEN`` is sent as its token): the same code path. One row per passage:

    pk           VARCHAR  blake2b(document id) : position — the same passage always gets the same
                          key, so writing a batch again (a retried task) overwrites, never duplicates
    doc_id, position, n_passages, start, end, root, source, content_hash, text
    terms        VARCHAR  the passage's segmented words (``keyword.segment``), analysed for BM25
    sparse       SPARSE   Milvus's BM25 function of ``terms``: keyword search runs on Milvus
    meta         JSON     the document's metadata: filters become Milvus expressions over it
    vector       FLOAT    the passage vector; HNSW with the index's M and ef_construction, cosine

Crash safety: Milvus has no transaction across requests. A batch is written as (1) delete the
batch's documents' old rows, (2) upsert every passage but the first of each document, (3) upsert
the first passages, which carry the content hash that incremental indexing trusts. A crash
between steps leaves documents without that row or with their old hash, so the next ``textsearch
index`` of the folder embeds and writes them again; what a crash cannot do is leave a document
marked up to date with passages missing. Readers see a document disappear for the moment between
(1) and (3).

The index directory keeps the config, the background vectors and ``milvus-state.json`` (the
metadata fields seen, for filters, and the confidence cut).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import (
    IndexCorruptError,
    IndexLockedError,
    InvalidArgumentError,
    TextsearchError,
    require,
)
from ..search.confidence import CUT_KEY, NEIGHBOURS
from ..search.filters import to_milvus
from ..hits import Hit
from ..search.keyword import segment

if TYPE_CHECKING:
    from ..config import IndexConfig
    from ..documents.corpus import Document, Passage

STATE_FILE = "milvus-state.json"
MAX_TEXT = 65535  # Milvus's longest VARCHAR
MAX_LIMIT = 16384  # Milvus's largest top-k and query window
_OUTPUT = ["doc_id", "position", "n_passages", "start", "end", "text", "meta"]
LOCATION_KEY = "_textsearch_location"  # a passage's location, kept in its row's meta (no schema change)
MATCH_KEY = "_textsearch_match"  # a sentence unit's place in the passage it shows, likewise
_CHUNK = 1000  # ids per "in" list


class BackendError(TextsearchError):
    """Milvus refused or failed a request."""


def resolve_uri(path: Path, uri: str) -> str:
    """The URI as pymilvus takes it: a server URL unchanged, a Milvus Lite file made absolute."""
    if "://" in uri:
        return uri
    if not uri.endswith(".db"):
        raise InvalidArgumentError(f"a Milvus Lite URI is a file whose name ends in .db, got {uri!r} — "
                                   "or give a server as http://host:19530")
    file = Path(uri).expanduser()
    return str(file if file.is_absolute() else Path(path) / file)


def _connect(uri: str) -> Any:
    require(("pymilvus",) if "://" in uri else ("pymilvus", "milvus_lite"), "milvus", "the milvus backend")
    from pymilvus import MilvusClient

    for name in ("pymilvus", "pymilvus.milvus_client"):  # they log each refused request with a traceback:
        logging.getLogger(name).setLevel(logging.CRITICAL)  # the error we raise says it in one line
    try:
        return MilvusClient(uri=uri, token=os.environ.get("TEXTSEARCH_MILVUS_TOKEN", ""))
    except Exception as exc:  # noqa: BLE001  (pymilvus raises many kinds; one clear message)
        if "://" not in uri and _held(Path(uri) / "LOCK"):
            raise IndexLockedError(f"Milvus Lite file {uri} is open in another process (Milvus Lite allows one "
                                   "process at a time) — stop it, query through its `textsearch serve`, or use "
                                   "a Milvus server") from exc
        raise BackendError(f"cannot connect to Milvus at {uri}: {_short(exc)}") from exc


def _held(lock: Path) -> bool:
    """Whether another process holds Milvus Lite's lock on its data folder."""
    import fcntl

    try:
        with open(lock, "a") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            fcntl.flock(fh, fcntl.LOCK_UN)
    except BlockingIOError:
        return True
    except OSError:
        return False
    return False


def _short(exc: Exception) -> str:
    return str(getattr(exc, "message", None) or exc).splitlines()[0][:300]


def _key(doc_id: str, position: int) -> str:
    return f"{hashlib.blake2b(doc_id.encode('utf-8'), digest_size=16).hexdigest()}:{position}"


_STRING_ESCAPES = str.maketrans({"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t"})
_PLACEHOLDER = re.compile(r'"(?:[^"\\]|\\.)*"|\{(p\d+)\}')


def literal(value: Any) -> str:
    """A Milvus expression literal for a filter value: a number, boolean, string or list of them."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return '"' + value.translate(_STRING_ESCAPES) + '"'
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(literal(v) for v in value) + "]"
    raise InvalidArgumentError(f"cannot compare with {value!r} in a filter")


def render(expression: str, params: dict[str, Any]) -> str:
    """``filters.to_milvus``'s expression with its ``{p0}`` … parameters written in as literals, in
    one pass that leaves quoted strings (a JSON key) alone. Milvus Lite takes no ``filter_params``;
    a server would take them as they are, with the same meaning."""
    def sub(match: re.Match[str]) -> str:
        return match.group(0) if match.group(1) is None else literal(params[match.group(1)])

    return _PLACEHOLDER.sub(sub, expression)


def _literal(values: Sequence[str]) -> str:
    """A list of strings as a Milvus expression literal (JSON's escaping is the expression's)."""
    return json.dumps(list(values), ensure_ascii=False)


class MilvusBackend:
    """An index's passages in one Milvus collection (see the module's docstring)."""

    name = "milvus"

    def __init__(self, path: Path, config: IndexConfig, *, create: bool = False) -> None:
        self.path, self.config = Path(path), config
        if not config.collection or not config.uri:
            raise IndexCorruptError(f"{path}: a milvus index's config needs its uri and collection")
        self.uri, self.collection = resolve_uri(self.path, config.uri), config.collection
        self.client = _connect(self.uri)
        self.lock = threading.RLock()
        self._read: tuple[tuple[int, int, int], dict[str, Any]] | None = None  # the state file, last read
        if create:
            self._create()
        elif not self._call("has_collection", self.collection):
            raise IndexCorruptError(f"collection {self.collection} is gone from Milvus at {self.uri} — "
                                    "rebuild the index with `textsearch index <corpus> --backend milvus`")
        else:
            self._call("load_collection", self.collection)  # a collection is searched once loaded

    def _call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        try:
            return getattr(self.client, method)(*args, **kwargs)
        except TextsearchError:
            raise
        except Exception as exc:  # noqa: BLE001
            raise BackendError(f"Milvus {method} on {self.collection} failed: {_short(exc)}") from exc

    def _create(self) -> None:
        """The collection, with BM25 keyword search where this Milvus has it (2.5 and later, Milvus
        Lite); where it has not, without, and keyword search says so when asked."""
        try:
            self._create_collection(keyword=True)
            keyword = True
        except BackendError as exc:
            if not any(word in str(exc).lower() for word in ("function", "bm25", "analyzer", "sparse")):
                raise
            self._create_collection(keyword=False)
            keyword = False
        self._save_state({"fields": [], CUT_KEY: None, "keyword": keyword})

    def _create_collection(self, keyword: bool) -> None:
        from pymilvus import DataType, Function, FunctionType

        schema = self.client.create_schema(auto_id=False, enable_dynamic_field=False)
        schema.add_field("pk", DataType.VARCHAR, is_primary=True, max_length=64)
        for name in ("doc_id", "root", "source", "text"):
            schema.add_field(name, DataType.VARCHAR, max_length=MAX_TEXT)
        schema.add_field("content_hash", DataType.VARCHAR, max_length=128)
        for name in ("position", "n_passages", "start", "end"):
            schema.add_field(name, DataType.INT64)
        schema.add_field("meta", DataType.JSON)
        schema.add_field("vector", DataType.FLOAT_VECTOR, dim=self.config.dimension)
        indexes = self.client.prepare_index_params()
        indexes.add_index("vector", index_type="HNSW", metric_type="COSINE",
                          params={"M": self.config.M, "efConstruction": self.config.ef_construction})
        if keyword:
            schema.add_field("terms", DataType.VARCHAR, max_length=MAX_TEXT, enable_analyzer=True,
                             analyzer_params={"tokenizer": "standard"})
            schema.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
            schema.add_function(Function(name="bm25", function_type=FunctionType.BM25,
                                         input_field_names=["terms"], output_field_names=["sparse"]))
            indexes.add_index("sparse", index_type="SPARSE_INVERTED_INDEX", metric_type="BM25")
        else:
            schema.add_field("terms", DataType.VARCHAR, max_length=MAX_TEXT)
        self._call("create_collection", self.collection, schema=schema, index_params=indexes)

    # --- state kept beside the config -------------------------------------------------------
    def _state(self) -> dict[str, Any]:
        """The state file, read again only when it was replaced (searches ask for it every time;
        each save is a new file, so its inode says whether another writer saved one)."""
        file = self.path / STATE_FILE
        try:
            stat = file.stat()
            key = (stat.st_ino, stat.st_mtime_ns, stat.st_size)
            if self._read is None or self._read[0] != key:
                self._read = (key, json.loads(file.read_text(encoding="utf-8")))
            return self._read[1]
        except FileNotFoundError:
            return {"fields": [], CUT_KEY: None}
        except (OSError, ValueError) as exc:
            raise IndexCorruptError(f"cannot read {file} ({exc})") from exc

    def _save_state(self, state: dict[str, Any]) -> None:
        """Write atomically: a crash leaves the old file or the new one, never an empty one."""
        tmp = self.path / (STATE_FILE + ".tmp")
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(json.dumps(state, ensure_ascii=False))
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.path / STATE_FILE)

    # --- documents --------------------------------------------------------------------------
    def _rows(self, condition: str, fields: list[str]) -> Iterator[dict[str, Any]]:
        """Every row matching ``condition`` (all of them: past Milvus's query window)."""
        iterator = self._call("query_iterator", self.collection, batch_size=1000, filter=condition,
                              output_fields=fields)
        try:
            while rows := iterator.next():
                yield from rows
        finally:
            iterator.close()

    def _by_ids(self, ids: Sequence[str], field: str) -> dict[str, str]:
        found: dict[str, str] = {}
        for start in range(0, len(ids), _CHUNK):
            chunk = list(ids[start:start + _CHUNK])
            rows = self._call("query", self.collection, filter=f"position == 0 and doc_id in {_literal(chunk)}",
                              output_fields=["doc_id", field])
            found.update((r["doc_id"], r[field]) for r in rows if r[field] != "")
        return found

    def hashes(self, ids: Sequence[str]) -> dict[str, str]:
        return self._by_ids(ids, "content_hash")

    def hashes_for_root(self, root: str) -> dict[str, str]:
        condition = f"root == {json.dumps(root, ensure_ascii=False)}"
        first = self._rows(f"position == 0 and ({condition})", ["doc_id", "content_hash"])
        return {r["doc_id"]: r["content_hash"] for r in first}

    def sources(self, ids: Sequence[str]) -> dict[str, str]:
        return self._by_ids(ids, "source")

    def file_stats(self, root: str) -> dict[str, tuple[int, int]]:
        return {}  # not kept: every file is read again and compared by its content hash

    def record_files(self, root: str, stats: dict[str, tuple[int, int]], gone: Sequence[str]) -> None:
        pass

    def write(self, batch: Sequence[tuple[Document, list[Passage]]], vectors: np.ndarray, root: str | None) -> None:
        """Upsert the batch's documents (see the module's docstring for the order and why)."""
        n = sum(len(p) for _, p in batch)
        if len(vectors) != n:
            raise ValueError(f"{n} passages but {len(vectors)} vectors — one vector per passage")
        rows, row = [], 0
        for doc, passages in batch:
            for position, passage in enumerate(passages):
                shown = passage.within or passage  # a sentence unit shows the passage that holds it
                extra = {LOCATION_KEY: passage.location} if passage.location else {}
                if passage.within:
                    extra[MATCH_KEY] = [passage.start - shown.start, passage.end - shown.start]
                rows.append({
                    "pk": _key(doc.id, position), "doc_id": doc.id, "position": position,
                    "n_passages": len(passages), "start": shown.start, "end": shown.end,
                    "root": (root or "") if doc.source else "", "source": doc.source or "",
                    "content_hash": doc.content_hash, "text": shown.text, "terms": segment(passage.text),
                    "meta": {**doc.metadata, **extra},
                    "vector": vectors[row].astype(np.float32).tolist(),
                })
                row += 1
        with self.lock:
            self._delete_rows([doc.id for doc, _ in batch])
            for part in ([r for r in rows if r["position"]], [r for r in rows if not r["position"]]):
                for start in range(0, len(part), _CHUNK):
                    self._call("upsert", self.collection, part[start:start + _CHUNK])
            self._save_fields({k for doc, _ in batch for k in doc.metadata})

    def _save_fields(self, new: set[str]) -> None:
        """Add metadata fields a filter may now name (a field is never taken away)."""
        state = self._state()
        if not new <= set(state["fields"]):
            self._save_state({**state, "fields": sorted(new | set(state["fields"]))})

    def _delete_rows(self, ids: Sequence[str]) -> None:
        for start in range(0, len(ids), _CHUNK):
            self._call("delete", self.collection, filter=f"doc_id in {_literal(list(ids[start:start + _CHUNK]))}")

    def delete(self, ids: Sequence[str]) -> int:
        ids = list(ids)
        with self.lock:
            existing = len(self.hashes(ids))
            self._delete_rows(ids)
        return existing

    def torn_documents(self) -> list[str]:
        """Ids of documents whose stored passages are not exactly positions 0 … n_passages-1 (what
        a crash between a batch's requests leaves, until the next indexing run rewrites them)."""
        seen: dict[str, tuple[int, set[int]]] = {}
        for r in self._rows("", ["doc_id", "position", "n_passages"]):
            _, positions = seen.setdefault(r["doc_id"], (int(r["n_passages"]), set()))
            positions.add(int(r["position"]))
        return sorted(d for d, (n, positions) in seen.items() if positions != set(range(n)))

    def refresh(self) -> None:
        """Milvus serves every client the same committed state: nothing to catch up with."""

    def save(self) -> None:
        self._call("flush", self.collection)

    # --- reading ----------------------------------------------------------------------------
    @contextmanager
    def reading(self) -> Iterator[MilvusReader]:
        yield MilvusReader(self)

    def nearest(self, vectors: np.ndarray) -> np.ndarray | None:
        if not self.counts()[1]:
            return None
        found = self._search("vector", [v.astype(np.float32).tolist() for v in vectors], 1, "", [],
                             {"metric_type": "COSINE", "params": {"ef": self.config.ef}})
        return np.asarray([hits[0]["distance"] if hits else -1.0 for hits in found], dtype=np.float32)

    def _search(self, field: str, data: list[Any], limit: int, where: str, output: list[str],
                params: dict[str, Any]) -> list[list[dict[str, Any]]]:
        return self._call("search", self.collection, data=data, anns_field=field, limit=min(limit, MAX_LIMIT),
                          filter=where, output_fields=output, search_params=params)

    def neighbours(self, n: int) -> tuple[np.ndarray, np.ndarray] | None:
        """As ``LocalBackend.neighbours``: up to ``n`` stored passages (as Milvus returns them),
        their vectors and the cosine of the nearest passage of another document."""
        rows = self._call("query", self.collection, filter="", output_fields=["doc_id", "vector", "meta"],
                          limit=min(MAX_LIMIT, 4 * n))
        rows = [r for r in rows if MATCH_KEY not in (r.get("meta") or {})][:n]  # whole passages only
        if not rows:
            return None
        vectors = np.asarray([r["vector"] for r in rows], dtype=np.float32)
        found = self._search("vector", [v.tolist() for v in vectors], NEIGHBOURS, "", ["doc_id"],
                             {"metric_type": "COSINE", "params": {"ef": self.config.ef}})
        best = [next((h["distance"] for h in hits if h["entity"]["doc_id"] != row["doc_id"]), -1.0)
                for row, hits in zip(rows, found)]
        return vectors, np.asarray(best, dtype=np.float32)

    def get_cut(self) -> float | None:
        cut = self._state().get(CUT_KEY)
        return None if cut is None else float(cut)

    def set_cut(self, cut: float | None) -> None:
        self._save_state({**self._state(), CUT_KEY: cut})

    def counts(self) -> tuple[int, int]:
        def count(condition: str) -> int:
            rows = self._call("query", self.collection, filter=condition, output_fields=["count(*)"])
            return int(rows[0]["count(*)"]) if rows else 0

        return count("position == 0"), count("")

    def metadata_fields(self) -> set[str]:
        return set(self._state()["fields"]) | {"id"}

    def info(self) -> dict[str, Any]:
        c = self.config
        return {"hnsw": {"M": c.M, "ef_construction": c.ef_construction, "ef": c.ef},
                "milvus": {"uri": c.uri, "collection": self.collection}}

    def close(self) -> None:
        self.client.close()


@dataclass(frozen=True)
class MilvusReader:
    """Dense (HNSW, cosine) and keyword (BM25) search on the collection, filters as Milvus expressions."""

    backend: MilvusBackend

    def where(self, filter: dict[str, Any], fields: set[str]) -> str:
        return render(*to_milvus(filter, fields))

    def dense(self, vector: np.ndarray, k: int, group: bool, ef: int | None, where: str | None) -> list[Hit]:
        ef = max(ef or self.backend.config.ef, k)
        return self._ranked("vector", vector.astype(np.float32).tolist(), vector, k, group, where,
                            {"metric_type": "COSINE", "params": {"ef": ef}}, dense=True)

    def keyword(self, query: str, vector: np.ndarray, k: int, group: bool, where: str | None) -> list[Hit]:
        if not self.backend._state().get("keyword", True):
            raise InvalidArgumentError(f"keyword and hybrid search need BM25, which the Milvus at {self.backend.uri} "
                                       "lacks (Milvus 2.5 or later has it) — search with --mode dense")
        terms = segment(query)
        if not terms.strip():
            return []
        return self._ranked("sparse", terms, vector, k, group, where, {"metric_type": "BM25"}, dense=False)

    def _ranked(self, field: str, data: Any, vector: np.ndarray, k: int, group: bool, where: str | None,
                params: dict[str, Any], dense: bool) -> list[Hit]:
        """The k best documents (or passages): more passages are fetched while grouping by document
        leaves fewer than k and Milvus had more to give."""
        fetch = max(4 * k, k + 20) if group else k
        output = _OUTPUT if dense else [*_OUTPUT, "vector"]
        while True:
            if dense and fetch > (params["params"]["ef"]):
                params = {**params, "params": {"ef": fetch}}
            found = self.backend._search(field, [data], fetch, where or "", output, params)[0]
            hits = _hits(found, group, vector if not dense else None)
            if len(hits) >= k or len(found) < fetch or fetch >= MAX_LIMIT:
                return hits[:k]
            fetch *= 4


def _hits(found: list[dict[str, Any]], group: bool, vector: np.ndarray | None) -> list[Hit]:
    """Milvus results (best first) as hits: the best passage per document when ``group``. A BM25
    score comes as a distance whose sign differs between Milvus versions: its size is the score.
    With ``vector`` (keyword search) each hit's ``dense_score`` is its passage's cosine."""
    best: dict[str, Hit] = {}
    for result in found:
        row = result["entity"]
        key = row["doc_id"] if group else result["id"] if "id" in result else result.get("pk")
        if key in best:
            continue
        score = float(result["distance"])
        cosine = None
        if vector is not None:
            score = abs(score)
            cosine = round(float(np.asarray(row["vector"], dtype=np.float32) @ vector), 6)
        meta = dict(row["meta"] or {})
        location, match = meta.pop(LOCATION_KEY, None), meta.pop(MATCH_KEY, None)
        best[key] = Hit(row["doc_id"], round(score, 6), row["text"], meta, int(row["position"]),
                        int(row["n_passages"]), int(row["start"]), int(row["end"]), dense_score=cosine,
                        location=location, match=match)
    return list(best.values())


def drop(path: Path, config: IndexConfig) -> None:
    """Drop an index's collection (``Index.destroy``); a collection already gone is no error."""
    if not config.uri or not config.collection:
        return
    client = _connect(resolve_uri(path, config.uri))
    try:
        if client.has_collection(config.collection):
            client.drop_collection(config.collection)
    finally:
        client.close()
