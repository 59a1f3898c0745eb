"""Training throughput (pairs/s) of `textsearch train` (MNRL, LoRA unless --full) on this machine.

Runs the real training function on the first N rows of the training pairs and writes JSON to
benchmarks/results/train-<device>.json.

    python benchmarks/bench_train.py                       # CPU (or CUDA when present), 512 rows
    python benchmarks/bench_train.py -n 20000 --batch-size 256 --device cuda
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
from pathlib import Path

from textsearch.training.bi_encoder import TrainConfig, train

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("-n", "--rows", type=int, default=512)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--device", default=None)
    parser.add_argument("--full", action="store_true")
    parser.add_argument("--pairs", type=Path, default=ROOT / "corpora" / "pairs" / "train.jsonl")
    args = parser.parse_args()

    lines = args.pairs.read_text(encoding="utf-8").splitlines()
    rows = (lines * (args.rows // len(lines) + 1))[: args.rows]
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "pairs.jsonl"
        data.write_text("\n".join(rows) + "\n", encoding="utf-8")
        config = TrainConfig(epochs=1, batch_size=args.batch_size, full=args.full)
        result = train(data, Path(tmp) / "out", config, device=args.device)
    figures = {
        "rows": result.rows,
        "batch_size": args.batch_size,
        "mode": "full" if args.full else "lora",
        "device": result.device,
        "machine": f"{platform.machine()}, {__import__('os').cpu_count()} cores",
        "seconds": result.seconds,
        "pairs_per_second": result.pairs_per_second,
        "steps": result.steps,
    }
    if result.device == "cuda":
        import torch

        figures["gpu"] = torch.cuda.get_device_name()
    out = ROOT / "benchmarks" / "results" / f"train-{result.device}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(figures, indent=2))
    for key, value in figures.items():
        print(f"{key:20} {value:.2f}" if isinstance(value, float) else f"{key:20} {value}")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
