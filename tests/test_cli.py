"""The CLI end to end with the real bundled model on a tiny corpus: output, exit codes, errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from textsearch.cli import app

pytestmark = pytest.mark.model

DOCS = {
    "kids/neighbour.txt": "邻居家的孩子特别惹人喜欢，见到谁都笑。",
    "kids/toy.txt": "宝宝的可爱玩具坏了，他哭了一下午。",
    "weather/rain.md": "# Weather\n\nIt will rain heavily tomorrow afternoon, take an umbrella.",
    "food/dishes.jsonl": (
        '{"id": "d1", "text": "红烧肉是一道用五花肉做的家常菜。", "topic": "food"}\n'
        '{"id": "d2", "text": "Fresh bread is best eaten on the day it is baked.", "topic": "food"}\n'
    ),
}


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    root = tmp_path / "mini"
    for rel, text in DOCS.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text, encoding="utf-8")
    (root / "kids" / "gbk.txt").write_bytes("小朋友们在公园里放风筝。".encode("gbk"))
    (root / "notes.bin").write_bytes(b"\x00\x01\x02binary")
    return root


@pytest.fixture
def run(tmp_path: Path, real_encoder):  # real_encoder: build/load the model once per session
    runner = CliRunner()
    env = {"TEXTSEARCH_INDEXES": str(tmp_path / "indexes")}

    def invoke(*args: str, input: str | None = None):
        return runner.invoke(app, list(args), env=env, input=input)

    return invoke


@pytest.fixture
def built(run, corpus: Path):
    result = run("index", str(corpus), "--quiet")
    assert result.exit_code == 0, result.output
    return corpus


def test_index_then_reindex_reports_what_changed(run, corpus: Path) -> None:
    first = run("index", str(corpus), "--quiet")
    assert first.exit_code == 0, first.output
    # 3 text files + 1 GBK file + 2 jsonl rows = 6 documents; notes.bin unsupported
    assert "6 added, 0 updated, 0 unchanged, 0 deleted, 1 skipped" in first.stdout
    (corpus / "weather" / "rain.md").write_text("# Weather\n\nSunny all week.", encoding="utf-8")
    (corpus / "kids" / "toy.txt").unlink()
    second = run("index", str(corpus), "--quiet")
    assert "0 added, 1 updated, 4 unchanged, 1 deleted, 1 skipped" in second.stdout
    assert "5 documents in the index" in second.stdout


def test_query_finds_the_paraphrase(run, built: Path) -> None:
    result = run("query", "可爱的宝宝", "-k", "3", "--min-score", "-1")  # ranking only: no threshold
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["#", "score", "margin", "document", "text"]
    top3 = " ".join(lines[1:4])
    assert "kids/neighbour.txt" in top3


def test_query_json_lines_have_hit_fields(run, built: Path) -> None:
    result = run("query", "cute baby", "--index", "mini", "-k", "2", "--json", "--min-score", "-1")
    assert result.exit_code == 0, result.output
    hits = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(hits) == 2
    assert set(hits[0]) == {"doc_id", "score", "text", "metadata", "passage", "passages", "start", "end",
                            "dense_score", "low_confidence", "rerank_score", "margin", "label", "location",
                            "match", "copies"}
    assert hits[0]["location"]["line"] >= 1  # every hit from a text file says its line
    assert -1.0 <= hits[1]["score"] <= hits[0]["score"] <= 1.0


def test_cross_lingual_gbk_and_metadata(run, built: Path) -> None:
    kites = json.loads(run("query", "children flying kites in the park", "-k", "1", "--json", "--min-score", "-1").stdout)
    assert kites["doc_id"] == "kids/gbk.txt"  # an English query finds the GBK-encoded Chinese file
    assert kites["text"] == "小朋友们在公园里放风筝。"
    pork = json.loads(run("query", "五花肉的做法", "-k", "1", "--json", "--min-score", "-1").stdout)
    assert pork["doc_id"] == "food/dishes.jsonl#d1"
    assert pork["metadata"] == {"topic": "food", "path": "food/dishes.jsonl", "type": "jsonl", "lang": "zh"}


def test_info_and_list(run, built: Path) -> None:
    info = run("info", "mini")
    assert info.exit_code == 0, info.output
    assert "documents   6" in info.stdout and "dimension 384" in info.stdout
    data = json.loads(run("info", "--json").stdout)
    assert data["documents"] == 6 and data["model"] == "zh-en-general"
    assert run("list").stdout.strip() == "mini"


@pytest.mark.parametrize(
    "args, code, message",
    [
        (("query", "   "), 2, "query is empty"),
        (("query", "baby", "-k", "0"), 2, "k must be a number of results from 1 to 10000"),
        (("query", "baby", "-k", "-3"), 2, "k must be a number of results from 1 to 10000"),
        (("query", "baby", "-k", "100000"), 2, "k must be a number of results from 1 to 10000, got 100000"),
        (("query", "baby", "--index", "nope"), 1, "no index at"),
        (("info", "nope"), 1, "no index at"),
    ],
)
def test_bad_queries_fail_with_one_line(run, built: Path, args, code, message) -> None:
    result = run(*args)
    assert result.exit_code == code
    assert result.stderr.startswith("error: ") and message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.output


def test_missing_and_empty_corpus(run, tmp_path: Path) -> None:
    missing = run("index", str(tmp_path / "absent"))
    assert missing.exit_code == 1 and "does not exist" in missing.stderr
    (tmp_path / "empty").mkdir()
    empty = run("index", str(tmp_path / "empty"))
    assert empty.exit_code == 1 and "no documents found" in empty.stderr
    assert not (tmp_path / "indexes" / "empty").exists()  # no empty index left behind
    none = run("query", "x")
    assert none.exit_code == 1 and "no index under" in none.stderr


def test_another_model_is_refused(run, built: Path, tmp_path: Path) -> None:
    result = run("index", str(built), "--model", "all-MiniLM-L6-v2")
    assert result.exit_code == 1
    assert "was built with model 'zh-en-general'" in result.stderr
    assert "documents   6" in run("info").stdout  # the index is untouched


def test_several_indexes_need_a_choice(run, built: Path) -> None:
    assert run("index", str(built), "--name", "second", "--quiet").exit_code == 0
    result = run("query", "baby")
    assert result.exit_code == 1 and "mini, second" in result.stderr
    assert run("query", "baby", "--index", "second").exit_code == 0


def test_corrupt_hnsw_then_repair(run, built: Path, tmp_path: Path) -> None:
    before = run("query", "下雨", "--json").stdout
    hnsw = tmp_path / "indexes" / "mini" / "hnsw.bin"
    assert run("check", "mini").stdout.startswith("ok: ")
    hnsw.write_bytes(hnsw.read_bytes()[:100])
    broken = run("query", "下雨")
    assert broken.exit_code == 1 and "textsearch repair" in broken.stderr
    checked = run("check", "mini")
    assert checked.exit_code == 1 and "problem: HNSW file hnsw.bin is not the one" in checked.stdout
    assert "run `textsearch repair" in checked.stderr
    repaired = run("repair", "mini")
    assert repaired.exit_code == 0 and "6 passages" in repaired.stdout
    assert json.loads(run("check", "mini", "--json").stdout)["ok"] is True
    after = run("query", "下雨", "--json").stdout
    assert [json.loads(x)["doc_id"] for x in after.splitlines()] == [
        json.loads(x)["doc_id"] for x in before.splitlines()
    ]


def test_delete_asks_first(run, built: Path, tmp_path: Path) -> None:
    kept = run("delete", "mini", input="n\n")
    assert kept.exit_code == 1 and (tmp_path / "indexes" / "mini").exists()
    gone = run("delete", "mini", "--yes")
    assert gone.exit_code == 0 and not (tmp_path / "indexes" / "mini").exists()
    again = run("delete", "mini", "--yes")
    assert again.exit_code == 1 and "no index at" in again.stderr


def test_module_entry_point_has_help() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "textsearch", "--help"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0
    for command in ("index", "query", "info", "list", "delete", "check", "repair"):
        assert command in result.stdout


def test_keyword_and_hybrid_modes(run, built: Path) -> None:
    keyword = run("query", "五花肉", "--mode", "keyword", "--json")
    assert keyword.exit_code == 0, keyword.output
    hits = [json.loads(line) for line in keyword.stdout.splitlines()]
    assert [h["doc_id"] for h in hits] == ["food/dishes.jsonl#d1"]  # a word inside 用五花肉做的
    hybrid = run("query", "五花肉", "--mode", "hybrid", "-k", "1", "--min-score", "0")
    assert hybrid.exit_code == 0 and "food/dishes.jsonl#d1" in hybrid.stdout
    bad = run("query", "五花肉", "--mode", "fuzzy")
    assert bad.exit_code == 2 and "search mode" in bad.stderr


def test_where_filters_before_the_top_k(run, built: Path) -> None:
    result = run("query", "food", "--where", "topic = food", "--where", "lang in (en)", "--json", "--min-score", "-1")
    assert result.exit_code == 0, result.output
    assert [json.loads(line)["doc_id"] for line in result.stdout.splitlines()] == ["food/dishes.jsonl#d2"]
    prefix = run("query", "孩子", "--where", "path ^= kids/", "--json", "--min-score", "-1")
    assert {json.loads(line)["doc_id"].split("/")[0] for line in prefix.stdout.splitlines()} == {"kids"}
    for where, message in [("colour = red", "unknown filter field"), ("topic ~ food", "FIELD OP VALUE"),
                           ("topic = food'; DROP TABLE documents; --", "")]:
        bad = run("query", "food", "--where", where)
        assert "Traceback" not in bad.output
        if message:
            assert bad.exit_code == 2 and message in bad.stderr
    assert run("info", "mini").exit_code == 0 and "documents   6" in run("info", "mini").stdout


def test_no_confident_match(run, built: Path) -> None:
    result = run("query", "量子计算机的纠错码如何实现", "--min-score", "0.99")
    assert result.exit_code == 0
    assert result.stdout.startswith("no confident match")
    shown = run("query", "量子计算机的纠错码如何实现", "--min-score", "0.99", "--show-low", "-k", "2")
    assert shown.exit_code == 0 and "(low)" in shown.stdout
    as_json = run("query", "量子计算机的纠错码如何实现", "--min-score", "0.99", "--show-low", "--json", "-k", "1")
    assert json.loads(as_json.stdout.splitlines()[0])["low_confidence"] is True


def test_query_with_undecodable_argv_bytes(run, built: Path) -> None:
    """Bytes that are not UTF-8 on the command line reach Python as lone surrogates; the real
    tokenizer must get clean text, not crash."""
    result = run("query", "下雨\udcff", "--show-low")
    assert result.exit_code == 0 and result.stderr == ""
