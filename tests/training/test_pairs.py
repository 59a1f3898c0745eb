"""Training-pair construction: deterministic splits, no leak of test sentences into training."""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

import pytest

from textsearch.errors import CorpusError
from textsearch.training.pairs import (
    HANDWRITTEN_SPLIT,
    build_pairs,
    lexical_neighbours,
    split_of,
    synonym_variant,
)

PAIRS = Path(__file__).resolve().parents[2] / "corpora" / "pairs"


def test_split_is_deterministic_and_follows_the_ratios() -> None:
    keys = [f"sentence {i}" for i in range(5000)]
    first = [split_of(k, HANDWRITTEN_SPLIT) for k in keys]
    assert first == [split_of(k, HANDWRITTEN_SPLIT) for k in keys]
    shares = {name: first.count(name) / len(keys) for name in HANDWRITTEN_SPLIT}
    assert shares["train"] == pytest.approx(0.70, abs=0.03)
    assert shares["test"] == pytest.approx(0.20, abs=0.03)


def test_synonym_variant_swaps_a_segmented_word() -> None:
    synonyms = {"喜欢": ["喜爱"]}
    assert synonym_variant("我很喜欢猫", synonyms, random.Random(0)) == "我很喜爱猫"
    assert synonym_variant("今天下雨", synonyms, random.Random(0)) is None


def test_lexical_neighbour_shares_the_most_words() -> None:
    texts = ["我喜欢吃苹果", "他喜欢吃苹果和香蕉", "明天会下雨", "明天下午会下大雨"]
    assert lexical_neighbours(texts) == [1, 0, 3, 2]


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> tuple[Path, dict[str, int]]:
    folder = tmp_path_factory.mktemp("pairs")
    for path in PAIRS.glob("handwritten_*.jsonl"):
        shutil.copy(path, folder / path.name)
    return folder, build_pairs(folder)


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_build_writes_every_split(built) -> None:
    folder, counts = built
    assert set(counts) == {"train", "dev", "test_zh", "test_en", "test_zh_en", "test_hsk"}
    for name, n in counts.items():
        assert len(_rows(folder / f"{name}.jsonl")) == n > 0


def test_no_test_sentence_or_variant_leaks_into_training(built) -> None:
    folder, _ = built
    train = _rows(folder / "train.jsonl")
    train_sources = {r["source"] for r in train}
    train_texts = {r["anchor"] for r in train} | {r["positive"] for r in train}
    for name in ("test_zh", "test_en", "test_zh_en", "test_hsk", "dev"):
        for row in _rows(folder / f"{name}.jsonl"):
            assert row["source"] not in train_sources
            assert row["anchor"] not in train_texts  # nor any variant of the same source sentence


def test_hsk_training_rows_have_no_lexical_negative(built) -> None:
    folder, _ = built
    train = _rows(folder / "train.jsonl")
    assert all("negative" not in r for r in train if r["source"].startswith("hsk:"))
    assert all(r["negative"] for r in train if r["source"].startswith("handwritten"))


def test_the_committed_files_are_what_build_produces(built) -> None:
    folder, _ = built
    for path in folder.glob("*.jsonl"):
        assert path.read_text(encoding="utf-8") == (PAIRS / path.name).read_text(encoding="utf-8"), path.name


def test_missing_handwritten_triples_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(CorpusError, match="hand-written triples are missing"):
        build_pairs(tmp_path)
