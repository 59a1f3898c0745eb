"""Distributed ingestion on a local Ray (``index_folder(ray=...)``, ``textsearch index --ray``): the
index it leaves is the one a single-process run leaves, on either backend."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from textsearch import Index
from textsearch.check import check
from textsearch.errors import MissingExtraError
from textsearch.testing import HashEncoder

ray = pytest.importorskip("ray")
pytestmark = pytest.mark.slow  # a local Ray takes seconds to start

BACKENDS = ["local", pytest.param("milvus", marks=pytest.mark.skipif(
    not all(__import__("importlib").util.find_spec(m) for m in ("pymilvus", "milvus_lite")),
    reason="the milvus extra is not installed"))]
QUERIES = ["宝宝 火车 3", "sentence number 7", "apple tree", "可爱的宝宝"]


@pytest.fixture(scope="module", autouse=True)
def local_ray() -> Iterator[None]:
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def corpus(folder: Path) -> Path:
    (folder / "sub").mkdir(parents=True)
    for i in range(40):
        text = f"文档 {i} 关于 宝宝 和 火车 {i % 7}。Another sentence number {i} here."
        if i % 5 == 0:  # some documents of several passages
            text = " ".join(f"Long part {j} of document {i}, about apples and trains." for j in range(30))
        (folder / f"d{i:02}.txt").write_text(text, encoding="utf-8")
    (folder / "sub" / "rows.jsonl").write_text(
        '{"id": "r1", "text": "可爱的宝宝", "lang": "zh"}\n{"id": "r2", "text": "apple tree"}\n', encoding="utf-8")
    (folder / "empty.txt").write_text("", encoding="utf-8")
    return folder


def answers(index: Index) -> list[list[tuple[str, int, str, float]]]:
    return [[(h.doc_id, h.passage, h.text, round(h.score, 5))
             for h in index.search(q, k=8, group=False, include_low_confidence=True)] for q in QUERIES]


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_ray_run_gives_exactly_the_single_process_index(tmp_path: Path, backend: str) -> None:
    folder = corpus(tmp_path / "corpus")
    with Index.create(tmp_path / "one", encoder=HashEncoder(), backend=backend) as one, \
            Index.create(tmp_path / "many", encoder=HashEncoder(), backend=backend) as many:
        alone = one.index_folder(folder)
        spread = many.index_folder(folder, ray="auto", ray_actors=2, ray_batch_size=4)
        assert (spread.added, spread.passages, spread.skipped) == (alone.added, alone.passages, alone.skipped) == (
            42, alone.passages, 1)
        assert spread.skipped_files == [("empty.txt", "empty file")]
        assert many.info()["passages"] == one.info()["passages"] > 42
        assert answers(many) == answers(one)

        (folder / "d03.txt").unlink()
        (folder / "d04.txt").write_text("a changed document about apple trees", encoding="utf-8")
        again = many.index_folder(folder, ray="auto", ray_actors=1)
        assert (again.added, again.updated, again.unchanged, again.deleted) == (0, 1, 40, 1)
        one.index_folder(folder)
        assert answers(many) == answers(one)
    assert check(tmp_path / "many").ok


def test_ray_missing_names_the_extra(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    find = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "ray" else find(name, *a))
    folder = corpus(tmp_path / "corpus")
    with Index.create(tmp_path / "idx", encoder=HashEncoder()) as idx, \
            pytest.raises(MissingExtraError, match=r"pip install 'textsearch-zh\[ray\]'"):
        idx.index_folder(folder, ray="auto")
