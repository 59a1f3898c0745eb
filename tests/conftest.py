"""Shared fixtures: the fake encoders of ``textsearch.testing`` (exact, fast) and the real bundled model."""

from __future__ import annotations

from pathlib import Path

import pytest

from textsearch.testing import KeywordEncoder


@pytest.fixture
def encoder() -> KeywordEncoder:
    return KeywordEncoder()


@pytest.fixture(scope="session")
def real_encoder():
    """The bundled multilingual model (built once into the user cache, then reused)."""
    from textsearch.models.encoder import SentenceTransformerEncoder

    return SentenceTransformerEncoder(device="cpu")


@pytest.fixture
def tiny_corpus(tmp_path: Path) -> Path:
    """Five files: two .txt (one GBK), one .md, one .jsonl with two rows, one unsupported."""
    root = tmp_path / "corpus"
    (root / "pets").mkdir(parents=True)
    (root / "pets" / "cat.txt").write_text("The cat sleeps in the sun.", encoding="utf-8")
    (root / "pets" / "dog.md").write_text("# Dog\n\nThe dog likes water.", encoding="utf-8")
    (root / "gbk.txt").write_bytes("天气很好，我们去公园。the weather is happy".encode("gbk"))
    (root / "food.jsonl").write_text(
        '{"id": "f1", "text": "a red apple", "lang": "en", "year": 2021}\n'
        '{"id": "f2", "text": "a banana tree", "year": 2019}\n',
        encoding="utf-8",
    )
    (root / "image.png").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00")
    return root
