"""How close the encoder runs to what this CPU can do: the arithmetic floor of embedding a corpus.

A transformer encoder spends nearly all its time in matrix products: per token, two multiply-adds
per weight of every layer's attention projections (4 × hidden²) and feed-forward block
(2 × hidden × intermediate); attention itself is small for short texts. This script

- counts the tokens the model is given for the corpus (prompt and special tokens included: what
  the runtime computes) and the model's floating-point operations for them;
- measures this machine's float32 matrix-product rate (``numpy`` on all cores) at the model's own
  shapes (a batch of 32 texts × the corpus's mean tokens, by each weight matrix) and at 4096³,
  the best case;
- times ``encode_passages`` on the corpus in one call (best of --runs), on each runtime given;

and prints the floor (operations ÷ best rate) next to each runtime's time: a runtime cannot
embed the corpus faster than the floor at this precision, and nor can a system built on it.

    python benchmarks/bench_ceiling.py --short -n 3000      # writes results/ceiling-3000-short.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from textsearch import SentenceTransformerEncoder

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_ingest_query import generate_passages


def matmul_rate(m: int, k: int, n: int, seconds: float = 1.0) -> float:
    """float32 GFLOP/s of an (m×k)·(k×n) product, repeated for about ``seconds``."""
    rng = np.random.default_rng(0)
    a, b = rng.random((m, k), dtype=np.float32), rng.random((k, n), dtype=np.float32)
    a @ b
    reps, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        a @ b
        reps += 1
    return 2 * m * k * n * reps / (time.perf_counter() - started) / 1e9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", "--passages", type=int, default=3000)
    parser.add_argument("--short", action="store_true", help="one HSK sentence per passage (~12 characters)")
    parser.add_argument("--runtimes", default="onnx,torch")
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()

    texts = [d["text"] for d in generate_passages(args.passages, short=args.short)]
    runtimes: dict[str, dict[str, float]] = {}
    model_facts: dict[str, Any] = {}
    for runtime in args.runtimes.split(","):
        encoder = SentenceTransformerEncoder(runtime=runtime)
        encoder.encode_passages(texts[:64])
        best = min(_timed(encoder, texts) for _ in range(args.runs))
        runtimes[runtime] = {"seconds": best, "passages_per_s": len(texts) / best}
        if not model_facts:
            model_facts = _model_facts(encoder, texts)

    hidden, inner, tokens = model_facts["hidden"], model_facts["intermediate"], model_facts["tokens"]
    flops = 2 * tokens * model_facts["layers"] * (4 * hidden * hidden + 2 * hidden * inner)
    rows = 32 * round(tokens / model_facts["distinct_texts"])
    rates = {
        "model_shapes": min(matmul_rate(rows, hidden, hidden), matmul_rate(rows, hidden, inner),
                            matmul_rate(rows, inner, hidden)),
        "best_case_4096": matmul_rate(4096, 4096, 4096),
    }
    floors = {name: flops / (rate * 1e9) for name, rate in rates.items()}
    for found in runtimes.values():
        found["gflops_per_s"] = flops / found["seconds"] / 1e9
    result = {
        "passages": len(texts), "short": args.short, "cpus": len(os.sched_getaffinity(0)),
        "model": model_facts, "gflop": flops / 1e9, "matmul_gflops_per_s": rates, "floor_seconds": floors,
        "runtimes": runtimes,
        "command": "python benchmarks/bench_ceiling.py " + " ".join(sys.argv[1:]),
    }
    print(f"{len(texts)} passages ({model_facts['distinct_texts']} distinct), {tokens} tokens ({tokens / model_facts['distinct_texts']:.1f} a text), "
          f"{flops / 1e12:.3f} TFLOP in matrix products")
    for name, rate in rates.items():
        print(f"  float32 matmul {name}: {rate:.0f} GFLOP/s → floor {floors[name]:.2f} s "
              f"({len(texts) / floors[name]:.0f} passages/s)")
    for name, found in runtimes.items():
        print(f"  {name}: {found['seconds']:.2f} s ({found['passages_per_s']:.0f} passages/s, "
              f"{found['gflops_per_s']:.0f} GFLOP/s)")
    out = args.out or Path(__file__).parent / "results" / f"ceiling-{len(texts)}{'-short' if args.short else ''}.json"
    out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {out}")


def _timed(encoder: SentenceTransformerEncoder, texts: list[str]) -> float:
    started = time.perf_counter()
    encoder.encode_passages(texts)
    return time.perf_counter() - started


def _model_facts(encoder: SentenceTransformerEncoder, texts: list[str]) -> dict[str, Any]:
    """The transformer's shape (from its config.json) and the tokens the corpus gives it (each
    distinct text once: the encoder embeds a repeated text once per call)."""
    config = json.loads((Path(encoder.path) / "config.json").read_text(encoding="utf-8"))
    prompt = encoder.prompts.get("passage", "")
    counts = encoder.count_tokens([(prompt + t).strip() for t in dict.fromkeys(texts)])
    return {
        "name": encoder.name, "distinct_texts": len(counts), "layers": config["num_hidden_layers"], "hidden": config["hidden_size"],
        "intermediate": config["intermediate_size"],
        "tokens": sum(counts) + 2 * len(texts),  # + <s> and </s>, which count_tokens leaves out
    }


if __name__ == "__main__":
    main()
