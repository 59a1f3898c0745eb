"""Crash test: kill `textsearch index` with SIGKILL at random moments, many times, and prove that
nothing is lost or corrupt.

Two versions of a corpus (B changes, removes and adds files of A) are indexed into one index, the
target version drawn at random each round, so kills land in adds, updates and deletes. Each round
starts the indexer, waits until it holds the index's write lock, sleeps a random part of an
uninterrupted run's duration and sends SIGKILL. After every kill:

- `check` must find the index consistent (a graph behind the database is allowed: it is replayed);
- the index must open and answer a query;
- at random (and at the end), indexing is re-run to completion and the result compared with an
  index built in one uninterrupted run of the same version: same documents with the same content
  hashes, same top-5 hits for every query (scores within 1e-3).

Real mode (default) runs the CLI with the bundled model on a corpus made of corpora/demo plus
HSK sentences. ``--fake`` runs a Python child with the test suite's HashEncoder and small batches
(seconds; what tests/test_crash.py runs in CI).

    python benchmarks/bench_crash.py                      # 50 kills, real model (about 15 min)
    python benchmarks/bench_crash.py --fake --kills 8     # CI size
"""

from __future__ import annotations

import argparse
import fcntl
import json
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
QUERIES = ["可爱的宝宝", "今天天气怎么样", "the train was late", "我想买一台电脑", "how to cook rice",
           "他在学校学习中文", "a cat sleeping in the sun", "这个多少钱"]
EARLY = 0.15  # share of kills aimed at the start-up rather than the writing
# the child of --fake mode: index_folder with the test suite's fake encoder, small batches, and a
# short pause per batch so that kills land inside the run rather than after it
FAKE_CHILD = """
import sys, time
from textsearch.testing import HashEncoder
import textsearch.ingest.pipeline as ingest
import textsearch.index as ix
ingest.BATCH_PASSAGES = 8
class Slow(HashEncoder):
    def encode_passages(self, texts, show_progress=False):
        time.sleep(0.02)
        return super().encode_passages(texts)
idx = ix.Index.open_or_create(sys.argv[2], encoder=Slow(), max_passage_tokens=24, overlap_tokens=4)
idx.index_folder(sys.argv[1])
"""


def build_versions(work: Path, files: int, seed: int, fake: bool) -> tuple[Path, Path]:
    """Corpus A (demo corpus plus HSK sentences as files, or small generated files for --fake)
    and corpus B: every text file of A changed (so that going from one to the other takes
    several write transactions, and kills land between a commit and the graph save), a tenth of
    the files removed, a tenth new."""
    rng = random.Random(seed)
    a, b = work / "A", work / "B"
    if fake:
        words = "cat dog fish apple banana rain sun tree house night water baby toy train".split()
        for i in range(files):
            path = a / f"d{i % 7}" / f"f{i}.txt"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(". ".join(" ".join(rng.choices(words, k=6)) for _ in range(rng.randint(1, 12))))
    else:
        from textsearch.training.pairs import hsk_sentences

        shutil.copytree(ROOT / "corpora" / "demo", a)
        sentences = hsk_sentences()
        rng.shuffle(sentences)
        per_file = max(1, len(sentences) // files)
        for i in range(files):
            rows = sentences[i * per_file : (i + 1) * per_file]
            path = a / "hsk" / f"s{i // 20}" / f"{i}.txt"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("\n".join(r["chinese"] for r in rows), encoding="utf-8")
    shutil.copytree(a, b)
    listing = sorted(p for p in b.rglob("*") if p.is_file())
    for path in listing:
        if path.suffix in (".txt", ".md"):  # (appending to a table would only break its last row)
            path.write_bytes(path.read_bytes() + " 又改了一次。changed again.".encode())
    for path in rng.sample(listing, len(listing) // 10):
        if path.exists():
            path.unlink()
    for i in range(len(listing) // 10):
        (b / "new").mkdir(exist_ok=True)
        (b / "new" / f"n{i}.txt").write_text(f"新的文件 {i}。a new file about the rain {i}.", encoding="utf-8")
    return a, b


def writer_holds_lock(index: Path) -> bool:
    lock = index / ".write.lock"
    if not lock.exists():
        return False
    with open(lock, "a+") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(fh, fcntl.LOCK_UN)
        return False


def start_indexer(corpus: Path, index: Path, fake: bool) -> subprocess.Popen:
    if fake:
        code = FAKE_CHILD
        cmd = [sys.executable, "-c", code, str(corpus), str(index)]
    else:
        cmd = [sys.executable, "-m", "textsearch", "index", str(corpus), "--name", index.name,
               "--indexes", str(index.parent), "--quiet"]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def run_and_kill(corpus: Path, index: Path, fake: bool, delay: float | None, early: bool = False) -> dict[str, Any]:
    """Start the indexer; once it holds the write lock (or, ``early``, once it has started), wait
    ``delay`` s and SIGKILL it; with ``delay`` None let it finish. Returns whether the kill landed,
    the phase, and how long the process ran since it started and since it took the lock."""
    spawned = time.perf_counter()
    child = start_indexer(corpus, index, fake)
    while not early and child.poll() is None and not writer_holds_lock(index):
        time.sleep(0.01)
    locked = time.perf_counter()
    if delay is None:
        child.wait()
        killed = False
    else:
        deadline = locked + delay
        while child.poll() is None and time.perf_counter() < deadline:
            time.sleep(0.005)
        killed = child.poll() is None
        if killed:
            child.send_signal(signal.SIGKILL)
        child.wait()
    stderr = child.stderr.read().decode(errors="replace") if child.stderr else ""
    if not killed and child.returncode != 0:
        raise RuntimeError(f"indexer failed ({child.returncode}): {stderr[-2000:]}")
    now = time.perf_counter()
    return {"killed": killed, "phase": "start-up" if early else "writing",
            "run_s": now - spawned, "held_s": now - locked}


def state(index: Path, encoder: Any) -> dict[str, Any]:
    from textsearch.index import Index

    with Index.open(index, encoder=encoder) as idx:
        docs = dict(idx.store.db.execute("SELECT id, content_hash FROM documents").fetchall())
        hits = {q: [(h.doc_id, h.score) for h in idx.search(q, k=5, min_score=-1.0)] for q in QUERIES}
    return {"docs": docs, "hits": hits}


def same_hits(a: list[tuple[str, float]], b: list[tuple[str, float]]) -> bool:
    """Same documents with the same scores; order may differ only between near-equal scores."""
    if len(a) != len(b):
        return False
    sa, sb = dict(a), dict(b)
    if set(sa) != set(sb):
        return False
    return all(abs(sa[d] - sb[d]) < 1e-3 for d in sa)


def sync(version: Path, corpus: Path) -> None:
    if corpus.exists():
        shutil.rmtree(corpus)
    shutil.copytree(version, corpus)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=50)
    parser.add_argument("--files", type=int, default=200, help="files in corpus A (besides the demo corpus)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--fake", action="store_true", help="fake encoder child (CI size)")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "crash.json")
    args = parser.parse_args(argv)

    from textsearch.check import check
    from textsearch.config import is_index_dir
    from textsearch.index import Index

    if args.fake:
        from textsearch.testing import HashEncoder

        encoder: Any = HashEncoder()
    else:
        from textsearch.models.encoder import SentenceTransformerEncoder

        encoder = SentenceTransformerEncoder()
    rng = random.Random(args.seed)
    work = Path(tempfile.mkdtemp(prefix="textsearch-crash-"))
    started = time.perf_counter()
    try:
        versions = dict(zip("AB", build_versions(work, args.files, args.seed, args.fake)))
        corpus, index = work / "corpus", work / "indexes" / "crash"
        index.parent.mkdir()

        # references: each version indexed in one uninterrupted run; and how long the lock is held
        # building each version and going from one to the other
        reference: dict[str, dict[str, Any]] = {}
        held: dict[str, float] = {}
        for name, other in ("AB", "BA"):
            sync(versions[name], corpus)
            ref = work / "indexes" / f"ref{name}"
            run = run_and_kill(corpus, ref, args.fake, None)
            held[name], startup = run["held_s"], run["run_s"] - run["held_s"]
            reference[name] = state(ref, encoder)
            shutil.copytree(ref, work / "indexes" / f"ref{name}{other}")
            sync(versions[other], corpus)
            held[name + other] = run_and_kill(corpus, work / "indexes" / f"ref{name}{other}", args.fake, None)["held_s"]
        longest = max(held.values())
        print(f"corpus A {len(reference['A']['docs'])} docs, B {len(reference['B']['docs'])} docs; "
              f"lock held by uninterrupted runs: {', '.join(f'{k} {v:.1f} s' for k, v in held.items())}")

        rounds: list[dict[str, Any]] = []
        current = ""  # the version the index is complete at ("" when empty or interrupted)
        for i in range(args.kills):
            target = {"A": "B", "B": "A"}.get(current) or rng.choice("AB")  # always some work to do
            sync(versions[target], corpus)
            if rng.random() < EARLY:  # while it loads the model, creates the index, reads files
                outcome = run_and_kill(corpus, index, args.fake, rng.uniform(0, startup), early=True)
            else:  # anywhere in the writing (its expected length: the last uninterrupted run's)
                expected = held[current + target] if current else longest
                outcome = run_and_kill(corpus, index, args.fake, rng.uniform(0, expected))
            if not outcome["killed"] and outcome["phase"] == "writing" and current:
                held[current + target] = outcome["held_s"]  # the machine's speed now, not at the start
            current = target if not outcome["killed"] else ""
            row: dict[str, Any] = {"round": i, "target": target, **outcome}
            if is_index_dir(index):
                report = check(index)
                row.update(check_ok=report.ok, problems=report.problems, notes=report.notes)
                try:
                    with Index.open(index, encoder=encoder) as idx:
                        idx.search(QUERIES[i % len(QUERIES)], min_score=-1.0)
                    row["query_ok"] = True
                except Exception as exc:  # noqa: BLE001 — any failure here is what the test reports
                    row["query_ok"], row["query_error"] = False, f"{type(exc).__name__}: {exc}"
            else:  # killed before the index existed (while creating it): nothing there to lose
                row.update(check_ok=True, problems=[], notes=["killed before the index was created"], query_ok=True)
            if rng.random() < 0.5 or i == args.kills - 1:
                run_and_kill(corpus, index, args.fake, None)
                got, want = state(index, encoder), reference[target]
                row["completed"] = True
                row["docs_lost"] = len(set(want["docs"]) - set(got["docs"]))
                row["docs_extra"] = len(set(got["docs"]) - set(want["docs"]))
                row["docs_stale"] = sum(got["docs"].get(d) != h for d, h in want["docs"].items() if d in got["docs"])
                row["hits_same"] = all(same_hits(got["hits"][q], want["hits"][q]) for q in QUERIES)
                row["check_after_ok"] = check(index).ok
                current = target
            rounds.append(row)
            print(f"round {i:3d} {target} killed={outcome['killed']!s:5} {outcome['phase']:8} "
                  f"after {outcome['held_s']:.2f} s  "
                  f"check={'ok' if row['check_ok'] else row['problems']}  "
                  f"query={'ok' if row['query_ok'] else row['query_error']}"
                  + (f"  completed: lost={row['docs_lost']} extra={row['docs_extra']} stale={row['docs_stale']} "
                     f"hits_same={row['hits_same']}" if row.get("completed") else ""), flush=True)
        completed = [r for r in rounds if r.get("completed")]
        result = {
            "mode": "fake encoder" if args.fake else "real model, CLI",
            "documents": {name: len(ref["docs"]) for name, ref in reference.items()},
            "lock_held_uninterrupted_s": {k.replace("AB", "A→B").replace("BA", "B→A"): round(v, 2)
                                          for k, v in held.items()},
            "rounds": len(rounds),
            "kills_landed": sum(r["killed"] for r in rounds),
            "kills_while_writing": sum(r["killed"] and r["phase"] == "writing" for r in rounds),
            "kills_with_graph_behind": sum(any("behind" in n for n in r["notes"]) for r in rounds),
            "checks_passed": sum(r["check_ok"] for r in rounds),
            "queries_ok": sum(r["query_ok"] for r in rounds),
            "completions": len(completed),
            "completions_identical": sum(r["docs_lost"] == r["docs_extra"] == r["docs_stale"] == 0
                                         and r["hits_same"] and r["check_after_ok"] for r in completed),
            "documents_lost": sum(r["docs_lost"] for r in completed),
            "seconds": round(time.perf_counter() - started, 1),
            "details": rounds,
        }
    finally:
        shutil.rmtree(work, ignore_errors=True)
    summary = {k: v for k, v in result.items() if k != "details"}
    print(json.dumps(summary, ensure_ascii=False, indent=2))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    return result


if __name__ == "__main__":
    main()
