"""Labelled training (text, label rows): the format and its errors, every loss with every miner,
the trainer optimising the proxies, and group-by-label batches, on the tiny model of conftest.py."""

from __future__ import annotations

import json
import logging
import math
import re
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import torch
from transformers import TrainerCallback
from typer.testing import CliRunner

from textsearch.cli import app
from textsearch.errors import InvalidArgumentError
from textsearch.training import labelled
from textsearch.training.bi_encoder import TrainConfig, train
from textsearch.training.pairs import FORMATS, read_pairs

pytestmark = pytest.mark.usefixtures("one_thread")

GROUPS = {  # 4 labels × 4 texts, and one label with a single text
    "cat": ["the cat sleeps", "a kitten naps", "my cat is asleep", "the kitty dozes"],
    "rain": ["it will rain", "showers tomorrow", "expect rain", "wet weather ahead"],
    "train": ["the train is late", "rail delays", "my train is delayed", "trains run late"],
    "bread": ["buy bread", "get a loaf", "pick up bread", "purchase a baguette"],
    "solo": ["a text alone"],
}
ROWS = [{"text": t, "label": label} for label, texts in GROUPS.items() for t in texts]


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture
def labelled_file(tmp_path: Path) -> Path:
    return write_jsonl(tmp_path / "labelled.jsonl", ROWS)


# --- the format ---------------------------------------------------------------------------------
@pytest.mark.parametrize("suffix, text", [
    (".jsonl", '{"text": "a cat", "label": "cat"}\n{"text": "a kitten", "label": 3}\n'),
    (".csv", 'text,label\n"a cat, asleep",cat\na kitten,3\n'),
    (".tsv", "text\tlabel\na cat, asleep\tcat\na kitten\t3\n"),
])
def test_a_labelled_file_is_detected_in_every_format(suffix: str, text: str, tmp_path: Path) -> None:
    path = tmp_path / f"labelled{suffix}"
    path.write_text(text, encoding="utf-8")
    pairs = read_pairs(path, formats=FORMATS)
    assert pairs.format == "labelled"
    first = "a cat" if suffix == ".jsonl" else "a cat, asleep"
    assert [(r["text"], r["label"]) for r in pairs.rows] == [(first, "cat"), ("a kitten", "3")]  # labels are text


def test_readers_of_pairs_refuse_a_labelled_file(labelled_file: Path) -> None:
    with pytest.raises(InvalidArgumentError, match=r"labelled.jsonl is a labelled file \(text, label\); this needs "
                                                   r"anchor, positive \| sentence1, sentence2, label \|"):
        read_pairs(labelled_file)  # evaluation, the reranker: pair formats only


@pytest.mark.parametrize("name, text, message", [
    ("missing.jsonl", '{"text": "a", "label": "x"}\n{"label": "x"}\n', r"missing.jsonl line 2: column 'text' is missing"),
    ("blank.csv", "text,label\na,x\nb,  \n", r"blank.csv line 3: column 'label' is missing or empty"),
    ("listed.jsonl", '{"text": "a", "label": ["x"]}\n', r"listed.jsonl line 1: column 'label' must be text or an integer"),
    ("nothing.tsv", "sentence\tgroup\na\tx\n", (r"nothing.tsv: columns sentence, group match no format — use "
                                                r"anchor, positive \| .* \| text, label")),
])
def test_a_bad_row_names_its_file_and_line(name: str, text: str, message: str, tmp_path: Path) -> None:
    (tmp_path / name).write_text(text, encoding="utf-8")
    with pytest.raises(InvalidArgumentError, match=message):
        read_pairs(tmp_path / name, formats=FORMATS)


class Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@contextmanager
def warnings_of(module: Any) -> Iterator[list[str]]:
    """The messages ``module`` logs meanwhile (a handler of its own: the CLI's set-up stops propagation)."""
    records = Records()
    logging.getLogger(module.__name__).addHandler(records)
    try:
        yield records.messages
    finally:
        logging.getLogger(module.__name__).removeHandler(records)


def test_the_labelled_set_drops_single_text_labels_and_numbers_the_rest(labelled_file: Path) -> None:
    with warnings_of(labelled) as messages:
        found = labelled.labelled_set(read_pairs(labelled_file, formats=FORMATS))
    assert found.names == ["cat", "rain", "train", "bread"]  # in order of first appearance
    assert found.labels == [0] * 4 + [1] * 4 + [2] * 4 + [3] * 4 and found.singletons == 1
    assert found.texts == [t for g in ("cat", "rain", "train", "bread") for t in GROUPS[g]]
    assert messages == [(f"{labelled_file}: 1 of 5 labels have a single text and are left out "
                         "(a text needs another of its label to form a positive)")]


def test_a_repeated_text_counts_once_and_a_text_under_two_labels_is_left_out(tmp_path: Path) -> None:
    repeated = write_jsonl(tmp_path / "r.jsonl", [*ROWS, {"text": "buy bread", "label": "bread"}])
    assert len(labelled.labelled_set(read_pairs(repeated, formats=FORMATS)).texts) == 16
    torn = write_jsonl(tmp_path / "t.jsonl", [*ROWS, {"text": "buy bread", "label": "cat"}])
    with warnings_of(labelled) as messages:
        found = labelled.labelled_set(read_pairs(torn, formats=FORMATS))
    assert "buy bread" not in found.texts and found.labels == [0] * 4 + [1] * 4 + [2] * 4 + [3] * 3
    assert messages[0] == f"{torn}: 1 texts have two or more labels and are left out ('buy bread': bread, cat)"


def test_fewer_than_two_labels_with_two_texts_is_refused(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "few.jsonl", [{"text": t, "label": "cat"} for t in GROUPS["cat"]]
                       + [{"text": "x", "label": "a"}, {"text": "y", "label": "b"}])
    with pytest.raises(InvalidArgumentError, match="needs at least 2 labels with 2 or more texts each, found 1"):
        labelled.labelled_set(read_pairs(path, formats=FORMATS))


def test_the_sampler_arithmetic_matches_sentence_transformers() -> None:
    from datasets import Dataset
    from sentence_transformers.base.sampler import GroupByLabelBatchSampler

    labels = [0] * 9 + [1] * 6 + [2] * 3 + [3] * 2 + [4]
    sampler = GroupByLabelBatchSampler(Dataset.from_dict({"label": labels}), batch_size=6, drop_last=False,
                                       valid_label_columns=["label"], generator=torch.Generator(), seed=0)
    # pairs per label 4, 3, 1, 1 (the single text never pairs); the round-robin stops when one label
    # is left, so the first is cut to the second's 3: 2 × (3 + 3 + 1 + 1) = 16 texts, batches 6 + 6 + 4
    assert labelled.texts_per_epoch(labels, 6) == sum(len(b) for b in sampler) == 16


# --- mismatches and bad options: refused before any model loads ------------------------------------
@pytest.mark.parametrize("data, config, message", [
    ("labelled", TrainConfig(loss="mnrl"), (
        r"loss 'mnrl' needs columns anchor, positive\[, negative\], but .*labelled.jsonl is a labelled file "
        r"\(text, label\) — choose a loss for it: multi-similarity, lifted-structure, proxy-nca, proxy-anchor, "
        r"batch-hard-triplet")),
    ("pairs", TrainConfig(loss="multi-similarity"), (
        r"loss 'multi-similarity' needs columns text, label, but .*pairs.jsonl is a triplet pair file "
        r"\(anchor, positive\) — choose a loss for it: mnrl, triplet")),
    ("pairs", TrainConfig(loss="mnrl", miner="batch-hard"), "--miner works with the labelled losses"),
    ("labelled", TrainConfig(loss="proxy-anchor", miner="hardest"), "unknown miner 'hardest'"),
    ("labelled", TrainConfig(loss="proxy-anchor", batch_size=7), "--batch-size 7: labelled training takes an even"),
    ("labelled", TrainConfig(loss="proxy-anchor", distance="euclidean"), "compare cosine similarities"),
])
def test_a_loss_or_option_that_does_not_fit_is_refused(data, config, message, labelled_file: Path,
                                                       tmp_path: Path) -> None:
    files = {"labelled": labelled_file,
             "pairs": write_jsonl(tmp_path / "pairs.jsonl", [{"anchor": "a", "positive": "b"}])}
    with pytest.raises(InvalidArgumentError, match=message):
        train(files[data], tmp_path / "out", config, device="cpu")
    assert not (tmp_path / "out").exists() and not (tmp_path / ".out.training").exists()


# --- the losses and miners --------------------------------------------------------------------------
@pytest.mark.parametrize("loss", labelled.LOSSES)
@pytest.mark.parametrize("miner", labelled.MINERS)
def test_every_loss_with_every_miner_gives_a_finite_loss_and_gradients(loss: str, miner: str, tiny_model: str) -> None:
    from sentence_transformers import SentenceTransformer

    torch.manual_seed(0)
    model = SentenceTransformer(tiny_model, device="cpu")
    module = labelled.LabelledLoss(model, labelled.make_loss(loss, 4, 32, None), labelled.make_miner(miner))
    texts = [t for g in ("cat", "rain", "train", "bread") for t in GROUPS[g][:2]]
    value = module([model.tokenize(texts)], torch.tensor([0, 0, 1, 1, 2, 2, 3, 3]))
    value.backward()
    assert value.dim() == 0 and math.isfinite(value.item())
    grads = [p.grad for p in module.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)


class Watch(TrainerCallback):
    """Keeps the optimizer's proxy matrix (num_classes × 32) at the start and the end, and the
    labels of every batch the trainer's dataloader gives."""

    def __init__(self) -> None:
        self.proxies: list[torch.Tensor] = []
        self.batches: list[list[int]] = []

    def _proxies(self, optimizer: Any) -> None:
        found = [p for g in optimizer.param_groups for p in g["params"] if p.shape == (4, 32)]
        self.proxies += [f.detach().clone() for f in found]

    def on_train_begin(self, args, state, control, optimizer=None, train_dataloader=None, **kwargs) -> None:
        self._proxies(optimizer)
        self.batches = [batch["label"].tolist() for batch in train_dataloader]

    def on_train_end(self, args, state, control, optimizer=None, **kwargs) -> None:
        self._proxies(optimizer)


@pytest.mark.parametrize("loss, miner", [
    ("multi-similarity", None), ("lifted-structure", "semi-hard"), ("proxy-nca", "distance-weighted"),
    ("proxy-anchor", "batch-hard"), ("batch-hard-triplet", "multi-similarity"),
])
def test_each_loss_trains_and_the_proxies_learn(loss: str, miner: str | None, labelled_file: Path,
                                                tiny_model: str, tmp_path: Path) -> None:
    watch = Watch()
    config = TrainConfig(loss=loss, miner=miner, batch_size=8, epochs=1, lr=1e-3, base_model=tiny_model, log_every=1)
    result = train(labelled_file, tmp_path / "out", config, device="cpu", callbacks=[watch])
    # 16 texts (the single one left out) in pairs of one label: 2 batches of 8 per epoch
    assert result.steps == 2 and result.rows == 16
    assert math.isfinite(result.first_loss) and math.isfinite(result.last_loss)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "adapter_config.json", "adapter_model.safetensors", "textsearch_model.json"]
    if loss in labelled.PROXY_LOSSES:
        start, end = watch.proxies  # one proxy matrix, optimised: it moved
        assert not torch.equal(start, end)
    else:
        assert watch.proxies == []


def test_batches_hold_two_or_more_texts_of_each_label(tmp_path: Path, tiny_model: str) -> None:
    sizes = {"a": 6, "b": 5, "c": 3, "d": 2, "e": 1}
    path = write_jsonl(tmp_path / "uneven.jsonl", [{"text": f"{k} text {i}", "label": k}
                                                   for k, n in sizes.items() for i in range(n)])
    watch = Watch()
    train(path, tmp_path / "out", TrainConfig(loss="multi-similarity", batch_size=6, base_model=tiny_model),
          device="cpu", callbacks=[watch])
    # pairs per label 3, 2, 1, 1 ("e" left out); the first is cut to the second's 2: 2 × 6 = 12 texts
    assert [len(b) for b in watch.batches] == [6, 6]
    for batch in watch.batches:
        counts = Counter(batch)
        assert len(counts) >= 2 and min(counts.values()) >= 2, batch


# --- the command ------------------------------------------------------------------------------------
def test_the_train_command_trains_on_a_labelled_file(labelled_file: Path, tiny_model: str, tmp_path: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "grouped"
    result = runner.invoke(app, ["train", str(labelled_file), "--out", str(out), "--loss", "proxy-anchor",
                                 "--miner", "semi-hard", "--batch-size", "8", "--base", tiny_model, "--quiet"])
    assert result.exit_code == 0, result.output
    assert re.match(rf"trained {out} on 16 texts \((cpu|cuda)\): 2 steps in ", result.stdout)
    assert " texts/s, 14,336 trainable parameters" in result.stdout  # r=16: 2 × (4·16·(32+32) + 2·16·(32+64))
    marker = json.loads((out / "textsearch_model.json").read_text(encoding="utf-8"))
    assert (marker["config"]["loss"], marker["config"]["miner"]) == ("proxy-anchor", "semi-hard")

    wrong = runner.invoke(app, ["train", str(labelled_file), "--out", str(tmp_path / "x"), "--base", tiny_model])
    assert wrong.exit_code == 2
    assert wrong.stderr.startswith("error: loss 'mnrl' needs columns anchor, positive[, negative], but ")
    assert wrong.stderr.count("\n") == 1
