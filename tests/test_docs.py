"""Every CLI command has help and is documented in the README, with an example that parses; the
README's two commands exist; its Python example runs; its measured figures, and those of the docs
pages its figures moved to, are the ones their results files hold."""

from __future__ import annotations

import json
import math
import shlex
import sys
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from textsearch.cli import app
from textsearch.training.quality import DEV_SPLITS

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

import bench_losses  # benchmarks/: its --tables is what docs/training.md shows

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
        if text.startswith("textsearch ") and (line.startswith(("    ", "$ "))):
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
# or a file rerun without the README following, fails here. Nothing is measured. Figures that moved
# from the README to a docs page are checked there, the same way.
RESULTS = ROOT / "benchmarks" / "results"


def _result(name: str) -> dict:
    return json.loads((RESULTS / name).read_text(encoding="utf-8"))


def _section(title: str, page: str = "README.md") -> str:
    """The text of ``page`` under the heading ``## title`` (or ``### title``), up to the next ``## ``
    heading."""
    text = README if page == "README.md" else (ROOT / page).read_text(encoding="utf-8")
    level = "###" if f"\n### {title}\n" in text else "##"
    return text.split(f"\n{level} {title}\n", 1)[1].split("\n## ", 1)[0]


def _table(text: str) -> dict[str, dict[str, str]]:
    """The first markdown table in ``text`` as {row label: {column header: cell}}, bold removed."""
    start = text.index("\n|") + 1
    lines = text[start:].split("\n\n", 1)[0].splitlines()
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


def _prose_figures() -> list[tuple[str, str, str]]:
    """(page, section, a phrase as the page words it, with the figures taken from their files)."""
    torch = _result("compare-10000.json")["systems"]["textsearch-torch"]
    encoder = _result("encoder.json")["runtimes"]
    cold = _result("cold.json")["commands"]
    query, rerank_query = cold['query "可爱的宝宝"'], cold['query "可爱的宝宝" --rerank']
    serve = _result("serve.json")["http"]
    at8, at8_writer = serve["8 clients, batch window 0 ms"], serve["8 clients + a writer, batch window 0 ms"]
    at32, at32_window = serve["32 clients, batch window 0 ms"], serve["32 clients, batch window 2 ms"]
    added = _result("rerank-cpu-onnx.json")["latency"]["rerank 10"]["added_p50_ms"]
    shipped = _result("rerank_quality.json")["rerankers"]["models/rr-list"]["heldout"]  # shipped as zh-en-reranker
    crash = _result("crash.json")
    stress = _result("stress.json")
    readers = stress["config"]["readers"] + stress["config"]["reopening_readers"]
    refusals = _result("refusal-b.json")["corpora"]
    longdoc = _result("granularity.json")["splits"]["longdoc_zh"]["results"]["passages"]
    default = {r["model"]: r for r in _result("quality.json")["reports"]}["zh-en-general"]
    wordshare = _result("rerank_quality_ws.json")["rerankers"]["models/rr-ws"]
    warm = _result("serve-rerank.json")["runs"]

    def gain(split: str) -> str:  # at the default: 10 candidates, weight 0.15
        return f"{shipped[split]['10@0.15']['mrr@10'] - shipped[split]['recall']['mrr@10']:+.3f}"

    def ws_gain(split: str) -> str:  # the word-sharing reranker at its dev choice
        got = wordshare["heldout"][split]
        return f"{got[wordshare['chosen']]['mrr@10'] - got['recall']['mrr@10']:+.3f}".replace("-", "−")

    onnx_speedup = encoder["onnx"]["passages_per_s"] / encoder["torch"]["passages_per_s"]
    in_refused = max(c["refused_in"] for c in refusals.values())
    refusing = sum(c["refused_out"] >= 0.9 for c in refusals.values())
    return [
        ("README.md", "Models", f"torch's vectors, {onnx_speedup:.1f}× faster"),
        ("docs/models.md", "", f"{onnx_speedup:.1f}× faster on this 2-core CPU"),
        ("README.md", "Speed", f"on torch, textsearch ingests {torch['ingest_passages_per_s']:.1f} passages/s"),
        ("README.md", "Speed", (f"`textsearch query` takes {query['wall_p50_s']:.2f} s and {query['rss_p50_mb']:.0f} MB "
                               "peak")),
        ("README.md", "Speed", (f"{at8['queries_per_s']:.1f} queries/s at 8 clients (p50 {at8['p50_ms']:.0f} ms), "
                               f"{at8['errors'] + at8_writer['errors']} errors, also with a writer")),
        ("docs/serving.md", "Under load", (f"({at32['queries_per_s']:.1f} → {at32_window['queries_per_s']:.1f} "
                                          "queries/s)")),
        ("README.md", "Reranking", f"costs +{added:.0f} ms per query (p50)"),
        ("README.md", "Reranking", f"keyword queries over longer texts ({gain('keyword_zh')})"),
        ("README.md", "Reranking", f"the demo's in-corpus questions ({gain('demo_in_corpus')})"),
        ("docs/reranking.md", "", (f"gains {gain('keyword_zh')} on keyword queries over reviews and "
                                  f"{gain('demo_in_corpus')} on the demo's in-corpus questions")),
        ("docs/reranking.md", "", f"costs +{added:.0f} ms per query (p50)"),
        ("README.md", "Reranking", (f"gains on them ({ws_gain('wordshare_zh')} on Chinese) but loses the demo's "
                                   f"questions ({ws_gain('demo_questions')})")),
        ("docs/reranking.md", "", (f"recall only {warm['recall only']['p50_ms']:.1f} p50 / "
                                  f"{warm['recall only']['p95_ms']:.1f} ms p95, rerank of 10 candidates "
                                  f"{warm['rerank 10 candidates']['p50_ms']:.0f} / "
                                  f"{warm['rerank 10 candidates']['p95_ms']:.0f} ms, of 20 candidates "
                                  f"{warm['rerank 20 candidates']['p50_ms']:.0f} / "
                                  f"{warm['rerank 20 candidates']['p95_ms']:.0f} ms")),
        ("README.md", "Reliability", f"{crash['rounds']} kills aimed at random moments"),
        ("README.md", "Reliability", (f"{crash['kills_landed']} of which landed ({crash['kills_while_writing']} while "
                                     f"writing): {crash['checks_passed']} of {crash['rounds']} checks passed, "
                                     f"{crash['completions_identical']} of {crash['completions']} completed runs "
                                     f"matched an uninterrupted index, {crash['documents_lost']} documents lost")),
        ("README.md", "Reliability", (f"One writer and {NUMBERS[readers]} readers for {stress['config']['seconds']:.0f} "
                                     f"s (`python benchmarks/bench_stress.py --seconds "
                                     f"{stress['config']['seconds']:.0f} --readers {stress['config']['readers']}`")),
        ("README.md", "Reliability", (f"{stress['queries']:,} queries, {stress['errors']} errors, "
                                     f"{stress['violations']} torn states")),
        ("README.md", "Known limits", (f"at least 90% of questions from other domains on {NUMBERS[refusing]} of "
                                       f"{NUMBERS[len(refusals)]} corpora")),
        ("README.md", "Known limits", (f"but {refusals['reviews']['refused_out']:.1%} on reviews, "
                                      f"{refusals['news']['refused_out']:.1%} on news and "
                                      f"{refusals['demo']['refused_out']:.1%} on the demo")),
        ("README.md", "Known limits", f"(in-corpus questions refused: at most {in_refused:.1%})"),
        ("README.md", "Known limits", (f"(MRR@10 {default['longdoc_zh']['mrr@10']:.3f} for one restated sentence in "
                                      f"80 unrelated ones, {longdoc['mrr@10']:.3f} before sentence units)")),
        ("README.md", "Speed", (f"with `--rerank` {rerank_query['wall_p50_s']:.2f} s and "
                                f"{rerank_query['rss_p50_mb']:.0f} MB")),
    ]


NUMBERS = {3: "three", 4: "four", 5: "five", 6: "six", 7: "seven"}


@pytest.mark.parametrize(("page", "section", "phrase"), _prose_figures(), ids=lambda x: x[:40])
def test_a_prose_figure_is_the_one_its_file_holds(page: str, section: str, phrase: str) -> None:
    text = _section(section, page) if section else (ROOT / page).read_text(encoding="utf-8")
    assert _flat(phrase) in _flat(text)


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
QUALITY_COLUMNS = {"multilingual-e5-small": "multilingual-e5-small", "zh-en-general (default)": "zh-en-general",
                   "zh-en-wordshare (opt-in)": "zh-en-wordshare"}
QUALITY_PAIRS = {  # row → (split, metric) for the two figures "a / b"
    "restatements, English": (("restate_en", "mrr@10"), ("restate_en", "recall@1")),
    "restatements, Chinese": (("restate_zh", "mrr@10"), ("restate_zh", "recall@1")),
    "overlap controls (sharing words is right)": (("overlap_controls", "mrr@10"), ("overlap_controls", "recall@1")),
    "idiom ← meaning": (("idiom_meaning", "mrr@10"), ("idiom_meaning", "recall@1")),
    "cross-lingual zh → en / en → zh": (("xling_zh_en", "mrr@10"), ("xling_en_zh", "mrr@10")),
    "keyword queries zh / en → zh reviews": (("keyword_zh", "mrr@10"), ("keyword_en_zh", "mrr@10")),
    "demo: natural questions / in-corpus questions": (("demo_questions", "mrr@10"), ("demo_in_corpus", "mrr@10")),
    "a fact in long notes / in news": (("longdoc_zh", "mrr@10"), ("news_fact", "mrr@10")),
    "word-sharing near miss zh / en (sharing words is wrong)": (("wordshare_zh", "mrr@10"), ("wordshare_en", "mrr@10")),
    "restatement controls zh / en (sharing words is right)": (("control_zh", "mrr@10"), ("control_en", "mrr@10")),
    "a short sentence held whole in a longer one of another meaning, zh": (("contain_zh", "mrr@10"),
                                                                          ("contain_zh", "recall@1")),
}
QUALITY_WRONG_FIRST = {  # row → the splits whose wrong_first it gives, zh / en
    "the near miss ranked first, zh / en": ("wordshare_zh", "wordshare_en"),
    "the other meaning ranked first in the controls, zh / en": ("control_zh", "control_en"),
    "the longer sentence that holds the query ranked first, zh": ("contain_zh",),
}
QUALITY_REFUSALS = {  # row → refusal kind, for demo / Tatoeba
    '"no confident match": out-of-corpus refused, demo / Tatoeba': "out_of_corpus",
    "in-corpus wrongly refused, demo / Tatoeba": "in_corpus",
}


def test_the_quality_table_is_quality_json() -> None:
    reports = {r["model"]: r for r in _result("quality.json")["reports"]}
    table = _table(_section("Quality").split("bench_refusal.py", 1)[0])  # the first of its two tables
    assert set(table) == set(QUALITY_PAIRS) | set(QUALITY_WRONG_FIRST) | set(QUALITY_REFUSALS)
    for column, model in QUALITY_COLUMNS.items():
        report = reports[model]
        for row, pair in QUALITY_PAIRS.items():
            assert table[row][column] == " / ".join(f"{report[s][m]:.3f}" for s, m in pair), (row, column)
        for row, splits in QUALITY_WRONG_FIRST.items():
            assert table[row][column] == " / ".join(f"{report[s]['wrong_first']:.1%}" for s in splits), (row, column)
        for row, kind in QUALITY_REFUSALS.items():
            expected = f"{report['demo_refusals'][kind]:.1%} / {report['tatoeba_refusals'][kind]:.1%}"
            assert table[row][column] == expected, (row, column)


def test_the_refusal_tables_are_refusal_a_and_b_json() -> None:
    """docs/quality.md's tables of the seven corpora: the rule that ships ("now") refuses what
    bench_refusal.py measured on split a and on split b, and each corpus has the size measured."""
    section = _section("Measured on seven corpora", "docs/quality.md")
    assert "`python benchmarks/bench_refusal.py --split b`" in _flat(_section("Quality"))  # the README points here
    corpora = _table(section)
    for split, name in (("a", "refusal-a.json"), ("b", "refusal-b.json")):
        result = _result(name)
        assert result["command"] == f"python benchmarks/bench_refusal.py --split {split} --out benchmarks/results/{name}"
        table = _table(section.split(f"Split {split} (`benchmarks/results/{name}`)", 1)[1])
        assert set(table) == set(result["corpora"]) == set(corpora)
        for corpus, got in result["corpora"].items():
            (now,) = [cell for column, cell in table[corpus].items() if column.startswith("now:")]
            assert now == f"{got['refused_in']:.1%} / {got['refused_out']:.1%} ({got['threshold']:.3f})", corpus
            assert corpus in ("five", "laptop") or f"{got['documents']:,}" in corpora[corpus]["documents"], corpus


def test_the_short_text_table_is_compare_3000_short_json() -> None:
    """docs/benchmarks.md, "Short texts": textsearch against Chroma on one-sentence passages."""
    result = _result("compare-3000-short.json")
    section = _section("Short texts", "docs/benchmarks.md")
    assert f"`{result['command']}`" in _flat(section)
    ts, chroma = result["systems"]["textsearch"], result["systems"]["chroma"]
    rows = {"ingestion, passages/s": ("ingest_passages_per_s", "{:.1f}"),
            "single query end to end, p50 ms": ("query_ms_p50", "{:.1f}"),
            "batch queries/s": ("batch_queries_per_s", "{:.1f}"),
            "peak RSS MB": ("peak_rss_mb", "{:,.1f}")}
    table = _table(section)
    for row, (key, fmt) in rows.items():
        assert table[row] == {"textsearch": fmt.format(ts[key]), "Chroma": fmt.format(chroma[key]),
                              "ratio": f"{ts[key] / chroma[key]:.2f}"}, row
    share = table["share of ingestion spent encoding"]
    assert (share["textsearch"], share["Chroma"]) == (f"{ts['encode_share']:.1%}".replace("%", " %"),
                                                      f"{chroma['encode_share']:.1%}".replace("%", " %"))


def test_the_new_process_table_is_cold_json() -> None:
    """docs/benchmarks.md, "A command in a new process": wall p50 (max) and peak RSS of each command."""
    cold = _result("cold.json")["commands"]
    section = _section("A command in a new process", "docs/benchmarks.md")
    assert "`python benchmarks/bench_cold.py --runs 5`" in section
    table = _table(section)
    assert len(table) == len(cold)
    for label, cells in table.items():
        command = label.split("`")[1].removeprefix("textsearch ")
        if command == "index FOLDER":  # the row says which of the two folders it was
            command = "index (one of 3000 files changed)" if "one of" in label else "index (unchanged, 3000 files)"
        got = cold[command]
        rss = math.floor(got["rss_p50_mb"] + 0.5)  # rounded half up, as the page prints it
        assert cells == {"wall, p50 (max)": f"{got['wall_p50_s']:.2f} s ({got['wall_max_s']:.2f})",
                         "peak RSS": f"{rss:,} MB"}, label


def test_the_load_table_is_serve_json() -> None:
    """docs/serving.md, "Under load": each load's throughput, latencies and errors."""
    serve = _result("serve.json")
    section = _section("Under load", "docs/serving.md")
    loads = {f"API, {n} thread{'s' if n != '1' else ''} sharing one `Index`": r for n, r in serve["api_threads"].items()}
    loads |= {f"HTTP, {name}": r for name, r in serve["http"].items()}
    table = _table(section)
    assert set(table) == set(loads)
    for label, got in loads.items():
        assert table[label] == {"queries/s": f"{got['queries_per_s']:.1f}", "p50 ms": f"{got['p50_ms']}",
                                "p95 ms": f"{got['p95_ms']}", "p99 ms": f"{got['p99_ms']}",
                                "errors": str(got["errors"])}, label


def test_the_long_pdf_table_is_long_pdfs_json() -> None:
    """docs/long-documents.md, "As PDFs": the held-out long documents printed to PDF, with and
    without sentence units."""
    result = _result("long-pdfs.json")
    section = _section("As PDFs", "docs/long-documents.md")
    assert f"`{result['command']}`" in _flat(section)
    table = _table(section)
    for column, setting in (("64-token passages", "passages"), ("passages + sentences (the default)", "passages+sentences")):
        got = result["settings"][setting]
        longdoc, news = got["splits"]["longdoc_zh"], got["splits"]["news_fact"]
        assert table["longdoc_zh MRR@10 / Recall@1"][column] == f"{longdoc['mrr@10']:.3f} / {longdoc['recall@1']:.3f}"
        assert table["news_fact MRR@10 / Recall@1"][column] == f"{news['mrr@10']:.3f} / {news['recall@1']:.3f}"
        assert table["news_fact: first hit's page holds the sentence"][column] == f"{news['page_right@1']:.1%}"
        assert table["news_fact: the sentence marked in the first hit"][column] == f"{news['sentence_marked@1']:.1%}"
        assert table["units (vectors)"][column] == f"{got['units']:,}"
        assert table["index on disk, MB"][column] == f"{got['index_megabytes']:.1f}"
        assert table["indexing the folder, s"][column] == f"{got['index_s']:.1f}"
        assert table["search p50 / p95, ms"][column] == f"{got['search_ms_p50']:.1f} / {got['search_ms_p95']:.1f}"


def test_the_readme_quotes_the_long_pdf_short_text_and_word_sharing_runs() -> None:
    pdfs = _result("long-pdfs.json")["settings"]
    default, base = pdfs["passages+sentences"], pdfs["passages"]
    limits = _flat(_section("Known limits"))
    assert (f"PDFs: {default['splits']['longdoc_zh']['mrr@10']:.3f} too, the first hit's page right for "
            f"{default['splits']['news_fact']['page_right@1']:.1%} of news queries, "
            f"{default['index_megabytes'] / base['index_megabytes']:.1f}× the index size, "
            f"search p50 {default['search_ms_p50']:.1f} ms") in limits
    reports = {r["model"]: r for r in _result("quality.json")["reports"]}
    wrong = [reports[m]["wordshare_zh"]["wrong_first"] for m in
             ("zh-en-general", "multilingual-e5-small", "zh-en-wordshare")]
    idiom = reports["zh-en-wordshare"]["idiom_meaning"]["mrr@10"] - reports["multilingual-e5-small"]["idiom_meaning"]["mrr@10"]
    assert (f"{wrong[0]:.1%} of Chinese queries with the default and {wrong[1]:.1%} with the base model; "
            f"`--model zh-en-wordshare` brings it to {wrong[2]:.1%}, but it is {-idiom:.3f} under the base on "
            "idiom meanings") in limits
    showcase = _result("showcase.json")["models"]
    assert all(got[corpus]["near_miss_first"] for got in showcase.values() for corpus in ("demo", "five"))
    short = _result("compare-3000-short.json")["systems"]
    assert (f"{short['textsearch']['ingest_passages_per_s']:.1f} passages/s against Chroma's "
            f"{short['chroma']['ingest_passages_per_s']:.1f}") in _flat(_section("Speed"))


def test_the_showcase_variants_say_which_word_the_models_miss() -> None:
    models = {**_result("showcase.json")["models"], **_result("showcase-recipe-h.json")["models"]}
    for got in models.values():  # 孩子 taken for 宝宝, 惹人喜欢 not for 可爱: what README's limits say
        v = got["variants"]
        near = v["宝宝的可爱玩具坏了"]
        assert v["可爱的孩子"] - near > 0.03 and v["惹人喜欢的宝宝"] - near <= 0.002 and v["惹人喜欢的孩子"] < near
    limits = _flat(_section("Known limits"))
    h, default = models["benchmarks/adapters/recipe-h"], models["zh-en-general"]["variants"]
    held = {r["model"]: r for r in _result("quality.json")["reports"]}["multilingual-e5-small"]
    h_held = _result("quality-recipe-h.json")["reports"][0]
    assert (f"(the synonym recipe: {h['five']['hits'][0]['score']:.3f} for the broken toy against "
            f"{h['five']['hits'][1]['score']:.3f} on the five files, and "
            f"{held['demo_questions']['mrr@10'] - h_held['demo_questions']['mrr@10']:.3f} under the base on the "
            "demo's questions held out)") in limits
    assert (f'(with the default, "可爱的孩子" {default["可爱的孩子"]:.3f} and "惹人喜欢的宝宝" {default["惹人喜欢的宝宝"]:.3f} '
            f"against the near miss's {default['宝宝的可爱玩具坏了']:.3f})") in limits
    columns = {"base": "multilingual-e5-small", "zh-en-general": "zh-en-general", "zh-en-wordshare": "zh-en-wordshare",
               "H": "benchmarks/adapters/recipe-h"}
    section = _section("Recipe H: E with sentences swapped for synonyms", "docs/training.md")
    table = _table(section.split("which says which word the models miss:", 1)[1])
    assert len(table) == 5
    for label, cells in table.items():
        text = label.split(" ")[0]
        assert {c: cells[c] for c in columns} == {c: f"{models[m]['variants'][text]:.3f}" for c, m in columns.items()}


def test_the_readme_quotes_the_loss_grid() -> None:
    runs = _result("losses.json")["runs"]
    dev = {run: got["dev"] for run, got in runs.items()}
    ms, base, mnrl = dev["multi-similarity/multi-similarity"], dev["base"], dev["mnrl"]

    def mean(report: dict) -> float:  # over the dev splits the grid was judged on
        splits = [s for s in DEV_SPLITS if s in report]
        return sum(report[s]["mrr@10"] for s in splits) / len(splits)

    train = _flat(README.split("### `textsearch train FILE --out DIR`", 1)[1].split("###", 1)[0])
    assert (f"(dev MRR@10 {ms['idiom_meaning']['mrr@10']:.3f} / {ms['keyword_zh']['mrr@10']:.3f} against "
            f"{base['idiom_meaning']['mrr@10']:.3f} / {base['keyword_zh']['mrr@10']:.3f}) where MNRL loses "
            f"{base['idiom_meaning']['mrr@10'] - mnrl['idiom_meaning']['mrr@10']:.3f} / "
            f"{base['keyword_zh']['mrr@10'] - mnrl['keyword_zh']['mrr@10']:.3f}, and Proxy-Anchor collapses "
            f"(dev mean {mean(dev['proxy-anchor/none']):.3f} against {mean(base):.3f})") in train


def test_the_card_check_against_the_floor_is_showcase_interpolated_and_losses_json() -> None:
    section = _section("The card's example against the floor", "docs/training.md")
    flat = _flat(section)
    paraphrase, near = "惹人喜欢的孩子", "宝宝的可爱玩具坏了"

    def first(got: dict) -> str:
        return " / ".join("yes" if got[corpus]["near_miss_first"] else "no" for corpus in ("demo", "five"))

    sweep = _result("showcase-interpolated.json")
    table = _table(section)
    assert list(table) == [f"{a:g}" for a in sweep["alphas"]]
    gaps = []
    for alpha, cells in table.items():
        for model in ("zh-en-general", "zh-en-wordshare"):
            got = sweep["models"][model][alpha]
            v = got["variants"]
            assert cells[f"{model}: paraphrase / near miss"] == f"{v[paraphrase]:.3f} / {v[near]:.3f}"
            gaps.append(v[near] - v[paraphrase])
            assert cells[f"{model}: near miss first (demo / five)"] == first(got)
    assert min(gaps) > 0  # "no point on either line puts the paraphrase first on the five files"
    for start in (0, 1):  # "and by more at every step towards either adapter"
        assert gaps[start::2] == sorted(gaps[start::2])
    full = {m: sweep["models"][m]["1"]["variants"] for m in ("zh-en-general", "zh-en-wordshare")}
    assert (f"the near miss leads by {gaps[0]:.3f} at the base model and by more at every step towards either adapter "
            f"(by {full['zh-en-general'][near] - full['zh-en-general'][paraphrase]:.3f} at `zh-en-general`'s full "
            f"change, {full['zh-en-wordshare'][near] - full['zh-en-wordshare'][paraphrase]:.3f} at "
            "`zh-en-wordshare`'s)") in flat

    runs = _result("losses.json")["runs"]
    table = _table(section.split("The dev figures that matter here, with the card, by keyword_zh:", 1)[1])
    assert list(table) == sorted(runs, key=lambda r: -runs[r]["dev"]["keyword_zh"]["mrr@10"])
    for run, cells in table.items():
        got, dev = runs[run]["card"], runs[run]["dev"]
        assert cells == {"keyword_zh": f"{dev['keyword_zh']['mrr@10']:.3f}",
                         "idiom_meaning": f"{dev['idiom_meaning']['mrr@10']:.3f}",
                         "card: paraphrase − near miss": f"{got['paraphrase'] - got['near_miss']:+.3f}",
                         "near miss first (demo / five)": " / ".join(
                             "yes" if got["near_miss_first"][c] else "no" for c in ("demo", "five"))}
    def best(split: str, among: list[str]) -> float:
        return max(runs[r]["dev"][split]["mrr@10"] for r in among)

    passing = [run for run, got in runs.items() if not got["card"]["near_miss_first"]["five"]]
    floor = runs["base"]["dev"]["keyword_zh"]["mrr@10"] - 0.01
    within = [run for run, got in runs.items() if got["dev"]["keyword_zh"]["mrr@10"] >= floor]
    assert passing and not set(passing) & set(within)
    assert (f"The {len(passing)} runs that rank the paraphrase first on the five files are at most "
            f"{best('keyword_zh', passing):.3f} on keyword_zh and {best('idiom_meaning', passing):.3f} on idiom "
            "meanings") in flat
    ms = runs["multi-similarity/multi-similarity"]
    widest = max(runs, key=lambda r: runs[r]["card"]["near_miss"] - runs[r]["card"]["paraphrase"])
    assert widest == "multi-similarity/multi-similarity"
    assert (f"multi-similarity with its own miner ({ms['dev']['keyword_zh']['mrr@10']:.3f}), ranks the near miss first "
            f"by the widest margin of all ({ms['card']['near_miss'] - ms['card']['paraphrase']:.3f})") in flat
    assert within == ["base", "multi-similarity/multi-similarity"]  # "the one trained run within the keyword floor"
    recipes = [r["keyword_zh"]["mrr@10"] for name in ("quality-dev-recipe-g.json", "quality-dev-recipe-h.json")
               for r in _result(name)["reports"] if r["model"] != "multilingual-e5-small"]
    assert f"on dev ({min(recipes):.3f}–{max(recipes):.3f}) and ranks the near miss first" in flat
    limits = _flat(_section("Known limits"))
    assert (f"and the {len(passing)} loss-grid runs that do not are at most "
            f"{best('keyword_zh', passing):.3f} on keyword-like queries on dev, "
            f"against the base's {runs['base']['dev']['keyword_zh']['mrr@10']:.3f}") in limits
    assert bench_losses.tables(_result("losses.json")) in _section("Loss families compared", "docs/training.md")
