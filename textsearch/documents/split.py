"""Split a document's text into passages and sentences.

- sentences end at 。！？!?；, at a '.' before a space or the end, and at newlines (closing quotes
  and brackets stay with their sentence);
- whole sentences are packed into passages of at most ``max_tokens`` model tokens, consecutive
  passages sharing up to ``overlap_tokens`` of trailing sentences; a sentence over the bound is cut,
  at a comma or a space when one is near;
- a document of several passages also gets one unit per sentence (``with_sentences``), so that a
  fact diluted in its passage is found by its sentence.
"""

from __future__ import annotations

import math
import re
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from .text import Location

CountTokens = Callable[[Sequence[str]], list[int]]  # texts → their lengths in model tokens


@dataclass
class Passage:
    text: str
    start: int  # character offsets into the document text
    end: int
    location: Location | None = None  # where it is for a person (``locate``): page, heading, line
    # a sentence unit (``with_sentences``): the passage that holds it, which a hit shows
    within: Passage | None = None


_SENTENCE_END = re.compile(r"[。！？!?；]+[”’\"」』）)]*|\.+[”’\")\]]*(?=\s|$)|\n+")
_SOFT_BREAK = "，,、；;：: "


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) of each sentence, whitespace trimmed; ends are 。！？!?; a '.' before a space; newlines."""
    spans: list[tuple[int, int]] = []
    start = 0
    for match in _SENTENCE_END.finditer(text):
        spans.append((start, match.end()))
        start = match.end()
    spans.append((start, len(text)))
    return [(s, e) for s, e in (_trim(text, a, b) for a, b in spans) if e > s]


def _trim(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def _hard_split(text: str, start: int, end: int, n_tokens: int, max_tokens: int) -> list[tuple[int, int]]:
    """Cut an over-long sentence into roughly equal pieces, at a comma or space when one is near."""
    pieces = math.ceil(n_tokens / max_tokens) + 1
    width = max(1, math.ceil((end - start) / pieces))
    spans = []
    pos = start
    while pos < end:
        cut = min(end, pos + width)
        if cut < end:
            soft = max(text.rfind(ch, pos + width // 2, cut) for ch in _SOFT_BREAK)
            if soft > pos:
                cut = soft + 1
        spans.append(_trim(text, pos, cut))
        pos = cut
    return [(a, b) for a, b in spans if b > a]


def split_passages(
    text: str, count_tokens: CountTokens, max_tokens: int = 256, overlap_tokens: int = 32
) -> list[Passage]:
    """Pack whole sentences into passages of at most ``max_tokens``; consecutive passages share
    up to ``overlap_tokens`` of trailing sentences. Sentences longer than the bound are cut."""
    return split_many([text], count_tokens, max_tokens, overlap_tokens)[0]


def with_sentences(text: str, passages: list[Passage]) -> list[Passage]:
    """The passages of a document of several, then one unit per sentence that is not a passage
    already, each ``within`` the first passage that holds it: a fact diluted in its passage is found
    by its sentence (docs/long-documents.md measures it). A document of one passage is left as
    it is: short texts cost nothing more."""
    if len(passages) <= 1:
        return passages
    whole = {(p.start, p.end) for p in passages}
    units = list(passages)
    for start, end in sentence_spans(text):
        holder = next((p for p in passages if p.start <= start and end <= p.end), None)
        if holder is not None and (start, end) not in whole:
            units.append(Passage(text[start:end], start, end, within=holder))
    return units


def split_many(
    texts: Sequence[str], count_tokens: CountTokens, max_tokens: int = 256, overlap_tokens: int = 32
) -> list[list[Passage]]:
    """``split_passages`` of each text, with the common case — a short document, one passage —
    counted for all texts in one tokenizer call (one call per text costs far more than the
    tokenizing, above all while the encoder keeps every core busy)."""
    spans = [sentence_spans(text) for text in texts]
    whole = [i for i, s in enumerate(spans) if s and s[-1][1] - s[0][0] <= 8 * max_tokens]
    counts = dict(zip(whole, count_tokens([texts[i][spans[i][0][0] : spans[i][-1][1]] for i in whole]))) if whole else {}
    out: list[list[Passage]] = []
    for i, (text, text_spans) in enumerate(zip(texts, spans)):
        if not text_spans:
            out.append([])
        elif counts.get(i, max_tokens + 1) <= max_tokens:
            first, last = text_spans[0][0], text_spans[-1][1]
            out.append([Passage(text[first:last], first, last)])
        else:
            out.append(_pack(text, text_spans, count_tokens, max_tokens, overlap_tokens))
    return out


def _pack(text: str, spans: list[tuple[int, int]], count_tokens: CountTokens, max_tokens: int,
          overlap_tokens: int) -> list[Passage]:
    """A longer text's passages: sentences counted, over-long ones cut, then packed."""
    units: list[tuple[int, int, int]] = []
    pending = deque(zip(spans, count_tokens([text[s:e] for s, e in spans])))
    while pending:
        (s, e), n = pending.popleft()
        if n <= max_tokens or e - s <= 1:
            units.append((s, e, n))
            continue
        parts = _hard_split(text, s, e, n, max_tokens)
        pending.extendleft(reversed(list(zip(parts, count_tokens([text[a:b] for a, b in parts])))))
    passages: list[Passage] = []
    current: list[tuple[int, int, int]] = []
    for unit in units:
        if current and sum(u[2] for u in current) + unit[2] > max_tokens:
            passages.append(Passage(text[current[0][0] : current[-1][1]], current[0][0], current[-1][1]))
            tail: list[tuple[int, int, int]] = []
            for prev in reversed(current[1:]):
                kept = sum(u[2] for u in tail) + prev[2]
                if kept > overlap_tokens or kept + unit[2] > max_tokens:
                    break
                tail.insert(0, prev)
            current = tail
        current.append(unit)
    passages.append(Passage(text[current[0][0] : current[-1][1]], current[0][0], current[-1][1]))
    return passages
