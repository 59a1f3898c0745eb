"""Every metric-learning loss × miner on the same data, the same optimizer steps: dev quality and
training throughput, one table (docs/training.md, "Loss families compared").

The data is one draw of groups from ``corpora/labelled_train.jsonl`` (Tatoeba training clusters,
training idioms with their meaning, CC-CEDICT words with glosses and sentences that hold them;
``python -m textsearch.training.sources`` writes it), about ``--steps`` × ``--batch-size`` texts:

- the labelled losses (``training/labelled.py``: multi-similarity, lifted structure, Proxy-NCA,
  Proxy-Anchor, batch-hard triplet) read the groups as they are, on group-by-label batches;
- the pair loss MNRL (in-batch N-pair) reads the same groups as (first member, each other member)
  pairs, and once more with the word-sharing triples of ``corpora/wordshare_train.jsonl`` as hard
  negatives (``mnrl+wordshare``: same steps, other data, for reference).

Every run starts from the base model with LoRA (r 16), lr 2e-4, batch 32, seed 0, and the same
number of optimizer steps (``--steps``); each is judged with ``quality.dev_report`` on the dev
splits (MRR@10, and how often the word-sharing wrong answer comes first). Results are written
after each run and a rerun skips the runs already in the file, so the grid can be spread over
several sittings. Each run also takes the card's check (``bench_showcase.py``: "可爱的宝宝" against
the paraphrase "惹人喜欢的孩子" and the near miss "宝宝的可爱玩具坏了", and which comes first on the
demo and on the five files), as a check on the model, never a figure it is chosen on:

    flock /tmp/textsearch-cpu.lock .venv/bin/python benchmarks/bench_losses.py            # the whole grid
    flock /tmp/textsearch-cpu.lock .venv/bin/python benchmarks/bench_losses.py --runs multi-similarity/multi-similarity mnrl
    .venv/bin/python benchmarks/bench_losses.py --tables                                  # the markdown table
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "benchmarks" / "results" / "losses.json"
LABELLED = ROOT / "corpora" / "labelled_train.jsonl"
WORDSHARE = ROOT / "corpora" / "wordshare_train.jsonl"


def grid() -> list[str]:
    from textsearch.training.labelled import LOSSES, MINERS

    return ["mnrl", "mnrl+wordshare", "base"] + [f"{loss}/{miner}" for loss in LOSSES for miner in MINERS]


def draw(texts: int, seed: int) -> list[dict[str, Any]]:
    """Whole groups of the labelled file, drawn at random until ``texts`` texts."""
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for line in LABELLED.read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        groups[row["label"]].append(row)
    labels = sorted(groups)
    random.Random(seed).shuffle(labels)
    rows: list[dict[str, Any]] = []
    for label in labels:
        if len(rows) >= texts:
            break
        rows += groups[label]
    return rows


def _write(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def data_for(run: str, rows: list[dict[str, Any]], steps: int, batch: int, tmp: Path, seed: int) -> Path:
    if run.startswith("mnrl"):
        by_label: dict[str, list[str]] = defaultdict(list)
        for r in rows:
            by_label[r["label"]].append(r["text"])
        pairs = [{"anchor": texts[0], "positive": t} for texts in by_label.values() for t in texts[1:]]
        random.Random(seed).shuffle(pairs)
        if run == "mnrl+wordshare":  # a quarter of the rows become the word-sharing triples
            lines = WORDSHARE.read_text(encoding="utf-8").splitlines()
            mined = [r for r in map(json.loads, lines) if r.get("source") == "tatoeba-wordshare"]
            extra = random.Random(seed).sample(mined, steps * batch // 4)
            pairs = pairs[: steps * batch - len(extra)] + [{k: r[k] for k in ("anchor", "positive", "negative")}
                                                          for r in extra]
            random.Random(seed).shuffle(pairs)
        return _write(tmp / f"{run.replace('/', '_')}.jsonl", pairs[: steps * batch])
    return _write(tmp / "labelled.jsonl", [{"text": r["text"], "label": r["label"]} for r in rows])


def measure(run: str, rows: list[dict[str, Any]], args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    from textsearch.models.registry import DEFAULT_BASE_MODEL
    from textsearch.training.bi_encoder import TrainConfig, train
    from textsearch.training.quality import dev_report

    if run == "base":
        return {"dev": dev_report(DEFAULT_BASE_MODEL, ROOT / "corpora"), "card": card(DEFAULT_BASE_MODEL)}
    loss, _, miner = run.partition("/")
    path = data_for(run, rows, args.steps, args.batch_size, tmp, args.seed)
    n = sum(1 for _ in path.open(encoding="utf-8"))
    # the same optimizer steps for every run: epochs over this file's batches
    per_epoch = n / args.batch_size
    config = TrainConfig(loss="mnrl" if loss.startswith("mnrl") else loss, miner=miner or None,
                         epochs=args.steps / per_epoch, batch_size=args.batch_size, seed=args.seed,
                         save_every=10_000)
    out = tmp / f"model-{run.replace('/', '_').replace('+', '_')}"
    started, cpu = time.perf_counter(), time.process_time()
    result = train(path, out, config)
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu
    return {"rows": n, "steps": result.steps, "train_seconds": round(result.seconds, 1), "wall_seconds": round(wall, 1),
            "cpu_seconds": round(cpu, 1),
            "per_second": round(result.pairs_per_second, 2), "unit": "pairs" if loss.startswith("mnrl") else "texts",
            "first_loss": result.first_loss, "last_loss": result.last_loss,
            "dev": dev_report(str(out), ROOT / "corpora"), "card": card(str(out))}


def card(model: str) -> dict[str, Any]:
    """The card's example on this model (bench_showcase.measure), in brief."""
    from bench_showcase import VARIANTS
    from bench_showcase import measure as showcase

    got = showcase(model)
    return {"paraphrase": got["variants"][VARIANTS["paraphrase"]], "near_miss": got["variants"][VARIANTS["near miss"]],
            "near_miss_first": {corpus: got[corpus]["near_miss_first"] for corpus in ("demo", "five")}}


def tables(result: dict[str, Any]) -> str:
    from textsearch.training.quality import DEV_SPLITS, WORDSHARE_SPLITS

    # the dev splits every run was judged on (a split added later has no figures for the grid)
    splits = [s for s in DEV_SPLITS if all(s in got["dev"] for got in result["runs"].values())]
    cards = any("card" in got for got in result["runs"].values())
    head = ("| run | " + " | ".join(splits) + " | mean | near miss first zh / en | steps | CPU s | throughput |"
            + (" card: paraphrase − near miss | card: near miss first (demo / five) |" if cards else ""))
    lines = [head, "|---|" + "---|" * (len(splits) + 5 + 2 * cards)]
    for run, got in result["runs"].items():
        dev = got["dev"]
        cells = [f"{dev[s]['mrr@10']:.3f}" for s in splits]
        mean = sum(dev[s]["mrr@10"] for s in splits) / len(splits)
        wrong = " / ".join(f"{dev[s]['wrong_first']:.1%}" for s in WORDSHARE_SPLITS)
        speed = f"{got['per_second']:.1f} {got['unit']}/s" if "per_second" in got else "—"
        line = (f"| {run} | " + " | ".join(cells) + f" | {mean:.3f} | {wrong} | {got.get('steps', '—')} | "
                f"{got.get('cpu_seconds', '—')} | {speed} |")
        if cards and "card" in got:
            first = got["card"]["near_miss_first"]
            line += (f" {got['card']['paraphrase'] - got['card']['near_miss']:+.3f} | "
                     f"{'yes' if first['demo'] else 'no'} / {'yes' if first['five'] else 'no'} |")
        elif cards:
            line += " — | — |"
        lines.append(line)
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", nargs="+", help="default: the whole grid (see grid())")
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--tables", action="store_true", help="only print the table of --out")
    args = parser.parse_args()
    if args.tables:
        print(tables(json.loads(args.out.read_text(encoding="utf-8"))))
        return
    result = json.loads(args.out.read_text(encoding="utf-8")) if args.out.is_file() else {}
    settings = {"steps": args.steps, "batch_size": args.batch_size, "seed": args.seed}
    if result.get("settings", settings) != settings:
        sys.exit(f"{args.out} holds runs with {result['settings']}: pass another --out")
    result.update(settings=settings, machine={"platform": platform.platform(), "cpus": os.cpu_count(),
                                              "python": platform.python_version()})
    result.setdefault("runs", {})
    rows = draw(args.steps * args.batch_size, args.seed)
    with tempfile.TemporaryDirectory(prefix="textsearch-losses-") as tmp:
        for run in args.runs or grid():
            if run in result["runs"]:
                continue
            print(run, flush=True)
            result["runs"][run] = measure(run, rows, args, Path(tmp))
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(json.dumps(result, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(tables(result))


if __name__ == "__main__":
    main()
