"""The crash test at CI size: SIGKILL the indexer at random moments; after each kill the index
checks clean and answers, and re-running reaches exactly the state of an uninterrupted run.

It runs benchmarks/bench_crash.py itself (``--fake``: a child process indexing with the test
suite's HashEncoder in small batches), so the script the README's figures come from is tested too.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

import bench_crash  # noqa: E402


@pytest.mark.slow
def test_killed_indexer_loses_nothing(tmp_path: Path) -> None:
    """Six kills: every check passes, every query works, every completion is identical."""
    result = bench_crash.main(["--fake", "--kills", "6", "--files", "30", "--out", str(tmp_path / "crash.json")])
    rounds = result["rounds"]
    assert rounds == 6
    assert result["kills_landed"] >= 1  # kills aimed inside the run land (some let it finish)
    assert result["checks_passed"] == rounds and result["queries_ok"] == rounds
    assert result["completions"] >= 1 and result["completions_identical"] == result["completions"]
    assert result["documents_lost"] == 0
