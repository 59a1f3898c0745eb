"""What a command costs in a new process, as a shell user pays it: wall time and peak memory
(RSS) of `textsearch --help`, `info`, `query` (dense, keyword, --rerank) on the demo index, and
`index` of an unchanged folder of 3,000 files and of the same folder with one file changed.

p50 (and max) over --runs runs each, the model's ONNX export already cached (one warm-up run
first). Prints a table and writes benchmarks/results/cold.json.

    python benchmarks/bench_cold.py --runs 10
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TEXTSEARCH = [sys.executable, "-m", "textsearch"]


def measure(args: list[str], env: dict[str, str]) -> tuple[float, float, int]:
    """(wall seconds, peak RSS in MB, exit code) of one run in a new process."""
    started = time.perf_counter()
    process = subprocess.Popen([*TEXTSEARCH, *args], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    return wall, usage.ru_maxrss / 1024, process.returncode


def corpus(folder: Path, n: int) -> None:
    """n small files of zh/en sentences (HSK), in 30 folders."""
    from importlib.util import find_spec

    records = json.loads(Path(find_spec("hsk_sentences_audio").submodule_search_locations[0], "data",
                              "sentences.json").read_text(encoding="utf-8"))
    for i in range(n):
        r = records[i % len(records)]
        path = folder / f"d{i % 30:02d}" / f"{i:05d}.txt"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"{r['chinese']}\n{r['translation'].get('en', '')} ({i})\n", encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--files", type=int, default=3000)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "cold.json")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="textsearch-cold-"))
    env = {**os.environ, "TEXTSEARCH_INDEXES": str(work / "indexes")}
    try:
        subprocess.run([*TEXTSEARCH, "index", str(ROOT / "corpora" / "demo"), "--quiet"], env=env, check=True)
        folder = work / "files"
        corpus(folder, args.files)
        subprocess.run([*TEXTSEARCH, "index", str(folder), "--quiet"], env=env, check=True)
        changed = folder / "d00" / "00000.txt"
        cases = {
            "--help": ["--help"],
            "info demo": ["info", "demo"],
            'query "可爱的宝宝"': ["query", "可爱的宝宝", "--index", "demo"],
            'query "ZK-7741" --mode keyword': ["query", "ZK-7741", "--mode", "keyword", "--index", "demo"],
            'query "可爱的宝宝" --rerank': ["query", "可爱的宝宝", "--rerank", "--index", "demo"],
            f"index (unchanged, {args.files} files)": ["index", str(folder), "--quiet"],
            f"index (one of {args.files} files changed)": ["index", str(folder), "--quiet"],
        }
        rows = {}
        for name, command in cases.items():
            measure(command, env)  # warm-up: file caches, and the reranker's export on first use
            walls, rss = [], []
            for run in range(args.runs):
                if "changed)" in name:
                    changed.write_text(f"改了一个字 {run}\nchanged {run}\n", encoding="utf-8")
                wall, peak, code = measure(command, env)
                if code != 0:
                    raise SystemExit(f"{name}: exit {code}")
                walls.append(wall)
                rss.append(peak)
            rows[name] = {"wall_p50_s": round(statistics.median(walls), 3), "wall_max_s": round(max(walls), 3),
                          "rss_p50_mb": round(statistics.median(rss), 1), "rss_max_mb": round(max(rss), 1)}
            print(f"{name:<42} {rows[name]['wall_p50_s']:>6.2f} s p50 ({rows[name]['wall_max_s']:.2f} max)  "
                  f"{rows[name]['rss_p50_mb']:>7.1f} MB", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    result = {"runs": args.runs, "files": args.files, "cpus": os.cpu_count(), "machine": platform.machine(),
              "python": platform.python_version(), "commands": rows}
    args.out.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
