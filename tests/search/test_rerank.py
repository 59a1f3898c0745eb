"""Second stage: reranking through the index and the evaluator with a fake scorer (exact order,
scores and blends with the cosine), choosing the blend's weight, the missing-reranker and bad-weight
errors, a real reranker trained on tiny data, and the shipped one on ONNX Runtime against torch."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from tests.training.test_train import ANIMALS
from textsearch import Index
from textsearch.cli import app
from textsearch.errors import InvalidArgumentError, ModelNotFoundError
from textsearch.search.rerank import RERANKER_ADAPTER, CrossEncoderReranker, Reranker
from textsearch.training.evaluate import evaluate_retrieval
from textsearch.training.pairs import IRSet

DOCS = [
    {"id": "a", "text": "cat cat dog"},
    {"id": "b", "text": "cat dog"},
    {"id": "c", "text": "cat dog fish"},
    {"id": "d", "text": "fish water"},
]


class LengthReranker(Reranker):
    """Prefers longer passages: score = len(text) / 100, so 'cat dog fish' (12) > 'cat cat dog' (11)."""

    name = "length"

    def __init__(self) -> None:
        self.seen: list[int] = []

    def score(self, query: str, passages: Sequence[str]) -> np.ndarray:
        self.seen.append(len(passages))
        return np.asarray([len(p) / 100 for p in passages], dtype=np.float32)


@pytest.fixture
def idx(tmp_path: Path, encoder) -> Index:
    index = Index.create(tmp_path / "idx", encoder=encoder)
    index.add(DOCS)
    return index


def test_rerank_orders_by_reranker_and_keeps_dense_score(idx: Index) -> None:
    # dense: cos("cat dog", b) = 1; a = (2+1)/sqrt(2*5) = 0.9487; c = 2/sqrt(2*3) = 0.8165; d = 0
    # (scores are rounded float32 cosines)
    dense = idx.search("cat dog", k=3)
    assert [h.doc_id for h in dense] == ["b", "a", "c"]
    assert all(h.dense_score is None for h in dense)
    reranked = idx.search("cat dog", k=3, rerank=LengthReranker(), candidates=3)
    assert [h.doc_id for h in reranked] == ["c", "a", "b"]  # lengths 12, 11, 7
    assert [h.score for h in reranked] == [0.12, 0.11, 0.07]
    assert [h.dense_score for h in reranked] == pytest.approx([0.816497, 0.948683, 1.0], abs=1e-5)
    everything = idx.search("cat dog", k=3, rerank=LengthReranker())  # default: 30 candidates
    assert [h.doc_id for h in everything] == ["c", "a", "d"]  # 'fish water' (10) now competes too


def test_rerank_weight_blends_the_reranker_with_the_cosine(idx: Index) -> None:
    # weight 0.5: b = (0.07 + 1)/2 = 0.535, a = (0.11 + 0.948683)/2 = 0.529342, c = (0.12 + 0.816497)/2
    hits = idx.search("cat dog", k=3, rerank=LengthReranker(), candidates=3, rerank_weight=0.5)
    assert [h.doc_id for h in hits] == ["b", "a", "c"]
    assert [h.score for h in hits] == pytest.approx([0.535, 0.529342, 0.468249], abs=1e-5)
    assert [h.rerank_score for h in hits] == pytest.approx([0.07, 0.11, 0.12])
    assert [h.dense_score for h in hits] == pytest.approx([1.0, 0.948683, 0.816497], abs=1e-5)
    only_cosine = idx.search("cat dog", k=3, rerank=LengthReranker(), candidates=3, rerank_weight=0.0)
    assert [(h.doc_id, h.score) for h in only_cosine] == [(h.doc_id, h.score) for h in idx.search("cat dog", k=3)]
    with pytest.raises(InvalidArgumentError, match="rerank weight"):
        idx.search("cat dog", rerank=LengthReranker(), rerank_weight=1.5)


def test_hybrid_rerank_blends_with_the_cosine_not_the_fused_score(idx: Index) -> None:
    dense = {h.doc_id: h.score for h in idx.search("cat dog", k=4, min_score=-1.0)}
    hits = idx.search("cat dog", k=3, mode="hybrid", rerank=LengthReranker(), candidates=3, rerank_weight=0.5)
    for hit in hits:
        assert hit.dense_score == pytest.approx(dense[hit.doc_id], abs=1e-5)
        assert hit.score == pytest.approx(0.5 * len(hit.text) / 100 + 0.5 * dense[hit.doc_id], abs=1e-5)


def test_choosing_the_rerank_weight(encoder) -> None:
    from textsearch.training.evaluate import choose_rerank_weight

    rows = [{"anchor": "cat dog", "positive": "cat dog fish", "negative": ["cat dog"]}]
    weight, curve = choose_rerank_weight(encoder, rows, LengthReranker(), candidates=3)
    assert curve[0.0] == 0.5 and curve[1.0] == 1.0  # dense puts the answer 2nd, length 1st
    # cosines 1 and 0.8165, lengths 0.07 and 0.12: the answer wins from w = 0.786; the lowest of the best
    assert weight == 0.8 and curve[0.75] == 0.5

    class Backwards(LengthReranker):
        def score(self, query: str, passages: Sequence[str]) -> np.ndarray:
            return 1 - super().score(query, passages)

    weight, curve = choose_rerank_weight(encoder, rows, Backwards(), candidates=3)
    assert weight == 0.0 and curve[0.0] == 0.5  # a reranker that only hurts gets no say


def test_candidates_bound_what_is_reranked(idx: Index) -> None:
    reranker = LengthReranker()
    hits = idx.search("cat dog", k=1, rerank=reranker, candidates=2)
    assert reranker.seen == [2]  # only b and a reach the reranker; c (the longest) does not
    assert [h.doc_id for h in hits] == ["a"]
    with pytest.raises(InvalidArgumentError, match="candidates"):
        idx.search("cat dog", rerank=reranker, candidates=0)


def test_evaluation_uses_the_reranked_order(encoder) -> None:
    ir = IRSet(queries=["cat dog"], corpus=["cat dog", "cat dog fish", "fish"], relevant=[{1}])
    assert evaluate_retrieval(encoder, ir, ks=(1, 3))["mrr@3"] == 0.5  # dense puts it 2nd
    reranked = evaluate_retrieval(encoder, ir, ks=(1, 3), reranker=LengthReranker(), candidates=3)
    assert reranked["mrr@3"] == 1.0 and reranked["recall@1"] == 1.0


def test_missing_reranker_says_how_to_train_one(tmp_path: Path, monkeypatch) -> None:
    with pytest.raises(ModelNotFoundError, match="textsearch train-reranker"):
        CrossEncoderReranker(str(tmp_path / "no-such-reranker"))
    monkeypatch.setattr("textsearch.search.rerank.RERANKER_ADAPTER", tmp_path / "gone")
    with pytest.raises(ModelNotFoundError, match="textsearch train-reranker"):
        CrossEncoderReranker()


@pytest.mark.model
def test_cli_query_with_a_missing_reranker_fails_clearly(tmp_path: Path, real_encoder) -> None:
    index = Index.create(tmp_path / "idx", encoder=real_encoder)
    index.add([{"id": "kid", "text": "惹人喜欢的孩子"}])
    index.close()
    result = CliRunner().invoke(app, ["query", "可爱的宝宝", "--index", str(tmp_path / "idx"),
                                      "--rerank-model", str(tmp_path / "missing")])
    assert result.exit_code == 1
    assert "textsearch train-reranker" in result.output and "Traceback" not in result.output


def test_cli_rerank_weight_out_of_range_is_one_clear_error(tmp_path: Path, encoder) -> None:
    Index.create(tmp_path / "idx", encoder=encoder).close()
    for command in (["query", "cat", "--index", str(tmp_path / "idx")], ["eval", str(tmp_path / "pairs.jsonl")]):
        result = CliRunner().invoke(app, [*command, "--rerank", "--rerank-weight", "1.5"])
        assert result.exit_code != 0
        assert "rerank weight 1.5 is out of range" in result.output and "Traceback" not in result.output


# --- real models --------------------------------------------------------------------------------
BASE = "all-MiniLM-L6-v2"
TRIPLES = ANIMALS  # the training tests' six (anchor, positive, negative) triples


@pytest.mark.model
def test_train_reranker_on_tiny_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from textsearch.models import loading, runtime
    from textsearch.training.cross_encoder import RerankerConfig, train_reranker

    data = tmp_path / "triples.jsonl"
    data.write_text("".join(json.dumps({"anchor": a, "positive": p, "negative": n}) + "\n"
                            for a, p, n in TRIPLES), encoding="utf-8")
    out = tmp_path / "reranker"
    config = RerankerConfig(base_model=BASE, miner=BASE, mine_hard_negatives=1, random_negatives=1, epochs=3,
                            batch_size=6, lr=1e-3, log_every=1)
    result = train_reranker(data, out, config, device="cpu")
    # 6 positives, 6 given negatives, 6 random ones (other rows' positives) and up to 6 mined (a
    # candidate scoring within 5% of the positive is skipped as a likely paraphrase)
    assert 18 < result.rows <= 24 and result.steps == 3 * -(-result.rows // 6)
    assert result.last_loss < result.first_loss
    assert sorted(p.name for p in out.iterdir()) == [
        "adapter_config.json", "adapter_model.safetensors", "textsearch_model.json"]
    assert (out / "adapter_model.safetensors").stat().st_size < 4_000_000  # 811k trainable float32 parameters
    assert not list(tmp_path.glob(".reranker.training*"))  # the work folder is gone

    reranker = CrossEncoderReranker(str(out), device="cpu")
    scores = reranker.score("the train is late", ["the railway service is delayed", "the train is early"])
    assert scores.shape == (2,) and ((0 <= scores) & (scores <= 1)).all()
    assert scores[0] > scores[1]  # a training pair: the positive beats its hard negative
    assert _peft_scores(out, "the train is late", ["the railway service is delayed"]) == pytest.approx(
        scores[:1], abs=1e-4)  # the merged folder computes what the adapter on its backbone computes
    # a WordPiece model with token types (MiniLM): its export loads light too, and scores as torch
    monkeypatch.setattr(loading, "_CACHE", {})
    light, slow = CrossEncoderReranker(str(out), device="cpu"), CrossEncoderReranker(str(out), device="cpu",
                                                                                     runtime="torch")
    assert isinstance(light._model, runtime.LightCrossEncoder) and "token_type_ids" in light._onnx.inputs
    assert _largest_difference(light, slow) < 1e-4
    monkeypatch.undo()

    # eval --calibrate chooses the reranker's weight on the file and stores it next to it
    result = CliRunner().invoke(app, ["eval", str(data), "--model", BASE, "--rerank-model", str(out), "--calibrate"])
    assert result.exit_code == 0, result.output
    assert "MRR@10 by rerank weight" in result.output and "calibrated: rerank weight" in result.output
    stored = json.loads((out / "textsearch_calibration.json").read_text(encoding="utf-8"))
    assert 0 <= stored["weight"] <= 1 and "min_score" not in stored  # "no match" stays the cosine's
    assert CrossEncoderReranker(str(out), device="cpu").weight == stored["weight"]
    assert CrossEncoderReranker(str(out), device="cpu", weight=0.25).weight == 0.25


def _peft_scores(adapter: Path, query: str, passages: list[str]) -> np.ndarray:
    """The adapter applied with peft onto a fresh backbone: what the merge must reproduce."""
    import torch
    from peft import PeftModel
    from sentence_transformers.cross_encoder import CrossEncoder

    from textsearch.training.cross_encoder import _backbone

    folder, _ = _backbone(BASE, adapter.parent / "check")
    model = CrossEncoder(str(folder), num_labels=1, device="cpu")
    peft = PeftModel.from_pretrained(model.transformers_model, str(adapter)).eval()
    tokens = model.tokenizer([query] * len(passages), passages, padding=True, return_tensors="pt")
    with torch.no_grad():
        return torch.sigmoid(peft(**tokens).logits.view(-1)).numpy()


@pytest.mark.model
def test_shipped_reranker_through_the_python_api(tmp_path: Path, real_encoder) -> None:
    index = Index.create(tmp_path / "idx", encoder=real_encoder)
    index.add([
        {"id": "kid", "text": "惹人喜欢的孩子"},
        {"id": "toy", "text": "宝宝的可爱玩具坏了"},
        {"id": "rain", "text": "明天会下大雨"},
    ])
    dense = {h.doc_id: h.score for h in index.search("可爱的宝宝", k=3, min_score=-1.0)}
    hits = index.search("可爱的宝宝", k=3, rerank=True, min_score=-1.0)  # keep every reranked hit
    assert sorted(h.doc_id for h in hits) == ["kid", "rain", "toy"]
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    assert {h.doc_id: h.dense_score for h in hits} == pytest.approx(dense)  # the cosine is kept
    shipped = CrossEncoderReranker()
    assert 0 < shipped.weight < 1  # calibrated on the dev split (README, "Two-stage search")
    direct = shipped.score("可爱的宝宝", [h.text for h in hits])
    assert [h.rerank_score for h in hits] == pytest.approx(direct.tolist(), abs=1e-5)
    assert all(0 <= h.rerank_score <= 1 for h in hits)
    blended = [shipped.weight * r + (1 - shipped.weight) * h.dense_score for r, h in zip(direct, hits)]
    assert [h.score for h in hits] == pytest.approx(blended, abs=1e-5)


# (query, passages) the ONNX reranker must score as torch does: zh, en, both, a passage cut at
# max_length (320 tokens), whitespace at an end, a special token's name, an empty query
PAIRS = [
    ("可爱的宝宝", ["惹人喜欢的孩子", "宝宝的可爱玩具坏了", "明天会下大雨", "a cute baby smiling at everyone in the park"]),
    ("How do I get to the train station?", ["火车站在前面左转", "The station is two blocks north, next to the bank.",
                                            "股市今天大跌，投资者很担心。" * 40, "Mixed 中文 and English 混合 "]),
    ("<s> names a token", [" leading and trailing whitespace ", "😀 emoji ｆｕｌｌ　ｗｉｄｔｈ"]),
    ("", ["an empty query"]),
]


def _largest_difference(a: CrossEncoderReranker, b: CrossEncoderReranker) -> float:
    return max(float(np.abs(a.score(q, passages) - b.score(q, passages)).max()) for q, passages in PAIRS)


@pytest.mark.model
def test_shipped_reranker_on_onnx_runtime_scores_as_torch(monkeypatch: pytest.MonkeyPatch,
                                                          caplog: pytest.LogCaptureFixture) -> None:
    """The first load exports (or finds the export); a later process's load is the light one: the
    tokenizer and the graph, no torch model. Both score every pair within 1e-4 of torch."""
    from textsearch.errors import ModelError
    from textsearch.models import loading, runtime

    first, slow = CrossEncoderReranker(device="cpu"), CrossEncoderReranker(device="cpu", runtime="torch")
    assert (first.runtime, slow.runtime) == ("onnx", "torch")  # ONNX Runtime is the CPU default
    assert _largest_difference(first, slow) < 1e-4
    info = json.loads((first._onnx.path.parent / "export.json").read_text(encoding="utf-8"))
    assert info["kind"] == "reranker" and info["max_score_diff"] <= runtime.MAX_SCORE_DIFF == 1e-4
    assert info.get("light", True) is True  # the export found the light tokenizer's scores torch's

    monkeypatch.setattr(loading, "_CACHE", {})  # as a new process
    monkeypatch.setattr(runtime, "load_reranker", lambda *a, **k: pytest.fail("exported again"))
    light = CrossEncoderReranker(device="cpu")
    assert isinstance(light._model, runtime.LightCrossEncoder) and light.runtime == "onnx"
    assert light._model.tokenizer._spm is not None and light._model.max_seq_length == 320
    light.score(*PAIRS[1])  # a passage with whitespace at its end: stripped, so still sentencepiece's
    assert light._model.tokenizer._transformers is None and light._model.tokenizer._tokenizers is None
    assert _largest_difference(light, slow) < 1e-4
    assert light.score("可爱的宝宝", []).shape == (0,)
    calibrated = json.loads((RERANKER_ADAPTER / "textsearch_calibration.json").read_text(encoding="utf-8"))
    assert light.weight == slow.weight == calibrated["weight"]  # the blend is the same on either path

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("no kernel for this graph")

    monkeypatch.setattr(loading, "_CACHE", {})
    monkeypatch.setattr(runtime, "load_reranker", broken)
    monkeypatch.setattr(runtime, "light_cross_encoder", broken)
    fallback = CrossEncoderReranker(device="cpu")
    assert fallback.runtime == "torch" and "ONNX Runtime unavailable" in caplog.text
    with pytest.raises(ModelError, match="cannot run reranker .*no kernel"):
        CrossEncoderReranker(device="cpu", runtime="onnx")
    with pytest.raises(InvalidArgumentError, match="unknown reranker runtime"):
        CrossEncoderReranker(device="cpu", runtime="fast")


@pytest.mark.model
def test_a_cold_reranked_query_imports_neither_torch_nor_transformers(real_encoder, tmp_path: Path) -> None:
    """Once both models are exported, a new process reranks with tokenizers and ONNX Runtime
    only, and ranks as this process does (the reranker scores within 1e-4)."""
    import subprocess
    import sys

    with Index.create(tmp_path / "idx", encoder=real_encoder) as index:
        index.add([{"id": "kid", "text": "惹人喜欢的孩子"}, {"id": "toy", "text": "宝宝的可爱玩具坏了"},
                   {"id": "rain", "text": "明天会下大雨"}])
        here = index.search("可爱的宝宝", k=3, rerank=True, min_score=-1.0)  # exports the reranker if need be
    code = (f"import sys; from textsearch import Index; idx = Index.open({str(tmp_path / 'idx')!r}); "
            "hits = idx.search('可爱的宝宝', k=3, rerank=True, min_score=-1.0); "
            "print(*[f'{h.doc_id}:{h.rerank_score}' for h in hits], idx.reranker().runtime, "
            "*[name in sys.modules for name in ('torch', 'transformers', 'sentence_transformers')])")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=False)
    *ranked, runtime_name, torch, transformers, sentence_transformers = done.stdout.split()
    assert [r.split(":")[0] for r in ranked] == [h.doc_id for h in here], done.stderr
    assert max(abs(float(r.split(":")[1]) - h.rerank_score) for r, h in zip(ranked, here)) < 1e-4
    assert [runtime_name, torch, transformers, sentence_transformers] == ["onnx", "False", "False", "False"]


def test_a_reranker_with_a_short_position_table_takes_a_long_passage(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """A cross-encoder with 64 positions scores a passage of 200 tokens on both runtimes (cut to
    its table, not to the default 320, which failed the export check and then torch itself)."""
    import torch
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizerFast

    from textsearch.models import loading

    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "cat", "dog", "sun", "water"]
    (tmp_path / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    torch.manual_seed(0)
    BertForSequenceClassification(BertConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=1,
                                             num_attention_heads=2, intermediate_size=64, max_position_embeddings=64,
                                             num_labels=1)).save_pretrained(tmp_path / "ce")
    BertTokenizerFast(vocab_file=str(tmp_path / "vocab.txt")).save_pretrained(tmp_path / "ce")
    monkeypatch.setenv("TEXTSEARCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(loading, "_CACHE", {})
    scores = {}
    for runtime in ("onnx", "torch"):
        reranker = CrossEncoderReranker(str(tmp_path / "ce"), runtime=runtime)
        assert reranker.runtime == runtime
        scores[runtime] = reranker.score("the cat", ["the dog " * 100, "sun water"])
    assert scores["onnx"].shape == (2,)
    assert np.abs(scores["onnx"] - scores["torch"]).max() < 1e-4
