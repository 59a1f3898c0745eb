"""The ONNX Runtime encoder path (runtime.py) against torch, its cache, and how an index keeps it."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from textsearch import Index
from textsearch.models import loading, runtime
from textsearch.cli import app
from textsearch.models.encoder import SentenceTransformerEncoder
from textsearch.errors import ModelError, ModelMismatchError

TEXTS = ["可爱的宝宝", "惹人喜欢的孩子", "宝宝的可爱玩具坏了", "a cute baby", "The train leaves at noon."]


def test_scope_follows_the_onnx_exporter() -> None:
    assert runtime._scope("encoder.layer.4.output.dense") == "encoder/layer.4/output/dense"
    assert runtime._scope("encoder.layer.11.attention.self.query") == "encoder/layer.11/attention/self/query"
    assert runtime._scope("pooler.dense") == "pooler/dense"


def test_precision_of_runtime_names() -> None:
    assert runtime.precision_of("onnx") == "fp32"
    assert runtime.precision_of("onnx-int8") == "int8"


def test_unknown_runtime_is_one_clear_error() -> None:
    with pytest.raises(ModelError, match="unknown runtime 'fast'.*auto, torch, onnx, onnx-int8"):
        SentenceTransformerEncoder(runtime="fast")


@pytest.mark.model
def test_onnx_fp32_gives_torch_vectors(real_encoder: SentenceTransformerEncoder) -> None:
    torch_encoder = SentenceTransformerEncoder(device="cpu", runtime="torch")
    assert real_encoder.runtime == "onnx"  # the CPU default
    assert torch_encoder.runtime == "torch"
    for encode in ("encode_queries", "encode_passages"):
        a = getattr(real_encoder, encode)(TEXTS)
        b = getattr(torch_encoder, encode)(TEXTS)
        assert a.dtype == np.float32 and a.shape == b.shape == (5, 384)
        assert np.allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-5)
        assert (a * b).sum(axis=1).min() > 0.9999
    # prompts are applied: a query and a passage of the same text differ
    assert float(real_encoder.encode_queries(["a cute baby"])[0] @ real_encoder.encode_passages(["a cute baby"])[0]) < 0.999
    assert real_encoder.encode_passages([]).shape == (0, 384)


@pytest.mark.model
def test_a_repeated_text_is_embedded_once_and_gets_its_vector(real_encoder: SentenceTransformerEncoder,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    given: list[list[str]] = []
    encode = runtime.encode

    def recorded(model, forward, texts, *args, **kwargs):  # type: ignore[no-untyped-def]
        given.append(list(texts))
        return encode(model, forward, texts, *args, **kwargs)

    monkeypatch.setattr(runtime, "encode", recorded)
    alone = real_encoder.encode_passages(["a cute baby", "可爱的宝宝"])
    repeated = real_encoder.encode_passages(["可爱的宝宝", "a cute baby", "可爱的宝宝", "可爱的宝宝"])
    assert given[-1] == ["可爱的宝宝", "a cute baby"]
    assert np.array_equal(repeated[0], repeated[2]) and np.array_equal(repeated[0], repeated[3])
    assert (repeated[[1, 0]] * alone).sum(axis=1).min() > 0.99999


@pytest.mark.model
def test_export_is_cached_checked_and_shareable(real_encoder: SentenceTransformerEncoder) -> None:
    forward = real_encoder._onnx
    folder = forward.path.parent
    info = json.loads((folder / "export.json").read_text(encoding="utf-8"))
    assert info["precision"] == "fp32" and info["min_cosine"] >= runtime.MIN_FP32_COSINE
    assert runtime.is_exported(real_encoder.path, "fp32")
    data = folder / "model.onnx.data"  # the weights beside the graph, mapped rather than read
    assert data.stat().st_size > 100e6 and (folder / "model.onnx").stat().st_size < 1e6
    umask = os.umask(0)
    os.umask(umask)
    assert data.stat().st_mode & 0o777 == 0o666 & ~umask  # not onnx's 0600: a cache others may share


@pytest.mark.model
def test_a_second_process_reuses_the_export(real_encoder: SentenceTransformerEncoder,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(loading, "_CACHE", {})
    monkeypatch.setattr(runtime, "_export_atomically", lambda *a: pytest.fail("exported again"))
    again = SentenceTransformerEncoder(device="cpu")
    assert np.allclose(again.encode_queries(TEXTS), real_encoder.encode_queries(TEXTS), atol=1e-6)
    assert isinstance(again._model, runtime.LightModel)  # no torch model at all: its tokenizer and the graph


@pytest.mark.model
def test_auto_falls_back_to_torch_and_an_explicit_onnx_fails(monkeypatch: pytest.MonkeyPatch,
                                                             caplog: pytest.LogCaptureFixture) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("no kernel for this graph")

    monkeypatch.setattr(loading, "_CACHE", {})
    monkeypatch.setattr(runtime, "load", broken)
    monkeypatch.setattr(runtime, "light_model", broken)
    fallback = SentenceTransformerEncoder(device="cpu")
    assert fallback.runtime == "torch" and fallback._onnx is None
    assert "ONNX Runtime unavailable" in caplog.text
    assert fallback.encode_queries(["a cute baby"]).shape == (1, 384)
    with pytest.raises(ModelError, match="cannot run .* on ONNX Runtime .*no kernel.* use --runtime torch"):
        SentenceTransformerEncoder(device="cpu", runtime="onnx")


@pytest.mark.model
def test_int8_stays_close_and_stays_with_its_index(tmp_path: Path, real_encoder: SentenceTransformerEncoder) -> None:
    fast = SentenceTransformerEncoder(device="cpu", runtime="onnx-int8")
    info = fast._onnx.info
    assert info["precision"] == "int8" and info["mean_cosine"] >= runtime.MIN_INT8_COSINE
    assert info["fp32_layers"]  # e5-small has outlier-fed layers, kept fp32
    cosines = (fast.encode_passages(TEXTS) * real_encoder.encode_passages(TEXTS)).sum(axis=1)
    assert 0.97 < cosines.min() and cosines.max() < 0.99999  # close to fp32, yet not fp32

    with Index.create(tmp_path / "i8", runtime="onnx-int8") as idx:
        idx.add([{"id": "kid", "text": "惹人喜欢的孩子"}, {"id": "stocks", "text": "股市今天大跌，投资者很担心。"}])
        assert idx.config.runtime == "onnx-int8"
    with Index.open(tmp_path / "i8") as idx:  # reopened on the runtime it was built with
        assert idx.encoder.runtime == "onnx-int8"
        assert idx.search("可爱的宝宝", k=1, min_score=-1)[0].doc_id == "kid"
    with pytest.raises(ModelMismatchError, match="built with model 'zh-en-general' on onnx-int8"):
        Index.open(tmp_path / "i8", runtime="torch").encoder  # noqa: B018 - loading is the check
    with Index.create(tmp_path / "fp32") as idx:
        assert idx.config.runtime == "auto"
    with Index.open(tmp_path / "fp32", runtime="torch") as idx:  # fp32 runtimes are interchangeable
        assert idx.encoder.runtime == "torch"


@pytest.mark.model
def test_cli_runtime_option(tmp_path: Path, tiny_corpus: Path) -> None:
    runner, indexes = CliRunner(), str(tmp_path / "indexes")
    bad = runner.invoke(app, ["index", str(tiny_corpus), "--indexes", indexes, "--runtime", "gpu"])
    assert bad.exit_code == 1
    assert "unknown runtime 'gpu'" in bad.output and "Traceback" not in bad.output
    assert not (tmp_path / "indexes" / "corpus").exists()  # nothing left behind
    ok = runner.invoke(app, ["index", str(tiny_corpus), "--indexes", indexes, "--runtime", "onnx", "-q"])
    assert ok.exit_code == 0, ok.output
    hits = runner.invoke(app, ["query", "a cat sleeping in the sun", "--indexes", indexes, "--json", "--show-low"])
    assert hits.exit_code == 0 and json.loads(hits.output.splitlines()[0])["doc_id"].startswith("pets/cat")
    half = runner.invoke(app, ["index", str(tiny_corpus), "--indexes", indexes, "--name", "half",
                               "--vector-dtype", "float16", "-q"])
    assert half.exit_code == 0, half.output
    info = runner.invoke(app, ["info", "half", "--indexes", indexes])
    assert "runtime auto, vectors kept as float16" in info.output
    again = runner.invoke(app, ["index", str(tiny_corpus), "--indexes", indexes, "--name", "half",
                                "--vector-dtype", "float32", "-q"])
    assert again.exit_code == 2 and "keeps float16 vectors" in again.output  # a bad argument


@pytest.mark.model
def test_english_minilm_exports_too() -> None:
    """A BERT model with token type ids and no prompts: the same check holds."""
    onnx = SentenceTransformerEncoder("all-MiniLM-L6-v2", device="cpu")
    torch = SentenceTransformerEncoder("all-MiniLM-L6-v2", device="cpu", runtime="torch")
    assert onnx.runtime == "onnx" and "token_type_ids" in onnx._onnx.inputs
    assert (onnx.encode_passages(TEXTS) * torch.encode_passages(TEXTS)).sum(axis=1).min() > 0.9999


# --- the cold query path: tokenizers/sentencepiece and ONNX Runtime, no torch -----------------------
ODD = ["", "  padded  ", "x" * 100, "<s> names a special token", "a  b\tc\nd", "query <mask> x", "😀 emoji",
       "ｆｕｌｌ　ｗｉｄｔｈ", "Mixed 中文 and English, 123,456.78", "长" * 600]


@pytest.mark.model
def test_the_light_path_gives_torch_vectors_and_token_counts(real_encoder: SentenceTransformerEncoder) -> None:
    """Once exported, the ONNX encoder loads without torch (runtime.LightModel); its vectors and
    token counts are the torch path's: cosine ≥ 0.9999 on everyday and odd texts."""
    from importlib.util import find_spec

    real_encoder.encode_queries(["export it first"])
    light = SentenceTransformerEncoder(device="cpu", runtime="onnx")
    assert isinstance(light._model, runtime.LightModel) and light._model.tokenizer._spm is not None
    torch_encoder = SentenceTransformerEncoder(device="cpu", runtime="torch")
    hsk = json.loads(Path(find_spec("hsk_sentences_audio").submodule_search_locations[0], "data",
                          "sentences.json").read_text(encoding="utf-8"))
    texts = TEXTS + ODD + [r["chinese"] for r in hsk[:300]] + [r["translation"]["en"] for r in hsk[:300]]
    for side in ("encode_queries", "encode_passages"):
        cosines = np.sum(getattr(light, side)(texts) * getattr(torch_encoder, side)(texts), axis=1)
        assert cosines.min() >= 0.9999, [texts[i] for i in np.where(cosines < 0.9999)[0]]
    assert light.count_tokens(texts) == torch_encoder.count_tokens(texts)
    assert light.dimension == torch_encoder.dimension and light.prompts == torch_encoder.prompts


@pytest.mark.model
def test_a_cold_query_imports_neither_torch_nor_sentence_transformers(real_encoder: SentenceTransformerEncoder,
                                                                       tmp_path: Path) -> None:
    import subprocess
    import sys

    with Index.create(tmp_path / "idx", encoder=real_encoder) as index:
        index.add([{"id": "a", "text": "惹人喜欢的孩子"}, {"id": "b", "text": "明天下大雨"}])
    code = (f"import sys; from textsearch import Index; idx = Index.open({str(tmp_path / 'idx')!r}); "
            "hits = idx.search('可爱的宝宝', k=1, include_low_confidence=True); "
            "print(hits[0].doc_id, 'torch' in sys.modules, 'sentence_transformers' in sys.modules, "
            "'transformers' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.stdout.split() == ["a", "False", "False", "False"], done.stderr


def test_omp_num_threads_bounds_the_encoder_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    """Ray gives each actor OMP_NUM_THREADS = its CPUs: actors sharing a node must not each take
    every core."""
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert runtime._thread_limit() == 3
    monkeypatch.setenv("OMP_NUM_THREADS", "lots")
    assert runtime._thread_limit() is None
    monkeypatch.delenv("OMP_NUM_THREADS")
    assert runtime._thread_limit() is None
