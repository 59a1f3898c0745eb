"""Keeping an index in line with a folder as it changes: ``watch`` indexes the folder as
``textsearch index`` does, then follows it, and each new, edited or deleted file reaches the index
a moment (``debounce``) after the last change. The only module that imports watchfiles.

    import threading, textsearch.watch
    stop = threading.Event()   # set it (from another thread) to stop
    textsearch.watch.watch("notes", "notes", stop=stop, on_update=print)

Each update is one ``Index.index_folder`` run, so it keeps that run's guarantees
(docs/reliability.md): unchanged files are skipped by content hash, every batch is one
transaction, readers in other processes keep answering from the last committed state. The write
lock is held only while an update runs, never while the watcher waits: another writer goes
straight in, or waits for the update in flight (``TEXTSEARCH_LOCK_TIMEOUT``); an update that
cannot get the lock in that time is tried again a moment later. Stopping (the ``stop`` event, or
SIGINT/SIGTERM with ``signals=True``) lets the update in flight finish; a second signal abandons
it, which leaves the index as a crash would: whole, with what was committed.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

from .catalog import build_index
from .config import DEFAULT_ROOT
from .errors import CorpusError, IndexLockedError, InvalidArgumentError, TextsearchError
from .hits import Summary
from .index import Index
from .models.encoder import Encoder

logger = logging.getLogger(__name__)

Pathish = str | os.PathLike[str]
DEBOUNCE = 1.0  # seconds without a new change before an update starts
MAX_WAIT = 10.0  # an update starts at the latest this long after the first change, even while changes go on
RETRY = 2.0  # seconds between tries while another writer holds the lock
STEP_MS = 50  # how often watchfiles looks at its events and at the stop event
TICK_MS = 200  # how often the loop wakes when nothing happens, to see whether a run is due


@dataclass
class Update:
    """One update of a watched index: where it is, what the run did, how many documents it holds
    now; ``first``: the initial indexing of the folder (``textsearch index``'s run)."""

    path: Path
    summary: Summary
    documents: int
    first: bool = False

    @property
    def changed(self) -> bool:
        """Whether the run added, updated or deleted a document."""
        return bool(self.summary.added or self.summary.updated or self.summary.deleted)


OnUpdate = Callable[[Update], None]


def watch(folder: Pathish, name: str | None = None, indexes: Pathish = DEFAULT_ROOT, *,
          stop: threading.Event | None = None, on_update: OnUpdate | None = None, debounce: float = DEBOUNCE,
          signals: bool = False, model: str | None = None, encoder: Encoder | None = None,
          runtime: str | None = None, vector_dtype: str | None = None, backend: str | None = None,
          uri: str | None = None, id_field: str = "id", text_field: str = "text",
          max_file_bytes: int | None = None, show_progress: bool = False) -> None:
    """Build or update the index ``name`` from ``folder`` (``build_index``, with the same options),
    then keep it in line with the folder until ``stop`` is set. ``on_update`` gets the first run's
    ``Update``, then one for each run that changed the index. ``signals``: SIGINT and SIGTERM stop
    it too, after the update in flight (the main thread only; what the CLI uses)."""
    _check_debounce(debounce)
    stop = stop or threading.Event()
    with _stopping_on_signals(stop) if signals else nullcontext():
        built = build_index(folder, name, indexes, model=model, encoder=encoder, runtime=runtime,
                            vector_dtype=vector_dtype, backend=backend, uri=uri, id_field=id_field,
                            text_field=text_field, max_file_bytes=max_file_bytes, show_progress=show_progress)
        if on_update:
            on_update(Update(built.path, built.summary, built.documents, first=True))
        if stop.is_set():
            return
        with Index.open(built.path, model, encoder=encoder, runtime=runtime) as index:
            follow(index, folder, stop=stop, on_update=on_update, debounce=debounce, id_field=id_field,
                   text_field=text_field, max_file_bytes=max_file_bytes)


def follow(index: Index, folder: Pathish, *, stop: threading.Event, on_update: OnUpdate | None = None,
           debounce: float = DEBOUNCE, retry: float = RETRY, **options: Any) -> None:
    """Keep the open ``index`` in line with ``folder`` until ``stop`` is set: once the watch is
    up, one ``index.index_folder(folder, **options)`` run to catch up with what changed before,
    then one each time files change, ``debounce`` seconds after the last change; one that finds
    the lock held past its timeout is tried again ``retry`` seconds later. A folder that is removed
    stops it with CorpusError; any other library error stops it too."""
    _check_debounce(debounce)
    root = Path(folder).resolve()
    if not root.is_dir():
        raise CorpusError(f"cannot watch {folder}: it is not a folder — give the folder that holds the documents")
    due = _Due(debounce)  # the catch-up run: due as soon as the watch is up
    for changes in _changes(root, index.path, stop):
        if stop.is_set():
            break
        now = time.monotonic()
        if changes:
            logger.debug("%d changes under %s", len(changes), root)
            due.change(now)
        if due.ready(now):
            if _update(index, root, on_update, options):
                due.done()
            else:  # another writer held the lock past its timeout
                due.later(now + retry)


def _changes(root: Path, index_path: Path, stop: threading.Event) -> Iterator[set[Any]]:
    """watchfiles' batches of relevant changes under ``root``, and an empty one every TICK_MS,
    until ``stop`` is set. A folder the system will not watch is a CorpusError."""
    from watchfiles import watch as changes_in

    batches = changes_in(root, watch_filter=Relevant(root, index_path), step=STEP_MS, rust_timeout=TICK_MS,
                         yield_on_timeout=True, stop_event=stop, ignore_permission_denied=True)
    try:
        while True:
            try:
                batch = next(batches)
            except StopIteration:
                return
            except OSError as exc:  # e.g. the system's limit on watches (fs.inotify.max_user_watches)
                raise CorpusError(f"cannot watch {root}: {exc} — check that it is readable and that the "
                                  "system's limit on watched folders is not reached") from exc
            yield batch
    finally:
        batches.close()  # the notify watcher goes with it


@dataclass
class _Due:
    """When the next run is due: ``debounce`` seconds after the last change, and at the latest
    MAX_WAIT after the first change it waits for (a folder that never rests is still followed)."""

    debounce: float
    at: float | None = field(default_factory=time.monotonic)  # None: nothing to do
    latest: float | None = None

    def change(self, now: float) -> None:
        if self.at is None or self.latest is None:
            self.latest = now + max(MAX_WAIT, self.debounce)
        self.at = min(now + self.debounce, self.latest)

    def ready(self, now: float) -> bool:
        return self.at is not None and now >= self.at

    def done(self) -> None:
        self.at = self.latest = None

    def later(self, when: float) -> None:
        self.at = self.latest = when


def _update(index: Index, root: Path, on_update: OnUpdate | None, options: dict[str, Any]) -> bool:
    """One run of ``index_folder``: True when it is done with (ran, or found nothing to do),
    False when it should be tried again (another writer held the lock past its timeout)."""
    try:
        summary = index.index_folder(root, **options)
    except IndexLockedError as exc:
        logger.warning("%s; the watcher tries again in a moment", exc)
        return False
    except CorpusError as exc:
        if not root.is_dir():
            raise CorpusError(f"the watched folder {root} is gone — stopped watching; the index keeps "
                              "its documents") from exc
        logger.warning("%s; watching on", exc)  # e.g. every file removed: nothing is deleted then
        return True
    update = Update(index.path, summary, index.count())
    if on_update and update.changed:
        on_update(update)
    return True


class Relevant:
    """The watchfiles filter: a change is worth a run unless it is hidden (a name starting with
    ".": the corpus walk skips those too, editors' swap files among them), a backup (``name~``),
    or inside the index's own folder (its writes must not wake the watcher again)."""

    def __init__(self, root: Path, index_path: Path) -> None:
        self.root, self.index_path = root, Path(index_path).resolve()

    def __call__(self, change: Any, path: str) -> bool:
        where = Path(path)
        if where.is_relative_to(self.index_path) or path.endswith("~"):
            return False
        inside = where.relative_to(self.root).parts if where.is_relative_to(self.root) else where.parts[-1:]
        return not any(part.startswith(".") for part in inside)


def background(index: Index, folder: Pathish, stop: threading.Event, **options: Any) -> threading.Thread:
    """``follow`` in a daemon thread (the server's watchers), started; its updates are logged, and
    an error that stops it is logged rather than lost with the thread."""
    def run() -> None:
        try:
            follow(index, folder, stop=stop, on_update=lambda u: logger.info("%s", describe(folder, u)), **options)
        except TextsearchError as exc:
            logger.error("stopped watching %s: %s", folder, exc)
        except Exception:  # the server goes on without this watcher: say why
            logger.exception("stopped watching %s", folder)

    thread = threading.Thread(target=run, name=f"textsearch-watch-{index.path.name}", daemon=True)
    thread.start()
    return thread


def describe(folder: Pathish, update: Update) -> str:
    """One line for an update: ``notes → indexes/notes: 1 added, 0 updated, 0 deleted; …``."""
    s = update.summary
    return (f"{folder} → {update.path}: {s.added} added, {s.updated} updated, {s.deleted} deleted; "
            f"{s.passages} passages embedded in {s.seconds:.1f} s; {update.documents} documents in the index")


@contextmanager
def _stopping_on_signals(stop: threading.Event) -> Iterator[None]:
    """While the block runs, SIGINT and SIGTERM set ``stop`` (the update in flight finishes); a
    second one raises KeyboardInterrupt, which abandons it (the index stays whole, as after a
    crash). Signals reach the main thread only: elsewhere this does nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        if stop.is_set():
            raise KeyboardInterrupt
        logger.info("stopping once the update in flight is written (%s again abandons it)",
                       signal.Signals(signum).name)
        stop.set()

    previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for signum, was in previous.items():
            signal.signal(signum, was)


def _check_debounce(seconds: float) -> None:
    if not seconds > 0:
        raise InvalidArgumentError(f"the debounce must be more than 0 seconds, got {seconds}")

