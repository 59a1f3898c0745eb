"""The HTTP API's OpenAPI document says what the server does: schemathesis generates requests from
`/openapi.json` (valid ones and ones that break a declared constraint), sends them to a real
server on loopback and checks every answer against the document — every status declared with
its body schema, valid data accepted, invalid data refused, 405 with `Allow` for undeclared
methods, 401 without the key. The keyword fake encoder stands in for the model."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from textsearch import Index
from textsearch.server import create_app, running
from textsearch.testing import KeywordEncoder

KEY = "s3cret"
# The index's own operations run on the real index. The searches get generated names (so 404s),
# not names taken from GET /indexes: there a filter naming a field the index lacks is a 400 that
# no schema can foresee, and the rerank options would load a model.
CONFIG = """
[[operations]]
include-path-regex = '^/indexes/\\{name\\}(/documents.*)?$'
parameters = { name = "pets" }

[phases.coverage.extra-data-sources]
responses = false

[phases.fuzzing.extra-data-sources]
responses = false
"""


@pytest.fixture
def indexes(tmp_path: Path) -> Path:
    with Index.create(tmp_path / "indexes" / "pets", encoder=KeywordEncoder()) as index:
        index.add([{"id": "a", "text": "cat sleeps in the sun", "year": 2021},
                   {"id": "b", "text": "dog in the rain", "year": 2019}])
    return tmp_path / "indexes"


@pytest.fixture(params=[None, KEY], ids=["open", "api-key"])
def served(request: pytest.FixtureRequest, indexes: Path) -> Iterator[tuple[str, str | None]]:
    with running(create_app(indexes, encoder=KeywordEncoder(), api_key=request.param)) as url:
        yield url, request.param


@pytest.mark.engine
def test_schemathesis_finds_the_server_true_to_its_openapi_document(served: tuple[str, str | None],
                                                                    tmp_path: Path) -> None:
    url, key = served
    config = tmp_path / "schemathesis.toml"
    config.write_text(CONFIG, encoding="utf-8")
    # deterministic: the same cases every run (no seed to draw, no example database kept); no
    # stateful phase, which would follow GET /indexes to the real index (see CONFIG). Schemathesis 4
    # sends nothing anywhere but to the URL given (no telemetry, no report upload).
    command = [
        sys.executable, "-m", "schemathesis.cli", "--config-file", str(config), "run",
        f"{url}/openapi.json", "--checks", "all", "--phases", "coverage,fuzzing",
        "--generation-deterministic", "--max-examples", "30", "--workers", "1", "--no-color",
        *(["--header", f"X-API-Key: {key}"] if key else []),
    ]
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCHEMATHESIS_")}
    run = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "Tested: 7" in run.stdout and " passed" in run.stdout


def test_every_error_is_declared_with_the_one_error_model(indexes: Path) -> None:
    with running(create_app(indexes, encoder=KeywordEncoder(), api_key=KEY)) as url:
        document = httpx.get(f"{url}/openapi.json", headers={"X-API-Key": KEY}).json()
    declared = {(method.upper(), path): sorted(op["responses"]) for path, ops in document["paths"].items()
                for method, op in ops.items()}
    writes = ["200", "400", "401", "404", "409", "411", "413"]
    assert declared == {
        ("GET", "/health"): ["200", "401"],
        ("GET", "/indexes"): ["200", "401"],
        ("GET", "/indexes/{name}"): ["200", "401", "404", "409"],
        ("POST", "/indexes/{name}/search"): writes,
        ("POST", "/indexes/{name}/search/batch"): writes,
        ("PUT", "/indexes/{name}/documents"): writes,
        ("DELETE", "/indexes/{name}/documents/{doc_id}"): ["200", "401", "404", "409"],
    }
    for ops in document["paths"].values():
        for op in ops.values():
            for status, response in op["responses"].items():
                if status != "200":
                    assert response["content"]["application/json"]["schema"] == {
                        "$ref": "#/components/schemas/ErrorResponse"}
    assert "HTTPValidationError" not in document["components"]["schemas"]
    assert document["security"] == [{"APIKey": []}, {"Bearer": []}]
    search = document["components"]["schemas"]["SearchRequest"]["properties"]
    assert (search["k"]["minimum"], search["mode"]["enum"]) == (1, ["dense", "keyword", "hybrid"])
    batch = document["components"]["schemas"]["BatchRequest"]["properties"]["queries"]
    assert (batch["minItems"], batch["maxItems"]) == (1, 256)


def test_an_undeclared_method_is_405_with_allow(indexes: Path) -> None:
    with running(create_app(indexes, encoder=KeywordEncoder())) as url:
        response = httpx.request("TRACE", f"{url}/indexes/pets/documents/a")
        assert response.status_code == 405 and response.headers["allow"] == "DELETE"
        assert response.json() == {"error": "Method Not Allowed"}


@pytest.mark.parametrize("condition", ["lang = zh", "year>=2020", "a==b", "a= =b", "a=<b", "p ^= x/", "t in (a, b)",
                                       "t NOT IN (a)", "t in ()", "a<=", "a==", "a = ", "=a", "year", "a b = c",
                                       "  ", "tin (a)", "t in a"])
def test_the_where_pattern_accepts_what_parse_where_reads(condition: str) -> None:
    import re

    from textsearch.errors import InvalidArgumentError
    from textsearch.search.filters import parse_where
    from textsearch.server import WHERE

    try:
        parse_where(condition)
        reads = True
    except InvalidArgumentError:
        reads = False
    assert (re.search(WHERE, condition) is not None) == reads
