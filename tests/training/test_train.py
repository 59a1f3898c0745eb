"""Fine-tuning on tiny data with a real (small) model: every format and loss takes real gradient
steps that lower the loss; outputs are small, atomic and reproducible; bad input fails clearly."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file

from textsearch.errors import InvalidArgumentError
from textsearch.training.bi_encoder import TrainConfig, train

pytestmark = pytest.mark.model

BASE = "all-MiniLM-L6-v2"  # the small builtin: 6 layers, fast on CPU
ANIMALS = [
    ("the cat sleeps on the sofa", "a kitten is napping on the couch", "the sofa is on sale"),
    ("it will rain tomorrow", "expect showers the next day", "it rained yesterday"),
    ("my phone battery died", "the mobile ran out of charge", "my phone bill is due"),
    ("the train is late", "the railway service is delayed", "the train is early"),
    ("he cooked dinner", "he made the evening meal", "he ate dinner out"),
    ("buy fresh bread", "purchase a new loaf", "bread is bad for ducks"),
]


def write(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    return {
        "pairs": write(tmp_path / "pairs.jsonl", [{"anchor": a, "positive": p} for a, p, _ in ANIMALS]),
        "triplets": write(tmp_path / "triplets.jsonl",
                          [{"anchor": a, "positive": p, "negative": n} for a, p, n in ANIMALS]),
        "labels": write(tmp_path / "labels.jsonl",
                        [{"sentence1": a, "sentence2": p, "label": 1} for a, p, _ in ANIMALS]
                        + [{"sentence1": a, "sentence2": n, "label": 0} for a, _, n in ANIMALS]),
        "scores": write(tmp_path / "scores.jsonl",
                        [{"sentence1": a, "sentence2": p, "score": 0.9} for a, p, _ in ANIMALS]
                        + [{"sentence1": a, "sentence2": n, "score": 0.1} for a, _, n in ANIMALS]),
    }


@pytest.mark.parametrize(
    "loss, data",
    [("mnrl", "pairs"), ("mnrl", "triplets"), ("triplet", "triplets"), ("contrastive", "labels"),
     ("online-contrastive", "labels"), ("cosine", "scores")],
)
def test_every_loss_lowers_its_loss(loss: str, data: str, files, tmp_path: Path) -> None:
    config = TrainConfig(loss=loss, epochs=8, batch_size=4, lr=1e-3, base_model=BASE, log_every=1)
    result = train(files[data], tmp_path / "out", config, device="cpu")
    assert result.steps >= 8 and result.first_loss is not None
    assert result.last_loss < result.first_loss  # real gradient steps on real data


def test_lora_output_is_small_and_loadable(files, tmp_path: Path) -> None:
    from textsearch.models.encoder import SentenceTransformerEncoder

    out = tmp_path / "tuned"
    train(files["triplets"], out, TrainConfig(epochs=2, batch_size=4, base_model=BASE), device="cpu")
    names = sorted(p.name for p in out.iterdir())
    assert names == ["adapter_config.json", "adapter_model.safetensors", "textsearch_model.json"]
    assert sum(p.stat().st_size for p in out.iterdir()) < 8_000_000
    marker = json.loads((out / "textsearch_model.json").read_text())
    assert marker["base"] == BASE and marker["kind"] == "lora"
    tuned, base = SentenceTransformerEncoder(str(out), device="cpu"), SentenceTransformerEncoder(BASE, device="cpu")
    a, b = tuned.encode_passages(["a cat"]), base.encode_passages(["a cat"])
    assert tuned.dimension == 384 and 0.9 < float(a[0] @ b[0]) < 0.99999  # changed, not broken


def test_same_seed_same_adapter(files, tmp_path: Path) -> None:
    config = TrainConfig(epochs=1, batch_size=4, base_model=BASE, seed=7)
    for name in ("one", "two"):
        train(files["pairs"], tmp_path / name, config, device="cpu")
    one = load_file(str(tmp_path / "one" / "adapter_model.safetensors"))
    two = load_file(str(tmp_path / "two" / "adapter_model.safetensors"))
    assert one.keys() == two.keys()
    for key in one:
        np.testing.assert_allclose(one[key], two[key], atol=1e-6)


def test_mined_negatives_are_added(files, tmp_path: Path) -> None:
    from sentence_transformers import SentenceTransformer

    from textsearch.models.registry import resolve_model
    from textsearch.training.pairs import read_pairs
    from textsearch.training.lora import mine

    model = SentenceTransformer(resolve_model(BASE), device="cpu")
    mined = mine(model, read_pairs(files["pairs"]), 2)
    # every anchor has the five other rows' positives as candidates, all unrelated: two are kept
    assert [len(row["negative"]) for row in mined.rows] == [2] * len(ANIMALS)
    for row in mined.rows:
        assert row["positive"] not in row["negative"]


@pytest.mark.parametrize(
    "loss, data, message",
    [("triplet", "pairs", "needs a negative on every row"),
     ("contrastive", "triplets", "needs columns sentence1, sentence2, label"),
     ("cosine", "labels", "needs columns sentence1, sentence2, score"),
     ("hinge", "pairs", "unknown loss 'hinge'")],
)
def test_loss_that_does_not_fit_the_format(loss, data, message, files, tmp_path: Path) -> None:
    out = tmp_path / "never"
    with pytest.raises(InvalidArgumentError, match=message):
        train(files[data], out, TrainConfig(loss=loss, base_model=BASE), device="cpu")
    assert not out.exists()


def test_malformed_row_names_file_and_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"anchor": "a", "positive": "b"}\n{"anchor": "c"}\n', encoding="utf-8")
    with pytest.raises(InvalidArgumentError, match=r"bad.jsonl line 2: column 'positive'"):
        train(bad, tmp_path / "out", TrainConfig(base_model=BASE), device="cpu")
    assert not (tmp_path / "out").exists()


def test_interpolate_keeps_a_share_of_the_change(files, tmp_path: Path) -> None:
    # the same training twice (same seed); the second keeps 0.5 of the LoRA change: the same
    # matrices, lora_alpha 32 × 0.5 = 16, so its merged update is half the first's
    whole, half = tmp_path / "whole", tmp_path / "half"
    train(files["pairs"], whole, TrainConfig(epochs=1, batch_size=4, base_model=BASE, seed=3), device="cpu")
    train(files["pairs"], half, TrainConfig(epochs=1, batch_size=4, base_model=BASE, seed=3, interpolate=0.5),
          device="cpu")
    alphas = [json.loads((d / "adapter_config.json").read_text())["lora_alpha"] for d in (whole, half)]
    assert alphas == [32, 16.0]
    one, two = load_file(str(whole / "adapter_model.safetensors")), load_file(str(half / "adapter_model.safetensors"))
    for key in one:
        np.testing.assert_allclose(one[key], two[key], atol=1e-6)
    assert json.loads((half / "textsearch_model.json").read_text())["config"]["interpolate"] == 0.5
    for bad in (0.0, 1.5):
        with pytest.raises(InvalidArgumentError, match="interpolate"):
            train(files["pairs"], tmp_path / "bad", TrainConfig(base_model=BASE, interpolate=bad), device="cpu")
