"""Safety: an index directory, a corpus and a model folder are data, never code.

- nothing is unpickled or executed from an index directory (runtime traps + a source scan);
- models load from safetensors only and never with remote code;
- document ids from file paths stay inside the corpus root;
- filter values and field names never become SQL;
- index files follow the user's umask and are never world-writable.

The model tests build a tiny random BERT (hidden size 32, one layer) in a temporary folder: what
they check is how textsearch calls the loaders, not the bundled model.
"""

from __future__ import annotations

import _pickle
import ast
import builtins
import json
import os
import pickle
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from safetensors.numpy import save_file

import textsearch
from textsearch.models import encoder as encoder_module
from textsearch.models import loading
from textsearch.search import rerank as rerank_module
from textsearch.storage.ann import ANN_FILE
from textsearch.check import repair
from textsearch.config import CONFIG_FILE
from textsearch.documents.corpus import Corpus
from textsearch.errors import InvalidArgumentError, ModelError
from textsearch.index import Index
from textsearch.models.registry import materialize, refuse_pickle_weights
from textsearch.search.query import MODES
from textsearch.testing import HashEncoder

PACKAGE = Path(textsearch.__file__).parent
REPO = PACKAGE.parent
EVIL = "zh'; DROP TABLE documents; --"
EVIL_KEY = "k') OR 1=1 --"


# --- helpers ------------------------------------------------------------------------------------
class Bomb:
    """Unpickling this creates ``marker``: proof that a pickle was loaded, and code ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Callable[..., Any], tuple[Any, ...]]:
        return Path.touch, (self.marker,)


def plant_bomb(path: Path, marker: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pickle.dumps({"weight": Bomb(marker)}))


@pytest.fixture
def unpickle_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Make every unpickling entry point record its use and fail; the test asserts none ran
    (a trap alone could be swallowed by a broad ``except Exception``)."""
    import torch

    calls: list[str] = []

    def trap(name: str) -> Callable[..., Any]:
        def refuse(*args: Any, **kwargs: Any) -> Any:
            calls.append(name)
            raise AssertionError(f"{name} was called")

        return refuse

    for module, names in ((pickle, ("load", "loads", "Unpickler")), (_pickle, ("load", "loads", "Unpickler")),
                          (torch, ("load",)), (np, ("load",))):
        for name in names:
            monkeypatch.setattr(module, name, trap(f"{module.__name__}.{name}"))
    return calls


def make_corpus(root: Path) -> Path:
    (root / "pets").mkdir(parents=True)
    (root / "pets" / "cat.txt").write_text("The cat sleeps in the sun.", encoding="utf-8")
    (root / "pets" / "dog.md").write_text("# Dog\n\nThe dog likes water.", encoding="utf-8")
    (root / "rows.jsonl").write_text(
        json.dumps({"id": "r1", "text": "a red apple", "lang": "en"}) + "\n"
        + json.dumps({"id": "r2", "text": "天气很好", "lang": "zh"}) + "\n",
        encoding="utf-8",
    )
    return root


def lifecycle(path: Path, corpus: Path) -> None:
    """Everything a user does to an index: create, index, add, search, delete, reopen, repair,
    destroy."""
    with Index.create(path, encoder=HashEncoder()) as index:
        index.index_folder(corpus)
        index.add([{"id": "api-1", "text": "apple banana", "topic": "fruit"}])
        for mode in MODES:
            assert index.search("the cat", k=3, mode=mode, filter={"lang": "en"})
        assert index.delete(["api-1"]) == 1
        index.info()
    with Index.open(path, encoder=HashEncoder()) as index:
        assert index.index_folder(corpus).unchanged == 4
        assert index.search("天气很好", k=1)[0].doc_id == "rows.jsonl#r2"
    (path / ANN_FILE).unlink()
    report = repair(path)
    assert report.ok and (report.documents, report.passages) == (4, 4)
    with Index.open(path, encoder=HashEncoder()) as index:
        assert index.search("The cat sleeps in the sun.", k=1)[0].doc_id == "pets/cat.txt"
    Index.destroy(path)


# --- 1. nothing from an index directory is unpickled or executed -------------------------------
def test_index_lifecycle_never_unpickles_or_evaluates(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, unpickle_calls: list[str]
) -> None:
    """Create/index/search/delete/reopen/repair/destroy run with pickle, torch.load, eval, exec
    and compile all trapped."""
    corpus = make_corpus(tmp_path / "corpus")
    lifecycle(tmp_path / "warm", corpus)  # lazy imports (dataclasses, namedtuples exec) happen here
    executed: list[str] = []
    for name in ("eval", "exec", "compile"):
        def trapped(*args: Any, _name: str = name, **kwargs: Any) -> Any:
            executed.append(_name)
            raise AssertionError(f"{_name} was called")

        monkeypatch.setattr(builtins, name, trapped)
    try:
        lifecycle(tmp_path / "idx", corpus)
    finally:
        monkeypatch.undo()  # restore builtins before pytest reports anything
    assert unpickle_calls == [] and executed == []


def test_index_config_naming_a_pickled_model_is_refused(
    tmp_path: Path, unpickle_calls: list[str]
) -> None:
    """An index whose textsearch.json points at a folder of pickled weights fails with ModelError
    on first use of the encoder; the pickle never runs."""
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil-model"
    evil.mkdir()
    (evil / "config.json").write_text("{}", encoding="utf-8")
    plant_bomb(evil / "pytorch_model.bin", marker)
    path = tmp_path / "idx"
    Index.create(path, encoder=HashEncoder()).close()
    config = json.loads((path / CONFIG_FILE).read_text(encoding="utf-8"))
    (path / CONFIG_FILE).write_text(json.dumps({**config, "model": str(evil)}), encoding="utf-8")
    with Index.open(path) as index, pytest.raises(ModelError, match="only as a pickle") as info:
        index.search("cat")
    assert "\n" not in str(info.value)
    assert not marker.exists() and unpickle_calls == []


def test_the_bomb_is_live(tmp_path: Path) -> None:
    """The planted pickle really runs code when unpickled (so the tests above are not vacuous)."""
    plant_bomb(tmp_path / "pytorch_model.bin", tmp_path / "pwned")
    pickle.loads((tmp_path / "pytorch_model.bin").read_bytes())
    assert (tmp_path / "pwned").exists()


# --- a source scan of textsearch/ ----------------------------------------------------------------
UNSAFE_MODULES = {"pickle", "_pickle", "cPickle", "marshal", "shelve", "dill", "cloudpickle", "joblib"}
UNSAFE_CALLS = {"eval", "exec", "compile", "__import__", "torch.load", "pickle.load", "pickle.loads"}
MODEL_LOADERS = {"SentenceTransformer", "CrossEncoder", "from_pretrained"}


def _name(node: ast.AST) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_name(node.value)}.{node.attr}"
    return ""


def scan(source: str) -> list[str]:
    """The unsafe constructs in one module's source, as 'line: what'."""
    found: list[str] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [f"{node.lineno}: import {a.name}" for a in node.names
                      if a.name.split(".")[0] in UNSAFE_MODULES]
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in UNSAFE_MODULES:
            found.append(f"{node.lineno}: from {node.module} import")
        elif isinstance(node, ast.Call):
            name = _name(node.func)
            keywords = {k.arg: k.value for k in node.keywords}
            if name in UNSAFE_CALLS:
                found.append(f"{node.lineno}: {name}()")
            if name.split(".")[-1] == "load" and name.split(".")[0] in ("np", "numpy"):
                allow = keywords.get("allow_pickle")
                if not (isinstance(allow, ast.Constant) and allow.value is False):
                    found.append(f"{node.lineno}: {name}() without allow_pickle=False")
            remote = keywords.get("trust_remote_code")
            if remote is not None and not (isinstance(remote, ast.Constant) and remote.value is False):
                found.append(f"{node.lineno}: trust_remote_code={ast.unparse(remote)}")
            if name.split(".")[-1] in MODEL_LOADERS and remote is None:
                found.append(f"{node.lineno}: {name}() without trust_remote_code=False")
    return found


def test_scan_finds_what_it_looks_for() -> None:
    """The scanner flags each unsafe construct (so a clean scan below means something)."""
    bad = (
        "import pickle\nfrom marshal import loads\nimport torch\ntorch.load('x')\neval('1')\n"
        "np.load('a.npz')\nSentenceTransformer('m', trust_remote_code=True)\nCrossEncoder('m')\n"
        "np.load('b', allow_pickle=False)\nSentenceTransformer('m', trust_remote_code=False)\n"
    )
    assert scan(bad) == [
        "1: import pickle", "2: from marshal import", "4: torch.load()", "5: eval()",
        "6: np.load() without allow_pickle=False", "7: trust_remote_code=True",
        "8: CrossEncoder() without trust_remote_code=False",
    ]


# model constructions that rely on the loader's default trust_remote_code=False instead of saying
# so (reported; remove an entry once its module passes the keyword)
IMPLICIT_REMOTE_CODE: dict[str, list[str]] = {}


def test_source_has_no_unpickling_eval_or_remote_code() -> None:
    """No module of textsearch/ imports pickle/marshal/shelve, calls torch.load/eval/exec, loads
    .npy with pickles, passes trust_remote_code other than False, or builds a model without it."""
    modules = sorted(PACKAGE.rglob("*.py"))
    assert len(modules) > 10
    found = {str(p.relative_to(REPO)): [hit.split(": ", 1)[1] for hit in scan(p.read_text(encoding="utf-8"))]
             for p in modules}
    assert {path: hits for path, hits in found.items() if hits} == IMPLICIT_REMOTE_CODE


# --- 2. models: safetensors only, never remote code ----------------------------------------------
VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "cat", "dog", "sun", "water"]


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A random 1-layer BERT as a sentence-transformers folder and as a one-logit cross-encoder
    folder, both with model.safetensors."""
    import torch
    from sentence_transformers import SentenceTransformer
    from transformers import BertConfig, BertForSequenceClassification, BertModel, BertTokenizerFast

    root = tmp_path_factory.mktemp("tiny")
    (root / "vocab.txt").write_text("\n".join(VOCAB) + "\n", encoding="utf-8")
    tokenizer = BertTokenizerFast(vocab_file=str(root / "vocab.txt"))
    sizes = dict(vocab_size=len(VOCAB), hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                 intermediate_size=64, max_position_embeddings=64)
    torch.manual_seed(0)
    BertModel(BertConfig(**sizes)).save_pretrained(root / "hf")
    tokenizer.save_pretrained(root / "hf")
    SentenceTransformer(str(root / "hf"), device="cpu").save(str(root / "st"))  # adds mean pooling
    BertForSequenceClassification(BertConfig(**sizes, num_labels=1)).save_pretrained(root / "ce")
    tokenizer.save_pretrained(root / "ce")
    return root / "st", root / "ce"


@contextmanager
def recording(monkeypatch: pytest.MonkeyPatch, module: Any, name: str) -> Iterator[list[dict[str, Any]]]:
    """Record the keyword arguments textsearch passes to ``module.name``, then call the real one."""
    real, calls = getattr(module, name), []

    def record(*args: Any, **kwargs: Any) -> Any:
        calls.append(kwargs)
        return real(*args, **kwargs)

    monkeypatch.setattr(module, name, record)
    yield calls


def test_encoder_loads_safetensors_only_without_remote_code(
    tiny_models: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    unpickle_calls: list[str],
) -> None:
    """SentenceTransformer gets trust_remote_code=False and use_safetensors=True; a pickle lying
    next to model.safetensors is never read."""
    import sentence_transformers

    folder = shutil.copytree(tiny_models[0], tmp_path / "st")
    plant_bomb(folder / "pytorch_model.bin", tmp_path / "pwned")
    monkeypatch.setattr(loading, "_CACHE", {})
    with recording(monkeypatch, sentence_transformers, "SentenceTransformer") as calls:
        encoder = encoder_module.SentenceTransformerEncoder(str(folder), device="cpu")
    assert [(c["trust_remote_code"], c["model_kwargs"]["use_safetensors"]) for c in calls] == [(False, True)]
    vectors = encoder.encode_queries(["the cat"])
    assert vectors.shape == (1, 32) and abs(float(np.linalg.norm(vectors)) - 1) < 1e-5
    assert not (tmp_path / "pwned").exists() and unpickle_calls == []


def test_reranker_loads_safetensors_only_without_remote_code(
    tiny_models: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    unpickle_calls: list[str],
) -> None:
    """CrossEncoder gets trust_remote_code=False and use_safetensors=True; a pickle lying next to
    model.safetensors is never read."""
    from sentence_transformers import cross_encoder

    folder = shutil.copytree(tiny_models[1], tmp_path / "ce")
    plant_bomb(folder / "pytorch_model.bin", tmp_path / "pwned")
    monkeypatch.setattr(loading, "_CACHE", {})
    with recording(monkeypatch, cross_encoder, "CrossEncoder") as calls:
        reranker = rerank_module.CrossEncoderReranker(str(folder), device="cpu")
    # two loads today: the export's check pair of 320 tokens does not fit this tiny model's 64
    # positions, so runtime "auto" falls back to torch and loads it again; every load is safe
    assert {(c["trust_remote_code"], c["model_kwargs"]["use_safetensors"]) for c in calls} == {(False, True)}
    assert 1 <= len(calls) <= 2
    scores = reranker.score("the cat", ["the dog", "the cat"])
    assert scores.shape == (2,) and ((scores >= 0) & (scores <= 1)).all()
    assert not (tmp_path / "pwned").exists() and unpickle_calls == []


@pytest.mark.parametrize("module_dir", ["", "2_Dense"])
def test_pickle_only_model_folder_is_refused(
    tiny_models: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    unpickle_calls: list[str], module_dir: str,
) -> None:
    """A model folder, or a module folder its modules.json names, with weights only in
    pytorch_model.bin is refused by encoder and reranker with a one-line ModelError."""
    folder = shutil.copytree(tiny_models[0], tmp_path / "st")
    if module_dir:
        modules = json.loads((folder / "modules.json").read_text(encoding="utf-8"))
        dense = {"idx": 2, "name": "2", "path": module_dir, "type": "sentence_transformers.models.Dense"}
        (folder / "modules.json").write_text(json.dumps([*modules, dense]), encoding="utf-8")
    else:
        (folder / "model.safetensors").unlink()
    plant_bomb(folder / module_dir / "pytorch_model.bin", tmp_path / "pwned")
    monkeypatch.setattr(loading, "_CACHE", {})
    where = str(folder / module_dir)
    for load in (encoder_module.SentenceTransformerEncoder, rerank_module.CrossEncoderReranker):
        with pytest.raises(ModelError, match="only as a pickle") as info:
            load(str(folder), device="cpu")
        assert where in str(info.value) and "\n" not in str(info.value)
    assert not (tmp_path / "pwned").exists() and unpickle_calls == []


def test_folders_with_safetensors_or_other_bin_files_pass_the_check(tmp_path: Path) -> None:
    """Only pickles the loader would read are refused: a .bin beside model.safetensors, or in a
    folder no module names (onnx/, openvino/), is not."""
    (tmp_path / "openvino").mkdir()
    (tmp_path / "openvino" / "openvino_model.bin").write_bytes(b"\0")
    (tmp_path / "model.safetensors").write_bytes(b"\0")
    (tmp_path / "training_args.bin").write_bytes(b"\0")
    refuse_pickle_weights(tmp_path)  # no error
    (tmp_path / "model.safetensors").unlink()
    with pytest.raises(ModelError, match="training_args.bin"):
        refuse_pickle_weights(tmp_path)


# --- 3. document ids from file paths stay inside the corpus root ---------------------------------
def escaping_corpus(tmp_path: Path) -> Path:
    """Inside: a file and a relative symlink to it. Escapes: a relative ``..`` symlink, a chain
    of two symlinks, a directory symlink out, a directory symlink loop."""
    outside = tmp_path / "outside"
    (outside / "dir").mkdir(parents=True)
    (outside / "secret.txt").write_text("outside secret", encoding="utf-8")
    (outside / "dir" / "deep.txt").write_text("outside secret deep", encoding="utf-8")
    root = tmp_path / "root"
    (root / "real").mkdir(parents=True)
    (root / "real" / "a.txt").write_text("inside text", encoding="utf-8")
    (root / "real" / "rel_in.txt").symlink_to("../real/a.txt")
    (root / "rel_out.txt").symlink_to("../outside/secret.txt")
    (root / "real" / "hop.txt").symlink_to(outside / "secret.txt")
    (root / "chain.txt").symlink_to("real/hop.txt")
    (root / "dir_out").symlink_to("../outside/dir", target_is_directory=True)
    (root / "real" / "loop").symlink_to("..", target_is_directory=True)
    return root


def test_escaping_symlinks_are_skipped_inside_ones_followed(tmp_path: Path) -> None:
    """Relative '..' links, chains and directory links out are skipped or not descended; a
    directory loop ends; an inside relative link is read."""
    root = escaping_corpus(tmp_path)
    corpus = Corpus(root)
    docs = list(corpus.documents())
    assert [(d.id, d.text) for d in docs] == [
        ("real/a.txt", "inside text"), ("real/rel_in.txt", "inside text"),
    ]
    assert sorted(s.path for s in corpus.skipped) == ["chain.txt", "real/hop.txt", "rel_out.txt"]


def test_indexed_sources_are_relative_and_inside_the_root(tmp_path: Path) -> None:
    """After index_folder every stored source is relative, has no '..' part and resolves inside
    the root; no outside text reached the store."""
    root = escaping_corpus(tmp_path)
    (root / "rows.jsonl").write_text(
        "".join(json.dumps({"id": i, "text": f"row {n}", "path": "/etc/passwd"}) + "\n"
                for n, i in enumerate(["../../etc/passwd", "/etc/passwd", ".."])),
        encoding="utf-8",
    )
    with Index.create(tmp_path / "idx", encoder=HashEncoder()) as index:
        index.index_folder(root)
        rows = index.store.db.execute("SELECT id, root, source, metadata FROM documents").fetchall()
        texts = [r[0] for r in index.store.db.execute("SELECT text FROM passages")]
        assert index.search("outside secret", k=5, mode="keyword") == []
    assert sorted(r[0] for r in rows) == [
        "real/a.txt", "real/rel_in.txt",
        "rows.jsonl#..", "rows.jsonl#../../etc/passwd", "rows.jsonl#/etc/passwd",
    ]
    for doc_id, doc_root, source, metadata in rows:
        assert doc_root == str(root.resolve())
        assert not Path(source).is_absolute() and ".." not in Path(source).parts
        assert (root / source).resolve().is_relative_to(root.resolve())
        assert doc_id == source or doc_id.startswith(source + "#")
        assert json.loads(metadata)["path"] == source  # a row cannot claim another path
    assert not any("outside" in t for t in texts)


def test_a_file_name_cannot_collide_with_a_row_id(tmp_path: Path) -> None:
    """A file 'a.jsonl#x.md' and the row id 'x.md' of 'a.jsonl' make the same document id; indexing
    must keep one and skip the other, not crash with sqlite3.IntegrityError."""
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "a.jsonl").write_text('{"id": "x.md", "text": "row text"}\n', encoding="utf-8")
    (tmp_path / "c" / "a.jsonl#x.md").write_text("file text", encoding="utf-8")
    with Index.create(tmp_path / "idx", encoder=HashEncoder()) as index:
        summary = index.index_folder(tmp_path / "c")
        assert index.count() == 1 and summary.skipped == 1


# --- 4. filter values and field names never become SQL -------------------------------------------
# what a search may ask of SQLite: reads, its read transaction, and FTS5's own data_version check
READS = {sqlite3.SQLITE_SELECT, sqlite3.SQLITE_READ, sqlite3.SQLITE_FUNCTION, sqlite3.SQLITE_TRANSACTION}


def harmless(action: int, arg1: str | None) -> bool:
    return action in READS or (action == sqlite3.SQLITE_PRAGMA and arg1 == "data_version")


@pytest.fixture
def evil_index(tmp_path: Path) -> Iterator[Index]:
    """Four documents; one has a metadata key that is an SQL fragment."""
    with Index.create(tmp_path / "idx", encoder=HashEncoder()) as index:
        index.add([
            {"id": "a", "text": "the cat sleeps", "lang": "en"},
            {"id": "b", "text": "天气很好", "lang": "zh"},
            {"id": "c", "text": "the dog swims", "lang": "en", EVIL_KEY: "v"},
            {"id": EVIL, "text": "a red apple", "lang": EVIL},
        ])
        yield index


def test_filters_and_queries_run_only_reads(evil_index: Index, monkeypatch: pytest.MonkeyPatch) -> None:
    """With SQL in filter values, keys and queries, in every mode, SQLite authorises only reads, the
    SQL text never holds the value (it travels as a parameter) and the results are exact."""
    actions: list[tuple[int, str | None]] = []

    def authorize(action: int, arg1: str | None, *_: Any) -> int:
        actions.append((action, arg1))
        return sqlite3.SQLITE_OK

    statements: list[tuple[str, list[Any]]] = []
    conn = evil_index.store.db

    class Recording:
        """This thread's connection, every execute recorded (SQL text and parameters apart)."""

        def __getattr__(self, name: str) -> Any:
            return getattr(conn, name)

        def execute(self, sql: str, params: Any = None) -> Any:
            statements.append((sql, list(params or [])))
            return conn.execute(sql, params) if params is not None else conn.execute(sql)

    evil_index.search("cat", filter={"lang": "en"})  # SQLite's json_each set-up is done once here
    conn.set_authorizer(authorize)  # re-prepares every statement
    monkeypatch.setattr(evil_index.store._local, "db", Recording())
    for mode in MODES:
        found = evil_index.search("apple " + EVIL, k=4, mode=mode, filter={"lang": EVIL}, min_score=-1)
        assert [h.doc_id for h in found] == [EVIL]
        found = evil_index.search("dog", k=4, mode=mode, filter={EVIL_KEY: "v"}, min_score=-1)
        assert [h.doc_id for h in found] == ["c"]
        none = {"lang": {"$in": [EVIL + "x", '") OR 1=1 --']}}
        assert evil_index.search("cat", k=4, mode=mode, filter=none) == []
        others = {EVIL_KEY: {"$ne": "v"}}
        found = evil_index.search("the cat apple 天气", k=4, mode=mode, filter=others, min_score=-1)
        assert {h.doc_id for h in found} == {"a", "b", EVIL}
    conn.set_authorizer(None)
    assert actions and [a for a in actions if not harmless(*a)] == []
    assert statements and not [sql for sql, _ in statements if EVIL in sql or EVIL_KEY in sql]
    assert any(EVIL in params for _, params in statements) and any(EVIL_KEY in p for _, p in statements)
    assert evil_index.count() == 4


@pytest.mark.parametrize("field", [EVIL, 'lang"', "lang)", "lang]", "json_each(d.metadata)", "$.lang"])
def test_unknown_field_names_are_refused(evil_index: Index, field: str) -> None:
    """A field name with quotes, brackets or SQL that the index does not hold is a one-line
    InvalidArgumentError, and nothing changed."""
    with pytest.raises(InvalidArgumentError, match="unknown filter (field|key)") as info:
        evil_index.search("cat", filter={field: "en"})
    assert "\n" not in str(info.value) and evil_index.count() == 4


def test_ids_with_sql_are_data(evil_index: Index) -> None:
    """A document id holding SQL is stored, found by id and deleted like any other."""
    assert evil_index.search("apple", k=1, filter={"id": EVIL}, min_score=-1)[0].doc_id == EVIL
    assert evil_index.delete([EVIL, "'; DELETE FROM documents; --"]) == 1
    assert evil_index.count() == 3 and evil_index.store.passage_count() == 3


# --- 5. the index directory follows the umask, nothing world-writable ----------------------------
@contextmanager
def umask(mask: int) -> Iterator[None]:
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


def modes(folder: Path) -> dict[str, int]:
    return {str(p.relative_to(folder)) or ".": p.stat().st_mode & 0o777 for p in [folder, *folder.rglob("*")]}


@pytest.mark.parametrize("mask", [0o022, 0o077])
def test_index_files_follow_the_umask(tmp_path: Path, mask: int) -> None:
    """Every file is 0666 & ~umask and every directory 0777 & ~umask (no mkstemp 0600, nothing
    world-writable), while open and after closing."""
    corpus = make_corpus(tmp_path / "corpus")
    path = tmp_path / "parent" / "idx"
    with umask(mask):
        with Index.create(path, encoder=HashEncoder()) as index:
            index.index_folder(corpus)
            index.delete(["pets/cat.txt"])
            open_modes = modes(tmp_path / "parent")
        assert repair(path).ok
    expected = {name: (0o777 if name in (".", "idx") else 0o666) & ~mask for name in open_modes}
    assert {"idx/hnsw.bin", "idx/store.db", "idx/store.db-wal", "idx/textsearch.json"} <= set(open_modes)
    assert open_modes == expected
    closed = modes(tmp_path / "parent")
    assert closed == {name: expected.get(name, 0o666 & ~mask) for name in closed}
    assert not [name for name, mode in closed.items() if mode & 0o002]


def test_merged_model_follows_the_umask(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A LoRA merge in the model cache is readable as the umask allows (safetensors writes 0600)."""
    monkeypatch.setenv("TEXTSEARCH_CACHE", str(tmp_path / "cache"))
    base, adapter = tmp_path / "base", tmp_path / "adapter"
    base.mkdir()
    adapter.mkdir()
    save_file({"layer.weight": np.eye(2, dtype=np.float32)}, str(base / "model.safetensors"))
    (base / "config.json").write_text("{}", encoding="utf-8")
    save_file({"base_model.model.layer.lora_A.weight": np.ones((1, 2), np.float32),
               "base_model.model.layer.lora_B.weight": np.ones((2, 1), np.float32)},
              str(adapter / "adapter_model.safetensors"))
    (adapter / "adapter_config.json").write_text(json.dumps({"r": 1, "lora_alpha": 1}), encoding="utf-8")
    (adapter / "textsearch_model.json").write_text(json.dumps({"kind": "lora", "base": str(base)}))
    with umask(0o022):
        merged = materialize(adapter)
    assert (merged / "model.safetensors").stat().st_mode & 0o777 == 0o644


# --- a gap outside the index directory: jieba's dictionary cache ---------------------------------
def test_keyword_segmentation_ignores_a_planted_jieba_cache(tmp_path: Path) -> None:
    """A jieba.cache planted in the shared temp folder (any local user can) is not trusted."""
    import marshal

    word = "北京大学生物系"
    prefixes = {word[:i]: 0 for i in range(1, len(word))}
    (tmp_path / "tmp").mkdir()
    (tmp_path / "tmp" / "jieba.cache").write_bytes(marshal.dumps(({**prefixes, word: 10**6}, 10**6)))
    env = {**os.environ, "TMPDIR": str(tmp_path / "tmp"), "TEXTSEARCH_CACHE": str(tmp_path / "cache")}
    code = f"from textsearch.search.keyword import segment; print(segment({word!r}))"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["北京", "大学", "北京大学", "生物", "生物系"]
