"""Text → keyword terms for SQLite FTS5, shared by the index side and the query side.
The only module that imports jieba.

FTS5's ``unicode61`` tokenizer splits on spaces and punctuation but cannot cut a run of Chinese
characters into words, so :func:`segment` does that first with jieba's search mode (a long word
also yields its sub-words: "北京大学生物系" → 北京 大学 北京大学 生物 生物系) and
hands FTS5 one space-separated line of terms.

Latin and digit words are kept whole, inner connectors included ("xr-200", "3.5", "v1.2"). FTS5
then splits "xr-200" into the adjacent tokens ``xr`` ``200``; on the query side the same word,
quoted, is the phrase "xr 200", so a code matches exactly where it is written. A word that mixes
letters and connectors also yields its joined form ("xr-200" → also ``xr200``, "e-mail" →
``email``), so "XR200" finds "XR-200" and the other way round. Pure numbers are not joined:
"3.5" must not become 35.
"""

from __future__ import annotations

import logging
import re
import threading
import unicodedata
from collections.abc import Callable, Iterable
from typing import Any

logger = logging.getLogger(__name__)

# CJK unified ideographs (with extension A, compatibility ideographs and the supplementary planes)
_HAN = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003134f"
_RUN = re.compile(rf"([{_HAN}]+)|((?:(?![{_HAN}])[^\W_])+(?:[-._/'](?:(?![{_HAN}])[^\W_])+)*)")
_CONNECTOR = re.compile(r"[-._/']")

_lock = threading.Lock()
_jieba: Any = None


def _loaded() -> Any:
    """jieba, loaded once per process with its dictionary cache in ours, its chatter silenced."""
    global _jieba
    if _jieba is None:
        with _lock:
            if _jieba is None:
                import jieba

                from ..models.cache import cache_dir

                folder = cache_dir() / "jieba"
                folder.mkdir(parents=True, exist_ok=True)
                jieba.dt.tmp_dir = str(folder)  # not the shared /tmp: jieba trusts the cache it finds
                jieba.setLogLevel(logging.WARNING)  # "Building prefix dict ..." goes nowhere
                jieba.initialize()
                logger.debug("jieba dictionary loaded")
                _jieba = jieba
    return _jieba


def warm_up() -> None:
    """Load jieba's dictionary in a background thread (about half a second), e.g. while the
    first batch of an ingestion is being embedded; ``segment`` then finds it loaded."""
    if _jieba is None:
        threading.Thread(target=_loaded, name="textsearch-jieba", daemon=True).start()


def _cut_for_search() -> Callable[[str], Iterable[str]]:
    """jieba's search mode: a long word also yields the shorter words inside it."""
    return _loaded().cut_for_search  # type: ignore[no-any-return]


def words(text: str) -> list[str]:
    """``text`` cut into words (jieba's default mode: each character in exactly one word)."""
    return list(_loaded().cut(text))


def tags() -> dict[str, str]:
    """jieba's dictionary: word → its part of speech ("n", "v", "a", ...), as jieba.posseg reads it."""
    import jieba.posseg

    return dict(jieba.posseg.dt.word_tag_tab)


def _latin_terms(word: str) -> list[str]:
    """A latin/digit word as written, plus its joined form when it holds letters and connectors."""
    if not _CONNECTOR.search(word):
        return [word]
    joined = _CONNECTOR.sub("", word)
    if joined.isdigit():
        return [word]
    return [word, joined]


def segment(text: str) -> str:
    """Keyword terms of ``text``, lower-cased and joined by single spaces ('' when none).

    >>> segment("北京大学生物系的XR-200，售价3.5万")  # doctest: +SKIP
    '北京 大学 北京大学 生物 生物系 的 xr-200 xr200 售价 3.5 万'
    """
    text = unicodedata.normalize("NFKC", text).lower()
    terms: list[str] = []
    for match in _RUN.finditer(text):
        han, word = match.groups()
        if han:
            terms += [t for t in _cut_for_search()(han) if t.strip()]
        else:
            terms += _latin_terms(word)
    return " ".join(terms)


def quote(term: str) -> str:
    """``term`` as an FTS5 string: inside double quotes, FTS5 reads no operator or column."""
    return '"' + term.replace('"', '""') + '"'


def match_expression(query: str) -> str | None:
    """The FTS5 MATCH string for a user query: every term quoted, joined by OR (BM25 then ranks
    passages that match more and rarer terms first). None when the query holds no term."""
    terms = list(dict.fromkeys(segment(query).split()))
    if not terms:
        return None
    return " OR ".join(quote(t) for t in terms)
