"""Every CLI command has help and is documented in the README; the README's two commands exist."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from textsearch.cli import app

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")
COMMANDS = sorted(c.name or c.callback.__name__ for c in app.registered_commands)
COMMANDS += [f"{g.name} {c.name}" for g in app.registered_groups for c in g.typer_instance.registered_commands]


def test_the_commands_are_the_expected_ones() -> None:
    expected = ["check", "delete", "eval", "index", "info", "list", "query", "repair", "train", "train-reranker",
                "pairs build"]
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
