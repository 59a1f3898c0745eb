"""`textsearch serve`: the indexes of one folder over HTTP (FastAPI), and a search page at `/`.
The only module that imports FastAPI.

- models load once, on an index's first use, and stay warm; every index is opened once and shared
  by the server's worker threads (``Index`` is thread-safe; ``search`` runs in a thread, never on
  the event loop);
- writes go through the index's single-writer lock, so ``textsearch index`` and the server can
  run side by side;
- errors are JSON ``{"error": message}`` with the status that says what happened: 400 a bad
  option or filter, 401 a missing or wrong API key, 404 an unknown index or document, 409 the
  write lock held past its timeout, 411 a body without its length, 413 a request over the size
  limit;
- ``/openapi.json`` declares every status and every constraint on a request: pydantic checks the
  JSON types, the library the values (a 400 in its own words), the schema shows both, and a
  schemathesis run (tests/test_openapi.py) holds the schema to what the server does;
- with an API key (``--api-key`` or ``TEXTSEARCH_API_KEY``) every request but the static page
  must carry it (``X-API-Key: KEY`` or ``Authorization: Bearer KEY``); without one the server
  refuses to listen anywhere but loopback.
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import logging
import threading
import time
from collections.abc import AsyncIterator, Iterator, Mapping
from concurrent.futures import Future
from contextlib import asynccontextmanager, contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, RootModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from .catalog import index_path, list_indexes
from .config import DEFAULT_MODE, RRF_K, is_index_dir
from .models.encoder import Encoder
from .errors import (
    DISTRIBUTION,
    IndexLockedError,
    IndexNotFoundError,
    InvalidArgumentError,
    ModelError,
    TextsearchError,
)
from .search.filters import OPERATORS, combine, parse_where
from .hits import Hit, Summary
from .index import Index, check_query
from .search.keyword import segment
from .search.rerank import DEFAULT_RERANKER
from .search.query import MAX_EF, MAX_K, MAX_RRF_K, MODES, SearchOptions

logger = logging.getLogger(__name__)
PAGE = Path(__file__).parent / "data" / "page.html"
MAX_BODY = 16 * 1024 * 1024  # bytes a request body may hold (a batch of documents to upsert)
MAX_BATCH = 256  # queries per batch search
BATCH_WINDOW_MS = 0.0  # how long a search waits for others to share its encoder call (docs/serving.md)


def _checked(default: Any = ..., **constraints: Any) -> Any:
    """A field whose value the library checks (``SearchOptions``, ``check_query``, ``Index.add``:
    a 400 in its own words), with the check shown in the OpenAPI schema as ``constraints``."""
    return Field(default, json_schema_extra=constraints)


def _whole(value: Any) -> Any:
    return int(value) if isinstance(value, float) and value.is_integer() else value


Integer = Annotated[int, BeforeValidator(_whole)]  # JSON Schema's integer: 3.0 is one too
NOT_BLANK = r"\S"  # what check_query and Index.add accept: some text besides whitespace
# filters.parse_where's two forms, FIELD OP VALUE and FIELD [not] in (LIST); a single-character
# OP followed by "=" is the two-character one, which needs a value after it
WHERE = (r"^\s*\S+?(\s*((==|!=|<=|>=|\^=)\s*\S|[=<>]([^\s=]|\s+\S))"
         r"|\s+([nN][oO][tT]\s+)?[iI][nN]\s*\([\s\S]*\)\s*$)")
_VALUE: dict[str, Any] = {"type": ["string", "number", "boolean"]}
_FILTER: dict[str, Any] = {  # filters.to_sql's dict form (less MAX_DEPTH)
    "propertyNames": {"anyOf": [{"enum": ["$and", "$or"]}, {"pattern": "^[^$]"}]},
    "properties": {op: {"type": "array", "minItems": 1, "items": {"$ref": "#/components/schemas/Filter"}}
                   for op in ("$and", "$or")},
    "additionalProperties": {"anyOf": [_VALUE, {
        "type": "object", "minProperties": 1, "additionalProperties": False,
        "properties": {op: {"type": "array", "items": _VALUE} if op in ("$in", "$nin")
                       else {"type": "string"} if op == "$prefix" else _VALUE for op in OPERATORS}}]},
}


class Filter(RootModel[dict[str, Any]]):
    """A metadata filter: field → value, or → {operator: value}; ``$and`` and ``$or`` combine
    filters. Which fields there are depends on the index (an unknown one is a 400)."""

    model_config = ConfigDict(json_schema_extra=_FILTER)


class _Options(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    k: Integer = _checked(10, minimum=1, maximum=MAX_K)
    mode: str = _checked(DEFAULT_MODE, enum=list(MODES))
    filter: Filter | None = None
    where: list[str] = Field(default_factory=list, description="conditions as in `query --where`, ANDed with filter",
                             json_schema_extra={"items": {"type": "string", "pattern": WHERE}})
    passages: bool = False
    ef: Integer | None = _checked(None, minimum=1, maximum=MAX_EF)
    rerank: bool = False
    rerank_model: str | None = _checked(None, enum=[DEFAULT_RERANKER, None])  # the server loads no other
    candidates: Integer | None = _checked(None, minimum=1, maximum=MAX_K)
    rerank_weight: float | None = _checked(None, minimum=0, maximum=1)
    min_score: float | None = None
    min_margin: float | None = None
    include_low_confidence: bool = False
    rrf_k: Integer = _checked(RRF_K, minimum=1, maximum=MAX_RRF_K)
    collapse: bool = Field(True, description="copies of one text come back as one hit that lists them in `copies` "
                                             "(false: one hit per copy)")


class SearchRequest(_Options):
    """The options of ``Index.search``, as JSON."""

    query: str = _checked(pattern=NOT_BLANK)


class BatchRequest(_Options):
    """``Index.search_many``: the options of ``Index.search`` for a list of queries."""

    queries: list[str] = _checked(minItems=1, maxItems=MAX_BATCH, items={"type": "string", "pattern": NOT_BLANK})


class SearchResponse(BaseModel):
    hits: list[Hit]
    no_confident_match: bool = Field(description="no hit passed the confidence rule (the list is then empty, "
                                                 "unless include_low_confidence)")
    terms: list[str] = Field(description="the query's keyword terms, for highlighting")


class BatchResponse(BaseModel):
    results: list[SearchResponse]


class Document(BaseModel):
    """One document to upsert: its id, its text, and any other fields as metadata (a
    ``metadata`` object is merged in)."""

    model_config = ConfigDict(extra="allow", strict=True)

    id: str = _checked(minLength=1)
    text: str = _checked(pattern=NOT_BLANK)
    metadata: dict[str, Any] | None = None


class ErrorResponse(BaseModel):
    """Every error's body."""

    error: str = Field(description="what is wrong, and how to fix it")


ERRORS = {
    400: "a bad option, filter or document",
    401: "a missing or wrong API key",
    404: "no such index (or document)",
    409: "the index is busy: another process writes it, or holds its Milvus Lite file",
    411: "a body without a Content-Length",
    413: "a body over the size limit",
}


def _errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    return {status: {"model": ErrorResponse, "description": ERRORS[status]} for status in statuses}


def _contract(schema: dict[str, Any], api_key: bool) -> dict[str, Any]:
    """FastAPI's OpenAPI document, made to say what the server does: a bad request is a 400 (no
    422), and with an API key, every operation takes it in either of its two headers."""
    for operations in schema["paths"].values():
        for operation in operations.values():
            operation["responses"].pop("422", None)
    for name in ("HTTPValidationError", "ValidationError"):
        schema.get("components", {}).get("schemas", {}).pop(name, None)
    if api_key:
        schema["components"]["securitySchemes"] = {
            "APIKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
            "Bearer": {"type": "http", "scheme": "bearer"},
        }
        schema["security"] = [{"APIKey": []}, {"Bearer": []}]
    return schema


def _options(body: _Options) -> SearchOptions:
    if body.rerank_model not in (None, DEFAULT_RERANKER):  # a name would be a folder or a hub download
        raise InvalidArgumentError(f"rerank_model may only be {DEFAULT_RERANKER} on the server, got {body.rerank_model!r}")
    conditions = [body.filter.root] if body.filter and body.filter.root else []
    conditions += [parse_where(w) for w in body.where]
    return SearchOptions(
        k=body.k, mode=body.mode, filter=combine(conditions) if conditions else None, group=not body.passages,
        ef=body.ef, rerank=body.rerank, rerank_model=body.rerank_model, candidates=body.candidates,
        rerank_weight=body.rerank_weight, min_score=body.min_score, min_margin=body.min_margin,
        include_low_confidence=body.include_low_confidence, rrf_k=body.rrf_k, collapse=body.collapse,
    )


def _response(query: str, hits: list[Hit]) -> SearchResponse:
    return SearchResponse(hits=hits, no_confident_match=not hits or all(h.low_confidence for h in hits),
                          terms=segment(query).split())


class Indexes:
    """The open indexes of a folder, each opened once (on first use) and shared; with a batch
    window, each with its ``Batcher``."""

    def __init__(self, root: Path, encoder: Encoder | None = None, batch_window: float = 0.0) -> None:
        self.root, self.encoder, self.batch_window = root, encoder, batch_window
        self._open: dict[str, Index] = {}
        self._batchers: dict[str, Batcher] = {}
        self._lock = threading.Lock()

    def batcher(self, name: str) -> Batcher | None:
        if self.batch_window <= 0:
            return None
        index = self.get(name)
        with self._lock:
            if name not in self._batchers:
                self._batchers[name] = Batcher(index, self.batch_window)
            return self._batchers[name]

    def get(self, name: str) -> Index:
        path = index_path(name, self.root)
        if "/" in name or name.startswith(".") or path.parent != self.root or not is_index_dir(path):
            raise IndexNotFoundError(f"no index '{name}' under {self.root}/ — GET /indexes lists them")
        with self._lock:
            if name not in self._open:
                self._open[name] = Index.open(path, encoder=self.encoder)
            return self._open[name]

    def close(self) -> None:
        with self._lock:
            for index in self._open.values():
                index.close()
            self._open.clear()


class Batcher:
    """Concurrent searches of one index answered together: a worker thread takes the first
    waiting request, gathers whatever else arrives within ``window`` seconds (at most ``limit``),
    and runs each group of requests with equal options as one ``search_many`` — one encoder call
    for all their queries instead of one each (measured in docs/serving.md)."""

    def __init__(self, index: Index, window: float, limit: int = 32) -> None:
        import queue

        self.index, self.window, self.limit = index, window, limit
        self.waiting: queue.Queue[tuple[str, SearchOptions, Future[list[Hit]]]] = queue.Queue()
        threading.Thread(target=self._run, name="textsearch-batcher", daemon=True).start()

    def submit(self, query: str, options: SearchOptions) -> Future[list[Hit]]:
        check_query(query)  # here, not in the batch: one empty query must not fail its neighbours
        done: Future[list[Hit]] = Future()
        self.waiting.put((query, options, done))
        return done

    def _run(self) -> None:
        import queue

        while True:
            batch = [self.waiting.get()]
            deadline = time.perf_counter() + self.window
            while len(batch) < self.limit:
                left = deadline - time.perf_counter()
                try:
                    batch.append(self.waiting.get(timeout=left) if left > 0 else self.waiting.get_nowait())
                except queue.Empty:
                    break
            groups: list[tuple[SearchOptions, list[tuple[str, Future[list[Hit]]]]]] = []
            for query, options, done in batch:
                for same, members in groups:
                    if same == options:
                        members.append((query, done))
                        break
                else:
                    groups.append((options, [(query, done)]))
            for options, members in groups:
                try:
                    found = self.index.search_many([q for q, _ in members], options=options)
                except BaseException as exc:  # noqa: BLE001 - each request gets the error
                    for _, done in members:
                        done.set_exception(exc)
                    continue
                for (_, done), hits in zip(members, found, strict=True):
                    done.set_result(hits)


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(DISTRIBUTION)
    except PackageNotFoundError:
        return "unknown"


def _status(exc: TextsearchError) -> int:
    if isinstance(exc, IndexNotFoundError):
        return 404
    if isinstance(exc, IndexLockedError):
        return 409
    if isinstance(exc, (InvalidArgumentError, ModelError)):
        return 400
    return 500


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def create_app(indexes: str | Path = "indexes", *, api_key: str | None = None, encoder: Encoder | None = None,
               max_body: int = MAX_BODY, batch_window_ms: float = BATCH_WINDOW_MS,
               watch: Mapping[str, str | Path] | None = None) -> FastAPI:
    """The server's app over the indexes under ``indexes``. ``encoder`` replaces every index's
    model (tests use a fake one); ``batch_window_ms`` > 0 answers concurrent searches together;
    ``watch`` (index name → folder) keeps those indexes in line with their folders while the app
    runs (``textsearch.watch.follow``, a thread each, stopped on shutdown)."""
    root = Path(indexes)
    opened = Indexes(root, encoder, batch_window_ms / 1000)
    watched = _watched(opened, watch or {})

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        from .watch import background

        stop = threading.Event()
        threads = [background(index, folder, stop) for index, folder in watched]
        yield
        stop.set()  # each watcher finishes its update in flight before the indexes close
        for thread in threads:
            await asyncio.to_thread(thread.join, 120)
        opened.close()

    app = FastAPI(title="textsearch", summary="Semantic search for Chinese and English text",
                  version=_version(), lifespan=lifespan, responses=_errors(401) if api_key else None)
    app.state.indexes = opened
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        return app.openapi_schema or _contract(generate(), bool(api_key))

    app.openapi = openapi  # type: ignore[method-assign]

    @app.middleware("http")
    async def guard(request: Request, call_next: Any) -> Any:
        if api_key and not (request.method == "GET" and request.url.path == "/"):
            given = request.headers.get("x-api-key") or request.headers.get("authorization", "").removeprefix("Bearer ")
            if not hmac.compare_digest(given.encode(), api_key.encode()):
                return JSONResponse({"error": "missing or wrong API key — send it as the X-API-Key header"}, 401)
        size = request.headers.get("content-length")
        if size is not None and (not size.isdigit() or int(size) > max_body):
            return JSONResponse({"error": f"request body over {max_body} bytes — send fewer documents at a time"}, 413)
        if size is None and request.method in ("POST", "PUT"):
            return JSONResponse({"error": "send the body with a Content-Length"}, 411)
        return await call_next(request)

    @app.exception_handler(TextsearchError)
    async def library_error(request: Request, exc: TextsearchError) -> JSONResponse:
        return JSONResponse({"error": str(exc)}, _status(exc))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        message = "no such endpoint — see /docs" if exc.status_code == 404 else str(exc.detail)
        return JSONResponse({"error": message}, exc.status_code, headers=exc.headers)  # a 405's Allow

    @app.exception_handler(RequestValidationError)
    async def bad_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
        return JSONResponse({"error": f"{where or 'request'}: {first.get('msg', 'invalid')}"}, 400)

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def page() -> str:
        return PAGE.read_text(encoding="utf-8")

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/indexes")
    def indexes_list() -> dict[str, list[str]]:
        return {"indexes": list_indexes(root)}

    @app.get("/indexes/{name}", responses=_errors(404, 409))
    async def info(name: str) -> dict[str, Any]:
        return await asyncio.to_thread(lambda: opened.get(name).info())

    @app.post("/indexes/{name}/search", response_model=SearchResponse, responses=_errors(400, 404, 409, 411, 413))
    async def search(name: str, body: SearchRequest) -> SearchResponse:
        index = await asyncio.to_thread(opened.get, name)  # an unknown index is a 404 whatever the options
        options = _options(body)
        batcher = await asyncio.to_thread(opened.batcher, name)
        if batcher is not None and not options.reranks:
            return _response(body.query, await asyncio.wrap_future(batcher.submit(body.query, options)))
        return _response(body.query, await index.asearch(body.query, options=options))

    @app.post("/indexes/{name}/search/batch", response_model=BatchResponse, responses=_errors(400, 404, 409, 411, 413))
    async def search_batch(name: str, body: BatchRequest) -> BatchResponse:
        index = await asyncio.to_thread(opened.get, name)
        if not body.queries or len(body.queries) > MAX_BATCH:
            raise InvalidArgumentError(f"queries: give 1 to {MAX_BATCH} queries")
        options = _options(body)
        found = await asyncio.to_thread(index.search_many, body.queries, options=options)
        return BatchResponse(results=[_response(q, hits) for q, hits in zip(body.queries, found, strict=True)])

    @app.put("/indexes/{name}/documents", responses=_errors(400, 404, 409, 411, 413))
    async def upsert(name: str, documents: list[Document]) -> dict[str, Any]:
        index = await asyncio.to_thread(opened.get, name)
        summary: Summary = await asyncio.to_thread(index.add, [d.model_dump() for d in documents])
        return {**asdict(summary), "documents": index.count()}

    @app.delete("/indexes/{name}/documents/{doc_id:path}", responses=_errors(404, 409))
    async def delete(name: str, doc_id: str) -> dict[str, Any]:
        index = await asyncio.to_thread(opened.get, name)
        if not await asyncio.to_thread(index.delete, [doc_id]):
            raise IndexNotFoundError(f"no document '{doc_id}' in index '{name}'")
        return {"deleted": doc_id, "documents": index.count()}

    return app


def _watched(opened: Indexes, watch: Mapping[str, str | Path]) -> list[tuple[Index, Path]]:
    """The open index and the folder of each index to watch, checked before the server starts."""
    found = []
    for name, folder in watch.items():
        if not is_index_dir(opened.root / name):
            raise IndexNotFoundError(f"no index '{name}' under {opened.root}/ to keep in line with {folder} — "
                                     f"build it first: `textsearch index {folder} --name {name}`")
        if not Path(folder).is_dir():
            raise InvalidArgumentError(f"cannot watch {folder}: it is not a folder — give the folder index '{name}' "
                                       "was built from")
        found.append((opened.get(name), Path(folder)))
    return found


def serve(indexes: str | Path = "indexes", host: str = "127.0.0.1", port: int = 8000, *,
          api_key: str | None = None, batch_window_ms: float = BATCH_WINDOW_MS,
          watch: Mapping[str, str | Path] | None = None) -> None:
    """Run the server until interrupted (uvicorn, one process; requests in its thread pool);
    ``watch``: index name → the folder to keep it in line with."""
    import uvicorn

    if not api_key and not is_loopback(host):
        raise InvalidArgumentError(f"refusing to listen on {host} without an API key — give --api-key "
                                   "(or TEXTSEARCH_API_KEY), or listen on 127.0.0.1")
    if not Path(indexes).is_dir():
        raise IndexNotFoundError(f"no folder {indexes}/ — build an index first: `textsearch index corpora/demo`")
    uvicorn.run(create_app(indexes, api_key=api_key, batch_window_ms=batch_window_ms, watch=watch), host=host,
                port=port, log_level="warning")


@contextmanager
def running(app: FastAPI, host: str = "127.0.0.1", port: int = 0) -> Iterator[str]:
    """Serve ``app`` from a thread of this process for the block; yields its base URL (``port`` 0:
    a free one). For tests, benchmarks and apps that embed the server."""
    import socket

    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        while not server.started:
            if not thread.is_alive():
                raise RuntimeError("the server stopped while starting")
            time.sleep(0.01)
        yield f"http://{host}:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()
