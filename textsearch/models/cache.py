"""The model cache: where built and merged models live, and how a folder gets there safely.

``cache_dir()`` is ``$TEXTSEARCH_CACHE``, else ``$XDG_CACHE_HOME/textsearch``, else
``~/.cache/textsearch``. Every build goes through ``file_lock`` (one builder per destination,
across processes) and ``building`` (into a fresh folder that replaces the destination only once
complete), so a killed build never leaves a half-written model behind.
"""

from __future__ import annotations

import fcntl
import logging
import os
import secrets
import shutil
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

logger = logging.getLogger(__name__)


def cache_dir() -> Path:
    """$TEXTSEARCH_CACHE, else $XDG_CACHE_HOME/textsearch, else ~/.cache/textsearch."""
    if os.environ.get("TEXTSEARCH_CACHE"):
        return Path(os.environ["TEXTSEARCH_CACHE"]).expanduser().absolute()
    base = os.environ.get("XDG_CACHE_HOME") or "~/.cache"
    return (Path(base).expanduser() / "textsearch").absolute()


@contextmanager
def building(dest: Path) -> Iterator[Path]:
    """A fresh folder beside ``dest`` to build into; it replaces ``dest`` (a leftover without a
    marker) when the block completes and is removed when the block fails. Leftovers of killed
    builds go first. Call it holding ``file_lock``."""
    for leftover in dest.parent.glob(f".{dest.name}.tmp-*"):
        shutil.rmtree(leftover, ignore_errors=True)
    tmp = dest.parent / f".{dest.name}.tmp-{os.getpid()}-{secrets.token_hex(4)}"
    tmp.mkdir()  # not mkdtemp: a shared cache wants the umask's permissions, not 0700
    try:
        yield tmp
        if dest.exists():
            shutil.rmtree(dest)
        os.replace(tmp, dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


@contextmanager
def file_lock(path: Path) -> Iterator[None]:
    with open(path, "a+b") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            logger.info("another process is building into %s; waiting for it", path.parent)
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def progress(message: str, show_progress: bool) -> None:
    logger.info(message)
    if show_progress:
        sys.stderr.write(message + "\n")
        sys.stderr.flush()
