"""LoRA adapters are merged into their base weights exactly: W' = W + (alpha / r) · B @ A."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import save_file

from textsearch.models.adapters import merge_lora
from textsearch.errors import ModelBuildError


def adapter(folder: Path, tensors: dict[str, np.ndarray], r: int = 2, alpha: int = 4) -> Path:
    folder.mkdir()
    (folder / "adapter_config.json").write_text(json.dumps({"r": r, "lora_alpha": alpha}))
    save_file(tensors, str(folder / "adapter_model.safetensors"))
    return folder


def test_merge_adds_the_scaled_low_rank_product(tmp_path: Path) -> None:
    w = np.eye(3, dtype=np.float32)
    a = np.array([[1, 0, 0], [0, 1, 0]], dtype=np.float32)  # r=2 × in=3
    b = np.array([[1, 0], [0, 0], [0, 2]], dtype=np.float32)  # out=3 × r=2
    folder = adapter(tmp_path / "lora", {
        "base_model.model.encoder.layer.0.attention.self.query.lora_A.weight": a,
        "base_model.model.encoder.layer.0.attention.self.query.lora_B.weight": b,
    })
    weights = {"encoder.layer.0.attention.self.query.weight": w.copy(), "other.weight": w.copy()}
    assert merge_lora(weights, folder) == 1
    # scale = alpha / r = 4 / 2 = 2; B @ A = [[1,0,0],[0,0,0],[0,2,0]] → W' = I + 2·B@A
    expected = np.array([[3, 0, 0], [0, 1, 0], [0, 4, 1]], dtype=np.float32)
    np.testing.assert_array_equal(weights["encoder.layer.0.attention.self.query.weight"], expected)
    np.testing.assert_array_equal(weights["other.weight"], w)  # untouched


def test_adapter_for_a_module_the_base_lacks_is_refused(tmp_path: Path) -> None:
    folder = adapter(tmp_path / "lora", {
        "pooler.dense.lora_A.weight": np.zeros((2, 3), np.float32),
        "pooler.dense.lora_B.weight": np.zeros((3, 2), np.float32),
    })
    with pytest.raises(ModelBuildError, match="pooler.dense"):
        merge_lora({"encoder.weight": np.eye(3, dtype=np.float32)}, folder)
