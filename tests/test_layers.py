"""The package reads as a layered house (docs/development.md): no import cycles, no import from a
lower layer back up, and each heavy dependency imported where it belongs. Imports inside
functions and under TYPE_CHECKING count too."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "textsearch"
LAYERS = [  # top to bottom
    {"cli", "__main__", "server"},
    {"__init__"},
    {"catalog", "check", "client", "quality", "train", "train_reranker", "sources"},
    {"index", "evaluate", "training"},
    {"ingest", "search", "reader", "rerank", "backend", "milvus", "distributed", "layout"},
    {"confidence", "encoder", "runtime", "models", "adapters", "e5build", "loading", "ann", "store", "graphfile", "keyword",
     "filters", "corpus", "pairs", "testing"},
    {"errors", "config", "hits", "cache"},
]
HEAVY = {  # dependency → the modules that may import it
    "hnswlib": {"ann"},
    "pymilvus": {"milvus"},
    "milvus_lite": {"milvus"},
    "ray": {"distributed"},
    "fastapi": {"server"},
    "uvicorn": {"server"},
    "sqlite_utils": {"store"},
    "jieba": {"keyword"},
    "onnxruntime": {"runtime"},
    "onnx": {"runtime"},
    "sentence_transformers": {"loading", "training", "train", "train_reranker"},
    "peft": {"training"},
    "datasets": {"training", "train", "train_reranker"},
    "torch": {"loading", "runtime", "training"},
}


def _imports() -> dict[str, tuple[set[str], set[str]]]:
    """module → (our modules it imports, top-level packages it imports)."""
    found = {}
    for path in PACKAGE.glob("*.py"):
        ours, theirs = set(), set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.level == 1:
                ours |= {node.module.split(".")[0]} if node.module else {a.name for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                (ours if node.module.startswith("textsearch") else theirs).add(node.module.split(".")[0])
            elif isinstance(node, ast.Import):
                theirs |= {a.name.split(".")[0] for a in node.names}
        found[path.stem] = (ours - {path.stem, "textsearch"}, theirs)
    return found


IMPORTS = _imports()


def _layer(module: str) -> int:
    return next(i for i, layer in enumerate(LAYERS) if module in layer)


def test_every_module_has_a_layer() -> None:
    assert set(IMPORTS) == set().union(*LAYERS)


@pytest.mark.parametrize("module", sorted(IMPORTS))
def test_no_import_goes_up_a_layer(module: str) -> None:
    up = sorted(m for m in IMPORTS[module][0] if _layer(m) < _layer(module))
    assert up == [], f"{module} imports {up} from a layer above it"


def test_no_import_cycles() -> None:
    graph = {m: ours for m, (ours, _) in IMPORTS.items()}
    done: set[str] = set()

    def visit(module: str, path: list[str]) -> None:
        if module in path:
            raise AssertionError("import cycle: " + " → ".join([*path[path.index(module):], module]))
        if module in done:
            return
        for dep in sorted(graph.get(module, ())):
            visit(dep, [*path, module])
        done.add(module)

    for module in sorted(graph):
        visit(module, [])


@pytest.mark.parametrize("dependency", sorted(HEAVY))
def test_heavy_dependencies_stay_in_their_modules(dependency: str) -> None:
    users = {m for m, (_, theirs) in IMPORTS.items() if dependency in theirs}
    assert users <= HEAVY[dependency], f"{dependency} imported by {sorted(users - HEAVY[dependency])}"
