"""Fake encoders for tests and benchmarks: exact, fast, no model.

``KeywordEncoder`` embeds a bag of known words (a test can work out every score by hand);
``HashEncoder`` gives each distinct text a fixed random unit vector, optionally clustered, for
storage, concurrency, churn and filter figures where meaning does not matter. Both follow the
``Encoder`` interface, so an ``Index`` takes them as it takes the real model.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence

import numpy as np

from .models.encoder import Encoder

VOCAB = [
    "<other>", "apple", "banana", "baby", "cat", "cute", "dog", "fish", "happy", "house",
    "night", "rain", "red", "sleep", "sun", "toy", "train", "tree", "water", "weather",
]
_WORD = re.compile(r"\w+|[^\w\s]")


class KeywordEncoder(Encoder):
    """Bag of known words, one dimension each (unknown words share ``<other>``), unit length.

    cos("cat", "cat dog") = 1 / sqrt(2) = 0.7071; cos("cat", "dog") = 0.
    """

    def __init__(self, name: str = "keyword-test", vocab: Sequence[str] = VOCAB) -> None:
        self.name = name
        self.vocab = {w: i for i, w in enumerate(vocab)}
        self.dimension = len(vocab)
        self.prompts = {}
        self.calls = 0  # passages embedded, to check that unchanged documents are not re-embedded

    def _vectors(self, texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in re.findall(r"\w+", text.lower()):
                out[row, self.vocab.get(word, 0)] += 1.0
            norm = np.linalg.norm(out[row])
            if norm == 0:
                out[row, 0] = 1.0
            else:
                out[row] /= norm
        return out

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self._vectors(texts)

    def encode_passages(self, texts: Sequence[str], show_progress: bool = False) -> np.ndarray:
        self.calls += len(texts)
        return self._vectors(texts)

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        return [len(_WORD.findall(t)) for t in texts]


class HashEncoder(Encoder):
    """A fixed unit vector per distinct text, seeded by its hash: a realistic dimension and spread,
    no model. With ``centres``, each vector lies near one of that many random centres (clustered,
    like real embeddings). For tests and benchmarks of storage, concurrency and churn, not of
    meaning."""

    def __init__(self, name: str = "hash-test", dimension: int = 64, centres: int = 0, noise: float = 0.08) -> None:
        self.name = name
        self.dimension = dimension
        self.prompts = {}
        self.noise = noise
        self.centres = np.random.default_rng(0).standard_normal((centres, dimension)).astype(np.float32)
        self.centres /= np.linalg.norm(self.centres, axis=1, keepdims=True) if centres else 1.0

    def _vectors(self, texts: Sequence[str]) -> np.ndarray:
        out = np.empty((len(texts), self.dimension), dtype=np.float32)
        for row, text in enumerate(texts):
            seed = int.from_bytes(hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=8).digest(), "little")
            noise = np.random.default_rng(seed).standard_normal(self.dimension)
            v = self.centres[seed % len(self.centres)] + self.noise * noise if len(self.centres) else noise.astype(np.float32)
            out[row] = v / np.linalg.norm(v)
        return out

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self._vectors(texts)

    def encode_passages(self, texts: Sequence[str], show_progress: bool = False) -> np.ndarray:
        return self._vectors(texts)

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        return [len(_WORD.findall(t)) for t in texts]
