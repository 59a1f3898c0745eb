"""Second stage: a cross-encoder reads the query and each candidate passage together and rescores
the top candidates of the first (bi-encoder) stage. The only module that loads a CrossEncoder.

``Reranker`` is the small interface the index relies on (``score(query, passages)``, higher is
more relevant, in [0, 1]); ``CrossEncoderReranker`` implements it for any sentence-transformers
CrossEncoder with one output: the reranker that ships with textsearch (``zh-en-reranker``, a LoRA
adapter plus head trained by ``textsearch train-reranker``), a folder of your own, or a hub name.

A reranked hit's score blends both stages: ``weight × reranker score + (1 − weight) × cosine``.
``weight`` 1 is the reranker alone; the shipped reranker's weight was chosen on the dev split
(``textsearch eval corpora/pairs/dev.jsonl --rerank --calibrate``) and is stored next to it,
because our reranker alone ranks worse than the tuned bi-encoder but corrects its near misses.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from dataclasses import replace
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from ..models import loading
from ..models.adapters import PROMPTS_FILE, is_adapter_folder
from ..errors import InvalidArgumentError, ModelNotFoundError
from ..hits import Hit
from ..models.loading import refuse_pickle_weights
from ..models.registry import looks_like_path, materialize, read_calibration
from ..models.runtime import load_or_fall_back

DEFAULT_RERANKER = "zh-en-reranker"
RERANKER_ADAPTER = Path(__file__).parents[1] / "data" / DEFAULT_RERANKER
HOW_TO_TRAIN = (
    "train one with `textsearch train-reranker corpora/pairs/train.jsonl --out models/reranker` "
    "and pass --rerank-model models/reranker"
)


def resolve_reranker(spec: str | None, show_progress: bool = False) -> str:
    """What to pass to CrossEncoder(...): the merged folder of the shipped reranker or of a trained
    adapter folder, an existing local folder, or a hub name (machines with internet)."""
    spec = spec or DEFAULT_RERANKER
    if spec == DEFAULT_RERANKER:
        if not (RERANKER_ADAPTER / "adapter_model.safetensors").is_file():
            raise ModelNotFoundError(f"the default reranker is missing from {RERANKER_ADAPTER} — {HOW_TO_TRAIN}")
        return str(materialize(RERANKER_ADAPTER, show_progress))
    local = Path(spec).expanduser()
    if local.is_dir():
        folder = materialize(local, show_progress) if is_adapter_folder(local) else local.absolute()
        refuse_pickle_weights(folder)
        return str(folder)
    if looks_like_path(spec) or local.exists():
        raise ModelNotFoundError(f"reranker folder '{spec}' does not exist — {HOW_TO_TRAIN}")
    return spec


def calibration_spec(name: str) -> str:
    """The folder whose calibration file belongs to reranker ``name``."""
    return str(RERANKER_ADAPTER) if name == DEFAULT_RERANKER else name


def blend(weight: float, rerank_scores: np.ndarray, cosines: np.ndarray) -> np.ndarray:
    """The second stage's score: ``weight`` of the reranker's score, the rest the cosine."""
    return weight * np.asarray(rerank_scores, dtype=np.float64) + (1.0 - weight) * np.asarray(cosines, dtype=np.float64)


def check_weight(weight: float) -> float:
    if not 0.0 <= weight <= 1.0:
        raise InvalidArgumentError(f"rerank weight {weight} is out of range — give a number from 0 (cosine only) "
                                   "to 1 (reranker only)")
    return float(weight)


class Reranker:
    """Scores (query, passage) pairs; higher is more relevant. ``weight``: the reranker's share of
    a reranked hit's score, the rest being its cosine (1: the reranker alone)."""

    name: str = "reranker"
    weight: float = 1.0

    def score(self, query: str, passages: Sequence[str]) -> np.ndarray:
        raise NotImplementedError

    def rerank(self, query: str, hits: Sequence[Hit]) -> list[Hit]:
        """The hits sorted by their blended score (ties keep the first-stage order): each hit's
        ``score`` becomes ``blend(weight, reranker score, cosine)``, ``rerank_score`` the
        reranker's own and ``dense_score`` the cosine."""
        if not hits:
            return []
        scores = self.score(query, [h.text for h in hits])
        cosines = np.array([h.score if h.dense_score is None else h.dense_score for h in hits])
        final = blend(self.weight, scores, cosines)
        order = np.argsort(-final, kind="stable")
        return [replace(hits[i], score=round(float(final[i]), 6), rerank_score=round(float(scores[i]), 6),
                        dense_score=float(cosines[i])) for i in order]


class Memoized(Reranker):
    """Scores each (query, passage) once; its own ``weight``. Choosing a weight or a candidate
    count ranks the same pairs many times."""

    def __init__(self, inner: Reranker) -> None:
        self.inner, self.name, self.weight = inner, inner.name, inner.weight
        self.seen: dict[tuple[str, str], float] = {}

    def score(self, query: str, passages: Sequence[str]) -> np.ndarray:
        todo = [p for p in dict.fromkeys(passages) if (query, p) not in self.seen]
        if todo:
            self.seen.update(zip(((query, p) for p in todo), self.inner.score(query, todo).tolist()))
        return np.asarray([self.seen[(query, p)] for p in passages], dtype=np.float32)


RUNTIMES = ("auto", "torch", "onnx")  # auto: ONNX Runtime on CPU, torch on CUDA
_TOKENIZING = threading.Lock()  # one thread at a time in a fast tokenizer ("Already borrowed")


def _load(path: str, device: str, max_length: int, runtime: str, show_progress: bool = False) -> tuple[Any, Any]:
    """One (CrossEncoder, ONNX forward or None) per (path, device, max_length, runtime) per
    process: kept warm between queries. On ONNX Runtime, once exported, the reranker is its
    tokenizer and its graph, with no torch (``runtime.light_cross_encoder``); on first use the
    CrossEncoder loads to export it, and then only tokenises."""

    def make() -> tuple[Any, Any]:
        if runtime == "onnx":
            from ..models import runtime as onnx_runtime

            light = onnx_runtime.light_cross_encoder(path, max_length)
            if light is not None:  # exported already: tokenizer and ONNX Runtime, no torch
                return light
        model = loading.cross_encoder(path, device, max_length, hint=f"give a CrossEncoder folder, or {HOW_TO_TRAIN}")
        if runtime == "onnx":
            return model, onnx_runtime.load_reranker(model, path, show_progress)
        if device == "cuda":
            model.half()
        return model, None

    return loading.cached(("reranker", path, device, str(max_length), runtime), make)  # type: ignore[no-any-return]


def longest_input(folder: str | Path, asked: int) -> int:
    """``asked`` tokens, or the model's position table where that is shorter (a longer input has
    no position to take). RoBERTa-style tables start after the padding index."""
    config = Path(folder) / "config.json"
    if not config.is_file():
        return asked
    settings = json.loads(config.read_text(encoding="utf-8"))
    table = settings.get("max_position_embeddings")
    if not isinstance(table, int) or table <= 0:
        return asked
    offset = (settings.get("pad_token_id") or 0) + 1 if settings.get("model_type") in ("roberta", "xlm-roberta") else 0
    return max(1, min(asked, table - offset))


def read_prompts(folder: str | Path) -> dict[str, str]:
    path = Path(folder) / PROMPTS_FILE
    if not path.is_file():
        return {}
    return dict(json.loads(path.read_text(encoding="utf-8")).get("prompts") or {})


class CrossEncoderReranker(Reranker):
    """A sentence-transformers CrossEncoder with one output; scores are sigmoid probabilities.
    ``weight`` (default: the one calibrated for the reranker, else 1) blends them with the cosine."""

    def __init__(
        self, model: str | None = None, *, device: str | None = None, batch_size: int | None = None,
        max_length: int = 320, show_progress: bool = False, weight: float | None = None, runtime: str = "auto",
    ) -> None:

        if runtime not in RUNTIMES:
            raise InvalidArgumentError(f"unknown reranker runtime '{runtime}' — use one of {', '.join(RUNTIMES)}")
        if weight is not None:
            check_weight(weight)  # before the model loads
        self.name = model or DEFAULT_RERANKER
        self.path = resolve_reranker(self.name, show_progress)
        max_length = longest_input(self.path, max_length)
        self.device = device or loading.best_device()
        self.batch_size = batch_size or (128 if self.device == "cuda" else 16)
        chosen = "onnx" if runtime == "onnx" or (runtime == "auto" and self.device == "cpu") else "torch"
        (self._model, self._onnx), self.runtime = load_or_fall_back(
            f"reranker '{self.name}'", runtime, chosen,
            lambda: _load(self.path, self.device, max_length, chosen, show_progress),
            lambda: _load(self.path, self.device, max_length, "torch"), "use runtime torch")
        self.prompts = read_prompts(self.path)
        self.weight = check_weight(self.calibration.get("weight", 1.0) if weight is None else weight)

    @cached_property  # read once per process: a file read per query would sit on the hot path
    def calibration(self) -> dict[str, Any]:
        """The stored calibration, e.g. ``{"weight": 0.15}`` (``textsearch eval --rerank --calibrate``); a
        ``min_score`` there (written by hand) would judge the blended score."""
        return read_calibration(calibration_spec(self.name))

    def score(self, query: str, passages: Sequence[str]) -> np.ndarray:
        if not passages:
            return np.zeros(0, dtype=np.float32)
        # stripped on either runtime, as the encoder's texts are: the light tokenizer then takes
        # them all (transformers 5 drops that whitespace anyway; transformers 4 would add a token)
        q = (self.prompts.get("query", "") + query).strip()
        texts = [(self.prompts.get("passage", "") + text).strip() for text in passages]
        if self._onnx is not None:
            from ..models.runtime import score_pairs

            return score_pairs(self._model, self._onnx, [q] * len(texts), texts, self.batch_size, _TOKENIZING)
        with _TOKENIZING:  # predict tokenises and runs in one call: the torch path is serial
            scores = self._model.predict([(q, text) for text in texts], batch_size=self.batch_size,
                                         show_progress_bar=False, convert_to_numpy=True)
        return np.asarray(scores, dtype=np.float32).reshape(-1)
