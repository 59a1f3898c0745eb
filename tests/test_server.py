"""`textsearch serve`: a real server on loopback (uvicorn in a thread), the keyword fake encoder
standing in for the model so that every score is exact; one end-to-end run with the real model
and the CLI's `query --server` is in test_server_cli below."""

from __future__ import annotations

import json
import multiprocessing
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from textsearch import Index
from textsearch.hits import Hit
from textsearch.server import create_app, running, serve
from textsearch.testing import KeywordEncoder

DOCS = [
    {"id": "a", "text": "cat sleeps in the sun", "lang": "en", "year": 2021},
    {"id": "b", "text": "dog in the rain", "lang": "en", "year": 2019},
    {"id": "c", "text": "红色的 apple tree", "lang": "zh", "year": 2023},
]


@pytest.fixture
def indexes(tmp_path: Path) -> Path:
    with Index.create(tmp_path / "indexes" / "pets", encoder=KeywordEncoder()) as index:
        index.add(DOCS)
    return tmp_path / "indexes"


@pytest.fixture
def url(indexes: Path) -> Iterator[str]:
    with running(create_app(indexes, encoder=KeywordEncoder())) as base:
        yield base


def test_health_indexes_and_info(url: str) -> None:
    assert httpx.get(f"{url}/health").json() == {"status": "ok"}
    assert httpx.get(f"{url}/indexes").json() == {"indexes": ["pets"]}
    info = httpx.get(f"{url}/indexes/pets").json()
    assert (info["documents"], info["passages"], info["model"]) == (3, 3, "keyword-test")
    assert httpx.get(f"{url}/openapi.json").json()["info"]["title"] == "textsearch"
    assert httpx.get(f"{url}/docs").status_code == 200


def test_search_answers_as_the_api_does(url: str, indexes: Path) -> None:
    response = httpx.post(f"{url}/indexes/pets/search", json={"query": "cat", "k": 2, "include_low_confidence": True})
    assert response.status_code == 200
    body = response.json()
    with Index.open(indexes / "pets", encoder=KeywordEncoder()) as index:
        expected = index.search("cat", k=2, include_low_confidence=True)
    assert body["hits"] == [h.to_dict() for h in expected]  # the same fields as `query --json`
    assert [Hit(**h) for h in body["hits"]] == expected
    assert body["hits"][0]["doc_id"] == "a" and body["terms"] == ["cat"]


def test_filters_modes_and_batches(url: str) -> None:
    found = httpx.post(f"{url}/indexes/pets/search", json={
        "query": "sun rain", "mode": "keyword", "filter": {"year": {"$gte": 2020}}}).json()
    assert [h["doc_id"] for h in found["hits"]] == ["a"]
    found = httpx.post(f"{url}/indexes/pets/search", json={"query": "apple", "where": ["lang = zh"],
                                                          "include_low_confidence": True}).json()
    assert [h["doc_id"] for h in found["hits"]] == ["c"]
    batch = httpx.post(f"{url}/indexes/pets/search/batch", json={
        "queries": ["cat", "dog"], "k": 1, "include_low_confidence": True}).json()
    assert [[h["doc_id"] for h in r["hits"]] for r in batch["results"]] == [["a"], ["b"]]


def test_upsert_and_delete_documents(url: str) -> None:
    added = httpx.put(f"{url}/indexes/pets/documents", json=[{"id": "d", "text": "fish in water", "lang": "en"}])
    assert added.status_code == 200 and (added.json()["added"], added.json()["documents"]) == (1, 4)
    again = httpx.put(f"{url}/indexes/pets/documents", json=[{"id": "d", "text": "fish in water", "lang": "en"}])
    assert again.json()["unchanged"] == 1
    hits = httpx.post(f"{url}/indexes/pets/search", json={"query": "fish", "k": 1}).json()["hits"]
    assert hits[0]["doc_id"] == "d"
    assert httpx.delete(f"{url}/indexes/pets/documents/d").json() == {"deleted": "d", "documents": 3}
    gone = httpx.delete(f"{url}/indexes/pets/documents/d")
    assert gone.status_code == 404 and gone.json() == {"error": "no document 'd' in index 'pets'"}


@pytest.mark.parametrize(("method", "path", "body", "status", "says"), [
    ("POST", "/indexes/pets/search", {"query": "cat", "k": 0}, 400, "k must be a number of results from 1 to 10000"),
    ("POST", "/indexes/pets/search", {"query": "cat", "k": 48 * 10**21}, 400, "k must be a number of results"),
    ("POST", "/indexes/pets/search", {"query": "cat", "ef": 10**30}, 400, "ef must be a number from 1 to 100000"),
    ("POST", "/indexes/pets/search", {"query": "cat", "rerank_model": ""}, 400,
     "rerank_model may only be zh-en-reranker on the server, got ''"),
    ("POST", "/indexes/pets/search", {"query": "cat", "rerank_model": "some/hub-model"}, 400, "rerank_model may only be"),
    ("POST", "/indexes/pets/search", {"query": "cat", "mode": "fuzzy"}, 400, "unknown search mode"),
    ("POST", "/indexes/pets/search", {"query": "  "}, 400, "the query is empty"),
    ("POST", "/indexes/pets/search", {"query": "cat", "filter": {"colour": "red"}}, 400, "colour"),
    ("POST", "/indexes/pets/search", {"query": "cat", "where": ["year"]}, 400, "cannot read --where"),
    ("POST", "/indexes/pets/search", {"query": "cat", "bogus": 1}, 400, "bogus"),
    ("POST", "/indexes/pets/search", {"k": 3}, 400, "query"),
    ("POST", "/indexes/nope/search", {"query": "cat"}, 404, "no index 'nope'"),
    ("POST", "/indexes/nope/search", {"query": "cat", "k": 0}, 404, "no index 'nope'"),
    ("POST", "/indexes/pets/search", {"query": "cat", "k": "3"}, 400, "k: Input should be a valid integer"),
    ("POST", "/indexes/pets/search/batch", {"queries": []}, 400, "give 1 to 256 queries"),
    ("POST", "/indexes/pets/search/batch", {"queries": ["cat", " "]}, 400, "the query is empty"),
    ("POST", "/indexes/pets/search/batch", {"query": "cat", "queries": ["cat"]}, 400, "query"),
    ("POST", "/indexes/..%2Fx/search", {"query": "cat"}, 404, "no such endpoint"),
    ("POST", "/indexes/.hidden/search", {"query": "cat"}, 404, "no index"),
    ("GET", "/indexes/nope", None, 404, "no index 'nope'"),
    ("PUT", "/indexes/pets/documents", [{"id": "x"}], 400, "text"),
    ("PUT", "/indexes/pets/documents", [{"id": "x", "text": "   "}], 400, "non-empty 'text'"),
    ("PUT", "/indexes/pets/documents", [{"id": "x", "text": "cat", "metadata": [1]}], 400, "metadata"),
])
def test_bad_requests_get_json_errors_and_change_nothing(url: str, method: str, path: str, body: object,
                                                         status: int, says: str) -> None:
    response = httpx.request(method, url + path, json=body)
    assert response.status_code == status, response.text
    assert list(response.json()) == ["error"] and says in response.json()["error"]
    assert httpx.get(f"{url}/indexes/pets").json()["documents"] == 3


def test_a_body_over_the_limit_is_413(indexes: Path) -> None:
    with running(create_app(indexes, encoder=KeywordEncoder(), max_body=1000)) as url:
        response = httpx.put(f"{url}/indexes/pets/documents", json=[{"id": str(i), "text": "cat " * 50} for i in range(20)])
        assert response.status_code == 413 and "over 1000 bytes" in response.json()["error"]
        assert httpx.get(f"{url}/indexes/pets").json()["documents"] == 3


def _hold_lock(path: str, held: object, release: object) -> None:
    with Index.open(path, encoder=KeywordEncoder()) as index, index._writing():
        held.set()  # type: ignore[attr-defined]
        release.wait(60)  # type: ignore[attr-defined]


def test_a_write_while_another_process_writes_is_409_and_reads_go_on(url: str, indexes: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEXTSEARCH_LOCK_TIMEOUT", "1")
    spawn = multiprocessing.get_context("spawn")
    held, release = spawn.Event(), spawn.Event()
    holder = spawn.Process(target=_hold_lock, args=(str(indexes / "pets"), held, release))
    holder.start()
    try:
        assert held.wait(60)
        response = httpx.put(f"{url}/indexes/pets/documents", json=[{"id": "e", "text": "tree"}], timeout=30)
        assert response.status_code == 409 and "another process" in response.json()["error"]
        hits = httpx.post(f"{url}/indexes/pets/search", json={"query": "cat", "k": 1}).json()["hits"]
        assert hits[0]["doc_id"] == "a"  # readers never wait for the writer
    finally:
        release.set()
        holder.join(30)
    assert httpx.put(f"{url}/indexes/pets/documents", json=[{"id": "e", "text": "tree"}]).json()["added"] == 1


def test_an_api_key_guards_every_request_but_the_page(indexes: Path) -> None:
    with running(create_app(indexes, encoder=KeywordEncoder(), api_key="s3cret")) as url:
        assert httpx.get(f"{url}/indexes").status_code == 401
        assert httpx.get(f"{url}/indexes", headers={"X-API-Key": "wrong"}).status_code == 401
        assert httpx.get(f"{url}/indexes", headers={"X-API-Key": "s3cret"}).json() == {"indexes": ["pets"]}
        assert httpx.get(f"{url}/health", headers={"Authorization": "Bearer s3cret"}).status_code == 200
        assert httpx.get(f"{url}/").status_code == 200  # the static page holds no data


def test_no_key_no_listening_beyond_loopback(indexes: Path) -> None:
    from textsearch.errors import InvalidArgumentError

    with pytest.raises(InvalidArgumentError, match="refusing to listen on 0.0.0.0 without an API key"):
        serve(indexes, host="0.0.0.0")


def test_many_clients_at_once_get_whole_answers(url: str) -> None:
    errors: list[object] = []

    def client() -> None:
        with httpx.Client() as http:
            for word in ["cat", "dog", "apple"] * 10:
                hits = http.post(f"{url}/indexes/pets/search", json={"query": word, "k": 1}).json()["hits"]
                if not hits or word not in hits[0]["text"]:
                    errors.append((word, hits))

    threads = [threading.Thread(target=client) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


@pytest.mark.model
def test_serve_and_query_server_with_the_real_model(tmp_path: Path) -> None:
    """`textsearch serve` in its own process, and `textsearch query --server` printing what a
    local query prints."""
    import socket
    import subprocess
    import sys
    import time

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "kids.txt").write_text("邻居家的孩子特别惹人喜欢，见到谁都笑。", encoding="utf-8")
    (corpus / "weather.txt").write_text("明天有大雨，出门记得带伞。", encoding="utf-8")
    cli = [sys.executable, "-m", "textsearch"]
    env = {**os.environ, "TEXTSEARCH_INDEXES": str(tmp_path / "indexes")}
    subprocess.run([*cli, "index", str(corpus), "--quiet"], check=True, env=env, capture_output=True)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen([*cli, "serve", "--port", str(port)], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        url = f"http://127.0.0.1:{port}"
        for _ in range(600):
            try:
                if httpx.get(f"{url}/health").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        local = subprocess.run([*cli, "query", "下雨天", "-k", "2", "--json"], env=env, capture_output=True, text=True)
        remote = subprocess.run([*cli, "query", "下雨天", "-k", "2", "--json", "--server", url], env=env,
                                capture_output=True, text=True)
        assert remote.returncode == 0, remote.stderr
        assert [json.loads(line)["doc_id"] for line in remote.stdout.splitlines()] == ["weather.txt", "kids.txt"]
        assert remote.stdout == local.stdout
        table = subprocess.run([*cli, "query", "下雨天", "-k", "1", "--server", url], env=env,
                               capture_output=True, text=True)
        assert "weather.txt" in table.stdout
        missing = subprocess.run([*cli, "query", "x", "--index", "nope", "--server", url], env=env,
                                 capture_output=True, text=True)
        assert missing.returncode == 1 and missing.stderr.startswith("error: no index 'nope'")
    finally:
        server.terminate()
        server.wait(30)


def test_batched_searches_answer_each_request_with_its_own_hits(indexes: Path) -> None:
    """With a batch window, concurrent searches share encoder calls (grouped by equal options)
    and each still gets exactly the answer it would alone."""
    with running(create_app(indexes, encoder=KeywordEncoder(), batch_window_ms=20)) as url:
        wrong: list[object] = []

        def client(word: str, mode: str) -> None:
            with httpx.Client() as http:
                for _ in range(10):
                    body = {"query": word, "k": 1, "mode": mode, "include_low_confidence": True}
                    hits = http.post(f"{url}/indexes/pets/search", json=body).json()["hits"]
                    if not hits or word not in hits[0]["text"]:
                        wrong.append((word, mode, hits))

        threads = [threading.Thread(target=client, args=(w, m)) for w in ("cat", "dog", "apple")
                   for m in ("dense", "keyword")]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert wrong == []
        empty = httpx.post(f"{url}/indexes/pets/search", json={"query": "  "})
        assert empty.status_code == 400 and "the query is empty" in empty.json()["error"]


def test_the_search_request_carries_every_search_option() -> None:
    """The JSON body is `SearchOptions` on the wire (`passages` for `group`, plus the query and
    `where` strings): a new option in one without the other is a bug this catches."""
    from dataclasses import fields

    from textsearch.search.query import SearchOptions
    from textsearch.server import SearchRequest

    options = {f.name for f in fields(SearchOptions)}
    assert set(SearchRequest.model_fields) == (options - {"group"}) | {"query", "where", "passages"}
