"""`textsearch watch`: a watcher follows a folder (new, edited, deleted files reach the index), keeps
the one-writer lock only while it writes, stops cleanly on SIGINT/SIGTERM, and runs in the server.

Everything embeds with the KeywordEncoder (the subprocesses too), and every wait polls for the
event with a generous deadline: nothing here asserts how long anything took.
"""

from __future__ import annotations

import json
import logging
import queue
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from typer.testing import CliRunner
from watchfiles import Change

from textsearch.catalog import build_index
from textsearch.check import check
from textsearch.cli import app
from textsearch.errors import CorpusError, IndexNotFoundError, InvalidArgumentError
from textsearch.index import Index
from textsearch.server import create_app, running
from textsearch.storage import graphfile
from textsearch.testing import KeywordEncoder
from textsearch.watch import Relevant, Update, _stopping_on_signals, watch

DEADLINE = 60.0  # seconds to wait for something that takes well under one
FILES = {"cat.txt": "the cat sleeps in the sun", "pets/dog.md": "the dog likes water"}
# `textsearch` with the KeywordEncoder standing in for the model (as test_concurrency's QUERY_CLI)
CLI = (
    "import sys; from textsearch.testing import KeywordEncoder; "
    "import textsearch.index as ix; ix.SentenceTransformerEncoder = lambda *a, **k: KeywordEncoder(); "
    "from textsearch.cli import main; sys.argv[0] = 'textsearch'; main()"
)
SEARCH = (
    "import json, sys; from textsearch.index import Index; from textsearch.testing import KeywordEncoder; "
    "idx = Index.open(sys.argv[1], encoder=KeywordEncoder()); "
    "print(json.dumps([h.doc_id for h in idx.search(sys.argv[2], k=3, min_score=-1.0)]))"
)


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    root = tmp_path / "notes"
    for rel, text in FILES.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text, encoding="utf-8")
    return root


def wait_for(event: Callable[[], Any], what: str) -> None:
    """Poll until ``event()`` is true; fail naming ``what`` after DEADLINE seconds."""
    deadline = time.monotonic() + DEADLINE
    while not event():
        if time.monotonic() > deadline:
            pytest.fail(f"waited {DEADLINE:.0f} s for {what}")
        time.sleep(0.05)


def state(path: Path) -> dict[str, str]:
    """What a fresh open of the index holds: document id → its text (every document is one passage)."""
    with Index.open(path, encoder=KeywordEncoder()) as index:
        hits = index.search("cat dog fish water sun", k=100, min_score=-1.0)
        assert len(hits) == index.count()
    return {h.doc_id: h.text for h in hits}


def counts(update: Update) -> tuple[int, int, int, int, bool]:
    return update.summary.added, update.summary.updated, update.summary.deleted, update.documents, update.first


def files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@dataclass
class Watching:
    """A ``watch`` running in a thread: the updates it reported and the error it stopped with."""

    updates: list[Update] = field(default_factory=list)
    errors: list[BaseException] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)


@contextmanager
def watching(corpus: Path, path: Path) -> Iterator[Watching]:
    """``watch(corpus)`` into ``path`` in a thread, from its first update to its stop (joined)."""
    w = Watching()

    def run() -> None:
        try:
            watch(corpus, str(path), encoder=KeywordEncoder(), stop=w.stop, on_update=w.updates.append, debounce=0.2)
        except BaseException as exc:  # noqa: BLE001 - the test looks at it
            w.errors.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        wait_for(lambda: w.updates or w.errors, "the first indexing run")
        yield w
    finally:
        w.stop.set()
        thread.join(DEADLINE)
    assert not thread.is_alive()


# --- the Python API -------------------------------------------------------------------------------
def test_new_edited_and_deleted_files_reach_the_index(tmp_path: Path, corpus: Path) -> None:
    path = tmp_path / "indexes" / "notes"
    with watching(corpus, path) as w:
        assert state(path) == FILES
        (path / "my-note.md").write_text("the user's own note", encoding="utf-8")  # in the index folder
        (corpus / "fish.txt").write_text("a fish in the water", encoding="utf-8")
        wait_for(lambda: "fish.txt" in state(path), "the new file")
        (corpus / "cat.txt").write_text("the cat sleeps in the rain at night", encoding="utf-8")
        wait_for(lambda: state(path)["cat.txt"] == "the cat sleeps in the rain at night", "the edit")
        (corpus / "pets" / "dog.md").unlink()
        wait_for(lambda: "pets/dog.md" not in state(path), "the deletion")
    assert w.errors == []
    # (added, updated, deleted, documents after, first): the first run, then one update per change
    assert [counts(u) for u in w.updates] == [(2, 0, 0, 2, True), (1, 0, 0, 3, False), (0, 1, 0, 3, False),
                                              (0, 0, 1, 2, False)]
    assert state(path) == {"cat.txt": "the cat sleeps in the rain at night", "fish.txt": "a fish in the water"}
    assert check(path).ok
    # the user's files are all there, byte for byte: the watcher only ever writes the index's own files
    assert files(corpus) == {"cat.txt": b"the cat sleeps in the rain at night", "fish.txt": b"a fish in the water"}
    assert (path / "my-note.md").read_text(encoding="utf-8") == "the user's own note"


@pytest.mark.slow  # other processes: a reliability scenario, in make test
def test_other_processes_search_and_write_while_it_watches(tmp_path: Path, corpus: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """A search in another process answers while the watcher runs; the idle watcher holds no lock
    (another writer gets it at once), and an update that finds the lock taken is tried again."""
    path = tmp_path / "indexes" / "notes"
    said: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: said.append(record.getMessage())  # type: ignore[method-assign]
    logging.getLogger("textsearch.watch").addHandler(handler)
    try:
        with watching(corpus, path) as w:
            searched = subprocess.run([sys.executable, "-c", SEARCH, str(path), "cat"], capture_output=True,
                                      text=True, timeout=DEADLINE, check=False)
            assert searched.returncode == 0, searched.stderr
            # cos("cat", "the cat sleeps in the sun") = 1/sqrt(4² + 1 + 1) = 0.236 > cos("cat", dog.md) = 0
            assert json.loads(searched.stdout) == ["cat.txt", "pets/dog.md"]
            monkeypatch.setenv("TEXTSEARCH_LOCK_TIMEOUT", "0")  # a writer that finds the lock taken fails at once
            with graphfile.write_lock(path):  # another writer: the idle watcher does not hold the lock
                (corpus / "fish.txt").write_text("a fish in the water", encoding="utf-8")
                wait_for(lambda: any("being written by another process" in s for s in said), "a locked-out update")
                assert "fish.txt" not in state(path)
            wait_for(lambda: "fish.txt" in state(path), "the update, tried again once the lock is free")
    finally:
        logging.getLogger("textsearch.watch").removeHandler(handler)
    assert w.errors == []
    assert [counts(u) for u in w.updates] == [(2, 0, 0, 2, True), (1, 0, 0, 3, False)]
    assert check(path).ok


class Interrupting(KeywordEncoder):
    """A Ctrl-C in the middle of an update: SIGINT reaches the main thread while a passage holding
    'xyzzy' is being embedded (in the pipeline's helper thread)."""

    def encode_passages(self, texts: Sequence[str], show_progress: bool = False) -> np.ndarray:
        if any("xyzzy" in t for t in texts):
            signal.pthread_kill(threading.main_thread().ident or 0, signal.SIGINT)
        return super().encode_passages(texts, show_progress)


def test_ctrl_c_during_an_update_lets_it_finish(tmp_path: Path, corpus: Path) -> None:
    path = tmp_path / "indexes" / "notes"
    updates: list[Update] = []
    stop = threading.Event()

    def on_update(update: Update) -> None:
        updates.append(update)
        if update.first:  # a change for the watcher to pick up
            (corpus / "zebra.txt").write_text("xyzzy the fish", encoding="utf-8")

    timed_out = threading.Event()
    safety = threading.Timer(DEADLINE, lambda: (timed_out.set(), stop.set()))  # a lost signal fails, not hangs
    safety.start()
    try:
        watch(corpus, str(path), encoder=Interrupting(), stop=stop, on_update=on_update, debounce=0.2, signals=True)
    finally:
        safety.cancel()
    assert stop.is_set() and not timed_out.is_set()  # the signal stopped it
    assert [counts(u) for u in updates] == [(2, 0, 0, 2, True), (1, 0, 0, 3, False)]  # written, then stopped
    assert sorted(state(path)) == ["cat.txt", "pets/dog.md", "zebra.txt"]
    assert check(path).ok
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # Python's own handler is back


def test_a_first_signal_stops_and_a_second_abandons() -> None:
    stop = threading.Event()
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(KeyboardInterrupt), _stopping_on_signals(stop):
        signal.raise_signal(signal.SIGTERM)
        assert stop.is_set()
        signal.raise_signal(signal.SIGINT)
    assert signal.getsignal(signal.SIGTERM) is before


def test_a_removed_folder_stops_the_watcher_and_the_index_keeps_its_documents(tmp_path: Path, corpus: Path) -> None:
    path = tmp_path / "indexes" / "notes"
    with watching(corpus, path) as w:
        shutil.rmtree(corpus)  # the test's own folder
        wait_for(lambda: w.errors, "the watcher to stop")
    assert [type(e) for e in w.errors] == [CorpusError]
    assert str(w.errors[0]) == f"the watched folder {corpus} is gone — stopped watching; the index keeps its documents"
    assert state(path) == FILES and check(path).ok


def test_the_watcher_ignores_the_index_hidden_files_and_backups(tmp_path: Path) -> None:
    root, index = tmp_path / "notes", tmp_path / "notes" / "idx"
    relevant = Relevant(root, index)
    changes = {
        root / "a.txt": True, root / "sub" / "b.md": True, root / "sub": True,
        index / "store.db": False, index / "hnsw.bin.new": False, index: False,  # its own writes
        root / ".git" / "HEAD": False, root / ".a.txt.swp": False, root / "sub" / ".drafts" / "c.txt": False,
        root / "a.txt~": False,
    }
    assert {p: relevant(Change.modified, str(p)) for p in changes} == changes


# --- the command line -----------------------------------------------------------------------------
@pytest.mark.parametrize("signum", [pytest.param(signal.SIGINT, id="SIGINT"),
                                    pytest.param(signal.SIGTERM, id="SIGTERM", marks=pytest.mark.slow)])
def test_the_watch_command_follows_the_folder_and_stops_cleanly(tmp_path: Path, corpus: Path, signum: int) -> None:
    """A real `textsearch watch` process: one line per update, a search from this process while it
    watches, and after the signal exit 0 and an index that `check` passes."""
    indexes, path = tmp_path / "indexes", tmp_path / "indexes" / "notes"
    proc = subprocess.Popen([sys.executable, "-c", CLI, "watch", str(corpus), "--name", "notes", "--indexes",
                             str(indexes), "--debounce", "0.2"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in proc.stdout or ()], daemon=True).start()
    try:
        first = lines.get(timeout=DEADLINE)
        assert re.fullmatch(rf"indexed {re.escape(str(corpus))} → {re.escape(str(path))}: 2 added, 0 updated, "
                            r"0 unchanged, 0 deleted, 0 skipped; 2 passages embedded in \d+\.\d s; 2 documents in "
                            r"the index; watching for changes\n", first), first
        with Index.open(path, encoder=KeywordEncoder()) as index:  # another process searches meanwhile
            assert [h.doc_id for h in index.search("cat", k=3, min_score=-1.0)] == ["cat.txt", "pets/dog.md"]
        (corpus / "fish.txt").write_text("a fish in the water", encoding="utf-8")
        update = lines.get(timeout=DEADLINE)
        assert re.fullmatch(rf"\d\d:\d\d:\d\d updated {re.escape(str(corpus))} → {re.escape(str(path))}: 1 added, "
                            r"0 updated, 0 deleted; 1 passages embedded in \d+\.\d s; 3 documents in the index\n",
                            update), update
        proc.send_signal(signum)
        _, err = proc.communicate(timeout=DEADLINE)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert err.splitlines()[-1] == f"stopped watching {corpus}"
    assert check(path).ok and sorted(state(path)) == ["cat.txt", "fish.txt", "pets/dog.md"]


def test_the_watch_command_refuses_bad_input_in_one_line(tmp_path: Path) -> None:
    runner = CliRunner()
    missing = runner.invoke(app, ["watch", str(tmp_path / "nowhere"), "--indexes", str(tmp_path / "indexes")])
    assert missing.exit_code == 1
    assert missing.stderr == f"error: corpus folder {tmp_path / 'nowhere'} does not exist — check the path\n"
    zero = runner.invoke(app, ["watch", str(tmp_path), "--debounce", "0", "--indexes", str(tmp_path / "indexes")])
    assert zero.exit_code == 2 and zero.stderr == "error: the debounce must be more than 0 seconds, got 0.0\n"
    assert not (tmp_path / "indexes").exists()


# --- the server -----------------------------------------------------------------------------------
def test_the_server_keeps_a_watched_index_in_line(tmp_path: Path, corpus: Path) -> None:
    indexes = tmp_path / "indexes"
    build_index(corpus, "notes", indexes, encoder=KeywordEncoder())

    def found(url: str) -> list[str]:
        body = httpx.post(f"{url}/indexes/notes/search", json={"query": "fish", "k": 1, "min_score": -1.0}).json()
        return [h["doc_id"] for h in body["hits"]]

    with running(create_app(indexes, encoder=KeywordEncoder(), watch={"notes": corpus})) as url:
        (corpus / "fish.txt").write_text("a fish in the water", encoding="utf-8")
        wait_for(lambda: found(url) == ["fish.txt"], "the server's watcher to index the new file")
        assert httpx.get(f"{url}/indexes/notes").json()["documents"] == 3
    assert [t.name for t in threading.enumerate() if t.name.startswith("textsearch-watch")] == []  # stopped
    assert check(indexes / "notes").ok
    assert files(corpus) == {**{k: v.encode() for k, v in FILES.items()}, "fish.txt": b"a fish in the water"}


def test_the_server_refuses_to_watch_what_is_not_there(tmp_path: Path, corpus: Path) -> None:
    indexes = tmp_path / "indexes"
    with pytest.raises(IndexNotFoundError, match=f"no index 'nope' under {indexes}/ to keep in line with"):
        create_app(indexes, encoder=KeywordEncoder(), watch={"nope": corpus})
    build_index(corpus, "notes", indexes, encoder=KeywordEncoder())
    with pytest.raises(InvalidArgumentError, match="cannot watch .*nowhere: it is not a folder"):
        create_app(indexes, encoder=KeywordEncoder(), watch={"notes": tmp_path / "nowhere"})
    bad = CliRunner().invoke(app, ["serve", "--indexes", str(indexes), "--watch", f"{corpus}="])
    assert bad.exit_code == 2 and "give FOLDER=NAME" in bad.stderr
    unknown = CliRunner().invoke(app, ["serve", "--indexes", str(indexes), "--watch", f"{corpus}=nope"])
    assert unknown.exit_code == 1 and f"no index 'nope' under {indexes}/" in unknown.stderr
