"""Typed exceptions. The library raises these; only the CLI turns them into a message and an exit code.

Every message says what is wrong and how to fix it.
"""

from __future__ import annotations


class TextsearchError(Exception):
    """Base class of every error textsearch raises on purpose."""


class InvalidArgumentError(TextsearchError, ValueError):
    """A caller passed a value that cannot work (empty query, k < 1, ...)."""


class CorpusError(TextsearchError):
    """The corpus folder is missing, empty or unreadable."""


class DocumentReadError(TextsearchError):
    """A PDF, Word or EPUB file cannot be read this time: corrupt, truncated, password-protected,
    too large once unpacked, or its reader library is missing. The corpus skips the file with the
    reason and keeps what the index already holds of it (its last good version)."""


class DocumentEmptyError(TextsearchError):
    """A document file was read but holds no text (a scanned PDF without a text layer, an empty
    Word file): skipped, and its old documents go, as for an emptied text file."""


class IndexNotFoundError(TextsearchError):
    """No index at the given name or path."""


class IndexExistsError(TextsearchError):
    """Index.create was asked for a directory that already holds an index."""


class IndexCorruptError(TextsearchError):
    """A file of the index is unreadable, truncated or inconsistent."""


class IndexLockedError(TextsearchError):
    """Another process is writing to the index."""


class ModelError(TextsearchError):
    """The encoder model cannot be found, loaded or built."""


class ModelNotFoundError(ModelError):
    """A model name or path that resolves to nothing loadable."""


class ModelBuildError(ModelError):
    """Building the bundled base model failed (or its verification did)."""


class ModelMismatchError(ModelError):
    """The model given is not the one the index was built with."""


class TrainingInterruptedError(TextsearchError):
    """Training stopped on Ctrl-C after saving a checkpoint; the same run with resume goes on."""


class MissingExtraError(TextsearchError):
    """A feature needs packages of an optional extra that is not installed."""


DISTRIBUTION = "textsearch-zh"  # the name to pip install (the import name is textsearch)


def require(modules: tuple[str, ...], extra: str, feature: str) -> None:
    """Raise MissingExtraError naming ``extra`` when one of ``modules`` cannot be imported."""
    from importlib.util import find_spec

    missing = [m for m in modules if find_spec(m) is None]
    if missing:
        raise MissingExtraError(f"{feature} needs {', '.join(missing)} — install the extra: "
                                f"pip install '{DISTRIBUTION}[{extra}]'")
