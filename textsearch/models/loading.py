"""How every model is loaded, encoder and reranker alike: the one place that constructs a
sentence-transformers model for inference.

- weights from safetensors only (``SAFE_LOAD``); a folder whose weights exist only as pickles is
  refused before anything reads it (unpickling can run code);
- transformers kept quiet while loading;
- any load failure becomes one ``ModelNotFoundError`` that says what to give instead;
- fp16 on CUDA;
- one loaded model per (kind, path, device, runtime) per process, kept warm (``cached``).
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ..errors import ModelError, ModelNotFoundError

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


_CACHE: dict[tuple[str, ...], Any] = {}
_CACHE_LOCK = threading.Lock()


def cached(key: tuple[str, ...], make: Callable[[], Any]) -> Any:
    """``make()`` once per ``key`` per process (a model stays loaded between queries)."""
    with _CACHE_LOCK:
        if key not in _CACHE:
            _CACHE[key] = make()
        return _CACHE[key]


def best_device() -> str:
    """"cuda" when torch sees a GPU, else "cpu". Without an NVIDIA device node torch is not even
    imported (a second of start-up on the CPU query path)."""
    import glob
    import sys

    if "torch" not in sys.modules and not glob.glob("/dev/nvidia[0-9]*"):
        return "cpu"
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def _construct(make: Callable[[], Any], what: str, hint: str, device: str | None) -> Any:
    try:
        with quiet_transformers():
            model = make()
    except Exception as exc:  # noqa: BLE001 - any load failure becomes one clear error
        raise ModelNotFoundError(
            f"cannot load {what} ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}) — {hint}"
        ) from exc
    if device == "cuda":
        model.half()
    return model


def sentence_transformer(path: str, device: str, *, hint: str, weights: bool = True) -> Any:
    """A SentenceTransformer; without ``weights`` its transformer is built on the "meta" device,
    weightless (for a model whose transformer runs on ONNX Runtime)."""
    from sentence_transformers import SentenceTransformer

    options: dict[str, Any] = dict(SAFE_LOAD) if weights else {**SAFE_LOAD, "device_map": "meta"}
    return _construct(lambda: SentenceTransformer(path, device=device if weights else None,  # device_map decides
                                                  trust_remote_code=False, model_kwargs=options),
                      f"model '{path}'", hint, device if weights else None)


def cross_encoder(path: str, device: str, max_length: int, *, hint: str) -> Any:
    """A CrossEncoder with one relevance output."""
    from sentence_transformers.cross_encoder import CrossEncoder

    return _construct(lambda: CrossEncoder(path, device=device, max_length=max_length, trust_remote_code=False,
                                           model_kwargs=dict(SAFE_LOAD)),
                      f"reranker '{path}'", hint, None)  # the reranker stays fp32 on CUDA: its head is small
