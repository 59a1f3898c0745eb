"""Nothing of the user's is ever deleted: every path that removes files (a failed first build's
rollback, ``delete``, ``repair``, the server's writes, the Milvus backend's cleanup, training's
``--out``) runs here with the user's own files beside and inside its target, and they survive."""

from __future__ import annotations

import json
import os
import stat
import urllib.request
from pathlib import Path

import pytest
from typer.testing import CliRunner

from textsearch import build_index
from textsearch.training import lora
from textsearch.storage import layout
from textsearch.check import check, repair
from textsearch.cli import app
from textsearch.errors import CorpusError, InvalidArgumentError
from textsearch.index import Index
from textsearch.testing import KeywordEncoder

MINE = "my precious notes"
milvus_only = pytest.mark.skipif(not all(__import__("importlib").util.find_spec(m) for m in ("pymilvus", "milvus_lite")),
                                 reason="the milvus extra is not installed")


def plant(folder: Path, name: str = "keep.txt") -> Path:
    """A file of the user's in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(MINE, encoding="utf-8")
    return folder / name


def intact(*files: Path) -> bool:
    return all(f.read_text(encoding="utf-8") == MINE for f in files)


@pytest.fixture
def empty_corpus(tmp_path: Path) -> Path:
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "x.bin").write_bytes(b"\x00")
    return tmp_path / "empty"


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    (tmp_path / "corpus").mkdir()
    (tmp_path / "corpus" / "cat.txt").write_text("the cute cat sleeps", encoding="utf-8")
    return tmp_path / "corpus"


# --- a new index goes only into a new or empty folder -----------------------------------------------
def test_the_reported_case_keeps_the_folder_and_says_why(tmp_path: Path, empty_corpus: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """`textsearch index empty --name ./mydocs` once removed mydocs and said "nothing was changed"."""
    monkeypatch.chdir(tmp_path)
    keep = plant(tmp_path / "mydocs")
    result = CliRunner().invoke(app, ["index", "empty", "--name", "./mydocs"])
    assert result.exit_code == 2  # a bad argument
    assert result.stderr == ("error: mydocs is a folder with files of its own (keep.txt) and not an index — an "
                             "index is created only in a new or empty folder: choose another name, or a path to "
                             "a new folder\n")
    assert intact(keep) and os.listdir(tmp_path / "mydocs") == ["keep.txt"]


def test_create_refuses_a_folder_with_files_of_its_own(tmp_path: Path) -> None:
    keep = plant(tmp_path / "docs")
    plant(tmp_path / "docs" / "sub", "more.md")
    with pytest.raises(InvalidArgumentError, match=r"docs is a folder with files of its own \(keep.txt, sub\)"):
        Index.create(tmp_path / "docs", encoder=KeywordEncoder())
    assert intact(keep) and sorted(os.listdir(tmp_path / "docs")) == ["keep.txt", "sub"]


def test_create_refuses_a_file(tmp_path: Path) -> None:
    keep = plant(tmp_path, "notes")
    with pytest.raises(InvalidArgumentError, match="notes is a file, not a folder"):
        Index.create(keep, encoder=KeywordEncoder())
    assert intact(keep)


def test_create_takes_an_empty_folder_or_a_killed_creations_leftovers(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    Index.create(tmp_path / "empty", encoder=KeywordEncoder()).close()
    (tmp_path / "killed").mkdir()
    for name in ("store.db", "store.db-wal", ".write.lock", "hnsw.bin.tmp"):  # no textsearch.json yet
        (tmp_path / "killed" / name).write_bytes(b"")
    with Index.create(tmp_path / "killed", encoder=KeywordEncoder()) as idx:
        assert idx.count() == 0


# --- a failed first build removes what it wrote, and nothing else -----------------------------------
def test_a_failed_first_build_removes_the_folders_it_made_and_nothing_beside(tmp_path: Path,
                                                                             empty_corpus: Path) -> None:
    beside = plant(tmp_path / "indexes")  # `indexes/` existed, with a file of the user's
    with pytest.raises(CorpusError, match="no documents found"):
        build_index(empty_corpus, "new/deeper", tmp_path / "indexes", encoder=KeywordEncoder())
    assert sorted(os.listdir(tmp_path / "indexes")) == ["keep.txt"] and intact(beside)


def test_a_failed_first_build_keeps_the_empty_folder_the_user_made(tmp_path: Path, empty_corpus: Path) -> None:
    (tmp_path / "target").mkdir()
    with pytest.raises(CorpusError):
        build_index(empty_corpus, str(tmp_path / "target"), encoder=KeywordEncoder())
    assert (tmp_path / "target").is_dir() and os.listdir(tmp_path / "target") == []


def test_a_failed_first_build_keeps_what_the_user_put_in_meanwhile(tmp_path: Path, corpus: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """The build fails after the index exists and a file of the user's landed inside it."""
    target = tmp_path / "indexes" / "corpus"

    def fail(self: Index, *args: object, **kwargs: object) -> None:
        plant(target, "written-meanwhile.txt")
        raise CorpusError("the disk went away")

    monkeypatch.setattr(Index, "index_folder", fail)
    with pytest.raises(CorpusError, match="the disk went away"):
        build_index(corpus, indexes=tmp_path / "indexes", encoder=KeywordEncoder())
    assert os.listdir(target) == ["written-meanwhile.txt"] and intact(target / "written-meanwhile.txt")


# --- delete ---------------------------------------------------------------------------------------
def test_delete_removes_the_index_files_only(tmp_path: Path, corpus: Path) -> None:
    built = build_index(corpus, "idx", tmp_path / "indexes", encoder=KeywordEncoder())
    inside, beside = plant(built.path, "notes.txt"), plant(tmp_path / "indexes")
    result = CliRunner().invoke(app, ["delete", "idx", "--yes", "--indexes", str(tmp_path / "indexes")])
    assert result.exit_code == 0
    assert result.stdout == f"deleted {built.path} (kept 1 file that is not the index's: notes.txt)\n"
    assert os.listdir(built.path) == ["notes.txt"] and intact(inside, beside)
    assert sorted(os.listdir(tmp_path / "indexes")) == ["idx", "keep.txt"]


def test_delete_of_an_index_alone_removes_its_folder(tmp_path: Path, corpus: Path) -> None:
    built = build_index(corpus, "idx", tmp_path / "indexes", encoder=KeywordEncoder())
    assert Index.destroy(built.path) == []
    assert not built.path.exists() and (tmp_path / "indexes").is_dir()


# --- repair ---------------------------------------------------------------------------------------
def test_repair_removes_leftovers_only(tmp_path: Path, corpus: Path) -> None:
    built = build_index(corpus, "idx", tmp_path / "indexes", encoder=KeywordEncoder())
    for name in ("hnsw.bin.tmp", "textsearch.json.tmp"):
        (built.path / name).write_bytes(b"half")
    mine = [plant(built.path, n) for n in ("hnsw.bin.bak", "notes.tmp", "store.db.copy")]
    beside = plant(tmp_path / "indexes", "hnsw.bin.tmp")
    shared = plant(built.path, "shared.txt")
    shared.chmod(0o666)  # the user's choice, not the index's problem
    report = repair(built.path)
    assert report.ok and report.repaired[-2:] == ["removed hnsw.bin.tmp", "removed textsearch.json.tmp"]
    assert intact(*mine, beside, shared) and stat.S_IMODE(shared.stat().st_mode) == 0o666
    assert check(built.path).ok


# --- the server's writes --------------------------------------------------------------------------
def test_server_writes_leave_the_users_files(tmp_path: Path, corpus: Path) -> None:
    from textsearch.server import create_app, running

    built = build_index(corpus, "idx", tmp_path / "indexes", encoder=KeywordEncoder())
    inside, beside = plant(built.path, "notes.txt"), plant(tmp_path / "indexes")

    def call(method: str, path: str, body: object = None) -> int:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(base + path, data, {"content-type": "application/json"}, method=method)
        with urllib.request.urlopen(request) as response:
            return response.status

    with running(create_app(tmp_path / "indexes", encoder=KeywordEncoder())) as base:
        assert call("PUT", "/indexes/idx/documents", [{"id": "d1", "text": "a red apple"}]) == 200
        assert call("DELETE", "/indexes/idx/documents/d1") == 200
        assert call("DELETE", "/indexes/idx/documents/cat.txt") == 200
    assert intact(inside, beside) and "notes.txt" in os.listdir(built.path)


# --- the Milvus backend's cleanup -----------------------------------------------------------------
@milvus_only
@pytest.mark.engine
def test_milvus_delete_drops_its_collection_and_keeps_the_rest(tmp_path: Path) -> None:
    shared = tmp_path / "shared.db"  # a Milvus Lite file that two indexes share
    docs = [{"id": "a", "text": "cute cat"}]
    with Index.create(tmp_path / "a", encoder=KeywordEncoder(), backend="milvus", uri=str(shared)) as a:
        a.add(docs)
    with Index.create(tmp_path / "b", encoder=KeywordEncoder(), backend="milvus", uri=str(shared)) as b:
        b.add(docs)
    with Index.create(tmp_path / "c", encoder=KeywordEncoder(), backend="milvus") as c:  # its own milvus.db
        c.add(docs)
    inside_a, inside_c, beside = plant(tmp_path / "a", "notes.txt"), plant(tmp_path / "c", "x.txt"), plant(tmp_path)
    assert Index.destroy(tmp_path / "a") == ["notes.txt"]
    assert Index.destroy(tmp_path / "c") == ["x.txt"]
    assert os.listdir(tmp_path / "c") == ["x.txt"]  # milvus.db went with the index
    assert shared.exists() and intact(inside_a, inside_c, beside)
    with Index.open(tmp_path / "b", encoder=KeywordEncoder()) as b:
        assert [h.doc_id for h in b.search("cat", k=1)] == ["a"]


@milvus_only
@pytest.mark.engine
def test_milvus_failed_first_build_keeps_the_users_files(tmp_path: Path, empty_corpus: Path) -> None:
    beside = plant(tmp_path / "indexes")
    with pytest.raises(CorpusError):
        build_index(empty_corpus, "m", tmp_path / "indexes", encoder=KeywordEncoder(), backend="milvus")
    assert os.listdir(tmp_path / "indexes") == ["keep.txt"] and intact(beside)


# --- training's --out -----------------------------------------------------------------------------
def test_training_refuses_an_out_folder_of_the_users(tmp_path: Path) -> None:
    keep = plant(tmp_path / "models")
    with pytest.raises(InvalidArgumentError, match="models exists and is not a model textsearch trained"):
        lora.check_out(tmp_path / "models")
    with pytest.raises(InvalidArgumentError, match="not a model textsearch trained"):
        lora.work_folder(tmp_path / "models")
    assert intact(keep)
    lora.check_out(tmp_path / "new")  # new, empty, or one textsearch trained: fine
    (tmp_path / "empty").mkdir()
    lora.check_out(tmp_path / "empty")
    plant(tmp_path / "trained", "textsearch_model.json")
    lora.check_out(tmp_path / "trained")


def test_the_index_files_are_the_ones_an_index_writes(tmp_path: Path, corpus: Path) -> None:
    """OWN_FILES names what an index writes: a built and searched index holds nothing else."""
    built = build_index(corpus, "idx", tmp_path / "indexes", encoder=KeywordEncoder())
    with Index.open(built.path, encoder=KeywordEncoder()) as idx:
        idx.search("cat")
    assert layout.foreign(built.path) == []
    assert set(os.listdir(built.path)) <= layout.OWN_FILES
