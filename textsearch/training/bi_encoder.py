"""Metric learning: fine-tune a bi-encoder on pairs with sentence-transformers' losses and trainer.

- formats (detected by ``evaluate.read_pairs``): (anchor, positive[, negative]), (sentence1,
  sentence2, label 1/0), (sentence1, sentence2, score in [0, 1]);
- losses: mnrl (in-batch negatives + optional hard negatives), contrastive, online-contrastive,
  triplet, cosine;
- optional hard-negative mining with the model being trained, skipping likely false negatives;
- no-duplicates batches, so a repeated text never becomes its own in-batch negative;
- LoRA (peft) by default: the saved adapter is a few MB; ``full=True`` trains every weight.

The output folder appears only when training succeeded (built under a temporary name, renamed).
"""

from __future__ import annotations

import json
import logging
import os
from collections import defaultdict
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from . import lora
from ..errors import InvalidArgumentError
from ..models.loading import SAFE_LOAD, quiet_transformers
from ..models.registry import DEFAULT_BASE_MODEL, resolve_model
from .pairs import PairSet, read_pairs
from .lora import TrainResult

logger = logging.getLogger(__name__)

# loss → the pair formats it accepts (formats as detected by read_pairs)
LOSS_FORMATS = {
    "mnrl": ("triplet",),
    "contrastive": ("label",),
    "online-contrastive": ("label",),
    "triplet": ("triplet",),
    "cosine": ("score",),
}
LOSS_COLUMNS = {
    "mnrl": "anchor, positive[, negative]",
    "contrastive": "sentence1, sentence2, label (1/0)",
    "online-contrastive": "sentence1, sentence2, label (1/0)",
    "triplet": "anchor, positive, negative",
    "cosine": "sentence1, sentence2, score (0–1)",
}


@dataclass
class TrainConfig:
    loss: str = "mnrl"
    epochs: float = 1.0
    batch_size: int = 32
    lr: float | None = None  # default: 2e-4 with LoRA, 2e-5 for full fine-tuning
    margin: float | None = None  # contrastive/online-contrastive (default 0.5), triplet (default 0.3 cosine / 5 euclidean)
    distance: str = "cosine"  # contrastive/triplet: cosine or euclidean
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


def check_loss_fits(loss: str, pairs: PairSet) -> None:
    if loss not in LOSS_FORMATS:
        raise InvalidArgumentError(f"unknown loss '{loss}' — choose one of {', '.join(LOSS_FORMATS)}")
    if pairs.format not in LOSS_FORMATS[loss]:
        raise InvalidArgumentError(
            f"loss '{loss}' needs columns {LOSS_COLUMNS[loss]}, but {pairs.path} has "
            f"{', '.join(pairs.columns)} — choose a loss for that format"
        )
    if loss == "triplet" and any(not r.get("negative") for r in pairs.rows):
        raise InvalidArgumentError(f"loss 'triplet' needs a negative on every row of {pairs.path}")


def _datasets(pairs: PairSet) -> dict[str, Any]:
    """One datasets.Dataset per column layout (rows with and without a negative train together
    through the trainer's multi-dataset support)."""
    from datasets import Dataset

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
    """The model's query prompt on the anchor side, its passage prompt on the document side."""
    prompts = getattr(model, "prompts", {}) or {}
    query, passage = prompts.get("query", ""), prompts.get("passage", prompts.get("document", ""))
    if not query and not passage:
        return None
    return {
        name: {c: query if c in ("anchor", "sentence1") else passage
               for c in ds.column_names if c not in ("label", "score")}
        for name, ds in datasets.items()
    }


def _loss(model: Any, config: TrainConfig) -> Any:
    from sentence_transformers.sentence_transformer import losses

    euclid = config.distance == "euclidean"
    if config.distance not in ("cosine", "euclidean"):
        raise InvalidArgumentError("--distance must be 'cosine' or 'euclidean'")
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


def train(
    train_file: str | os.PathLike[str],
    out: str | os.PathLike[str],
    config: TrainConfig | None = None,
    *,
    eval_file: str | os.PathLike[str] | None = None,
    device: str | None = None,
    show_progress: bool = False,
) -> TrainResult:
    """Fine-tune ``config.base_model`` (default: the bundled base model) on ``train_file``; save
    to ``out`` (a LoRA adapter folder, or a full model with ``config.full``). With ``eval_file``,
    the result also holds the trained model's evaluation on it against the base model."""
    lora.check_installed()
    from sentence_transformers import SentenceTransformer, SentenceTransformerTrainer
    from sentence_transformers import SentenceTransformerTrainingArguments as Args
    from sentence_transformers.base.sampler import BatchSamplers

    config = config or TrainConfig()
    out = Path(out)
    lora.check_out(out)  # before the work, not after it
    pairs = read_pairs(train_file)
    check_loss_fits(config.loss, pairs)
    if not 0.0 < config.interpolate <= 1.0 or (config.full and config.interpolate != 1.0):
        raise InvalidArgumentError("--interpolate takes a share of the LoRA change in (0, 1], with LoRA only")
    if config.mine_hard_negatives and config.loss not in ("mnrl", "triplet"):
        raise InvalidArgumentError("--mine-hard-negatives works with the mnrl and triplet losses")
    device = lora.start(config.seed, device)
    base = config.base_model or DEFAULT_BASE_MODEL
    with quiet_transformers():
        model = SentenceTransformer(resolve_model(base), device=device, trust_remote_code=False,
                                    model_kwargs=dict(SAFE_LOAD))
    model.max_seq_length = config.max_seq_length
    if config.mine_hard_negatives:
        pairs = lora.mine(model, pairs, config.mine_hard_negatives)
    trainable = (sum(p.numel() for p in model.parameters() if p.requires_grad) if config.full
                 else lora.add_lora(model, "FEATURE_EXTRACTION", config.lora_r, config.lora_alpha))
    datasets = _datasets(pairs)
    train_dataset = datasets if len(datasets) > 1 else next(iter(datasets.values()))
    prompts = _prompts(model, datasets)
    if prompts and len(datasets) == 1:
        prompts = next(iter(prompts.values()))

    work = lora.work_folder(out)
    args = lora.arguments(
        Args, work, device, epochs=config.epochs, batch_size=config.batch_size,
        lr=config.lr or (2e-5 if config.full else 2e-4), warmup_ratio=config.warmup_ratio, seed=config.seed,
        log_every=config.log_every, show_progress=show_progress, batch_sampler=BatchSamplers.NO_DUPLICATES,
        prompts=prompts, save_strategy="steps", save_steps=200, save_total_limit=1,
    )
    trainer = SentenceTransformerTrainer(model=model, args=args, train_dataset=train_dataset,
                                         loss=_loss(model, config))
    seconds, losses_seen = lora.run_trainer(trainer, show_progress)

    final = work / "model"
    if config.full:
        model.save_pretrained(str(final))
    else:
        model.transformers_model.save_pretrained(str(final))  # adapter_config + adapter weights only
        if config.interpolate != 1.0:  # lora_alpha scales the whole update: α × it is α × ΔW
            adapter_config = json.loads((final / "adapter_config.json").read_text(encoding="utf-8"))
            adapter_config["lora_alpha"] = adapter_config["lora_alpha"] * config.interpolate
            (final / "adapter_config.json").write_text(json.dumps(adapter_config, indent=2), encoding="utf-8")
    n_rows = sum(len(d) for d in datasets.values())
    result = lora.result(out, n_rows, trainer, seconds, losses_seen, config.epochs, trainable, device)
    marker = {"base": base, "kind": "full" if config.full else "lora", "train_file": str(train_file),
              "config": asdict(config), "result": asdict(result), "eval_file": str(eval_file or "")}
    lora.publish(final, out, work, marker)
    if eval_file:
        from .evaluate import evaluate_file

        result.evaluation = evaluate_file(eval_file, str(out), baseline=base)
    return result
