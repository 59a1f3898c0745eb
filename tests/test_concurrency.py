"""Concurrency: readers keep answering from one committed state while a writer writes, a second
writer waits for the lock or fails clearly, and the index is whole afterwards.

Every process uses the HashEncoder (a random unit vector per text), so nothing loads a model. The
scenario of the stress test lives in benchmarks/bench_stress.py, which runs it longer.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import sqlite3
import subprocess
import sys
import time
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from textsearch.storage.ann import ANN_FILE, AnnIndex
from textsearch.check import check
from textsearch.errors import IndexLockedError
from textsearch.index import Index
from textsearch.storage.store import DB_FILE
from textsearch.testing import HashEncoder

TESTS = Path(__file__).resolve().parent
sys.path.insert(0, str(TESTS.parent / "benchmarks"))
import bench_stress

SPAWN = mp.get_context("spawn")  # children start clean: no inherited SQLite connection or lock
SIZE = 10  # documents per generation in bench_stress's scenario


def _whole(path: Path) -> dict[str, Any]:
    """What a fresh open finds: documents by search (through the graph and through FTS), the
    count, the HNSW file on disk as loaded alone, and textsearch.check.check."""
    with Index.open(path, encoder=HashEncoder()) as index:
        dense = sorted(
            h.doc_id for h in index.search("marker", k=1000, mode="dense", min_score=-1.0, collapse=False)
        )
        keyword = sorted(
            h.doc_id for h in index.search("marker", k=1000, mode="keyword", min_score=-1.0, collapse=False)
        )
        report = check(path)
        count, passages = index.count(), index.info()["passages"]
    on_disk = AnnIndex.load(path / ANN_FILE, HashEncoder().dimension, ef=200).count()
    return {
        "dense": dense,
        "keyword": keyword,
        "count": count,
        "passages": passages,
        "file_passages": on_disk,
        "check_ok": report.ok,
    }


# --- one writer, several readers -----------------------------------------------------------------


@pytest.mark.slow
def test_readers_see_only_whole_committed_states_while_a_writer_writes(tmp_path: Path) -> None:
    """3 long-lived readers and 1 reopening reader query through 4 s of adds and deletes with zero
    errors, every answer one committed state, and all end on the writer's final state."""
    result = bench_stress.run(tmp_path / "idx", seconds=4, readers=3, size=SIZE)
    figures = bench_stress.summary(result)
    assert not result["errors"], "\n".join(result["errors"])
    violations = [f"{r['name']}: {v}" for r in result["readers"] for v in r["violations"]]
    assert not violations, "\n".join(violations)
    assert len(result["readers"]) == 4 and figures["writer_batches"] >= 5  # it did write, often
    # every reader followed the writer (saw several states) and ended on its final state
    assert all(r["queries"] > 0 and r["states_seen"] >= 2 for r in result["readers"]), figures
    assert figures["readers_last_answer_final"]
    assert result["final"]["ok"], result["final"]
    last = result["writer"]["last_generation"]
    state = _whole(tmp_path / "idx")
    expected = sorted(f"{g}-{i}" for g in (last - 1, last) for i in range(SIZE))
    assert state == {
        "dense": expected,
        "keyword": expected,
        "count": 2 * SIZE,
        "passages": 2 * SIZE,
        "file_passages": 2 * SIZE,
        "check_ok": True,
    }


# --- a second writer ---------------------------------------------------------------------------------


def _hold_lock(path: str, seconds: float, held: Any, mark: str) -> None:
    """Hold the index's write lock for ``seconds``, as a writer in the middle of a long add does;
    write ``mark`` just before letting go (what happened before it, happened under the hold)."""
    with Index.open(path, encoder=HashEncoder()) as index, index._writing():
        held.set()
        time.sleep(seconds)
        Path(mark).write_text("released", encoding="utf-8")


@pytest.mark.slow
def test_a_second_writer_fails_clearly_after_the_timeout_or_waits(
    tmp_path: Path, monkeypatch
) -> None:
    """While another process holds the lock, add fails after TEXTSEARCH_LOCK_TIMEOUT=1 s with a
    one-line IndexLockedError and changes nothing; with a longer timeout it waits, then succeeds."""
    path = tmp_path / "idx"
    with Index.create(path, encoder=HashEncoder()) as index:
        index.add(bench_stress.generation(0, SIZE))
    held, mark = SPAWN.Event(), tmp_path / "released"
    holder = SPAWN.Process(target=_hold_lock, args=(str(path), 4.0, held, str(mark)))
    holder.start()
    try:
        assert held.wait(timeout=60)
        with Index.open(path, encoder=HashEncoder()) as index:
            monkeypatch.setenv("TEXTSEARCH_LOCK_TIMEOUT", "1")
            with pytest.raises(IndexLockedError) as failed:
                index.add(bench_stress.generation(1, SIZE))
            assert not mark.exists()  # it gave up after its timeout, while the holder still held on
            message = str(failed.value)
            assert "\n" not in message and "another process" in message and "retry" in message
            assert index.count() == SIZE  # the failed add left nothing behind

            monkeypatch.setenv("TEXTSEARCH_LOCK_TIMEOUT", "60")
            summary = index.add(bench_stress.generation(1, SIZE))
            assert summary.added == SIZE
            assert mark.exists()  # it waited for the holder to let go
    finally:
        holder.join(timeout=10)
    assert holder.exitcode == 0
    expected = sorted(f"{g}-{i}" for g in (0, 1) for i in range(SIZE))
    assert _whole(path) == {
        "dense": expected,
        "keyword": expected,
        "count": 2 * SIZE,
        "passages": 2 * SIZE,
        "file_passages": 2 * SIZE,
        "check_ok": True,
    }


def _churn(path: str, prefix: str, rounds: int, start: Any) -> None:
    """Add generation r of this writer's documents, delete generation r-2, ``rounds`` times."""
    with Index.open(path, encoder=HashEncoder()) as index:
        start.wait(timeout=60)  # both opened the empty index: each must catch up on the other
        for r in range(rounds):
            index.add({**d, "id": prefix + d["id"]} for d in bench_stress.generation(r, SIZE))
            if r >= 2:
                index.delete(f"{prefix}{r - 2}-{i}" for i in range(SIZE))


@pytest.mark.slow
def test_two_writers_in_turn_lose_nothing(tmp_path: Path) -> None:
    """Two processes adding and deleting at once take turns on the lock: neither fails, and the
    store, the keyword index and the HNSW file on disk all hold exactly both writers' last state."""
    path = tmp_path / "idx"
    Index.create(path, encoder=HashEncoder()).close()
    start, rounds = SPAWN.Barrier(2), 15
    writers = [SPAWN.Process(target=_churn, args=(str(path), p, rounds, start)) for p in ("a", "b")]
    for w in writers:
        w.start()
    for w in writers:
        w.join(timeout=60)
    assert [w.exitcode for w in writers] == [0, 0]  # a traceback, if any, is in the captured stderr
    expected = sorted(
        f"{p}{g}-{i}" for p in ("a", "b") for g in (rounds - 2, rounds - 1) for i in range(SIZE)
    )
    assert _whole(path) == {
        "dense": expected,
        "keyword": expected,
        "count": 4 * SIZE,
        "passages": 4 * SIZE,
        "file_passages": 4 * SIZE,
        "check_ok": True,
    }


# --- SQLite --------------------------------------------------------------------------------------


def test_the_store_is_in_wal_mode_so_a_reader_never_blocks_the_writer(tmp_path: Path) -> None:
    """journal_mode is wal on disk; a reader's open transaction keeps its snapshot while an add
    commits (with a rollback journal the add would wait for the reader)."""
    path = tmp_path / "idx"
    with Index.create(path, encoder=HashEncoder()) as index:
        index.add(bench_stress.generation(0, SIZE))
        with closing(sqlite3.connect(path / DB_FILE, isolation_level=None)) as reader:
            assert reader.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
            reader.execute("BEGIN")
            assert reader.execute("SELECT count(*) FROM documents").fetchone()[0] == SIZE
            index.add(bench_stress.generation(1, SIZE))  # commits while the reader's transaction is open
            assert reader.execute("SELECT count(*) FROM documents").fetchone()[0] == SIZE
            reader.execute("COMMIT")
            assert reader.execute("SELECT count(*) FROM documents").fetchone()[0] == 2 * SIZE


# --- the CLI as a reader -------------------------------------------------------------------------

# `textsearch query` with the HashEncoder standing in for the model the index names: the real model
# takes ~20 s to load per process on 2 busy cores. `info` needs no encoder and runs unchanged.
QUERY_CLI = (
    "import sys; from textsearch.testing import HashEncoder; "
    "import textsearch.index as ix; ix.SentenceTransformerEncoder = lambda *a, **k: HashEncoder(); "
    "from textsearch.cli import main; sys.argv[0] = 'textsearch'; main()"
)


def _cli(path: Path, command: str) -> tuple[list[str] | None, int]:
    """Run `textsearch info` or `textsearch query` in a new process: (hit ids or None, count)."""
    if command == "info":
        args = ["-m", "textsearch", "info", str(path), "--json"]
    else:
        args = ["-c", QUERY_CLI, "query", "marker", "--index", str(path), "-k", str(4 * SIZE)]
        args += ["--min-score", "-1", "--json"]
    done = subprocess.run(
        [sys.executable, *args], check=False, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0 and done.stderr == "", done.stderr
    if command == "info":
        info = json.loads(done.stdout)
        assert info["passages"] == info["documents"]
        return None, info["documents"]
    ids = [json.loads(line)["doc_id"] for line in done.stdout.splitlines()]
    return ids, len(ids)


@pytest.mark.slow
def test_cli_readers_answer_from_committed_states_while_a_writer_writes(tmp_path: Path) -> None:
    """`textsearch info` and `textsearch query`, each a new process opening the index, exit 0 during
    2 s of writes with whole generations only, and show the final state once the writer stops."""
    path = tmp_path / "idx"
    with Index.create(path, encoder=HashEncoder()) as index:
        for g in (0, 1):
            index.add(bench_stress.generation(g, SIZE))
    barrier, stop, results = SPAWN.Barrier(2), SPAWN.Event(), SPAWN.Queue()
    writer = SPAWN.Process(
        target=bench_stress.writer, args=(str(path), 2.0, SIZE, 1, barrier, stop, results)
    )
    writer.start()
    barrier.wait(timeout=60)
    calls = 0
    while not stop.is_set():
        ids, count = _cli(path, ("info", "query")[calls % 2])
        assert count in (2 * SIZE, 3 * SIZE)
        if ids is not None:
            assert bench_stress.state_of(ids, SIZE)[1] is None, ids
        calls += 1
    report = results.get(timeout=60)
    writer.join(timeout=60)
    assert report["errors"] == [] and writer.exitcode == 0
    assert calls >= 1 and report["batches"] >= 5
    last = report["last_generation"]
    ids, _ = _cli(path, "query")
    assert sorted(ids or []) == sorted(f"{g}-{i}" for g in (last - 1, last) for i in range(SIZE))
