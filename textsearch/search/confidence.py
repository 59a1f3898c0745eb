""""No confident match": does the best hit fit the query better than unrelated text does?

A raw cosine is a poor judge. Some queries (short ones, common words) sit close to everything, so
a single global cut refuses good answers to them and accepts poor answers to others; and the
scale moves from model to model. So each query is measured against a fixed *background*: 250
everyday sentences and news lines that no corpus was written to answer (``data/background.txt``,
from Tatoeba training clusters and 1998 news; see ``sources.probe_queries``). The query's
*background level* is the mean cosine of its 10 nearest background sentences, and a hit's
**margin** is its cosine minus that level:

    margin = cosine(query, passage) − mean of the 10 best cosine(query, background sentence)

A margin of 0 means "fits the query no better than typical unrelated sentences". What counts as
enough depends on the corpus, so each index measures its own **cut** after every write that
changes it (``index_cut``), from two things it knows about itself:

- *what text from elsewhere reaches here*: the ``QUANTILE`` of the best margins that the
  background sentences themselves (embedded as queries) get on the index;
- *what the corpus's own texts give each other*: up to ``SAMPLE`` stored passages, spread over the
  index, each with the margin of its nearest passage of another document; the ``NEAR_QUANTILE`` of
  those. A real question reaches its answer about as well as related passages reach each other.

The cut is the smaller of the two, so that a corpus of everyday sentences (which the background
resembles) does not refuse its own answers; but at least ``NEAR_SHARE`` of the second, so that a
narrow corpus far from everyday text (400 laptop specifications) still refuses a programming
question. The threshold a hit must reach is that cut, and never less than ``FLOOR_SHARE`` of the
model's ``min_margin`` (``config.DEFAULT_MIN_MARGIN``, or what ``textsearch eval --calibrate`` stored):
on five short documents everything scores low, and a stray query must still fail. An index
without a cut (empty, or last written by an older textsearch) uses ``min_margin`` itself. The
background vectors of an index's model (as passages and as queries) are kept in the index
directory (``background.f32``), so a query costs one extra 250×d product, and measuring the cut
250 + 200 graph searches. ``benchmarks/bench_refusal.py`` measures the rule on seven corpora.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import numpy as np


class _Embeds(Protocol):  # an ``encoder.Encoder``, named structurally
    def encode_queries(self, texts: Sequence[str]) -> np.ndarray: ...

    def encode_passages(self, texts: Sequence[str], show_progress: bool = False) -> np.ndarray: ...

BACKGROUND_TEXT = Path(__file__).parents[1] / "data" / "background.txt"
INDEX_FILE = "background.f32"  # raw little-endian float32 rows, nothing to unpickle
TOP = 10  # background sentences averaged into a query's level
QUANTILE = 0.99  # of the background sentences' own best margins on an index
NEAR_QUANTILE = 0.25  # of the stored passages' margins to their nearest passage of another document
NEAR_SHARE = 0.4  # the cut is at least this share of that quantile
SAMPLE = 200  # stored passages measured
NEIGHBOURS = 8  # passages searched for each: the nearest of another document is among them
FLOOR_SHARE = 0.2  # the least margin on any index: this share of the model's min_margin
CUT_KEY = "corpus_cut"  # where a backend keeps the cut (not the earlier rule's "confidence_cut")


def background_texts() -> list[str]:
    return [line for line in BACKGROUND_TEXT.read_text(encoding="utf-8").splitlines() if line.strip()]


def embed(encoder: _Embeds) -> np.ndarray:
    """The background sentences embedded by ``encoder`` as passages (rows 0–249; what a query's
    level is measured against) and as queries (rows 250–499; what an index's cut is measured
    with): float32, (500, dimension)."""
    texts = background_texts()
    both = np.vstack([encoder.encode_passages(texts), encoder.encode_queries(texts)])
    return np.ascontiguousarray(both, dtype=np.float32)


def embed_once(encoder: _Embeds, probe: Sequence[float]) -> np.ndarray:
    """``embed``, kept in the model cache per model (its name, runtime and ``probe`` embedding): every
    index a model builds gets the same 500 vectors, embedded once rather than at each creation."""
    import hashlib
    import json

    from ..models.cache import cache_dir

    runtime = getattr(encoder, "runtime", None)
    if runtime is None:  # a fake or custom encoder: nothing says when its vectors would change
        return embed(encoder)
    key = json.dumps([getattr(encoder, "name", ""), runtime, [round(float(x), 5) for x in probe],
                      background_texts()], ensure_ascii=False)
    path = cache_dir() / "background" / f"{hashlib.sha256(key.encode('utf-8')).hexdigest()[:20]}.f32"
    dimension = len(probe)
    if path.is_file() and path.stat().st_size == 2 * len(background_texts()) * dimension * 4:
        return np.fromfile(path, dtype=np.float32).reshape(-1, dimension)
    vectors = embed(encoder)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    vectors.tofile(tmp)
    os.replace(tmp, path)
    return vectors


def levels(query_vectors: np.ndarray, background: np.ndarray) -> np.ndarray:
    """Each query's background level: the mean of its ``TOP`` best cosines to the background."""
    scores = np.asarray(query_vectors, dtype=np.float32) @ background.T
    top = min(TOP, scores.shape[1])
    return np.sort(scores, axis=1)[:, -top:].mean(axis=1) if top else np.zeros(len(scores), np.float32)


def margins(cosines: Sequence[float], level: float) -> list[float]:
    return [round(float(c) - float(level), 6) for c in cosines]


def threshold(min_margin: float, cut: float | None) -> float:
    """The margin a confident hit needs on an index: the index's ``cut``, never under
    ``FLOOR_SHARE`` of the model's ``min_margin``; without a cut, ``min_margin``."""
    if cut is None:
        return min_margin
    return max(FLOOR_SHARE * min_margin, cut)


def index_cut(query_vectors: np.ndarray, background: np.ndarray, best_cosines: np.ndarray,
              neighbours: tuple[np.ndarray, np.ndarray] | None = None) -> float:
    """An index's cut (see the module's docstring). ``query_vectors``: the background sentences
    embedded as queries, ``best_cosines`` their best cosine on the index; ``neighbours``: stored
    passages' vectors and the cosine of the nearest passage of another document to each
    (``Backend.neighbours``; -1 where none)."""
    near = None if neighbours is None else neighbours[1] - levels(neighbours[0], background)
    return cut(background_margins(query_vectors, background, best_cosines), near)


def background_margins(query_vectors: np.ndarray, background: np.ndarray, best_cosines: np.ndarray) -> np.ndarray:
    """The best margins that the background sentences (``query_vectors``, embedded as queries) get
    on an index, each one's level taken over the other background sentences."""
    scores = np.asarray(query_vectors, dtype=np.float32) @ background.T
    np.fill_diagonal(scores, -np.inf)  # not itself
    top = min(TOP, scores.shape[1] - 1)
    level = np.sort(scores, axis=1)[:, -top:].mean(axis=1)
    return np.asarray(best_cosines, dtype=np.float64) - level


def cut(elsewhere: np.ndarray, near: np.ndarray | None) -> float:
    """The cut from the margins text from elsewhere reaches (``background_margins``) and those of
    stored passages to their nearest passage of another document (``near``; None: not measured)."""
    reached = float(np.quantile(np.asarray(elsewhere, dtype=np.float64), QUANTILE))
    if near is None:
        return round(reached, 6)
    close = float(np.quantile(np.asarray(near, dtype=np.float64), NEAR_QUANTILE))
    return round(max(min(reached, close), NEAR_SHARE * close), 6)


def save(directory: Path, background: np.ndarray) -> None:
    """Write ``background.f32`` atomically (a crash leaves the old file or the new one)."""
    tmp = Path(directory) / (INDEX_FILE + ".tmp")
    with open(tmp, "wb") as fh:
        fh.write(np.ascontiguousarray(background, dtype="<f4").tobytes())
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, Path(directory) / INDEX_FILE)


def load(directory: Path, dimension: int) -> np.ndarray | None:
    """The stored background vectors, or None when absent or not of this index's shape."""
    try:
        data = (Path(directory) / INDEX_FILE).read_bytes()
    except OSError:
        return None
    if dimension < 1 or len(data) != 4 * dimension * 2 * len(background_texts()):
        return None  # not of this index's model, or of another background
    return np.frombuffer(data, dtype="<f4").reshape(-1, dimension).astype(np.float32)
