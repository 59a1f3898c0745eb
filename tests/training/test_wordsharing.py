"""Mining word-sharing pairs (training/wordsharing.py) on clusters written here, with a fake encoder
whose cosines are set per pair of texts: no data package, no model."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Sequence

import numpy as np

from textsearch.training import wordsharing as ws
from textsearch.training.evaluate import wrong_first
from textsearch.training.sources import clusters

PAIRS = [  # (zh id, zh, en id, en): four clusters
    ("1", "你最喜欢的电影是哪部？", "en1", "What is your favourite movie?"),
    ("2", "你最喜欢的电台是什么？", "en2", "Which radio station do you like best?"),
    ("3", "我可以借用你的车吗？", "en3", "Can I borrow your car?"),
    ("4", "我可以用你的车吗？", "en3", "Can I borrow your car?"),  # a restatement of 3
    ("5", "我可以借你的车吗？", "en4", "May I borrow your car?"),  # shares words, means the same
    ("6", "今天天气很好。", "en5", "The weather is nice today."),
]


class PivotEncoder:
    """Unit vectors where the texts in ``close`` pairs get cosine 16/17 (0.94) and others 0."""

    def __init__(self, close: Sequence[tuple[str, str]] = ()) -> None:
        self.close = [set(pair) for pair in close]

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        vectors = np.zeros((len(texts), len(texts) + len(self.close)), np.float32)
        for i, text in enumerate(texts):
            vectors[i, i] = 1.0
            for j, pair in enumerate(self.close):
                if text in pair:
                    vectors[i, len(texts) + j] = 4.0
        return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)

    encode_passages = encode_queries


def _clusters() -> ws.Clusters:
    return ws.Clusters.of(PAIRS, clusters(PAIRS))


def test_overlaps_count_characters_and_words() -> None:
    assert ws.zh_overlap("你最喜欢的电影是哪部？", "你最喜欢的电台是什么？") == 0.7
    assert ws.en_words("What's the man's name? I'm sure they don't know.") == [
        "what", "is", "the", "man", "is", "name", "i", "am", "sure", "they", "do", "not", "know"]
    assert ws.en_overlap("Can I borrow your car?", "Can I use your pen?") == 3 / 7


def test_candidates_share_at_least_two_grams() -> None:
    texts = ["你最喜欢的电影", "你最喜欢的电台", "今天天气很好"]
    assert ws.candidate_pairs(texts, "zh") == [(0, 1)]
    assert ws.candidate_pairs(["I like tea", "I like coffee", "Go home"], "en") == [(0, 1)]


def test_chinese_negatives_share_characters_and_differ_through_english() -> None:
    found = ws.mine_negatives(_clusters(), "zh", PivotEncoder())
    # 电影/电台 and the car sentences share characters; 3 and 4 are one cluster; 5's English
    # ("May I borrow your car?") shares 4 of 6 words with 3's: the pivot says it is the same
    assert found == [("你最喜欢的电台是什么？", "你最喜欢的电影是哪部？")]


def test_a_pivot_cosine_over_the_limit_drops_the_pair() -> None:
    close = [("What is your favourite movie?", "Which radio station do you like best?")]
    assert ws.mine_negatives(_clusters(), "zh", PivotEncoder(close)) == []


def test_restatements_that_share_words_and_triples() -> None:
    found = _clusters()
    assert ws.restatement_pairs(found, "zh") == [("我可以借用你的车吗？", "我可以用你的车吗？")]
    rows = ws.triples(found, [("我可以借用你的车吗？", "今天天气很好。")], "zh", random.Random(0))
    # the anchor with a restatement gets it as positive; the other has only its translation
    assert rows == [
        {"anchor": "我可以借用你的车吗？", "positive": "我可以用你的车吗？", "negative": ["今天天气很好。"],
         "lang": "zh", "source": "tatoeba-wordshare"},
        {"anchor": "今天天气很好。", "positive": "The weather is nice today.", "negative": ["我可以借用你的车吗？"],
         "lang": "zh", "source": "tatoeba-wordshare"},
    ]


def test_wrong_first_counts_rows_whose_negative_beats_the_positive() -> None:
    encoder = PivotEncoder([("q1", "n1"), ("q2", "p2")])
    rows = [{"anchor": "q1", "positive": "p1", "negative": ["n1", "x"]},
            {"anchor": "q2", "positive": "p2", "negative": ["n2"]}]
    assert wrong_first(encoder, rows) == 0.5


def test_judged_rows_never_make_one_rows_document_anothers_answer() -> None:
    found = _clusters()
    a, b, c = "我可以借用你的车吗？", "你最喜欢的电影是哪部？", "今天天气很好。"
    triples = [
        {"anchor": a, "positive": "我可以用你的车吗？", "negative": [b]},
        {"anchor": b, "positive": "What is your favourite movie?", "negative": [a]},  # b is row 1's negative
        {"anchor": "我可以用你的车吗？", "positive": a, "negative": [c]},  # a's cluster has its query
        {"anchor": c, "positive": "The weather is nice today.", "negative": ["你最喜欢的电台是什么？"]},
    ]
    assert ws.judged_rows(found, triples, 10) == [triples[0], triples[3]]
    assert ws.judged_rows(found, triples, 1) == [triples[0]]


def test_controls_put_a_restatement_that_shares_words_above_the_nearest_other_meaning() -> None:
    found = _clusters()
    same = ws.restatement_pairs(found, "zh")
    a, b = "我可以借用你的车吗？", "我可以用你的车吗？"
    # 今天天气很好。 is a's nearest; 我可以借你的车吗？ shares too much with a to be a control's negative
    near = ws.controls(found, same, "zh", PivotEncoder([(a, "今天天气很好。")]))
    assert near == [
        {"anchor": a, "positive": b, "negative": ["今天天气很好。"], "lang": "zh", "source": "tatoeba-control"},
        {"anchor": b, "positive": a, "negative": ["今天天气很好。"], "lang": "zh", "source": "tatoeba-control"},
    ]
    # when their translations say the same (pivot cosine 0.94), the next nearest is taken
    pivot = PivotEncoder([(a, "今天天气很好。"), ("Can I borrow your car?", "The weather is nice today.")])
    assert [r["negative"] for r in ws.controls(found, same, "zh", pivot)] == [["你最喜欢的电台是什么？"]] * 2
    assert ws.controls(found, [], "zh", pivot) == []


HELD = [  # a short sentence, a longer one of another meaning that holds its words, a filler
    ("7", "她很漂亮。", "en7", "She is beautiful."),
    ("8", "是呀，这个很漂亮。多少钱？", "en8", "Yes, this one is very pretty. How much is it?"),
    ("9", "她真美。", "en7", "She is beautiful."),  # a restatement of 7
    ("10", "我有很多书。", "en10", "I have a lot of books."),
    ("11", "我有很多书要在今天读完。", "en11", "I have a lot of books to finish reading today."),
    ("12", "天气很好。", "en12", "The weather is fine."),
    ("13", "今天天气很好，我们去公园散步吧。", "en13", "The weather is fine today, so let's walk in the park."),
    ("14", "她很忙碌。", "en14", "She is busy."),  # 她很 as common as 漂亮: each pair weighs the same
]


def test_contained_asks_for_the_rarer_pairs_of_a_shorter_sentence() -> None:
    even = {}.get  # every pair weighs the same...
    assert ws.contained("她很漂亮。", "是呀，这个很漂亮。多少钱？", "zh", lambda p: even(p, 1.0))
    # ...unless the shared pair is a common one: 很漂 and 漂亮 carry little, 她很 all
    weights = {("她", "很"): 10.0}
    assert not ws.contained("她很漂亮。", "是呀，这个很漂亮。多少钱？", "zh", lambda p: weights.get(p, 1.0))
    assert not ws.contained("她很漂亮。", "她很漂亮吗", "zh", lambda p: 1.0)  # not 1.5 times as long
    assert not ws.contained("她很漂亮。", "是呀，这个很漂亮。多少钱？我们再去别的地方看看吧", "zh",
                            lambda p: 1.0)  # over 3 times as long
    assert ws.contained("I have a cat.", "I have a cat and a dog at home.", "en", lambda p: 1.0)


def test_sentences_held_whole_are_negatives_only_when_the_pivot_says_so() -> None:
    found = ws.Clusters.of(HELD, clusters(HELD))
    # 我有很多书 is held by a sentence whose translation holds its translation: the same meaning and
    # more (word Jaccard 0.5); 天气很好 in 今天天气很好… passes the overlap (0.36) but not the cosine
    close = [("The weather is fine.", "The weather is fine today, so let's walk in the park.")]
    pairs = ws.mine_containing(found, "zh", PivotEncoder(close))
    assert pairs == [("她很漂亮。", "是呀，这个很漂亮。多少钱？")]
    rows = ws.triples(found, pairs, "zh", random.Random(0), "tatoeba-contain", both_ways=False)
    assert rows == [{"anchor": "她很漂亮。", "positive": "她真美。", "negative": ["是呀，这个很漂亮。多少钱？"],
                     "lang": "zh", "source": "tatoeba-contain"}]


GROUPS = [["电脑", "计算机", "微机"], ["不是", "过错"], ["可爱", "讨人喜欢"], ["医生", "大夫", "医师"]]
GLOSSES = {"电脑": ["computer", "CL:臺|台[tai2]"], "计算机": ["(computer) computer", "calculator"], "微机": ["computer"],
           "不是": ["fault", "is not"], "过错": ["fault"], "可爱": ["adorable", "lovely"], "讨人喜欢": ["lovely"],
           "医生": ["doctor"], "大夫": ["doctor"], "医师": ["doctor"]}
TAGS = {"电脑": "n", "计算机": "n", "微机": "n", "不是": "c", "过错": "n", "可爱": "a", "讨人喜欢": "a",
        "医生": "n", "大夫": "n", "医师": "n"}


def test_synonyms_share_a_group_a_gloss_and_a_part_of_speech_but_no_character() -> None:
    uses = Counter({w: 5 for w in TAGS} | {"微机": 1})
    # 不是/过错: one gloss but not one part of speech; 医师 shares 医 with 医生; 微机 is rare;
    # 可爱/讨人喜欢 are the card's words, kept for the check
    assert ws.synonym_pairs(GROUPS, GLOSSES, uses, TAGS) == {
        "医师": ["大夫"], "大夫": ["医师", "医生"], "医生": ["大夫"], "电脑": ["计算机"], "计算机": ["电脑"]}


def test_a_swap_replaces_every_word_with_a_synonym() -> None:
    synonyms = {"电脑": ["计算机"], "医生": ["大夫"]}
    assert ws.swapped(["医生", "的", "电脑", "坏", "了"], synonyms, random.Random(0)) == "大夫的计算机坏了"
    assert ws.swapped(["我", "很", "忙"], synonyms, random.Random(0)) is None


SWAPS = [
    ("20", "电脑坏了。", "en20", "The computer is broken."),
    ("21", "电脑坏了，我们今天不能上课。", "en21", "The computer broke, so we have no class today."),
    ("22", "我的电脑很旧。", "en22", "My computer is old."),
    ("23", "我的电脑很新。", "en23", "My computer is new."),
    ("24", "今天天气很好。", "en24", "The weather is nice today."),
]


def test_a_sentence_swapped_for_synonyms_is_the_positive_against_its_near_miss() -> None:
    found = ws.Clusters.of(SWAPS, clusters(SWAPS))
    near = {"电脑坏了。": "电脑坏了，我们今天不能上课。", "我的电脑很旧。": "我的电脑很新。"}
    cut = {"电脑坏了。": ["电脑", "坏", "了", "。"], "我的电脑很旧。": ["我", "的", "电脑", "很", "旧", "。"],
           "电脑坏了，我们今天不能上课。": ["电脑", "坏", "了", "，", "我们", "今天", "不能", "上课", "。"],
           "我的电脑很新。": ["我", "的", "电脑", "很", "新", "。"], "今天天气很好。": ["今天", "天气", "很", "好", "。"]}
    synonyms = {"电脑": ["计算机"]}
    rows = ws.swap_triples(found, near, synonyms, cut.__getitem__, random.Random(0))
    # the swaps keep 4 of 6 and 2 of 4 of their anchors' characters, the near misses 5 of 6 and 4 of 4
    assert rows == [
        {"anchor": "我的电脑很旧。", "positive": "我的计算机很旧。", "lang": "zh", "source": "tatoeba-synonym",
         "negative": ["我的电脑很新。"]},
        {"anchor": "电脑坏了。", "positive": "计算机坏了。", "lang": "zh", "source": "tatoeba-synonym",
         "negative": ["电脑坏了，我们今天不能上课。"]}]
    # every sentence with a swap, the ones without a near miss as pairs
    everyone = ws.swap_triples(found, near, synonyms, cut.__getitem__, random.Random(0), everyone=True)
    assert [(r["anchor"], r.get("negative")) for r in everyone] == [
        ("我的电脑很新。", None), ("我的电脑很旧。", ["我的电脑很新。"]), ("电脑坏了。", ["电脑坏了，我们今天不能上课。"]),
        ("电脑坏了，我们今天不能上课。", None)]
