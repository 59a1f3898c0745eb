"""Labelled training: texts that share a label mean the same; metric-learning losses and miners
from pytorch-metric-learning (PML) pull each label's texts together and push other labels away.

- the labelled set: ``text, label`` rows (``pairs.read_pairs`` reads them), label strings mapped
  to ints 0…n-1; a label with a single text can form no positive pair and is dropped, and so is a
  text under two labels (both counted in a warning); fewer than two labels of two or more texts is
  refused;
- losses: multi-similarity, lifted-structure, proxy-nca, proxy-anchor, batch-hard-triplet, all on
  cosine similarity of L2-normalised embeddings; the proxy losses learn one proxy vector per
  label (their parameters: the trainer optimises them, at ``PROXY_LR_FACTOR`` × the learning rate)
  and checkpoints keep them (``save_state``/``load_state``);
- miners choose the pairs or triplets of a batch a loss sees: multi-similarity, batch-hard,
  semi-hard, distance-weighted;
- ``LabelledLoss``: a sentence-transformers loss module (``forward(features, labels)``) around
  them.

Batches come from sentence-transformers' group-by-label sampler (``bi_encoder.py``):
``texts_per_epoch`` says how much of the set it uses.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import InvalidArgumentError, require
from .pairs import PairSet

logger = logging.getLogger(__name__)

LOSSES = ("multi-similarity", "lifted-structure", "proxy-nca", "proxy-anchor", "batch-hard-triplet")
PROXY_LOSSES = ("proxy-nca", "proxy-anchor")
MINERS = ("multi-similarity", "batch-hard", "semi-hard", "distance-weighted", "none")
DEFAULT_MINER = {"multi-similarity": "multi-similarity", "batch-hard-triplet": "batch-hard"}  # else none
MARGINS = {"lifted-structure": 1.0, "proxy-anchor": 0.1, "batch-hard-triplet": 0.2}  # --margin's defaults
TRIPLET_MARGIN = 0.2  # the semi-hard miner's margin (cosine similarity)
PROXY_LR_FACTOR = 100  # proxies start random: they learn 100× faster than the encoder (Proxy Anchor paper)
SOFTMAX_SCALE = 20.0  # proxy-nca: similarity × 20 before the softmax (temperature 0.05, as MNRL's scale)
STATE_FILE = "textsearch_loss.safetensors"  # a checkpoint's loss parameters (the proxies)


@dataclass
class LabelledSet:
    """The texts to train on with their labels as ints 0…n-1, ``names[i]`` being label i."""

    texts: list[str]
    labels: list[int]
    names: list[str]
    singletons: int  # labels with a single text, dropped
    path: str = ""


def labelled_set(pairs: PairSet) -> LabelledSet:
    """Group a labelled file's rows by label (a text repeated under one label counts once; a text
    under two labels would be its own positive and negative, and is left out)."""
    labels_of: dict[str, list[str]] = {}
    for row in pairs.rows:
        names = labels_of.setdefault(row["text"], [])
        if row["label"] not in names:
            names.append(row["label"])
    torn = [text for text, names in labels_of.items() if len(names) > 1]
    if torn:
        logger.warning("%s: %d texts have two or more labels and are left out (%r: %s)", pairs.path, len(torn),
                       torn[0][:40], ", ".join(labels_of[torn[0]]))
    label_of = {text: names[0] for text, names in labels_of.items() if len(names) == 1}
    sizes = Counter(label_of.values())
    kept = [name for name in dict.fromkeys(label_of.values()) if sizes[name] >= 2]
    if len(kept) < 2:
        raise InvalidArgumentError(
            f"{pairs.path}: labelled training needs at least 2 labels with 2 or more texts each, found "
            f"{len(kept)} — texts of one label are the positives, other labels the negatives")
    singletons = len(sizes) - len(kept)
    if singletons:
        logger.warning("%s: %d of %d labels have a single text and are left out (a text needs another "
                       "of its label to form a positive)", pairs.path, singletons, len(sizes))
    ids = {name: i for i, name in enumerate(kept)}
    rows = [(text, ids[label]) for text, label in label_of.items() if label in ids]
    return LabelledSet([t for t, _ in rows], [i for _, i in rows], kept, singletons, pairs.path)


def check_batch_size(batch_size: int) -> None:
    if batch_size < 4 or batch_size % 2:
        raise InvalidArgumentError(f"--batch-size {batch_size}: labelled training takes an even batch size of "
                                   "4 or more (batches are built from pairs of texts of one label)")


def texts_per_epoch(labels: list[int], batch_size: int) -> int:
    """The texts sentence-transformers' GroupByLabelBatchSampler (drop_last off) uses per epoch:
    labels take turns giving 2 texts (an odd text out) until fewer than 2 labels have any left, so a
    label larger than the second largest is cut to its size; a last batch under 4 texts is dropped."""
    pairs = sorted((n // 2 for n in Counter(labels).values() if n >= 2), reverse=True)
    stream = 2 * sum(min(p, pairs[1]) for p in pairs)
    rest = stream % batch_size
    return stream - rest + (rest if rest >= 4 else 0)


def _distance() -> Any:
    from pytorch_metric_learning.distances import CosineSimilarity

    return CosineSimilarity()


def make_loss(name: str, num_classes: int, dimension: int, margin: float | None) -> Any:
    """The PML loss ``name`` on cosine similarity (``margin``: see ``MARGINS``)."""
    require(("pytorch_metric_learning",), "train", "labelled training")
    from pytorch_metric_learning import losses

    margin = MARGINS.get(name, 0.0) if margin is None else margin
    if name == "multi-similarity":
        return losses.MultiSimilarityLoss(alpha=2, beta=50, base=0.5, distance=_distance())
    if name == "lifted-structure":  # with cosine distance 1 - s: log Σ exp(margin - d_neg) + d_pos
        return losses.LiftedStructureLoss(pos_margin=1.0, neg_margin=1.0 - margin, distance=_distance())
    if name == "proxy-nca":
        return losses.ProxyNCALoss(num_classes, dimension, softmax_scale=SOFTMAX_SCALE, distance=_distance())
    if name == "proxy-anchor":
        return losses.ProxyAnchorLoss(num_classes, dimension, margin=margin, alpha=32, distance=_distance())
    if name == "batch-hard-triplet":
        return losses.TripletMarginLoss(margin=margin, distance=_distance())
    raise InvalidArgumentError(f"unknown labelled loss '{name}' — choose one of {', '.join(LOSSES)}")


def make_miner(name: str) -> Any:
    """The PML miner ``name``, or None for "none"."""
    from pytorch_metric_learning import miners

    if name == "none":
        return None
    if name == "multi-similarity":
        return miners.MultiSimilarityMiner(epsilon=0.1, distance=_distance())
    if name == "batch-hard":
        return miners.BatchHardMiner(distance=_distance())
    if name == "semi-hard":
        return miners.TripletMarginMiner(margin=TRIPLET_MARGIN, type_of_triplets="semihard", distance=_distance())
    if name == "distance-weighted":  # PML requires its L2 distance; on unit vectors it orders as cosine
        return miners.DistanceWeightedMiner(cutoff=0.5, nonzero_loss_cutoff=1.4)
    raise InvalidArgumentError(f"unknown miner '{name}' — choose one of {', '.join(MINERS)}")


class LabelledLoss(nn.Module):
    """A sentence-transformers loss: embed the batch's texts with ``model``, L2-normalise, let the
    miner choose pairs/triplets (all of them without one), and apply the PML loss. The PML loss is
    a child module, so its parameters (proxies) are among this module's, which the trainer optimises."""

    def __init__(self, model: nn.Module, loss: nn.Module, miner: nn.Module | None = None) -> None:
        super().__init__()
        self.model = model
        self.loss = loss
        self.miner = miner

    def forward(self, sentence_features: list[dict[str, torch.Tensor]], labels: torch.Tensor) -> torch.Tensor:
        # float32 whatever the autocast: PML casts the proxies to the embeddings' dtype in place
        embeddings = F.normalize(self.model(sentence_features[0])["sentence_embedding"].float(), p=2, dim=1)
        pairs = self.miner(embeddings, labels) if self.miner is not None else None
        return self.loss(embeddings, labels, pairs)


def save_state(loss: Any, folder: Path) -> None:
    """Write the labelled loss's own parameters (the proxies) into a checkpoint folder."""
    from safetensors.torch import save_file

    if isinstance(loss, LabelledLoss) and any(True for _ in loss.loss.parameters()):
        save_file({k: v.detach().cpu().contiguous() for k, v in loss.loss.state_dict().items()},
                  str(folder / STATE_FILE))


def load_state(loss: Any, folder: Path) -> None:
    """Give a labelled loss the parameters its checkpoint holds (``save_state``)."""
    from safetensors.torch import load_file

    if not (isinstance(loss, LabelledLoss) and any(True for _ in loss.loss.parameters())):
        return
    if not (folder / STATE_FILE).is_file():
        raise InvalidArgumentError(f"checkpoint {folder} holds no proxies ({STATE_FILE}) — drop --resume to "
                                   "start over")
    loss.loss.load_state_dict(load_file(str(folder / STATE_FILE)))  # copied onto the proxies' device
