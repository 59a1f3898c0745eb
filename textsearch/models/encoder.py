"""Text → unit vectors. The only module that imports sentence-transformers.

``Encoder`` is the small interface the rest of textsearch relies on; ``SentenceTransformerEncoder``
implements it for any sentence-transformers model (the bundled one by default), its transformer
run by torch or, on CPU, by ONNX Runtime (``runtime.py``). Tests and other apps may pass their own
``Encoder`` subclass to ``Index``.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from functools import cached_property
from typing import Any

import numpy as np

from . import loading
from ..config import DEFAULT_MIN_MARGIN
from ..errors import ModelError, ModelNotFoundError
from .registry import BUILTIN_MODELS, DEFAULT_MODEL, SHIPPED_ADAPTERS, read_calibration, resolve_model
from .runtime import load_or_fall_back

PROBE_TEXT = "textsearch probe — 可爱的宝宝 and a cute baby."
# How the transformer runs. "auto": ONNX Runtime fp32 on CPU (torch's vectors, faster; torch
# where the model does not export), torch fp16 on CUDA. "onnx-int8" embeds differently from the
# others (cosine ~0.99 to fp32), so an index built with it keeps it.
RUNTIMES = ("auto", "torch", "onnx", "onnx-int8")


class Encoder:
    """What an index needs from a model. Vectors are float32, shape (n, dimension), unit length."""

    name: str = "encoder"
    dimension: int = 0
    prompts: dict[str, str] = {}

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        raise NotImplementedError

    def encode_passages(
        self, texts: Sequence[str], show_progress: bool = False
    ) -> np.ndarray:
        raise NotImplementedError

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        raise NotImplementedError

    def probe(self) -> list[float]:
        """The embedding of a fixed text: two models that agree on it are taken to be the same."""
        return [float(x) for x in self.encode_passages([PROBE_TEXT])[0]]


def same_model(encoder: Encoder, dimension: int, probe: Sequence[float]) -> bool:
    if encoder.dimension != dimension:
        return False
    if not probe:  # an index that recorded no probe can only be checked by dimension
        return True
    a, b = np.asarray(encoder.probe(), dtype=np.float64), np.asarray(probe, dtype=np.float64)
    cosine = float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b) + 1e-12))
    return cosine >= 0.999


# One thread at a time in a tokenizer: a fast tokenizer that one thread reconfigures (truncation,
# padding) while another encodes fails with "Already borrowed". Ingestion splits documents (which
# counts tokens) while a helper thread embeds the previous batch.
_TOKENIZING = threading.RLock()


def _load(path: str, device: str, runtime: str = "torch", show_progress: bool = False) -> tuple[Any, Any]:
    """One (SentenceTransformer, ONNX forward or None) per (path, device, runtime) per process,
    kept warm between calls. On ONNX Runtime the model only tokenises: once exported, it is
    loaded without its transformer's weights (or they are released after the export)."""

    def make() -> tuple[Any, Any]:
        if runtime == "torch":
            return _sentence_transformer(path, device), None
        from . import runtime as onnx_runtime

        precision = onnx_runtime.precision_of(runtime)
        light = onnx_runtime.light_model(path, precision)
        if light is not None:  # exported already: tokenizers and ONNX Runtime, no torch
            return light
        model = None
        if onnx_runtime.is_exported(path, precision):
            try:
                model = _sentence_transformer(path, device, weights=False)
            except ModelNotFoundError:  # a model that cannot be built weightless: load it whole
                model = None
        model = model or _sentence_transformer(path, device)
        return model, onnx_runtime.load(model, path, precision, show_progress)

    return loading.cached(("encoder", path, device, runtime), make)  # type: ignore[no-any-return]


def _sentence_transformer(path: str, device: str, weights: bool = True) -> Any:
    names = ", ".join([*SHIPPED_ADAPTERS, *BUILTIN_MODELS])
    return loading.sentence_transformer(path, device, weights=weights, hint=(
        f"give a sentence-transformers folder, a builtin name ({names}), or a hub name on a machine with internet"))


class SentenceTransformerEncoder(Encoder):
    """Any sentence-transformers model; ``None`` means the bundled default."""

    def __init__(
        self,
        model: str | None = None,
        *,
        device: str | None = None,
        batch_size: int | None = None,
        show_progress: bool = False,
        runtime: str = "auto",
    ) -> None:
        if runtime not in RUNTIMES:
            raise ModelError(f"unknown runtime '{runtime}' — use one of {', '.join(RUNTIMES)}")
        self.name = model or DEFAULT_MODEL
        self.path = resolve_model(self.name, show_progress=show_progress)
        self.device = device or loading.best_device()
        self.batch_size = batch_size or (256 if self.device == "cuda" else 32)  # 32: as fast as 64 on CPU, half the memory
        chosen = self._runtime(runtime)
        (self._model, self._onnx), self.runtime = load_or_fall_back(
            f"'{self.name}'", runtime, chosen, lambda: _load(self.path, self.device, chosen, show_progress),
            lambda: _load(self.path, self.device), "use --runtime torch")
        dimension = getattr(self._model, "get_embedding_dimension", None) or getattr(
            self._model, "get_sentence_embedding_dimension"
        )
        self.dimension = int(dimension() or 0)
        if not self.dimension:
            raise ModelError(f"model '{self.name}' does not report an embedding dimension")
        self.prompts = dict(getattr(self._model, "prompts", {}) or {})
        self.reuse_repeated = True  # embed a text given more than once in a call once (False: as sentence-transformers does)

    def _runtime(self, runtime: str) -> str:
        if runtime == "auto":
            return "onnx" if self.device == "cpu" else "torch"
        if runtime != "torch" and self.device != "cpu":
            raise ModelError(f"runtime '{runtime}' runs on CPU only — use --runtime torch on {self.device}")
        return runtime

    @cached_property  # read once per process: a file read per query would sit on the hot path
    def calibration(self) -> dict[str, Any]:
        """The model's confidence rule: ``min_margin`` (``search/confidence.py``), the one ``textsearch eval
        --calibrate`` stored for the model, else ``DEFAULT_MIN_MARGIN``."""
        return {"min_margin": DEFAULT_MIN_MARGIN, **read_calibration(self.name)}

    def _prompt_name(self, *candidates: str) -> str | None:
        return next((c for c in candidates if c in self.prompts), None)

    def _encode(self, texts: Sequence[str], prompt_name: str | None, show_progress: bool) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        if self.reuse_repeated:
            first: dict[str, int] = {}
            where = [first.setdefault(text, len(first)) for text in texts]
            if len(first) < len(where):  # a text given twice is embedded once: same vector, less work
                return self._encode(list(first), prompt_name, show_progress)[where]
        if self._onnx is not None:
            from . import runtime as onnx_runtime

            prompt = self.prompts.get(prompt_name or "", "")
            return onnx_runtime.encode(self._model, self._onnx, list(texts), prompt, self.batch_size,
                                       tokenizing=_TOKENIZING)
        with _TOKENIZING:  # sentence-transformers tokenises inside encode
            vectors = self._model.encode(
                list(texts),
                prompt_name=prompt_name,
                batch_size=self.batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=show_progress,
            )
        return np.ascontiguousarray(vectors, dtype=np.float32)

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode(texts, self._prompt_name("query"), False)

    def encode_passages(self, texts: Sequence[str], show_progress: bool = False) -> np.ndarray:
        return self._encode(texts, self._prompt_name("passage", "document"), show_progress)

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        if not texts:
            return []
        with _TOKENIZING:
            encoded = self._model.tokenizer(
                list(texts), add_special_tokens=False, return_attention_mask=False, verbose=False
            )
        return [len(ids) for ids in encoded["input_ids"]]
