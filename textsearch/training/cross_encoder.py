"""Train our own cross-encoder reranker: binary cross-entropy over (query, passage, 1/0) pairs, or
a listwise softmax over each query's positive and negatives (``loss="listwise"``).

The positives are the pair file's; the negatives are its own hard negatives plus, by default, the
passages the bi-encoder itself ranks highest for the query among the file's other texts
(``mine_hard_negatives``), so the reranker learns exactly the mistakes the first stage makes.

The cross-encoder starts from a bi-encoder's weights (default: the base model) with a new
one-logit head, is trained with LoRA plus a fully trained pooler and head, and is saved as a small
adapter folder (``models/adapters.py`` merges it on first use). Inputs keep the base model's prompts
(``query: `` / ``passage: `` for e5), so the backbone sees text shaped as it was trained on.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from . import lora
from ..models.adapters import reranker_config
from ..errors import InvalidArgumentError
from ..models.loading import SAFE_LOAD, quiet_transformers
from ..models.registry import DEFAULT_BASE_MODEL, DEFAULT_MODEL, resolve_model
from .pairs import PairSet, labeled_pairs, read_pairs
from .lora import TrainResult

logger = logging.getLogger(__name__)

HF_FILES = ("model.safetensors", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json")


@dataclass
class RerankerConfig:
    epochs: float = 2.0
    batch_size: int = 16
    lr: float = 1e-3  # the head starts from scratch: 2e-4 left it at the class prior after 50 steps
    mine_hard_negatives: int = 1  # extra negatives per query, mined with the bi-encoder
    random_negatives: int = 1  # unrelated texts (other rows' positives) per query: teaches low scores
    symmetric: bool = False  # also ask with the positive: (positive, anchor, 1), (positive, negative, 0)
    base_model: str | None = None  # backbone to start from (default: the base model, as the shipped reranker)
    miner: str | None = None  # bi-encoder that mines negatives (default: the default model, as the shipped reranker)
    lora_r: int = 16
    lora_alpha: int = 32
    max_length: int = 256
    warmup_ratio: float = 0.1
    seed: int = 0
    log_every: int = 10
    max_rows: int = 0  # train on at most this many distinct rows (0: all), see sample_rows
    loss: str = "bce"  # "bce": pointwise, each pair 1/0; "listwise": softmax over the positive and its negatives


LOSSES = ("bce", "listwise")


def training_examples(
    pairs: PairSet, random_negatives: int = 0, seed: int = 0, symmetric: bool = False
) -> tuple[list[str], list[str], list[float]]:
    """(queries, passages, labels) of a pair file, in file order, plus ``random_negatives`` per
    query drawn (seeded) from the other rows' passages. A row repeated in the file is trained on
    as often as it appears (the pair builder repeats rows it wants weighted).

    ``symmetric`` also asks each triplet row's question from the positive's side: the anchor is
    its answer and the negatives stay wrong. Hand-written positives are rewordings and negatives
    share the anchor's words, so from the anchor's side alone "fewer shared words = relevant"
    fits the data; from the positive's side both candidates are rewordings and only meaning
    separates them."""
    import random

    examples = [(q, p, float(y)) for q, p, y in labeled_pairs(pairs.rows)]
    if symmetric and pairs.format == "triplet":
        for row in (r for r in pairs.rows if r["negative"]):
            examples += [(row["positive"], row["anchor"], 1.0)]
            examples += [(row["positive"], n, 0.0) for n in row["negative"] if n != row["positive"]]
    if random_negatives:
        rng, pool = random.Random(seed), sorted({p for _, p, y in examples if y})
        related: dict[str, set[str]] = {}
        for q, p, _ in examples:
            related.setdefault(q, {q}).add(p)
        for q in dict.fromkeys(q for q, _, _ in examples):
            picks = [t for t in rng.sample(pool, min(len(pool), random_negatives + len(related[q])))
                     if t not in related[q]]
            examples += [(q, t, 0.0) for t in picks[:random_negatives]]
    return [q for q, _, _ in examples], [p for _, p, _ in examples], [y for *_, y in examples]


def sample_rows(pairs: PairSet, n: int, seed: int = 0) -> PairSet:
    """At most ``n`` distinct rows: every row that carries its own hard negatives (the most
    informative for a reranker) first, then a seeded sample of the others, in file order."""
    import random

    distinct = list({json.dumps(r, sort_keys=True, ensure_ascii=False): r for r in pairs.rows}.values())
    if not n or len(distinct) <= n:
        return PairSet(format=pairs.format, rows=distinct, columns=pairs.columns, path=pairs.path)
    rich = [i for i, r in enumerate(distinct) if r.get("negative")]
    rest = [i for i, r in enumerate(distinct) if not r.get("negative")]
    keep = set(rich[:n]) | set(random.Random(seed).sample(rest, max(0, n - len(rich))))
    rows = [r for i, r in enumerate(distinct) if i in keep]
    return PairSet(format=pairs.format, rows=rows, columns=pairs.columns, path=pairs.path)


def _backbone(spec: str, work: Path) -> tuple[Path, dict[str, str]]:
    """A plain transformers folder (hard links to the bi-encoder's weights and tokenizer) whose
    config asks for sequence classification, and the bi-encoder's prompts."""
    source = Path(resolve_model(spec))
    if not (source / "config.json").is_file():
        raise InvalidArgumentError(f"'{spec}' is not a local model folder with a config.json — the "
                                   "reranker starts from a local sentence-transformers or transformers folder")
    folder = work / "backbone"
    folder.mkdir(parents=True)
    for name in HF_FILES:
        if (source / name).is_file():
            try:
                os.link(source / name, folder / name)
            except OSError:
                shutil.copy2(source / name, folder / name)
    config, _ = reranker_config(json.loads((source / "config.json").read_text(encoding="utf-8")))
    (folder / "config.json").write_text(json.dumps(config, indent=2), encoding="utf-8")
    st_config = source / "config_sentence_transformers.json"
    prompts = json.loads(st_config.read_text(encoding="utf-8")).get("prompts", {}) if st_config.is_file() else {}
    return folder, {k: v for k, v in prompts.items() if k in ("query", "passage") and v}


def _mined(pairs: PairSet, config: RerankerConfig, device: str) -> PairSet:
    if not config.mine_hard_negatives:
        return pairs
    if pairs.format != "triplet":
        raise InvalidArgumentError("--mine-hard-negatives needs anchor, positive[, negative] pairs — "
                                   "give such a file, or --mine-hard-negatives 0")
    from sentence_transformers import SentenceTransformer

    with quiet_transformers():
        miner = SentenceTransformer(resolve_model(config.miner or DEFAULT_MODEL), device=device,
                                    trust_remote_code=False, model_kwargs=dict(SAFE_LOAD))
    return lora.mine(miner, pairs, config.mine_hard_negatives)


def _dataset(pairs: PairSet, prompts: dict[str, str], config: RerankerConfig) -> Any:
    from datasets import Dataset

    if config.loss == "listwise":
        return _listwise_dataset(pairs, prompts, config)
    queries, passages, labels = training_examples(pairs, config.random_negatives, config.seed, config.symmetric)
    return Dataset.from_dict({
        "query": [prompts.get("query", "") + q for q in queries],
        "passage": [prompts.get("passage", "") + p for p in passages],
        "label": labels,
    })


def _listwise_dataset(pairs: PairSet, prompts: dict[str, str], config: RerankerConfig) -> Any:
    """One row per (anchor, positive): the positive and as many negatives as every row has (its
    own and mined ones first, then seeded random other positives), for a softmax over the list;
    the loss adds the batch's other positives as further negatives."""
    import random

    from datasets import Dataset

    if pairs.format != "triplet":
        raise InvalidArgumentError("--loss listwise needs anchor, positive[, negative] pairs")
    rng, pool = random.Random(config.seed), sorted({r["positive"] for r in pairs.rows})
    width = config.mine_hard_negatives + config.random_negatives
    if not width:
        raise InvalidArgumentError("--loss listwise needs negatives: --mine-hard-negatives or --random-negatives")
    q, p = prompts.get("query", ""), prompts.get("passage", "")
    columns: dict[str, list[str]] = {"query": [], "positive": [], **{f"negative_{i}": [] for i in range(width)}}
    for row in pairs.rows:
        taken = {row["anchor"], row["positive"]}
        negatives = [n for n in row["negative"] if n not in taken][:width]
        spare = rng.sample(pool, min(len(pool), 2 * width + len(taken)))
        negatives += [x for x in spare if x not in taken and x not in negatives][: width - len(negatives)]
        if len(negatives) < width:
            raise InvalidArgumentError(f"{pairs.path}: too few distinct texts for {width} negatives per row")
        columns["query"].append(q + row["anchor"])
        columns["positive"].append(p + row["positive"])
        for i, n in enumerate(negatives):
            columns[f"negative_{i}"].append(p + n)
    return Dataset.from_dict(columns)


def train_reranker(
    train_file: str | os.PathLike[str],
    out: str | os.PathLike[str],
    config: RerankerConfig | None = None,
    *,
    device: str | None = None,
    show_progress: bool = False,
) -> TrainResult:
    """Train a reranker on ``train_file`` and save it to ``out`` as a LoRA adapter folder."""
    lora.check_installed()
    from sentence_transformers.cross_encoder import CrossEncoder, CrossEncoderTrainer
    from sentence_transformers.cross_encoder import CrossEncoderTrainingArguments as Args
    from sentence_transformers.cross_encoder.losses import (
        BinaryCrossEntropyLoss,
        MultipleNegativesRankingLoss,
    )

    config = config or RerankerConfig()
    if config.loss not in LOSSES:
        raise InvalidArgumentError(f"unknown loss '{config.loss}' — use one of: {', '.join(LOSSES)}")
    device = lora.start(config.seed, device)
    out = Path(out)
    lora.check_out(out)  # before the work, not after it
    pairs = read_pairs(train_file)
    if config.max_rows:
        pairs = sample_rows(pairs, config.max_rows, config.seed)
    pairs = _mined(pairs, config, device)
    base = config.base_model or DEFAULT_BASE_MODEL
    work = lora.work_folder(out)
    backbone, prompts = _backbone(base, work)
    dataset = _dataset(pairs, prompts, config)

    lora.start(config.seed, device)  # the head and the LoRA matrices start the same way every run
    with quiet_transformers():
        model = CrossEncoder(str(backbone), num_labels=1, max_length=config.max_length, device=device,
                             trust_remote_code=False, model_kwargs=dict(SAFE_LOAD))
    trainable = lora.add_lora(model, "SEQ_CLS", config.lora_r, config.lora_alpha, ["classifier", "pooler"])
    args = lora.arguments(
        Args, work, device, epochs=config.epochs, batch_size=config.batch_size, lr=config.lr,
        warmup_ratio=config.warmup_ratio, seed=config.seed, log_every=config.log_every,
        show_progress=show_progress, save_strategy="no",
    )
    loss = (MultipleNegativesRankingLoss(model, num_negatives=4) if config.loss == "listwise"
            else BinaryCrossEntropyLoss(model))
    trainer = CrossEncoderTrainer(model=model, args=args, train_dataset=dataset, loss=loss)
    seconds, losses_seen = lora.run_trainer(trainer, show_progress)

    final = work / "model"
    model.transformers_model.save_pretrained(str(final))  # adapter_config + LoRA, pooler and head
    result = lora.result(out, len(dataset), trainer, seconds, losses_seen, config.epochs, trainable, device)
    base_spec = base if not Path(base).expanduser().exists() else str(Path(base).expanduser().absolute())
    marker = {"base": base_spec, "kind": "reranker-lora", "prompts": prompts, "train_file": str(train_file),
              "config": asdict(config), "result": asdict(result)}
    lora.publish(final, out, work, marker)
    return result
