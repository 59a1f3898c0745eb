"""The held-out set builder's pieces, on pairs written here (the data packages are not needed)."""

from __future__ import annotations

from textsearch.training.sources import _restatements, _spread, clusters


def test_clusters_join_every_sentence_linked_through_translations() -> None:
    pairs = [("1", "你好", "en10", "Hello."), ("1", "你好", "en11", "Hi."),
             ("2", "您好", "en11", "Hi."), ("3", "再见", "en12", "Bye.")]
    found = clusters(pairs)
    # 1–en10, 1–en11 and 2–en11 are one cluster, keyed by its smallest id ("en10" < "zh1" < "zh2")
    assert {found[x] for x in ("zh1", "zh2", "en10", "en11")} == {"en10"}
    assert found["zh3"] == found["en12"] == "en12"


def test_restatements_need_two_translations_that_differ_beyond_case_and_punctuation() -> None:
    groups = {"a": {"Hello.", "hello"}, "b": {"Hi.", "Hello!"}, "c": {"Bye."}}
    assert _restatements(groups) == ["b"]


def test_distractors_hang_on_the_rows_without_repeating_a_judged_text() -> None:
    rows = [{"anchor": "q1", "positive": "p1"}, {"anchor": "q2", "positive": "p2"}]
    out = _spread(rows, ["d1", "p1", "d2", "d3", "d1", "q2"])
    # p1 and q2 are judged texts; the repeated d1 is kept once; the rest alternate over the rows
    assert [r["negative"] for r in out] == [["d1", "d3"], ["d2"]]
