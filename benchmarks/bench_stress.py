"""One writer and several readers on one index for a bounded time: errors, consistency, latency.

The writer process adds generation g (``--docs-per-batch`` documents ``g-0``, ``g-1``, ..., one
transaction) and then deletes generation g-2, until ``--seconds`` have passed. Every committed
state is therefore two or three whole, consecutive generations. Reader processes open the index
once and query it in a loop (dense, keyword, hybrid and a filtered search, with k above the number
of live documents, so that an answer lists the whole state it saw); one more reader opens the
index afresh for every query, as the CLI does. Each answer must be one committed state: no partial
generation, no mix of two commits, never older than an answer the reader already had; and each
``info()`` after it must count whole generations. Exceptions are recorded and the reader goes on.
At the end, every reader's last answer and a fresh ``Index.open`` must hold exactly the writer's
final state, and `textsearch.check.check` must pass.

Prints the figures and writes JSON (benchmarks/results/stress.json by default):

    nice -n 10 python benchmarks/bench_stress.py --seconds 60 --readers 4
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import queue
import statistics
import sys
import tempfile
import threading
import time
import traceback
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent

from textsearch import Index
from textsearch.check import check
from textsearch.testing import HashEncoder

QUERY = "marker"  # in every document: keyword search finds them all
SEARCHES: list[tuple[str, dict[str, Any] | None]] = [
    ("dense", None),
    ("keyword", None),
    ("hybrid", None),
    ("dense", {"gen": {"$gte": 0}}),
]
MAX_REPORTED = 10  # violations and errors kept per process


def generation(g: int, size: int) -> list[dict[str, Any]]:
    return [
        {"id": f"{g}-{i}", "text": f"{QUERY} generation {g} document {i}", "gen": g}
        for i in range(size)
    ]


def state_of(ids: list[str], size: int) -> tuple[tuple[int, int] | None, str | None]:
    """((first, last) generation, None) when ``ids`` are one committed state, else (None, why)."""
    gens = Counter(int(i.split("-")[0]) for i in ids)
    if not gens:
        return None, "no documents"
    if len(set(ids)) != len(ids):
        return None, f"a document twice: {sorted(ids)}"
    partial = {g: n for g, n in gens.items() if n != size}
    if partial:
        return None, f"partial generations (generation: documents seen) {partial}"
    lo, hi = min(gens), max(gens)
    if sorted(gens) != list(range(lo, hi + 1)) or hi - lo not in (1, 2):
        return None, f"generations {sorted(gens)} were never live together"
    return (lo, hi), None


def _ask(index: Index, n: int, size: int) -> tuple[list[str], dict[str, Any]]:
    """The n-th query of a reader (the search modes in turn) and the index's info()."""
    mode, flt = SEARCHES[n % len(SEARCHES)]
    hits = index.search(QUERY, k=4 * size, mode=mode, filter=flt, min_score=-1.0)
    return [h.doc_id for h in hits], index.info()


def _reader(
    name: str, path: str, size: int, reopen: bool, barrier: Any, stop: Any, results: Any
) -> None:
    """Query until the writer stops, then once more. Report every exception, and every answer
    that was not one committed state or was older than one seen before; keep going after both."""
    report: dict[str, Any] = {
        "name": name,
        "reopen": reopen,
        "queries": 0,
        "latencies_ms": [],
        "errors": [],
        "n_errors": 0,
        "violations": [],
        "n_violations": 0,
        "states_seen": 0,
        "last": None,
    }

    def record(kind: str, text: str) -> None:
        report[f"n_{kind}"] += 1
        if len(report[kind]) < MAX_REPORTED:
            report[kind].append(text)

    index = None
    try:
        encoder = HashEncoder()
        index = None if reopen else Index.open(path, encoder=encoder)
        barrier.wait(timeout=120)
        seen: set[tuple[int, int]] = set()
        newest = (-1, -1)
        while True:
            last, n = stop.is_set(), report["queries"]
            report["queries"] += 1
            started = time.perf_counter()
            try:
                if reopen:
                    with Index.open(path, encoder=encoder) as fresh:
                        ids, info = _ask(fresh, n, size)
                else:
                    ids, info = _ask(index, n, size)
            except Exception:  # noqa: BLE001 - a reader records every exception and goes on
                record("errors", f"query {n}: {traceback.format_exc()}")
                if last:
                    break
                continue
            if not last:
                report["latencies_ms"].append((time.perf_counter() - started) * 1000)
            state, why = state_of(ids, size)
            if why:
                record("violations", f"query {n} {SEARCHES[n % len(SEARCHES)]}: {why}")
            elif state < newest:
                record("violations", f"query {n}: generations {state} after {newest} (went back)")
            else:
                seen.add(state)
                newest = state
            documents, passages = info["documents"], info["passages"]
            if documents != passages or documents % size or documents // size not in (2, 3):
                record(
                    "violations",
                    f"query {n}: info() says {documents} documents, {passages} "
                    "passages: not 2 or 3 whole generations of one passage each",
                )
            if last:
                report["last"] = sorted(ids)
                break
        report["states_seen"] = len(seen)
    except Exception:  # noqa: BLE001 - reported to the parent, which fails the run
        barrier.abort()
        record("errors", traceback.format_exc())
    finally:
        if index is not None:
            index.close()
        results.put(report)


def writer(
    path: str, seconds: float, size: int, first: int, barrier: Any, stop: Any, results: Any
) -> None:
    """Add generation g, delete generation g-2, until ``seconds`` have passed; then stop the readers."""
    report: dict[str, Any] = {
        "name": "writer",
        "batches": 0,
        "batch_ms": [],
        "errors": [],
        "n_errors": 0,
        "last_generation": first,
    }
    try:
        with Index.open(path, encoder=HashEncoder()) as index:
            barrier.wait(timeout=120)
            deadline = time.monotonic() + seconds
            g = first
            while time.monotonic() < deadline:
                started = time.perf_counter()
                g += 1
                index.add(generation(g, size))
                index.delete([f"{g - 2}-{i}" for i in range(size)])
                report["batch_ms"].append((time.perf_counter() - started) * 1000)
                report["batches"] += 1
                report["last_generation"] = g
    except Exception:  # noqa: BLE001 - reported to the parent, which fails the run
        barrier.abort()
        report["errors"].append(traceback.format_exc())
        report["n_errors"] += 1
    finally:
        stop.set()
        results.put(report)


def final_state(path: Path, size: int, last: int) -> dict[str, Any]:
    """What a fresh open finds, next to the writer's last state (generations last-1 and last)."""
    expected = sorted(f"{g}-{i}" for g in (last - 1, last) for i in range(size))
    with Index.open(path, encoder=HashEncoder()) as index:
        found = {
            mode: sorted(
                h.doc_id for h in index.search(QUERY, k=4 * size, mode=mode, min_score=-1.0)
            )
            for mode in ("dense", "keyword")
        }
        count = index.count()
    report = check(path)
    ok = count == len(expected) and all(ids == expected for ids in found.values())
    return {
        "ok": ok and report.ok,
        "expected": expected,
        "found": found,
        "count": count,
        "check": report.to_dict(),
    }


def run(
    path: Path, *, seconds: float, readers: int, size: int, reopening: int = 1
) -> dict[str, Any]:
    """The whole scenario on a new index at ``path``; returns every process's report and the
    final state. Bounded: a process still running ``seconds`` + 120 s after the start is killed
    and reported as an error."""
    with Index.create(path, encoder=HashEncoder()) as index:
        for g in (0, 1):
            index.add(generation(g, size))
    ctx = mp.get_context("spawn")
    barrier, stop, results = ctx.Barrier(readers + reopening + 2), ctx.Event(), ctx.Queue()
    procs = [
        ctx.Process(target=writer, args=(str(path), seconds, size, 1, barrier, stop, results))
    ]
    procs += [
        ctx.Process(
            target=_reader,
            args=(f"reader-{i}", str(path), size, i >= readers, barrier, stop, results),
        )
        for i in range(readers + reopening)
    ]  # the last ``reopening`` open the index per query
    for p in procs:
        p.start()
    deadline = time.monotonic() + seconds + 120
    reports: list[dict[str, Any]] = []
    try:
        barrier.wait(timeout=120)
    except threading.BrokenBarrierError:
        pass  # a process failed to start: its report says why
    while len(reports) < len(procs) and time.monotonic() < deadline:
        try:
            reports.append(results.get(timeout=1))
        except queue.Empty:
            if not any(p.is_alive() for p in procs):
                break
    for p in procs:
        p.join(timeout=max(1.0, deadline - time.monotonic()))
        if p.is_alive():
            p.kill()
            reports.append(
                {
                    "name": p.name,
                    "errors": [f"{p.name} did not finish in time (killed)"],
                    "n_errors": 1,
                }
            )
        elif p.exitcode:
            reports.append(
                {
                    "name": p.name,
                    "errors": [f"{p.name} exited with code {p.exitcode}"],
                    "n_errors": 1,
                }
            )
    last = next(
        (r for r in reports if r["name"] == "writer"), {"last_generation": 1, "batches": 0}
    )
    return {
        "writer": last,
        "readers": [r for r in reports if r["name"].startswith("reader-")],
        "errors": [e for r in reports for e in r["errors"]],
        "n_errors": sum(r["n_errors"] for r in reports),
        "final": final_state(path, size, last["last_generation"]),
    }


def _pct(values: list[float], q: int) -> float:
    return round(statistics.quantiles(values, n=100)[q - 1], 2) if len(values) > 1 else float("nan")


def summary(result: dict[str, Any]) -> dict[str, Any]:
    """The figures of a run: queries, errors, violations, latency during writes, batches, final check."""
    final = result["final"]["expected"]
    latencies = [t for r in result["readers"] if not r["reopen"] for t in r["latencies_ms"]]
    reopening = [t for r in result["readers"] if r["reopen"] for t in r["latencies_ms"]]
    return {
        "queries": sum(r["queries"] for r in result["readers"]),
        "errors": result["n_errors"],
        "violations": sum(r["n_violations"] for r in result["readers"]),
        "reader_p50_ms": _pct(latencies, 50),
        "reader_p95_ms": _pct(latencies, 95),
        "reopening_reader_p50_ms": _pct(reopening, 50),
        "reopening_reader_p95_ms": _pct(reopening, 95),
        "writer_batches": result["writer"]["batches"],
        "writer_batch_p50_ms": _pct(result["writer"].get("batch_ms", []), 50),
        "states_seen_per_reader": [r["states_seen"] for r in result["readers"]],
        "readers_last_answer_final": all(r["last"] == final for r in result["readers"]),
        "final_ok": result["final"]["ok"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--readers", type=int, default=4, help="readers that open the index once")
    parser.add_argument("--docs-per-batch", type=int, default=20)
    parser.add_argument("--out", default=str(ROOT / "benchmarks/results/stress.json"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        result = run(
            Path(tmp) / "stress",
            seconds=args.seconds,
            readers=args.readers,
            size=args.docs_per_batch,
        )
    figures = summary(result)
    for key, value in figures.items():
        print(f"{key:<26} {value}")
    for report in result["readers"]:
        for text in report["violations"]:
            print(f"{report['name']}: {text}")
    for text in result["errors"]:
        print(text)
    if not result["final"]["ok"]:
        print("final state:", json.dumps(result["final"], indent=2))
    out = {
        "config": {
            "seconds": args.seconds,
            "readers": args.readers,
            "reopening_readers": 1,
            "docs_per_batch": args.docs_per_batch,
        },
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        **figures,
        "error_texts": result["errors"],
        "violation_texts": [t for r in result["readers"] for t in r["violations"]],
    }
    Path(args.out).write_text(
        json.dumps(out, ensure_ascii=False, indent=2) + "\n", encoding="utf-8"
    )
    print(f"wrote {args.out}")
    passed = figures["readers_last_answer_final"] and figures["final_ok"]
    sys.exit(0 if passed and not figures["errors"] and not figures["violations"] else 1)


if __name__ == "__main__":
    main()
