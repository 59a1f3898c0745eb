"""What an index directory holds, and removing only that.

An index owns the files it writes into its directory (``OWN_FILES``) and nothing else: a user's
file that sits inside or beside it is never removed, whatever fails. An index is created only in a
new or empty folder (or one holding nothing but an index's own leftovers, from a creation that was
killed), and removing an index removes its own files, then the folder only if that leaves it
empty and the index made it.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from .ann import ANN_FILE
from ..search.confidence import INDEX_FILE as BACKGROUND_FILE
from ..config import CONFIG_FILE
from ..errors import InvalidArgumentError
from .graphfile import LOCK_FILE
from .milvus import STATE_FILE
from .store import DB_FILE

DEFAULT_LITE_FILE = "milvus.db"  # the Milvus Lite folder of a milvus index without --uri
# what a killed write may leave behind: ``textsearch repair`` removes these
LEFTOVERS = (ANN_FILE + ".new", ANN_FILE + ".tmp", ANN_FILE + ".new.tmp", CONFIG_FILE + ".tmp",
             BACKGROUND_FILE + ".tmp", STATE_FILE + ".tmp")
OWN_FILES = frozenset({CONFIG_FILE, DB_FILE, DB_FILE + "-wal", DB_FILE + "-shm", DB_FILE + "-journal",
                       ANN_FILE, BACKGROUND_FILE, LOCK_FILE, STATE_FILE, *LEFTOVERS})


def foreign(path: Path) -> list[str]:
    """The names in the folder ``path`` that no index wrote, sorted ([] when it does not exist)."""
    try:
        return sorted(name for name in os.listdir(path) if name not in OWN_FILES)
    except FileNotFoundError:
        return []


def check_target(path: Path) -> None:
    """Refuse to create an index at ``path`` when it is a file, or a folder with files of its own."""
    if path.exists() and not path.is_dir():
        raise InvalidArgumentError(f"{path} is a file, not a folder — choose another index name or path")
    if others := foreign(path):
        shown = ", ".join(others[:3]) + (f" and {len(others) - 3} more" if len(others) > 3 else "")
        raise InvalidArgumentError(
            f"{path} is a folder with files of its own ({shown}) and not an index — an index is created "
            "only in a new or empty folder: choose another name, or a path to a new folder")


def missing_parents(path: Path) -> list[Path]:
    """``path`` and those of its parents that do not exist yet, innermost first: what making
    ``path`` will create, and so what undoing that may remove."""
    made = []
    for folder in [path, *path.absolute().parents]:
        if folder.exists():
            break
        made.append(folder)
    return made


def remove(path: Path, lite_file: str | None = None, made: list[Path] | None = None) -> list[str]:
    """Remove an index's own files from ``path`` (and ``lite_file``, its Milvus Lite folder, when
    that lies inside ``path``), then the folders in ``made`` (see ``missing_parents``)
    that are left empty. Returns the names left in ``path`` that are not the index's."""
    path, root = Path(path), Path(path).resolve()
    lite = (path / Path(lite_file).expanduser()) if lite_file and "://" not in lite_file else None
    if lite is not None and (lite.resolve() == root or not lite.resolve().is_relative_to(root)):
        lite = None  # outside the index's folder: a Lite file other indexes may share
    for entry in [path / name for name in sorted(OWN_FILES)] + ([lite] if lite else []):
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        elif entry.exists() or entry.is_symlink():
            entry.unlink()
    for folder in lite.parents if lite else []:  # and the folders it named inside, if now empty
        if folder.resolve() == root or not _rmdir(folder):
            break
    for folder in made or []:
        if not _rmdir(folder):
            break
    return foreign(path)


def _rmdir(folder: Path) -> bool:
    """Remove ``folder`` if it is empty; whether it is gone."""
    try:
        folder.rmdir()
    except FileNotFoundError:
        return True
    except OSError:
        return False
    return True
