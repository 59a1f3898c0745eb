"""Metric learning: fine-tune a bi-encoder on pairs or labelled texts with sentence-transformers'
trainer.

- formats (detected by ``pairs.read_pairs``): (anchor, positive[, negative]), (sentence1,
  sentence2, label 1/0), (sentence1, sentence2, score in [0, 1]), and labelled (text, label);
- pair losses: mnrl (in-batch negatives + optional hard negatives), contrastive,
  online-contrastive, triplet, cosine; no-duplicates batches, so a repeated text never becomes its
  own in-batch negative; optional hard-negative mining with the model being trained, skipping
  likely false negatives;
- labelled losses and miners (``labelled.py``: multi-similarity, lifted-structure, proxy-nca,
  proxy-anchor, batch-hard-triplet); group-by-label batches, two or more texts of each label in;
- LoRA (peft) by default: the saved adapter is a few MB; ``full=True`` trains every weight.

The output folder appears only when training succeeded (built in a work folder, renamed); an
interrupted run (Ctrl-C, a crash) keeps its work folder, and ``resume=True`` goes on from its last
checkpoint.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from . import labelled, lora
from ..errors import InvalidArgumentError
from ..models.adapters import keep_share
from ..models.loading import SAFE_LOAD, quiet_transformers
from ..models.registry import DEFAULT_BASE_MODEL, resolve_model
from .labelled import LabelledSet
from .pairs import FORMATS, PairSet, read_pairs
from .lora import TrainResult

logger = logging.getLogger(__name__)

# loss → the pair formats it accepts (formats as detected by read_pairs)
LOSS_FORMATS = {
    "mnrl": ("triplet",),
    "contrastive": ("label",),
    "online-contrastive": ("label",),
    "triplet": ("triplet",),
    "cosine": ("score",),
    **{name: ("labelled",) for name in labelled.LOSSES},
}
LOSS_COLUMNS = {
    "mnrl": "anchor, positive[, negative]",
    "contrastive": "sentence1, sentence2, label (1/0)",
    "online-contrastive": "sentence1, sentence2, label (1/0)",
    "triplet": "anchor, positive, negative",
    "cosine": "sentence1, sentence2, score (0–1)",
    **{name: "text, label" for name in labelled.LOSSES},
}


@dataclass
class TrainConfig:
    loss: str = "mnrl"
    epochs: float = 1.0
    batch_size: int = 32
    lr: float | None = None  # default: 2e-4 with LoRA, 2e-5 for full fine-tuning
    margin: float | None = None  # contrastive/online-contrastive (default 0.5), triplet (default 0.3 cosine / 5 euclidean),
    # lifted-structure (1.0), proxy-anchor (0.1), batch-hard-triplet (0.2)
    distance: str = "cosine"  # contrastive/triplet: cosine or euclidean (labelled losses: cosine)
    miner: str | None = None  # labelled losses: labelled.MINERS (default: labelled.DEFAULT_MINER, else none)
    mine_hard_negatives: int = 0
    full: bool = False
    lora_r: int = 16
    lora_alpha: int = 32
    max_seq_length: int = 128
    warmup_ratio: float = 0.1
    seed: int = 0
    base_model: str | None = None
    log_every: int = 5  # steps between loss records
    interpolate: float = 1.0  # keep this share of the LoRA change (W = W_base + α·ΔW, WiSE-FT)
    save_every: int = 200  # steps between checkpoints (what an interrupted run can resume from)


# TrainConfig fields a resumed run may change: they do not change what is learned
RESUME_FREE = ("log_every", "save_every")


def check_loss_fits(loss: str, pairs: PairSet) -> None:
    if loss not in LOSS_FORMATS:
        raise InvalidArgumentError(f"unknown loss '{loss}' — choose one of {', '.join(LOSS_FORMATS)}")
    if pairs.format not in LOSS_FORMATS[loss]:
        kind = "labelled file" if pairs.format == "labelled" else f"{pairs.format} pair file"
        fits = [name for name, formats in LOSS_FORMATS.items() if pairs.format in formats]
        raise InvalidArgumentError(
            f"loss '{loss}' needs columns {LOSS_COLUMNS[loss]}, but {pairs.path} is a {kind} "
            f"({', '.join(FORMATS[pairs.format])}) — choose a loss for it: {', '.join(fits)}"
        )
    if loss == "triplet" and any(not r.get("negative") for r in pairs.rows):
        raise InvalidArgumentError(f"loss 'triplet' needs a negative on every row of {pairs.path}")


def check_config(config: TrainConfig, pairs: PairSet) -> None:
    """Refuse a configuration that cannot train on ``pairs``, before any model loads."""
    check_loss_fits(config.loss, pairs)
    if not 0.0 < config.interpolate <= 1.0 or (config.full and config.interpolate != 1.0):
        raise InvalidArgumentError("--interpolate takes a share of the LoRA change in (0, 1], with LoRA only")
    if config.mine_hard_negatives and config.loss not in ("mnrl", "triplet"):
        raise InvalidArgumentError("--mine-hard-negatives works with the mnrl and triplet losses")
    if config.distance not in ("cosine", "euclidean"):
        raise InvalidArgumentError("--distance must be 'cosine' or 'euclidean'")
    if config.save_every < 1:
        raise InvalidArgumentError("--save-every takes a number of steps, 1 or more")
    if config.loss not in labelled.LOSSES:
        if config.miner is not None:
            raise InvalidArgumentError(f"--miner works with the labelled losses ({', '.join(labelled.LOSSES)}), "
                                       f"not '{config.loss}'")
        return
    labelled.check_batch_size(config.batch_size)
    if config.distance != "cosine":
        raise InvalidArgumentError("the labelled losses compare cosine similarities — drop --distance")
    if config.miner is not None and config.miner not in labelled.MINERS:
        raise InvalidArgumentError(f"unknown miner '{config.miner}' — choose one of {', '.join(labelled.MINERS)}")


def _datasets(pairs: PairSet | LabelledSet) -> dict[str, Any]:
    """One datasets.Dataset per column layout (rows with and without a negative train together
    through the trainer's multi-dataset support); a labelled set is one (text, label) dataset."""
    from datasets import Dataset

    if isinstance(pairs, LabelledSet):
        return {"text+label": Dataset.from_dict({"text": pairs.texts, "label": pairs.labels})}
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = defaultdict(list)
    for row in pairs.rows:
        if pairs.format == "triplet":
            item = {"anchor": row["anchor"], "positive": row["positive"]}
            item.update({f"negative_{i + 1}": n for i, n in enumerate(row["negative"])})
        else:
            target = "label" if pairs.format == "label" else "score"
            item = {"sentence1": row["sentence1"], "sentence2": row["sentence2"], target: float(row[target])}
        groups[tuple(item)].append(item)
    return {
        "+".join(cols): Dataset.from_dict({c: [r[c] for r in rows] for c in cols})
        for cols, rows in groups.items()
    }


def _prompts(model: Any, datasets: dict[str, Any]) -> dict[str, dict[str, str]] | None:
    """The model's query prompt on the anchor side, its passage prompt on the document side.
    Labelled texts all get the query prompt: a label's texts restate each other, and e5 asks for
    "query: " on both sides of a symmetric task (paraphrase, similarity)."""
    prompts = getattr(model, "prompts", {}) or {}
    query, passage = prompts.get("query", ""), prompts.get("passage", prompts.get("document", ""))
    if not query and not passage:
        return None
    return {
        name: {c: query if c in ("anchor", "sentence1", "text") else passage
               for c in ds.column_names if c not in ("label", "score")}
        for name, ds in datasets.items()
    }


def _loss(model: Any, config: TrainConfig, classes: int = 0) -> Any:
    from sentence_transformers.sentence_transformer import losses

    euclid = config.distance == "euclidean"
    if config.loss in labelled.LOSSES:
        pml = labelled.make_loss(config.loss, classes, model.get_embedding_dimension(), config.margin)
        miner = labelled.make_miner(config.miner or labelled.DEFAULT_MINER.get(config.loss, "none"))
        return labelled.LabelledLoss(model, pml, miner)
    if config.loss == "mnrl":
        return losses.MultipleNegativesRankingLoss(model)
    if config.loss in ("contrastive", "online-contrastive"):
        metric = losses.SiameseDistanceMetric
        cls = losses.ContrastiveLoss if config.loss == "contrastive" else losses.OnlineContrastiveLoss
        return cls(model, distance_metric=metric.EUCLIDEAN if euclid else metric.COSINE_DISTANCE,
                   margin=config.margin if config.margin is not None else 0.5)
    if config.loss == "triplet":
        metric = losses.TripletDistanceMetric
        default = 5.0 if euclid else 0.3
        return losses.TripletLoss(model, distance_metric=metric.EUCLIDEAN if euclid else metric.COSINE,
                                  triplet_margin=config.margin if config.margin is not None else default)
    return losses.CosineSimilarityLoss(model)


def _run(train_file: Path, base: str, config: TrainConfig) -> dict[str, Any]:
    """What a resumed run must share with the interrupted one (``lora.begin``)."""
    settings = {k: v for k, v in asdict(config).items() if k not in RESUME_FREE}
    return {"train_file": str(train_file), "train_sha256": hashlib.sha256(train_file.read_bytes()).hexdigest(),
            "settings": {"base": base, **settings}}


def _trainer_class() -> Any:
    from sentence_transformers import SentenceTransformerTrainer

    class Trainer(SentenceTransformerTrainer):  # type: ignore[misc]
        """Its checkpoints also hold the loss's own parameters (a proxy loss's proxies)."""

        def save_model(self, output_dir: str | None = None, _internal_call: bool = False) -> None:
            super().save_model(output_dir, _internal_call)
            if output_dir is not None:
                labelled.save_state(self.loss, Path(output_dir))

    return Trainer


def _arguments(config: TrainConfig, by_label: bool, work: Path, device: str, prompts: Any,
               show_progress: bool) -> Any:
    """The trainer's arguments: no-duplicates batches for pairs, group-by-label batches (2 or more
    texts of each label in) for labelled texts; proxies learn ``PROXY_LR_FACTOR`` × faster."""
    from sentence_transformers import SentenceTransformerTrainingArguments as Args
    from sentence_transformers.base.sampler import BatchSamplers

    lr = config.lr or (2e-5 if config.full else 2e-4)
    extra: dict[str, Any] = {"batch_sampler": BatchSamplers.GROUP_BY_LABEL if by_label else BatchSamplers.NO_DUPLICATES}
    if config.loss in labelled.PROXY_LOSSES:
        extra["learning_rate_mapping"] = {r"(^|\.)proxies$": lr * labelled.PROXY_LR_FACTOR}
    return lora.arguments(
        Args, work, device, epochs=config.epochs, batch_size=config.batch_size, lr=lr,
        warmup_ratio=config.warmup_ratio, seed=config.seed, log_every=config.log_every,
        show_progress=show_progress, prompts=prompts, save_strategy="steps", save_steps=config.save_every,
        save_total_limit=1, **extra,
    )


def _per_epoch(data: PairSet | LabelledSet, batch_size: int) -> int | None:
    """What an epoch trains on when it is not every row: the texts the group-by-label sampler uses."""
    if not isinstance(data, LabelledSet):
        return None
    used = labelled.texts_per_epoch(data.labels, batch_size)
    if used < len(data.texts):
        logger.info("group-by-label batches use %d of %d texts an epoch: a label's odd text waits for the next "
                    "epoch, and a label larger than the second largest is cut to its size", used, len(data.texts))
    return used


def _save(model: Any, final: Path, config: TrainConfig) -> None:
    if config.full:
        model.save_pretrained(str(final))
        return
    model.transformers_model.save_pretrained(str(final))  # adapter_config + adapter weights only
    if config.interpolate != 1.0:
        keep_share(final, config.interpolate, config.lora_alpha)


def train(
    train_file: str | os.PathLike[str],
    out: str | os.PathLike[str],
    config: TrainConfig | None = None,
    *,
    eval_file: str | os.PathLike[str] | None = None,
    device: str | None = None,
    show_progress: bool = False,
    resume: bool = False,
    callbacks: Sequence[Any] = (),
) -> TrainResult:
    """Fine-tune ``config.base_model`` (default: the bundled base model) on ``train_file`` (pairs,
    or labelled texts for a labelled loss); save to ``out`` (a LoRA adapter folder, or a full model
    with ``config.full``). With ``eval_file``, the result also holds the trained model's evaluation
    on it against the base model. ``resume``: go on from the last checkpoint of an interrupted run
    into the same ``out`` with the same file and config. ``callbacks``: transformers
    ``TrainerCallback`` objects. Ctrl-C saves a checkpoint and raises ``TrainingInterruptedError``."""
    lora.check_installed()
    from sentence_transformers import SentenceTransformer

    config = config or TrainConfig()
    out, train_file = Path(out), Path(train_file)
    lora.check_out(out)  # before the work, not after it
    pairs = read_pairs(train_file, formats=FORMATS)
    check_config(config, pairs)
    data: PairSet | LabelledSet = labelled.labelled_set(pairs) if pairs.format == "labelled" else pairs
    base = config.base_model or DEFAULT_BASE_MODEL
    work, checkpoint = lora.begin(out, _run(train_file, base, config), resume)
    device = lora.start(config.seed, device)
    with quiet_transformers():
        model = SentenceTransformer(resolve_model(base), device=device, trust_remote_code=False,
                                    model_kwargs=dict(SAFE_LOAD))
    model.max_seq_length = config.max_seq_length
    if config.mine_hard_negatives:
        data = lora.mine(model, pairs, config.mine_hard_negatives)
    trainable = (sum(p.numel() for p in model.parameters() if p.requires_grad) if config.full
                 else lora.add_lora(model, "FEATURE_EXTRACTION", config.lora_r, config.lora_alpha))
    datasets = _datasets(data)
    train_dataset = datasets if len(datasets) > 1 else next(iter(datasets.values()))
    prompts = _prompts(model, datasets)
    if prompts and len(datasets) == 1:
        prompts = next(iter(prompts.values()))
    loss = _loss(model, config, len(data.names) if isinstance(data, LabelledSet) else 0)
    args = _arguments(config, isinstance(data, LabelledSet), work, device, prompts, show_progress)
    trainer = _trainer_class()(model=model, args=args, train_dataset=train_dataset, loss=loss,
                               callbacks=list(callbacks))
    if checkpoint is not None:
        labelled.load_state(loss, checkpoint)
    per_epoch = _per_epoch(data, config.batch_size)
    seconds, losses_seen = lora.run_trainer(trainer, show_progress, resume_from=checkpoint, interruptible=True)

    final = work / "model"
    _save(model, final, config)
    rows = sum(len(d) for d in datasets.values())
    result = lora.result(out, rows, trainer, seconds, losses_seen, config.epochs, trainable, device,
                         first_step=int(checkpoint.name.rsplit("-", 1)[1]) if checkpoint else 0,
                         per_epoch=per_epoch)
    marker = {"base": base, "kind": "full" if config.full else "lora", "train_file": str(train_file),
              "config": asdict(config), "result": asdict(result), "eval_file": str(eval_file or "")}
    lora.publish(final, out, work, marker)
    if eval_file:
        from .evaluate import evaluate_file

        result.evaluation = evaluate_file(eval_file, str(out), baseline=base)
    return result
