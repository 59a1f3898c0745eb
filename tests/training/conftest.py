"""A tiny sentence-transformers model built here, offline, in a second: a 2-layer BERT with 32
dimensions and random weights (seeded), a character-level WordPiece vocabulary, mean pooling and
e5's prompts. Training code runs on it exactly as on the real model, only small."""

from __future__ import annotations

import string
from pathlib import Path

import pytest


def build_tiny_model(folder: Path) -> Path:
    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Pooling, Transformer
    from transformers import BertConfig, BertModel, BertTokenizerFast

    torch.manual_seed(0)
    raw = folder / "bert"
    raw.mkdir(parents=True)
    chars = string.ascii_lowercase + string.digits + string.punctuation
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *chars, *(f"##{c}" for c in chars)]
    (raw / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    BertTokenizerFast(str(raw / "vocab.txt"), do_lower_case=True).save_pretrained(str(raw))
    BertModel(BertConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                         intermediate_size=64, max_position_embeddings=128)).save_pretrained(str(raw))
    model = SentenceTransformer(modules=[Transformer(str(raw), max_seq_length=64), Pooling(32, "mean")],
                                prompts={"query": "query: ", "passage": "passage: "}, device="cpu")
    model.save(str(folder / "model"))
    return folder / "model"


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The path of the tiny model (pass it as ``TrainConfig.base_model``)."""
    return str(build_tiny_model(tmp_path_factory.mktemp("tiny")))


@pytest.fixture
def one_thread():
    """The tiny model trains several times faster on one thread than on contended cores."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
