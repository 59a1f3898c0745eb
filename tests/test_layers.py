"""The package reads as a layered house (docs/development.md): each stage is a folder, and a folder
or top-level module imports only from the layers below it, never back up, never in a loop; each
heavy dependency is imported in the one module that owns it. Imports inside functions and under
TYPE_CHECKING count too."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "textsearch"
LAYERS = [  # top to bottom; a unit is a folder (a stage) or a module at the top of the package
    {"cli", "__main__", "server", "client"},  # the interfaces
    {"__init__"},  # the public API
    {"training", "testing"},  # built on the facade: trainers, evaluation, the quality report; fakes
    {"index", "catalog", "check", "watch"},  # the facade
    {"ingest"},
    {"storage"},
    {"search"},
    {"models", "documents"},
    {"errors", "config", "hits"},  # the ground floor
]
HEAVY = {  # dependency → the modules that may import it
    "hnswlib": {"storage.ann"},
    "pymilvus": {"storage.milvus"},
    "milvus_lite": {"storage.milvus"},
    "ray": {"ingest.distributed"},
    "fastapi": {"server"},
    "uvicorn": {"server"},
    "watchfiles": {"watch"},
    "sqlite_utils": {"storage.store"},
    "pypdfium2": {"documents.pdf"},
    "docx": {"documents.word"},
    "selectolax": {"documents.html"},
    "jieba": {"search.keyword"},
    "onnxruntime": {"models.runtime"},
    "onnx": {"models.runtime"},
    "sentencepiece": {"models.tokenizer"},
    "tokenizers": {"models.tokenizer"},
    "sentence_transformers": {"models.loading", "training.lora", "training.bi_encoder", "training.cross_encoder"},
    "peft": {"training.lora"},
    "datasets": {"training.lora", "training.bi_encoder", "training.cross_encoder"},
    "torch": {"models.loading", "models.runtime", "training.lora", "training.labelled"},
    "pytorch_metric_learning": {"training.labelled"},
}


def _name(path: Path) -> str:
    """``storage/store.py`` → ``storage.store``; ``storage/__init__.py`` → ``storage``."""
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" and len(parts) > 1 else parts)


MODULES = {_name(p): p for p in PACKAGE.rglob("*.py")}


def _target(module: str, path: Path, level: int, name: str | None) -> str:
    """The module a relative import names, from ``module`` (a package's ``__init__`` counts as
    the package)."""
    package = module.split(".") if path.name == "__init__.py" and module != "__init__" else module.split(".")[:-1]
    base = package[: len(package) - (level - 1)]
    return ".".join(base + (name.split(".") if name else []))


def _imports() -> dict[str, tuple[set[str], set[str]]]:
    """module → (our modules it imports, top-level packages it imports)."""
    found = {}
    for module, path in MODULES.items():
        ours, theirs = set(), set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.level:
                target = _target(module, path, node.level, node.module)
                for alias in node.names:  # `from . import x` and `from .pkg import x` may name modules
                    ours.add(f"{target}.{alias.name}" if f"{target}.{alias.name}".strip(".") in MODULES
                             else target)
            elif isinstance(node, ast.ImportFrom) and node.module:
                top = node.module.split(".")[0]
                if top == "textsearch":
                    ours.add(node.module.removeprefix("textsearch").strip("."))
                else:
                    theirs.add(top)
            elif isinstance(node, ast.Import):
                theirs |= {a.name.split(".")[0] for a in node.names}
        found[module] = ({m.strip(".") for m in ours} - {module, ""}, theirs)
    return found


IMPORTS = _imports()


def _unit(module: str) -> str:
    return module.split(".")[0]


def _layer(module: str) -> int:
    return next(i for i, layer in enumerate(LAYERS) if _unit(module) in layer)


def test_every_folder_and_module_has_a_layer() -> None:
    assert {_unit(m) for m in MODULES} == set().union(*LAYERS)


@pytest.mark.parametrize("module", sorted(IMPORTS))
def test_no_import_goes_up_a_layer(module: str) -> None:
    up = sorted(m for m in IMPORTS[module][0] if _layer(m) < _layer(module))
    assert up == [], f"{module} imports {up} from a layer above it"


def _no_cycle(graph: dict[str, set[str]]) -> None:
    done: set[str] = set()

    def visit(node: str, path: list[str]) -> None:
        if node in path:
            raise AssertionError("import cycle: " + " → ".join([*path[path.index(node):], node]))
        if node in done:
            return
        for dep in sorted(graph.get(node, ())):
            visit(dep, [*path, node])
        done.add(node)

    for node in sorted(graph):
        visit(node, [])


def test_no_import_cycles_between_modules() -> None:
    _no_cycle({m: ours for m, (ours, _) in IMPORTS.items()})


def test_no_import_cycles_between_folders() -> None:
    graph: dict[str, set[str]] = {}
    for module, (ours, _) in IMPORTS.items():
        graph.setdefault(_unit(module), set()).update(_unit(m) for m in ours if _unit(m) != _unit(module))
    _no_cycle(graph)


@pytest.mark.parametrize("dependency", sorted(HEAVY))
def test_heavy_dependencies_stay_in_their_modules(dependency: str) -> None:
    users = {m for m, (_, theirs) in IMPORTS.items() if dependency in theirs}
    assert users <= HEAVY[dependency], f"{dependency} imported by {sorted(users - HEAVY[dependency])}"


def test_each_stage_folder_says_what_it_does_and_imports_nothing() -> None:
    """A folder's ``__init__.py`` is its docstring (the stage, and what it may import) and nothing
    else: importing one module of a stage never loads the rest of it."""
    for init in PACKAGE.glob("*/__init__.py"):
        tree = ast.parse(init.read_text(encoding="utf-8"))
        assert ast.get_docstring(tree), init
        assert len(tree.body) == 1, f"{init} does more than say what the stage is"


def test_old_import_paths_load_the_moved_modules() -> None:
    """Code written against the flat package (``textsearch.train.train``, ``textsearch.quality``,
    ``textsearch.encoder``…) still runs: the old path is the moved module itself."""
    import importlib

    import textsearch

    for old, new in textsearch._MOVED.items():
        assert importlib.import_module(f"textsearch.{old}") is importlib.import_module(f"textsearch.{new}"), old
    from textsearch.quality import report
    from textsearch.train import train
    from textsearch.training.bi_encoder import train as moved_train
    from textsearch.training.quality import report as moved_report

    assert (train, report) == (moved_train, moved_report)


def test_our_own_code_uses_the_new_paths() -> None:
    import textsearch

    old = "|".join(textsearch._MOVED)
    pattern = re.compile(rf"(from textsearch\.({old}) import|import textsearch\.({old})\b|from textsearch import .*\b({old})\b)")
    found = [f"{path.relative_to(ROOT)}:{n}" for folder in ("textsearch", "tests", "benchmarks")
             for path in (ROOT / folder).rglob("*.py") if path.name != "test_layers.py"
             for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1) if pattern.search(line.split("#")[0])]
    assert found == []
