"""Every CLI command has help and is documented in the README, with an example that parses; the
README's two commands exist; its Python example runs."""

from __future__ import annotations

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
                "train-reranker", "pairs build"]
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
