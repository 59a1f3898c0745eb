"""Every CLI command has help and is documented in the README, with an example that parses; the
README's two commands exist; its Python example runs; its measured figures are the ones their
results files hold."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from textsearch.cli import app

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")
COMMANDS = sorted(c.name or c.callback.__name__ for c in app.registered_commands)
COMMANDS += [f"{g.name} {c.name}" for g in app.registered_groups for c in g.typer_instance.registered_commands]


def test_the_commands_are_the_expected_ones() -> None:
    expected = ["check", "delete", "eval", "index", "info", "list", "query", "repair", "serve", "train",
                "train-reranker", "watch", "pairs build"]
    assert COMMANDS == expected


@pytest.mark.parametrize("command", COMMANDS)
def test_command_has_help_and_readme_section(command: str) -> None:
    result = CliRunner().invoke(app, [*command.split(), "--help"])
    assert result.exit_code == 0
    assert "Example: textsearch " + command in " ".join(result.stdout.split())
    assert f"### `textsearch {command}" in README


def test_readme_starts_with_the_two_commands() -> None:
    first_block = README.split("```")[1]
    assert first_block.split()[:2] == ["make", "demo"]
    assert "make test" in first_block
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    assert "\ndemo:" in makefile and "\ntest:" in makefile
    assert "make test" in (ROOT / ".ci" / "run").read_text(encoding="utf-8")


# --- every example in the README works -------------------------------------------------------------
def _cli_examples() -> list[list[str]]:
    """The argument lists of every `textsearch …` line in the README's code (quick start lines
    start with `$ `, the commands' examples are indented blocks)."""
    examples = []
    for line in README.splitlines():
        text = line.strip().removeprefix("$ ")
        if text.startswith("textsearch ") and (line.startswith("    ") or line.startswith("$ ")):
            text = text.split("  #")[0]
            examples.append(shlex.split(text)[1:])
    return examples


def test_the_readme_has_an_example_for_every_command() -> None:
    shown = {" ".join(a[:2]) if a[0] == "pairs" else a[0] for a in _cli_examples()}
    assert shown == set(COMMANDS)


@pytest.mark.parametrize("args", _cli_examples(), ids=lambda a: " ".join(a))
def test_every_readme_command_line_parses(args: list[str]) -> None:
    """Each example names a real command with options it has and values they accept (parsed by
    the CLI's own parser, not run)."""
    group = typer.main.get_command(app)
    ctx = group.make_context("textsearch", list(args))
    name, command, rest = group.resolve_command(ctx, list(args))
    if hasattr(command, "resolve_command"):  # a group: pairs build
        name, command, rest = command.resolve_command(ctx, rest)
    command.make_context(name, rest, parent=ctx)


def test_the_readme_python_api_block_is_valid_python() -> None:
    (block,) = [b.split("\n", 1)[1] for b in README.split("```")[1::2] if b.startswith("python")]
    compile(block, "README.md", "exec")


@pytest.mark.model
def test_the_readme_python_api_block_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The Python API example, run as written, in a folder of its own (corpora/ linked in)."""
    (block,) = [b.split("\n", 1)[1] for b in README.split("```")[1::2] if b.startswith("python")]
    (tmp_path / "corpora").symlink_to(ROOT / "corpora")
    monkeypatch.chdir(tmp_path)
    scope: dict[str, object] = {}
    exec(compile(block, "README.md", "exec"), scope)  # noqa: S102 - our own README
    assert [h.doc_id for h in scope["hits"][0]] != []  # type: ignore[index]
    assert (tmp_path / "indexes" / "demo" / "hnsw.bin").is_file()
    assert scope["built"].summary.added == 460  # type: ignore[attr-defined]
    assert (tmp_path / "indexes" / "big" / "milvus.db").is_dir()  # the Milvus example ran too


# --- every figure in the README is the one its results file holds ------------------------------------
# Each README table names its results file; the test reads the table's cells and the file's values
# and compares them as the README prints them (same rounding), so a figure that drifts from its file,
# or a file rerun without the README following, fails here. Nothing is measured.
RESULTS = ROOT / "benchmarks" / "results"


def _result(name: str) -> dict:
    return json.loads((RESULTS / name).read_text(encoding="utf-8"))


def _section(title: str) -> str:
    """The README's text under ``## title``, up to the next ``## `` heading."""
    return README.split(f"\n## {title}\n", 1)[1].split("\n## ", 1)[0]


def _table(text: str) -> dict[str, dict[str, str]]:
    """The first markdown table in ``text`` as {row label: {column header: cell}}, bold removed."""
    lines = [line for line in text.splitlines() if line.startswith("|")]
    rows = [[cell.strip().replace("**", "") for cell in line.strip("|").split("|")] for line in lines]
    header, body = rows[0], rows[2:]
    return {row[0]: dict(zip(header[1:], row[1:])) for row in body}


def _flat(text: str) -> str:
    return " ".join(text.split())


def _scale_out_row(config: str) -> dict:
    (row,) = [r for r in _result("scale_out-10000.json")["results"] if r["config"] == config]
    return row


# README Speed table: column → system in compare-10000.json; row → (JSON key, format)
SPEED_COLUMNS = {"textsearch": "textsearch", "textsearch on torch": "textsearch-torch", "Chroma": "chroma",
                 "sentence-transformers + hnswlib script": "script"}
SPEED_ROWS = {
    "ingestion, passages/s": ("ingest_passages_per_s", "{:.1f}"),
    "single query end to end, p50 ms (model warm)": ("query_ms_p50", "{:.1f}"),
    "recall@10 vs exact search": ("recall_at_10", "{:.3f}"),
}
# README Scale-out table: row → config in scale_out-10000.json
SCALE_OUT_ROWS = {"local backend, one process": "local/single",
                  "local backend, `--ray auto --ray-actors 2`": "local/ray-2",
                  "`--backend milvus` (Milvus Lite), one process": "milvus/single"}


def test_the_speed_table_is_compare_10000_json() -> None:
    compare = _result("compare-10000.json")
    assert f"`{compare['command']}`" in _flat(_section("Speed"))  # the command that wrote the file
    table = _table(_section("Speed"))
    assert set(table) == set(SPEED_ROWS)
    for row, (key, fmt) in SPEED_ROWS.items():
        assert set(table[row]) == set(SPEED_COLUMNS)
        for column, system in SPEED_COLUMNS.items():
            assert table[row][column] == fmt.format(compare["systems"][system][key]), (row, column)


def test_the_speed_table_is_at_todays_defaults() -> None:
    from textsearch.config import IndexConfig
    from textsearch.models.registry import DEFAULT_MODEL

    compare = _result("compare-10000.json")
    config = IndexConfig(model="", dimension=0)
    assert compare["model"] == DEFAULT_MODEL
    assert compare["hnsw"] == {"space": config.space, "M": config.M, "ef_construction": config.ef_construction,
                               "ef": config.ef}


def test_the_scale_out_table_is_scale_out_10000_json() -> None:
    section = _section("Scale-out")
    assert "`python benchmarks/bench_scale_out.py --passages 10000`" in section
    assert _result("scale_out-10000.json")["command"] == "python benchmarks/bench_scale_out.py --passages 10000"
    table = _table(section)
    assert set(table) == set(SCALE_OUT_ROWS)
    for label, config in SCALE_OUT_ROWS.items():
        row = _scale_out_row(config)
        assert table[label] == {
            "passages/s": f"{row['passages_per_s']:.1f}",
            "query p50 / p95 ms": f"{row['query_ms_p50']:.1f} / {row['query_ms_p95']:.1f}",
            "recall@10": f"{row['recall_at_10']:.3f}",
        }, label


def _prose_figures() -> list[tuple[str, str]]:
    """(README section, a phrase as the README words it, with the figures taken from their files)."""
    short = _result("compare-3000-short.json")["systems"]
    ts, chroma = short["textsearch"], short["chroma"]
    torch = _result("compare-10000.json")["systems"]["textsearch-torch"]
    encoder = _result("encoder.json")["runtimes"]
    cold = _result("cold.json")["commands"]
    query, rerank_query = cold['query "可爱的宝宝"'], cold['query "可爱的宝宝" --rerank']
    unchanged, changed = cold["index (unchanged, 3000 files)"], cold["index (one of 3000 files changed)"]
    serve = _result("serve.json")["http"]
    at8, at8_writer = serve["8 clients, batch window 0 ms"], serve["8 clients + a writer, batch window 0 ms"]
    at32, at32_window = serve["32 clients, batch window 0 ms"], serve["32 clients, batch window 2 ms"]
    added = _result("rerank-cpu-onnx.json")["latency"]["rerank 10"]["added_p50_ms"]
    shipped = _result("rerank_quality.json")["rerankers"]["models/rr-list"]["heldout"]  # shipped as zh-en-reranker
    crash = _result("crash.json")
    stress = _result("stress.json")
    readers = stress["config"]["readers"] + stress["config"]["reopening_readers"]
    local, ray, milvus = (_scale_out_row(c) for c in ("local/single", "local/ray-2", "milvus/single"))

    def gain(split: str) -> str:  # at the default: 10 candidates, weight 0.15
        return f"{shipped[split]['10@0.15']['mrr@10'] - shipped[split]['recall']['mrr@10']:+.3f}"

    onnx_speedup = encoder["onnx"]["passages_per_s"] / encoder["torch"]["passages_per_s"]
    short_ratio = ts["ingest_passages_per_s"] / chroma["ingest_passages_per_s"]
    return [
        ("Models", f"torch's vectors, {onnx_speedup:.1f}× faster"),
        ("Speed", f"On torch, textsearch ingests {torch['ingest_passages_per_s']:.1f} passages/s"),
        ("Speed", f"textsearch ingests {ts['ingest_passages_per_s']:.1f} passages/s against Chroma's "
                  f"{chroma['ingest_passages_per_s']:.1f} ({short_ratio:.2f}×), query p50 {ts['query_ms_p50']:.1f} "
                  f"against {chroma['query_ms_p50']:.1f} ms"),
        ("Speed", f"`textsearch query` {query['wall_p50_s']:.2f} s and {query['rss_p50_mb']:.0f} MB peak"),
        ("Speed", f"with `--rerank`, which loads torch, {rerank_query['wall_p50_s']:.2f} s and "
                  f"{rerank_query['rss_p50_mb']:,.0f} MB"),
        ("Speed", f"`textsearch --help` {cold['--help']['wall_p50_s']:.2f} s"),
        ("Speed", f"re-indexing an unchanged folder of 3,000 files {unchanged['wall_p50_s']:.2f} s "
                  f"(one changed file: {changed['wall_p50_s']:.2f} s)"),
        ("Speed", f"{at8['queries_per_s']:.1f} queries/s at 8 clients (p50 {at8['p50_ms']:.0f} ms), "
                  f"{at8['errors'] + at8_writer['errors']} errors, also with a writer"),
        ("Speed", f"`--batch-window-ms 2` raises {at32['queries_per_s']:.1f} to {at32_window['queries_per_s']:.1f} "
                  "queries/s"),
        ("Reranking", f"costs +{added:.0f} ms per query (p50)"),
        ("Reranking", f"keyword queries over longer texts ({gain('keyword_zh')})"),
        ("Reranking", f"the demo's in-corpus questions ({gain('demo_in_corpus')})"),
        ("Reliability", f"{crash['rounds']} kills aimed at random moments"),
        ("Reliability", f"{crash['kills_landed']} of which landed ({crash['kills_while_writing']} while writing): "
                        f"{crash['checks_passed']} of {crash['rounds']} checks passed, "
                        f"{crash['completions_identical']} of {crash['completions']} completed runs matched an "
                        f"uninterrupted index, {crash['documents_lost']} documents lost"),
        ("Reliability", f"One writer and {NUMBERS[readers]} readers for {stress['config']['seconds']:.0f} s "
                        f"(`python benchmarks/bench_stress.py --seconds {stress['config']['seconds']:.0f} "
                        f"--readers {stress['config']['readers']}`"),
        ("Reliability", f"{stress['queries']:,} queries, {stress['errors']} errors, {stress['violations']} torn "
                        "states"),
        ("Known limits", f"answers queries in {milvus['query_ms_p50']:.1f} ms (p50) against hnswlib's "
                         f"{local['query_ms_p50']:.1f} ms"),
        ("Known limits", f"slower than one process ({ray['passages_per_s']:.1f} against "
                         f"{local['passages_per_s']:.1f} passages/s)"),
        ("Known limits", f"loads torch for the cross-encoder ({rerank_query['wall_p50_s']:.0f} s, "
                         f"{rerank_query['rss_p50_mb'] / 1000:.1f} GB)"),
    ]


NUMBERS = {3: "three", 4: "four", 5: "five", 6: "six"}


@pytest.mark.parametrize(("section", "phrase"), _prose_figures(), ids=lambda x: x[:40])
def test_a_prose_figure_is_the_one_its_file_holds(section: str, phrase: str) -> None:
    assert _flat(phrase) in _flat(_section(section))


def test_the_reranker_loses_no_held_out_split_by_more_than_001() -> None:
    """The README's "it never loses more than 0.01 MRR@10", at the default 10 candidates, weight 0.15."""
    assert "it never loses more than 0.01 MRR@10" in _flat(_section("Reranking"))
    shipped = _result("rerank_quality.json")["rerankers"]["models/rr-list"]["heldout"]
    worst = min(split["10@0.15"]["mrr@10"] - split["recall"]["mrr@10"] for split in shipped.values())
    assert -0.01 <= worst < 0  # it does lose a little somewhere: -0.008 on restate_zh


def test_the_churn_figure_holds() -> None:
    """The README's "100 rounds of delete and re-add: the graph file stays the same size"."""
    churn = _result("churn.json")
    assert f"{churn['rounds']} rounds of delete and re-add: the graph file stays the same size" in _flat(README)
    for run in ("api", "folder"):
        assert len(churn[run]["rounds"]) == churn["rounds"] + 1  # round 0 is the first build
        assert len({r["files"]["hnsw.bin"] for r in churn[run]["rounds"]}) == 1, run


# README Quality table: the rows that come from quality.json; columns → model in quality.json
QUALITY_COLUMNS = {"multilingual-e5-small": "multilingual-e5-small", "zh-en-general (default)": "zh-en-general"}
QUALITY_PAIRS = {  # row → (split, metric) for the two figures "a / b"
    "restatements, English": (("restate_en", "mrr@10"), ("restate_en", "recall@1")),
    "restatements, Chinese": (("restate_zh", "mrr@10"), ("restate_zh", "recall@1")),
    "overlap controls (sharing words is right)": (("overlap_controls", "mrr@10"), ("overlap_controls", "recall@1")),
    "idiom ← meaning": (("idiom_meaning", "mrr@10"), ("idiom_meaning", "recall@1")),
    "cross-lingual zh → en / en → zh": (("xling_zh_en", "mrr@10"), ("xling_en_zh", "mrr@10")),
    "keyword queries zh / en → zh reviews": (("keyword_zh", "mrr@10"), ("keyword_en_zh", "mrr@10")),
    "demo: natural questions / in-corpus questions": (("demo_questions", "mrr@10"), ("demo_in_corpus", "mrr@10")),
    "a fact in long notes / in news": (("longdoc_zh", "mrr@10"), ("news_fact", "mrr@10")),
}
QUALITY_REFUSALS = {  # row → refusal kind, for demo / Tatoeba
    '"no confident match": out-of-corpus refused, demo / Tatoeba': "out_of_corpus",
    "in-corpus wrongly refused, demo / Tatoeba": "in_corpus",
}
# README "no confident match" table: row → corpus in refusal-b.json
REFUSAL_ROWS = {"reviews: 12,000 shopping, hotel and book reviews": "reviews",
                "news: 2,000 paragraphs of 1998 news": "news",
                "everyday sentences: 6,017 Tatoeba sentences": "tatoeba",
                "idioms with their meanings: 5,000": "idioms",
                "the demo corpus: 460 documents": "demo",
                "five one-line files": "five",
                "one narrow topic: 400 laptop specifications": "laptop"}


def test_the_quality_table_is_quality_json() -> None:
    reports = {r["model"]: r for r in _result("quality.json")["reports"]}
    table = _table(_section("Quality").split("bench_refusal.py", 1)[0])  # the first of its two tables
    assert set(table) == set(QUALITY_PAIRS) | set(QUALITY_REFUSALS)
    for column, model in QUALITY_COLUMNS.items():
        report = reports[model]
        for row, pair in QUALITY_PAIRS.items():
            assert table[row][column] == " / ".join(f"{report[s][m]:.3f}" for s, m in pair), (row, column)
        for row, kind in QUALITY_REFUSALS.items():
            expected = f"{report['demo_refusals'][kind]:.1%} / {report['tatoeba_refusals'][kind]:.1%}"
            assert table[row][column] == expected, (row, column)


def test_the_refusal_table_is_refusal_b_json() -> None:
    """The second table of the Quality section: bench_refusal.py --split b, one row per corpus."""
    result = _result("refusal-b.json")
    section = _section("Quality")
    assert result["command"] == "python benchmarks/bench_refusal.py --split b --out benchmarks/results/refusal-b.json"
    assert "`python benchmarks/bench_refusal.py --split b`" in _flat(section)
    table = _table(section.split("bench_refusal.py --split b", 1)[1])
    assert set(table) == set(REFUSAL_ROWS)
    for row, corpus in REFUSAL_ROWS.items():
        got = result["corpora"][corpus]
        assert table[row] == {"in-corpus refused": f"{got['refused_in']:.1%}",
                              "from elsewhere refused": f"{got['refused_out']:.1%}"}, row
        assert corpus == "five" or f"{got['documents']:,}" in row, row  # the size the row names
