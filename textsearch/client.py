"""A client of `textsearch serve` (standard library only): what ``textsearch query --server URL``
uses, so that a query answered by a warm server costs no model load here."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import asdict
from typing import Any

from .errors import IndexLockedError, IndexNotFoundError, InvalidArgumentError, TextsearchError
from .hits import Hit
from .search.query import SearchOptions

TIMEOUT = 120.0


class Client:
    def __init__(self, url: str, api_key: str | None = None, timeout: float = TIMEOUT) -> None:
        if not url.startswith(("http://", "https://")):
            raise InvalidArgumentError(f"server URL '{url}' must start with http:// or https://")
        self.url, self.api_key, self.timeout = url.rstrip("/"), api_key, timeout

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body, ensure_ascii=False).encode("utf-8")
        request = urllib.request.Request(self.url + path, data=data, method=method)
        request.add_header("Content-Type", "application/json")
        if self.api_key:
            request.add_header("X-API-Key", self.api_key)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310 - http(s) only
                return json.loads(response.read().decode("utf-8"))
        except urllib.error.HTTPError as exc:
            try:
                message = json.loads(exc.read().decode("utf-8")).get("error", exc.reason)
            except ValueError:
                message = exc.reason
            kind = {400: InvalidArgumentError, 404: IndexNotFoundError, 409: IndexLockedError}.get(exc.code,
                                                                                                   TextsearchError)
            raise kind(f"{message} (server {self.url}, HTTP {exc.code})") from exc
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise TextsearchError(f"cannot reach the server at {self.url} ({reason}) — start it with "
                                  "`textsearch serve`, or check --server") from exc

    def indexes(self) -> list[str]:
        return list(self._call("GET", "/indexes")["indexes"])

    def index_name(self, name: str | None) -> str:
        """``name``, or the server's only index."""
        if name:
            return name
        found = self.indexes()
        if len(found) != 1:
            raise IndexNotFoundError(f"the server has {len(found)} indexes ({', '.join(found) or 'none'}) — "
                                     "choose one with --index NAME")
        return found[0]

    def search(self, index: str, query: str, options: SearchOptions) -> tuple[list[Hit], bool]:
        """The hits, and whether the server found no confident match."""
        if options.rerank is not True and options.rerank is not False:
            raise InvalidArgumentError("a Reranker object cannot be sent to a server — use rerank=True")
        body = {k: v for k, v in asdict(options).items() if k != "group"}
        body.update(query=query, passages=not options.group)
        body = {k: v for k, v in body.items() if v is not None}
        answer = self._call("POST", f"/indexes/{urllib.request.quote(index, safe='')}/search", body)
        return [Hit(**hit) for hit in answer["hits"]], bool(answer["no_confident_match"])
