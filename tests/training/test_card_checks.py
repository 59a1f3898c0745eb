"""The card's check as the benchmarks take it: bench_showcase's copies of an adapter at a share of
its change, and bench_losses' table columns for it."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))

import bench_losses
import bench_showcase


def adapter(folder: Path, kind: str = "lora", trained: int = 32, shipped: float = 16.0) -> Path:
    folder.mkdir()
    marker = {"base": "multilingual-e5-small", "kind": kind, "config": {"lora_alpha": trained, "interpolate": 0.5}}
    (folder / "textsearch_model.json").write_text(json.dumps(marker), encoding="utf-8")
    (folder / "adapter_config.json").write_text(json.dumps({"r": 16, "lora_alpha": shipped}), encoding="utf-8")
    (folder / "adapter_model.safetensors").write_bytes(b"weights")
    return folder


def test_a_share_of_the_change_scales_the_trained_alpha_in_a_copy(tmp_path: Path) -> None:
    original = adapter(tmp_path / "ws")
    copy = Path(bench_showcase.interpolated(str(original), 0.25, tmp_path))
    assert copy == tmp_path / "ws-0.25"
    assert json.loads((copy / "adapter_config.json").read_text(encoding="utf-8")) == {"r": 16, "lora_alpha": 8.0}
    assert (copy / "adapter_model.safetensors").read_bytes() == b"weights"
    assert json.loads((original / "adapter_config.json").read_text(encoding="utf-8"))["lora_alpha"] == 16.0
    full = Path(bench_showcase.interpolated(str(original), 1, tmp_path))
    assert json.loads((full / "adapter_config.json").read_text(encoding="utf-8"))["lora_alpha"] == 32


def test_no_change_is_the_base_model_and_a_full_model_is_refused(tmp_path: Path) -> None:
    assert bench_showcase.interpolated(str(adapter(tmp_path / "ws")), 0, tmp_path) == "multilingual-e5-small"
    with pytest.raises(SystemExit, match="--interpolate takes LoRA adapters over multilingual-e5-small"):
        bench_showcase.interpolated(str(adapter(tmp_path / "full", kind="full")), 0.5, tmp_path)


def test_the_loss_table_shows_the_card_where_a_run_took_it() -> None:
    dev = {"idiom_meaning": {"mrr@10": 0.5}, "wordshare_zh": {"mrr@10": 0.25, "wrong_first": 0.5},
           "wordshare_en": {"mrr@10": 0.75, "wrong_first": 0.125}}
    card = {"paraphrase": 0.61, "near_miss": 0.6, "near_miss_first": {"demo": True, "five": False}}
    result = {"runs": {"old": {"dev": dev}, "new": {"dev": dev, "card": card, "steps": 60, "cpu_seconds": 100.0,
                                                    "per_second": 30.0, "unit": "texts"}}}
    lines = bench_losses.tables(result).splitlines()
    assert lines[0].endswith("| throughput | card: paraphrase − near miss | card: near miss first (demo / five) |")
    assert lines[1] == "|---|" + "---|" * 10
    assert lines[2] == "| old | 0.500 | 0.250 | 0.750 | 0.500 | 50.0% / 12.5% | — | — | — | — | — |"
    assert lines[3] == ("| new | 0.500 | 0.250 | 0.750 | 0.500 | 50.0% / 12.5% | 60 | 100.0 | 30.0 texts/s | "
                        "+0.010 | yes / no |")
