"""What a new user tries first, with the real default model: small corpora, keyword-like queries,
a fact inside a long document, and "no confident match" that never hides an obvious answer."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from textsearch.index import Index
from textsearch.training.quality import table

pytestmark = pytest.mark.model
CORPORA = Path(__file__).resolve().parents[2] / "corpora"


def ids(hits) -> list[str]:  # type: ignore[no-untyped-def]
    return [h.doc_id for h in hits]


def five_files(folder: Path, fifth: dict[str, str]) -> Path:
    """The showcase's answer, three files about other things, and ``fifth`` (name → text)."""
    folder.mkdir()
    files = {"kid.txt": "惹人喜欢的孩子", **fifth, "stocks.txt": "股市今天大跌，投资者很担心。",
             "noodles.txt": "这家餐厅的牛肉面很好吃。", "laptop.txt": "我的电脑坏了，需要修理。"}
    for name, text in files.items():
        (folder / name).write_text(text, encoding="utf-8")
    return folder


def test_a_five_file_corpus_answers_the_showcase_query(tmp_path: Path, real_encoder) -> None:
    folder = five_files(tmp_path / "five", {"weather.txt": "今天的天气很好，适合出去散步。"})
    with Index.create(tmp_path / "idx", encoder=real_encoder) as idx:
        idx.index_folder(folder)
        hits = idx.search("可爱的宝宝", k=5)
        assert ids(hits)[:1] == ["kid.txt"] and not hits[0].low_confidence  # not "no confident match"
        assert idx.search("量子计算机的表面码纠错是怎么工作的") == []  # nothing here is about that


@pytest.mark.xfail(strict=True, reason="known limit (README): the near miss still comes first with every "
                   "model shipped; strict, so the day a default passes, this check says so")
def test_the_showcase_paraphrase_ranks_above_the_word_sharing_near_miss(tmp_path: Path, real_encoder) -> None:
    # a check on the default model, never a set it was chosen on
    folder = five_files(tmp_path / "five", {"toy.txt": "宝宝的可爱玩具坏了"})
    with Index.create(tmp_path / "five-idx", encoder=real_encoder) as idx:
        idx.index_folder(folder)
        assert ids(idx.search("可爱的宝宝", k=2, include_low_confidence=True)) == ["kid.txt", "toy.txt"]
    with Index.create(tmp_path / "demo-idx", encoder=real_encoder) as idx:  # what `make demo` indexes
        idx.index_folder(CORPORA / "demo")
        found = ids(idx.search("可爱的宝宝", k=10, include_low_confidence=True))
        assert found.index("family/family.jsonl#fam-001") < found.index("family/toys.txt")


def test_keyword_like_queries_find_the_documents_that_mean_them(tmp_path: Path, real_encoder) -> None:
    docs = [{"id": f"zh{i}", "text": f"型号XK-{1000 + i}的笔记本电脑电池续航时间为{3 + i % 8}小时。"} for i in range(300)]
    docs += [{"id": f"en{i}", "text": f"Model QZ-{2000 + i} laptop battery lasts {2 + i % 9} hours."} for i in range(100)]
    with Index.create(tmp_path / "idx", encoder=real_encoder) as idx:
        idx.add(docs)
        laptop = idx.search("laptop", k=5)
        assert len(laptop) == 5 and all(i.startswith("en") for i in ids(laptop))
        chinese = idx.search("笔记本电脑", k=5)
        assert len(chinese) == 5  # every document holds the word: none is refused


def test_a_fact_inside_a_long_document_is_found_and_confident(tmp_path: Path, real_encoder) -> None:
    # 27,000 characters of unrelated everyday sentences (the held-out notes), one fact in the middle
    notes = [json.loads(line)["text"] for line in (CORPORA / "heldout/real/docs/longdoc_zh.jsonl").open(encoding="utf-8")]
    text = "".join(notes)[:27_000]
    middle = text.index("。", 13_500) + 1
    fact = "我们村子东头那棵三百年的老银杏树，去年秋天被一场雷暴劈成了两半。"
    with Index.create(tmp_path / "idx", encoder=real_encoder) as idx:
        idx.add([{"id": "notes", "text": text[:middle] + fact + text[middle:]}])
        for query in ("老银杏树被雷劈成两半", "村口的古树被闪电击中裂开了"):  # nearly the same words; a paraphrase
            best = idx.search(query, k=1, group=False)  # the best passage, confident
            assert len(best) == 1 and fact in best[0].text, query


def test_the_table_lays_reports_side_by_side() -> None:
    one = {"model": "a", "restate_en": {"mrr@10": 0.5, "recall@1": 0.25},
           "demo_refusals": {"out_of_corpus": 0.9, "in_corpus": 0.05}}
    lines = table([one, {"model": "b"}]).splitlines()
    assert lines[0] == "| split | a MRR@10 / R@1 | b MRR@10 / R@1 |"
    assert lines[2] == "| restate_en | 0.500 / 0.250 | — |"
    assert "| demo: out-of-corpus queries refused | 90.0% | — |" in lines


def test_the_table_shows_how_often_the_word_sharing_wrong_answer_comes_first() -> None:
    held = {"model": "a", "wordshare_zh": {"mrr@10": 0.75, "recall@1": 0.5, "wrong_first": 0.125},
            "demo_refusals": {"out_of_corpus": 0.9, "in_corpus": 0.05}}
    lines = table([held]).splitlines()
    assert "| wordshare_zh | 0.750 / 0.500 |" in lines
    assert "| wordshare_zh: the word-sharing wrong answer first | 12.5% |" in lines
    assert "| wordshare_en: the word-sharing wrong answer first | — |" in lines
    dev = table([{"model": "a", "keyword_zh": {"mrr@10": 0.5, "recall@1": 0.5}}]).splitlines()
    # a dev report: the dev splits, no refusal rows
    assert [line.split(" |")[0] for line in dev[2:]] == [
        "| idiom_meaning", "| keyword_zh", "| restate_en", "| restate_zh", "| xling_en_zh", "| xling_zh_en",
        "| wordshare_zh", "| wordshare_en", "| control_zh", "| control_en", "| contain_zh",
        "| wordshare_zh: the word-sharing wrong answer first", "| wordshare_en: the word-sharing wrong answer first",
        "| contain_zh: the word-sharing wrong answer first",
        "| control_zh: the wrong answer that shares few words first",
        "| control_en: the wrong answer that shares few words first"]
