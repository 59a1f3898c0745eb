"""Fine-tuned models kept small: a LoRA adapter folder, merged into a full model folder on use.

An adapter folder (what ``textsearch train`` writes, and what ships as the default model) holds::

    textsearch_model.json       base model name, training command and settings, results
    adapter_config.json         peft's LoRA settings (r, alpha, target modules)
    adapter_model.safetensors   the LoRA matrices (a few MB)

On first use ``W += (alpha / r) · B @ A`` is applied to the base model's weights and the result is
written as a standard sentence-transformers folder in the cache (named by the adapter's digest,
so a retrained adapter never reuses a stale merge). Inference then pays nothing for LoRA.

A reranker adapter (``textsearch train-reranker``) also holds its pooler and classifier head in
``adapter_model.safetensors``; it is merged into a plain transformers folder that a CrossEncoder
loads (``BertForSequenceClassification`` with one relevance logit).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from safetensors.numpy import load_file, save_file

from .cache import building, cache_dir, file_lock, progress
from ..errors import ModelBuildError

ADAPTER_MARKER = "textsearch_model.json"
MERGED_MARKER = "textsearch_merged.json"
# what a reranker folder takes from its base model folder besides the weights and config.json
PROMPTS_FILE = "textsearch_reranker.json"  # a reranker's query/passage prefixes, next to its weights
RERANKER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json")


def is_adapter_folder(folder: Path) -> bool:
    return (folder / ADAPTER_MARKER).is_file()


def read_marker(folder: Path) -> dict[str, Any]:
    try:
        return json.loads((folder / ADAPTER_MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelBuildError(f"{folder / ADAPTER_MARKER} is unreadable ({exc})") from exc


def keep_share(folder: Path, share: float, trained_alpha: float) -> None:
    """Make the LoRA adapter in ``folder`` keep ``share`` of its trained change (W = W_base +
    share·ΔW, WiSE-FT): ``lora_alpha`` scales the whole update, so it becomes ``share`` × the alpha
    the adapter was trained with."""
    path = folder / "adapter_config.json"
    config = json.loads(path.read_text(encoding="utf-8"))
    config["lora_alpha"] = trained_alpha * share
    path.write_text(json.dumps(config, indent=2), encoding="utf-8")


def materialize(folder: Path, resolve_base: Callable[[str], Path], show_progress: bool = False) -> Path:
    """The loadable model folder for a trained model folder: itself for a full model, the merged
    copy in the cache for a LoRA adapter (built once). A bi-encoder adapter (kind ``lora``) gives a
    sentence-transformers folder; a reranker adapter (kind ``reranker-lora``) gives a plain
    transformers sequence-classification folder (one relevance logit) for a CrossEncoder.
    ``resolve_base`` gives the folder of the base model the adapter names (asked only to build)."""
    folder = folder.absolute()
    marker = read_marker(folder)
    kind = marker.get("kind")
    if kind not in ("lora", "reranker-lora"):
        return folder
    digest = hashlib.sha256(
        (folder / "adapter_model.safetensors").read_bytes()
        + (folder / "adapter_config.json").read_bytes()
        + str(marker.get("base")).encode()
        + (b"|reranker" if kind == "reranker-lora" else b"")
    ).hexdigest()[:16]
    dest = cache_dir() / "models" / f"{folder.name}-{digest}"
    if (dest / MERGED_MARKER).is_file():
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    with file_lock(dest.parent / f".{dest.name}.lock"):
        if (dest / MERGED_MARKER).is_file():
            return dest
        base = resolve_base(marker["base"])
        progress(f"merging the LoRA adapter {folder.name} into {marker['base']} (one time)", show_progress)
        with building(dest) as tmp:
            if kind == "reranker-lora":
                _build_reranker(base, folder, tmp)
                prompts = {"prompts": marker.get("prompts") or {}}
                (tmp / PROMPTS_FILE).write_text(json.dumps(prompts, ensure_ascii=False), encoding="utf-8")
            else:
                _build_encoder(base, folder, tmp)
            (tmp / MERGED_MARKER).write_text(
                json.dumps({"adapter": str(folder), "digest": digest, "base": str(base)}), encoding="utf-8"
            )
            # safetensors writes 0600 whatever the umask; a shared cache wants the umask's mode
            shutil.copymode(tmp / MERGED_MARKER, tmp / "model.safetensors")
    return dest


def _build_encoder(base: Path, adapter: Path, tmp: Path) -> None:
    shutil.copytree(base, tmp, copy_function=_link_or_copy, dirs_exist_ok=True,
                    ignore=shutil.ignore_patterns("model.safetensors", "textsearch_*.json"))
    weights = load_file(str(base / "model.safetensors"))
    merge_lora(weights, adapter)
    save_file(weights, str(tmp / "model.safetensors"))


def _build_reranker(base: Path, adapter: Path, tmp: Path) -> None:
    """Base encoder weights under the backbone prefix (``bert.``), the adapter's pooler and head,
    LoRA merged; config.json turned into a one-logit sequence classifier's."""
    for name in RERANKER_FILES:
        if (base / name).is_file():
            _link_or_copy(str(base / name), str(tmp / name))
    config, prefix = reranker_config(json.loads((base / "config.json").read_text(encoding="utf-8")))
    (tmp / "config.json").write_text(json.dumps(config, indent=2), encoding="utf-8")
    weights = {k if k.startswith(f"{prefix}.") else f"{prefix}.{k}": v
               for k, v in load_file(str(base / "model.safetensors")).items()}
    head = {k.removeprefix("base_model.model."): v
            for k, v in load_file(str(adapter / "adapter_model.safetensors")).items() if ".lora_" not in k}
    missing = {"classifier.weight", "classifier.bias"} - set(head)
    if missing:
        raise ModelBuildError(f"reranker adapter {adapter} lacks {', '.join(sorted(missing))}")
    weights.update(head)
    merge_lora(weights, adapter)
    save_file(weights, str(tmp / "model.safetensors"))


def merge_lora(weights: dict[str, np.ndarray], adapter: Path) -> int:
    """Add each LoRA update into ``weights`` in place; returns how many matrices changed."""
    config = json.loads((adapter / "adapter_config.json").read_text(encoding="utf-8"))
    scale = float(config["lora_alpha"]) / float(config["r"])
    lora = load_file(str(adapter / "adapter_model.safetensors"))
    merged = 0
    for key_a in (k for k in lora if k.endswith(".lora_A.weight")):
        module = key_a[: -len(".lora_A.weight")].removeprefix("base_model.model.")
        target = next((k for k in (f"{module}.weight", f"{module.split('.', 1)[-1]}.weight") if k in weights), None)
        if target is None:
            raise ModelBuildError(f"adapter {adapter} changes '{module}', which the base model does not have")
        a = lora[key_a].astype(np.float32)
        b = lora[key_a.replace(".lora_A.", ".lora_B.")].astype(np.float32)
        weights[target] = (weights[target].astype(np.float32) + scale * (b @ a)).astype(weights[target].dtype)
        merged += 1
    if not merged:
        raise ModelBuildError(f"adapter {adapter} holds no LoRA matrices")
    return merged


def reranker_config(config: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """A bi-encoder's transformers config turned into a one-logit sequence classifier's, and the
    prefix its backbone weights take there (``bert``, ``roberta``…)."""
    model_type = str(config.get("model_type", "bert"))
    arch, prefix = {"bert": ("Bert", "bert"), "xlm-roberta": ("XLMRoberta", "roberta"),
                    "roberta": ("Roberta", "roberta")}.get(model_type, (model_type.capitalize(), model_type))
    return {**config, "architectures": [f"{arch}ForSequenceClassification"], "num_labels": 1,
            "id2label": {"0": "relevance"}, "label2id": {"relevance": 0}}, prefix


def _link_or_copy(src: str, dst: str) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)
