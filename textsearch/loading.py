"""How every model is loaded: weights from safetensors only, transformers kept quiet.

Both the encoder and the reranker load through these rules; a folder whose weights exist only as
pickles is refused before anything reads it (unpickling can run code).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .errors import ModelError

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
