"""The light tokenizer of the ONNX path (models/tokenizer.py) on (query, passage) pairs: the ids of
transformers' fast tokenizer, cut as it cuts a pair that is too long."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from textsearch.models.runtime import CHECK_TEXTS
from textsearch.models.tokenizer import LightTokenizer, longest_first, spm_model


def test_longest_first_cuts_the_longer_one_then_both() -> None:
    a, b = list(range(10)), list(range(100, 106))
    assert longest_first(a, b, None) == (a, b)  # no limit
    assert longest_first(a, b, 16) == (a, b)  # 10 + 6 fit
    assert longest_first(a, b[:3], 8) == (a[:5], b[:3])  # the shorter (3) whole, the longer 8 − 3 = 5
    assert longest_first(a, b, 8) == (a[:4], b[:4])  # 6 is over 8 − 6 = 2: each gets 8 // 2 = 4
    assert longest_first(a, b, 9) == (a[:5], b[:4])  # odd: the longer one gets the fifth
    assert longest_first(b, b, 9) == (b[:4], b[:5])  # as long: the second gets it


def test_longest_first_is_what_tokenizers_does() -> None:
    """Every pair of lengths 0-14 at every limit 5-23, against tokenizers' own ``longest_first``
    (the one transformers' fast tokenizers use) on XLM-R's pair template, 4 tokens added."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors

    vocab = {"[UNK]": 0, "<s>": 1, "</s>": 2, **{f"w{i}": i + 3 for i in range(40)}}
    tokenizer = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tokenizer.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>", pair="<s> $A </s> </s> $B </s>", special_tokens=[("<s>", 1), ("</s>", 2)])
    differ = []
    for limit in range(5, 24):
        tokenizer.enable_truncation(limit)
        for n in range(15):
            for m in range(15):
                a, b = [f"w{i}" for i in range(n)], [f"w{20 + i}" for i in range(m)]
                wanted = [i for i in tokenizer.encode(" ".join(a), " ".join(b)).ids if i > 2]
                cut = longest_first([vocab[w] for w in a], [vocab[w] for w in b], limit - 4)
                if cut[0] + cut[1] != wanted:
                    differ.append((limit, n, m))
    assert differ == []


# --- the real tokenizer (multilingual-e5-small's, which the shipped reranker uses) -----------------
ODD_PAIRS = [
    ("query: 可爱的宝宝", "passage:  two spaces inside and one at the end "),
    ("query: <s> names a special token", "passage: 惹人喜欢的孩子"),
    ("query: a  b\tc\nd", "passage: " + "长" * 600),
    ("", "passage: 😀 emoji ｆｕｌｌ　ｗｉｄｔｈ"),
]


@pytest.fixture(scope="module")
def base_folder() -> Path:
    from textsearch.models.registry import resolve_model

    return Path(resolve_model("multilingual-e5-small"))


@pytest.mark.model
def test_pairs_get_transformers_ids(base_folder: Path, tmp_path: Path) -> None:
    """Pairs of plain texts on the sentencepiece model (checked on pairs when built), the others on
    transformers: every id is transformers' own, whole and cut (320 tokens, as the reranker asks,
    and 24)."""
    from importlib.util import find_spec

    from transformers import AutoTokenizer

    spm = spm_model(base_folder / "tokenizer.json", tmp_path, CHECK_TEXTS, pairs=True)
    assert spm == tmp_path / "tokenizer.spm"
    light, exact = LightTokenizer(base_folder / "tokenizer.json", spm), AutoTokenizer.from_pretrained(str(base_folder))
    hsk = json.loads(Path(find_spec("hsk_sentences_audio").submodule_search_locations[0], "data",
                          "sentences.json").read_text(encoding="utf-8"))
    queries = ["query: " + r["chinese"] for r in hsk[:300]] + ["query: " + r["translation"]["en"] for r in hsk[:300]]
    passages = ["passage: " + " ".join(r["translation"]["en"] for r in hsk[i:i + 1 + i % 40]) for i in range(300)]
    passages += ["passage: " + "".join(r["chinese"] for r in hsk[i:i + 1 + i % 30]) for i in range(300)]
    for limit in (320, 24):
        wanted = exact(queries, passages, truncation=True, max_length=limit)["input_ids"]
        assert light(queries, passages, truncation=True, max_length=limit) == {"input_ids": wanted}
        assert max(map(len, wanted)) == limit  # some pairs were cut
    assert light._tokenizers is None and light._transformers is None  # all on sentencepiece
    for query, passage in ODD_PAIRS[2:]:  # plain: inner whitespace, cut, empty, emoji, full width
        wanted = exact([query], [passage], truncation=True, max_length=320)["input_ids"]
        assert light([query], [passage], truncation=True, max_length=320)["input_ids"] == wanted, (query, passage)
    assert light._transformers is None
    for query, passage in ODD_PAIRS[:2]:  # whitespace at an end, a special token's name
        wanted = exact([query], [passage], truncation=True, max_length=320)["input_ids"]
        assert light([query], [passage], truncation=True, max_length=320)["input_ids"] == wanted, (query, passage)
    assert light._transformers is not None and light._tokenizers is None
