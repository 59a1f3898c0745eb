"""split.py: sentences, passages packed to a token bound with overlap, over-long sentences cut."""

from __future__ import annotations

import itertools
import random
import re

from textsearch.documents.split import sentence_spans, split_many, split_passages


def words(texts):
    """Token counter for English tests: whitespace-separated words."""
    return [len(t.split()) for t in texts]


def han_chars(texts):
    """Token counter for Chinese tests: one token per non-space character."""
    return [len(re.sub(r"\s", "", t)) for t in texts]


def spans_text(text: str) -> list[str]:
    return [text[s:e] for s, e in sentence_spans(text)]


def test_sentence_spans_chinese_english_and_newlines() -> None:
    text = "  The value is 3.14 today. Next one! 第一句。第二句！第三句？\nnew line\n\n last"
    assert spans_text(text) == [
        "The value is 3.14 today.",
        "Next one!",
        "第一句。",
        "第二句！",
        "第三句？",
        "new line",
        "last",
    ]


def test_sentence_spans_keeps_closing_quotes_and_decimals() -> None:
    assert spans_text("他说：“好。”然后走了。") == ["他说：“好。”", "然后走了。"]
    assert spans_text('He said "go." Then left.') == ['He said "go."', "Then left."]
    assert spans_text("Pi is 3.14159 and e is 2.718") == ["Pi is 3.14159 and e is 2.718"]
    assert spans_text("") == []
    assert spans_text(" \n\n ") == []


def test_short_text_is_one_stripped_passage() -> None:
    text = "\n  The cat sleeps. The dog eats.  \n"
    (passage,) = split_passages(text, words, max_tokens=256, overlap_tokens=32)
    assert passage.text == "The cat sleeps. The dog eats."
    assert (passage.start, passage.end) == (3, 32)
    assert text[passage.start : passage.end] == passage.text


def test_empty_text_has_no_passages() -> None:
    assert split_passages("   \n ", words) == []


def test_split_many_counts_short_texts_in_one_call_and_splits_as_one_at_a_time() -> None:
    calls: list[list[str]] = []

    def counted(texts):  # type: ignore[no-untyped-def]
        calls.append(list(texts))
        return words(texts)

    long_text = " ".join(f"Sentence number {i} is here." for i in range(12))
    texts = ["One short text.", "  ", "Two. Short ones.", long_text]
    assert split_many(texts, counted, max_tokens=10, overlap_tokens=2) == [
        split_passages(t, words, max_tokens=10, overlap_tokens=2) for t in texts
    ]
    # one call for every text that may fit whole (the long one has too many characters to)...
    assert calls[0] == ["One short text.", "Two. Short ones."]
    assert calls[1] == [f"Sentence number {i} is here." for i in range(12)]  # ...then its sentences
    assert len(calls) == 2
    assert split_many(["", " "], counted) == [[], []]


def check_passages(text: str, passages, count, max_tokens: int, overlap_tokens: int) -> None:
    """The invariants every split must keep."""
    assert passages
    for p in passages:
        assert text[p.start : p.end] == p.text
        assert count([p.text])[0] <= max_tokens, p.text
    covered = set()
    for p in passages:
        covered.update(range(p.start, p.end))
    assert [i for i, ch in enumerate(text) if not ch.isspace() and i not in covered] == []
    for a, b in itertools.pairwise(passages):
        assert a.start < b.start and a.end < b.end  # in order, always moving forward
        if b.start < a.end:
            assert count([text[b.start : a.end]])[0] <= overlap_tokens


def test_english_passages_pack_sentences_with_overlap() -> None:
    # 10 sentences of 4 words each
    text = " ".join(f"Sentence number {i} here." for i in range(10))
    passages = split_passages(text, words, max_tokens=10, overlap_tokens=4)
    # 10 tokens hold two sentences (8); the next passage starts with the last one (4 <= 4)
    assert [p.text for p in passages] == [
        "Sentence number 0 here. Sentence number 1 here.",
        "Sentence number 1 here. Sentence number 2 here.",
        "Sentence number 2 here. Sentence number 3 here.",
        "Sentence number 3 here. Sentence number 4 here.",
        "Sentence number 4 here. Sentence number 5 here.",
        "Sentence number 5 here. Sentence number 6 here.",
        "Sentence number 6 here. Sentence number 7 here.",
        "Sentence number 7 here. Sentence number 8 here.",
        "Sentence number 8 here. Sentence number 9 here.",
    ]
    check_passages(text, passages, words, 10, 4)


def test_no_overlap_when_overlap_is_zero_or_too_small() -> None:
    text = " ".join(f"Sentence number {i} here." for i in range(6))
    for overlap in (0, 3):  # a 4-word sentence does not fit in 3 tokens of overlap
        passages = split_passages(text, words, max_tokens=8, overlap_tokens=overlap)
        assert len(passages) == 3
        assert all(b.start > a.end for a, b in itertools.pairwise(passages))
        check_passages(text, passages, words, 8, overlap)


def test_chinese_passages_split_at_sentence_ends() -> None:
    text = "今天天气很好。我们去公园吧！你想去吗？好的，我们走。"
    # sentences of 7, 7, 5, 7 characters; max 14 holds two
    passages = split_passages(text, han_chars, max_tokens=14, overlap_tokens=0)
    assert [p.text for p in passages] == [
        "今天天气很好。我们去公园吧！",
        "你想去吗？好的，我们走。",
    ]
    check_passages(text, passages, han_chars, 14, 0)


def test_decimal_is_not_a_sentence_end_when_packing() -> None:
    text = "The value of pi is 3.14 exactly. " * 3
    passages = split_passages(text, words, max_tokens=8, overlap_tokens=0)
    assert [p.text for p in passages] == ["The value of pi is 3.14 exactly."] * 3
    assert [p.start for p in passages] == [0, 33, 66]


def test_overlong_sentence_without_punctuation_is_hard_split() -> None:
    text = " ".join(f"w{i}" for i in range(5000))  # one 5,000-word "sentence"
    passages = split_passages(text, words, max_tokens=50, overlap_tokens=10)
    check_passages(text, passages, words, 50, 10)
    assert len(passages) >= 100  # 5000 / 50
    # every word survives intact exactly once, in order, once overlaps are removed
    seen: list[str] = []
    last_end = 0
    for p in passages:
        seen += text[max(p.start, last_end) : p.end].split()
        last_end = p.end
    assert seen == text.split()


def test_overlong_chinese_sentence_is_hard_split() -> None:
    text = "天" * 1000  # no punctuation, no spaces
    passages = split_passages(text, han_chars, max_tokens=64, overlap_tokens=0)
    check_passages(text, passages, han_chars, 64, 0)
    assert "".join(p.text for p in passages) == text


def test_random_texts_keep_the_invariants() -> None:
    """Seeded mixtures of English, Chinese, decimals, newlines and over-long runs."""
    rng = random.Random(7)
    pieces = [
        "cat",
        "dog",
        "3.14",
        "e.g.",
        "Hello.",
        "world!",
        "ok?",
        "天气",
        "很好。",
        "我们！",
        "，",
        ",",
        "\n",
        "\n\n",
        "  ",
        "a;",
        "“引号。”",
        "x" * 30,
    ]
    token = re.compile(r"\w+|[^\w\s]")
    counters = [words, han_chars, lambda ts: [len(token.findall(t)) for t in ts]]
    for _ in range(300):
        text = "".join(
            rng.choice(pieces) + rng.choice([" ", ""]) for _ in range(rng.randint(1, 300))
        )
        if not text.strip():
            continue
        count = rng.choice(counters)
        max_tokens = rng.choice([8, 16, 40])
        overlap = rng.choice([0, 2, 7])
        check_passages(
            text, split_passages(text, count, max_tokens, overlap), count, max_tokens, overlap
        )
