"""Fine-tuned models kept small: a LoRA adapter folder, merged into a full model folder on use.

An adapter folder (what ``textsearch train`` writes, and what ships as the default model) holds::

    textsearch_model.json       base model name, training command and settings, results
    adapter_config.json         peft's LoRA settings (r, alpha, target modules)
    adapter_model.safetensors   the LoRA matrices (a few MB)

On first use ``W += (alpha / r) · B @ A`` is applied to the base model's weights and the result is
written as a standard sentence-transformers folder in the cache (named by the adapter's digest,
so a retrained adapter never reuses a stale merge). Inference then pays nothing for LoRA.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import shutil
from pathlib import Path
from typing import Any

import numpy as np
from safetensors.numpy import load_file, save_file

from .errors import ModelBuildError

ADAPTER_MARKER = "textsearch_model.json"
MERGED_MARKER = "textsearch_merged.json"


def is_adapter_folder(folder: Path) -> bool:
    return (folder / ADAPTER_MARKER).is_file()


def read_marker(folder: Path) -> dict[str, Any]:
    try:
        return json.loads((folder / ADAPTER_MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelBuildError(f"{folder / ADAPTER_MARKER} is unreadable ({exc})") from exc


def materialize(folder: Path, show_progress: bool = False) -> Path:
    """The loadable model folder for a trained model folder: itself for a full model, the merged
    copy in the cache for a LoRA adapter (built once)."""
    from .models import _file_lock, _progress, cache_dir, resolve_model

    folder = folder.absolute()
    marker = read_marker(folder)
    if marker.get("kind") != "lora":
        return folder
    digest = hashlib.sha256(
        (folder / "adapter_model.safetensors").read_bytes()
        + (folder / "adapter_config.json").read_bytes()
        + str(marker.get("base")).encode()
    ).hexdigest()[:16]
    dest = cache_dir() / "models" / f"{folder.name}-{digest}"
    if (dest / MERGED_MARKER).is_file():
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    with _file_lock(dest.parent / f".{dest.name}.lock"):
        if (dest / MERGED_MARKER).is_file():
            return dest
        base = Path(resolve_model(marker["base"], show_progress=show_progress))
        _progress(f"merging the LoRA adapter {folder.name} into {marker['base']} (one time)", show_progress)
        tmp = dest.parent / f".{dest.name}.tmp-{os.getpid()}-{secrets.token_hex(4)}"
        try:
            shutil.copytree(base, tmp, copy_function=_link_or_copy,
                            ignore=shutil.ignore_patterns("model.safetensors", "textsearch_*.json"))
            weights = load_file(str(base / "model.safetensors"))
            merge_lora(weights, folder)
            save_file(weights, str(tmp / "model.safetensors"))
            (tmp / MERGED_MARKER).write_text(
                json.dumps({"adapter": str(folder), "digest": digest, "base": str(base)}), encoding="utf-8"
            )
            if dest.exists():
                shutil.rmtree(dest)
            os.replace(tmp, dest)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    return dest


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


def _link_or_copy(src: str, dst: str) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)
