"""Churn benchmark: does an index stay bounded when the same documents are deleted and re-added?

Two patterns, each over ``--rounds`` rounds after an initial build of ``--docs`` documents:
- ``api``: ``Index.delete`` every document, then ``Index.add`` them back under the same ids with
  a round-dependent text (so they are re-embedded, not skipped as unchanged);
- ``folder``: ``index_folder`` on a folder of .txt files where one half of the files (alternating
  halves) is removed, synced, written back with new text and synced again.

After each round it records the index directory's bytes (total and per file), the HNSW
capacity/slots, store.db's free pages and the process RSS; every ``--recall-every`` rounds the
HNSW recall@10 against exact search over the live stored vectors. At the end the index is
reopened from disk and recall measured there too, and once more on a graph built afresh from
the same vectors (the control: what recall the data allows without churn). Prints a summary, writes JSON
(benchmarks/results/churn.json by default).

The encoder is a deterministic hash-seeded stand-in (384 dimensions like the real model,
vectors clustered around 50 centres): churn is about storage, not meaning, and 100 rounds must
run in minutes without the model.

    python benchmarks/bench_churn.py                       # 100 rounds x 1,000 documents
    python benchmarks/bench_churn.py --rounds 20 --docs 200
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import psutil

from textsearch import Index
from textsearch.storage.ann import AnnIndex
from textsearch.models.encoder import Encoder
from textsearch.testing import HashEncoder  # the test suite's fake encoder, here clustered

FILES = ("hnsw.bin", "store.db", "store.db-wal")


def doc_text(i: int, round_: int) -> str:
    """Short enough to be one passage; different every round so it is re-embedded."""
    return f"document {i} as written in round {round_}"


def recalls(idx: Index, queries: np.ndarray, ann: AnnIndex | None = None) -> dict[str, float]:
    """Recall@10 of ``ann`` (default: the index's graph) against brute force over the live vectors
    in SQLite, at the index's ef and at ef=10: the smallest beam shows a decaying graph first."""
    ann = ann if ann is not None else idx.ann
    labels = idx.store.labels()
    vectors = idx.store.vectors(labels, idx.config.dimension)
    exact = labels[np.argsort(-(queries @ vectors.T), axis=1)[:, :10]]
    out = {}
    for key, ef in (("recall_at_10", None), ("recall_at_10_ef10", 10)):
        found, _ = ann.search(queries, 10, ef=ef)
        out[key] = float(np.mean([len(set(f) & set(e)) / 10 for f, e in zip(found, exact)]))
    return out


def fresh_graph(idx: Index) -> AnnIndex:
    """A graph built in one go from the live vectors: the control that churned recall is judged by."""
    c = idx.config
    labels = idx.store.labels()
    ann = AnnIndex(
        c.dimension, M=c.M, ef_construction=c.ef_construction, ef=c.ef, capacity=len(labels)
    )
    ann.add(labels, idx.store.vectors(labels, c.dimension))
    return ann


def measure(idx: Index, round_: int, seconds: float) -> dict[str, Any]:
    files = {
        name: (idx.path / name).stat().st_size if (idx.path / name).exists() else 0
        for name in FILES
    }
    db = idx.store.db
    return {
        "round": round_,
        "seconds": seconds,
        "bytes": sum(p.stat().st_size for p in idx.path.iterdir() if p.is_file()),
        "files": files,
        "free_pages": db.execute("PRAGMA freelist_count").fetchone()[0],
        "page_count": db.execute("PRAGMA page_count").fetchone()[0],
        **idx.ann.settings,
        "documents": idx.count(),
        "passages": idx.store.passage_count(),
        "rss": psutil.Process().memory_info().rss,
    }


def churn(
    name: str, idx: Index, rounds: int, step: Callable[[int], None], queries: np.ndarray, every: int
) -> dict[str, Any]:
    """Run ``step(round)`` for rounds 1..rounds after the build (round 0), measuring as it goes."""
    rows = [measure(idx, 0, 0.0)]
    rows[0].update(recalls(idx, queries))
    for round_ in range(1, rounds + 1):
        t0 = time.perf_counter()
        step(round_)
        row = measure(idx, round_, time.perf_counter() - t0)
        if round_ % every == 0 or round_ == rounds:
            row.update(recalls(idx, queries))
        rows.append(row)
        print(
            f"{name:6} round {round_:3}  {row['bytes'] / 1e6:7.2f} MB  slots {row['slots_used']}/"
            f"{row['capacity']}  rss {row['rss'] / 1e6:6.1f} MB  {row['seconds']:.2f} s"
            + (
                f"  recall@10 {row['recall_at_10']:.3f} (ef=10: {row['recall_at_10_ef10']:.3f})"
                if "recall_at_10" in row
                else ""
            ),
            flush=True,
        )
    control = {
        f"fresh_{key}": value for key, value in recalls(idx, queries, fresh_graph(idx)).items()
    }
    path = idx.path
    idx.close()  # checkpoints and removes the WAL
    at_rest = {p.name: p.stat().st_size for p in path.iterdir() if p.is_file()}
    with Index.open(path, encoder=idx.encoder) as again:
        after = {f"reopened_{key}": value for key, value in recalls(again, queries).items()}
        after["reopened_documents"] = again.count()
    return {"rounds": rows, "files_at_rest": at_rest, **after, **control}


def api_pattern(
    workdir: Path, encoder: Encoder, docs: int, rounds: int, queries: np.ndarray, every: int
) -> dict:
    idx = Index.create(workdir / "api", encoder=encoder)
    ids = [f"d{i}" for i in range(docs)]
    idx.add({"id": d, "text": doc_text(i, 0)} for i, d in enumerate(ids))

    def step(round_: int) -> None:
        assert idx.delete(ids) == docs
        summary = idx.add({"id": d, "text": doc_text(i, round_)} for i, d in enumerate(ids))
        assert summary.added == docs and summary.passages == docs, summary

    return churn("api", idx, rounds, step, queries, every)


def folder_pattern(
    workdir: Path, encoder: Encoder, docs: int, rounds: int, queries: np.ndarray, every: int
) -> dict:
    folder = workdir / "corpus"
    folder.mkdir()
    files = [folder / f"f{i:05}.txt" for i in range(docs)]
    for i, f in enumerate(files):
        f.write_text(doc_text(i, 0))
    idx = Index.create(workdir / "folder", encoder=encoder)
    idx.index_folder(folder)
    half = docs // 2

    def step(round_: int) -> None:
        chosen = range(half) if round_ % 2 else range(half, docs)
        for i in chosen:
            files[i].unlink()
        assert idx.index_folder(folder).deleted == len(chosen)
        for i in chosen:
            files[i].write_text(doc_text(i, round_))
        assert idx.index_folder(folder).added == len(chosen)

    return churn("folder", idx, rounds, step, queries, every)


def summarize(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Round 1 against the last round (round 1 is the first churn round: the build is round 0)."""
    first, last = rows[1], rows[-1]
    measured = [r for r in rows if "recall_at_10" in r]
    return {
        "bytes_round_1": first["bytes"],
        "bytes_last": last["bytes"],
        "bytes_max": max(r["bytes"] for r in rows),
        "bytes_growth_pct": 100 * (last["bytes"] / first["bytes"] - 1),
        "files_round_1": first["files"],
        "files_last": last["files"],
        "capacity_round_1": first["capacity"],
        "capacity_last": last["capacity"],
        "slots_used_last": last["slots_used"],
        "rss_round_1": first["rss"],
        "rss_last": last["rss"],
        "rss_growth_pct": 100 * (last["rss"] / first["rss"] - 1),
        **{
            f"{key}_{which}": value
            for key in ("recall_at_10", "recall_at_10_ef10")
            for which, value in (
                ("first", measured[0][key]),
                ("last", measured[-1][key]),
                ("min", min(r[key] for r in measured)),
            )
        },
        "seconds_per_round": float(np.mean([r["seconds"] for r in rows[1:]])),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=100)
    parser.add_argument("--docs", type=int, default=1000)
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument("--recall-every", type=int, default=10)
    parser.add_argument("--patterns", default="api,folder", help="comma-separated: api, folder")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()

    encoder = HashEncoder("clustered-hash", dimension=384, centres=50, noise=0.08)
    queries = encoder.encode_queries([f"query {j}" for j in range(args.queries)])
    patterns = {"api": api_pattern, "folder": folder_pattern}
    result: dict[str, Any] = {
        "docs": args.docs,
        "rounds": args.rounds,
        "encoder": f"{encoder.name}, dimension {encoder.dimension}",
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
    }
    workdir = Path(tempfile.mkdtemp(prefix="ts-churn-"))
    try:
        for name in args.patterns.split(","):
            run = patterns[name](
                workdir, encoder, args.docs, args.rounds, queries, args.recall_every
            )
            run["summary"] = summarize(run["rounds"])
            result[name] = run
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    out = args.out or Path(__file__).parent / "results" / "churn.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    for name in args.patterns.split(","):
        s = result[name]["summary"]
        print(f"\n{name}: {args.rounds} rounds x {args.docs} documents")
        print(
            f"  index bytes      round 1 {s['bytes_round_1']:,}  last {s['bytes_last']:,}"
            f"  max {s['bytes_max']:,}  growth {s['bytes_growth_pct']:+.1f}%"
        )
        for file in FILES:
            print(
                f"  {file:16} round 1 {s['files_round_1'][file]:,}  last {s['files_last'][file]:,}"
            )
        print(
            f"  hnsw capacity    round 1 {s['capacity_round_1']}  last {s['capacity_last']}"
            f"  slots used {s['slots_used_last']}"
        )
        print(
            f"  rss              round 1 {s['rss_round_1'] / 1e6:.1f} MB  last {s['rss_last'] / 1e6:.1f} MB"
            f"  growth {s['rss_growth_pct']:+.1f}%"
        )
        for key, label in (("recall_at_10", "recall@10"), ("recall_at_10_ef10", "recall@10 ef=10")):
            print(
                f"  {label:16} first {s[key + '_first']:.3f}  last {s[key + '_last']:.3f}"
                f"  min {s[key + '_min']:.3f}  reopened {result[name]['reopened_' + key]:.3f}"
                f"  fresh graph {result[name]['fresh_' + key]:.3f}"
            )
        at_rest = result[name]["files_at_rest"]
        print(f"  closed, at rest  {sum(at_rest.values()):,} bytes ({', '.join(sorted(at_rest))})")
        print(f"  seconds/round    {s['seconds_per_round']:.2f}")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
