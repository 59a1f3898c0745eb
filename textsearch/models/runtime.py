"""The fast CPU path of the encoder and the reranker: the model run by ONNX Runtime. The only
module that imports onnxruntime and onnx.

A sentence-transformers model is exported once into ``cache_dir()/onnx`` and checked there
against the torch model it came from. The graph holds the whole model (transformer, pooling and
what follows); the sentence-transformers model only tokenises. Two precisions:

- ``fp32``: the exported graph; ONNX Runtime fuses attention, GELU and layer norms when it loads
  it. The vectors are torch's (the export is refused below cosine 0.9999 on any check text).
- ``int8``: the linear layers' weights quantised to int8 per output channel, their inputs per
  batch (dynamic quantisation). A linear layer whose inputs carry outlier activations — largest
  |x| over OUTLIER_RATIO times the mean |x| on the check texts, as in LLM.int8() — stays fp32:
  in e5-small one such layer alone pulls int8 vectors furthest from fp32. The export records the
  cosines to fp32 it reached and is refused below MIN_INT8_COSINE on average.

A CrossEncoder (the reranker) is exported the same way, fp32, its graph ending in the relevance
logit; ``score_pairs`` applies the sigmoid. Once a model is exported, a new process loads neither
torch nor transformers: ``light_model`` / ``light_cross_encoder`` give its tokenizer
(``tokenizer.py``) and the graph.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any

import numpy as np

from .cache import building, cache_dir, file_lock, progress
from ..errors import ModelError, ModelNotFoundError
from .tokenizer import LightTokenizer, spm_model

logger = logging.getLogger(__name__)

PRECISIONS = ("fp32", "int8")
EXPORT_VERSION = 4  # bump when the export changes: cached exports are then rebuilt
OUTLIER_RATIO = 250.0
MIN_FP32_COSINE = 0.9999
MIN_INT8_COSINE = 0.98
MAX_SCORE_DIFF = 1e-4  # a reranker's export: largest difference of a check pair's score to torch
MARKER = "export.json"
# Text the export is checked (and int8 calibrated) on: zh and en, short and long, queries and
# passages; nothing from any evaluation split.
CHECK_TEXTS = [
    "可爱的宝宝", "惹人喜欢的孩子在公园里玩", "宝宝的可爱玩具坏了，我们明天去商店再买一个新的。",
    "今天天气很好，我们一起去爬山吧。", "他每天早上七点起床，先跑步，然后吃早饭。",
    "这本书讲的是一个小村庄一百年来的变化，作者用平实的语言写出了普通人的生活。",
    "请问去火车站怎么走？", "会议推迟到下周三下午两点，请大家准时参加。", "你好", "谢谢",
    "a cute baby", "The meeting has been moved to next Wednesday at 2 pm.",
    "How do I get to the train station from here?",
    ("Sentence embeddings map text to vectors so that cosine similarity reflects meaning, "
     "which lets a search engine find paraphrases that share no words with the query."),
    "I broke my phone screen yesterday and the repair shop says it will take a week.",
    "ok", "Mixed 中文 and English in one line, 混合在一起。", "1234 5678",
]


def load_or_fall_back(what: str, asked: str, chosen: str, load: Callable[[], Any], load_torch: Callable[[], Any],
                      hint: str) -> tuple[Any, str]:
    """``(load(), chosen)``. When ``chosen`` is an ONNX runtime and loading fails: under ``auto``
    (what was ``asked``) ``(load_torch(), "torch")`` with a warning, else one clear ModelError
    ending in ``hint``. A model that cannot be found fails either way."""
    try:
        return load(), chosen
    except Exception as exc:  # "auto" falls back; an explicit choice fails clearly
        if chosen == "torch" or isinstance(exc, ModelNotFoundError):
            raise
        if asked != "auto":
            raise exc if isinstance(exc, ModelError) else ModelError(
                f"cannot run {what} on ONNX Runtime ({type(exc).__name__}: "
                f"{str(exc).splitlines()[0] if str(exc) else ''}) — {hint}") from exc
        logger.warning("ONNX Runtime unavailable for %s (%s); using torch", what, exc)
        return load_torch(), "torch"


def precision_of(runtime: str) -> str:
    """``onnx`` → fp32, ``onnx-int8`` → int8."""
    return "int8" if runtime.endswith("int8") else "fp32"


class OnnxForward:
    """The exported model as ONNX Runtime sessions: token features in, sentence embeddings out.

    One batch (a query) runs on one session that spreads it over every core. Many batches run
    on a second session, one core each, that many batches at a time: on small matrices that
    beats splitting each one across cores (404 against 372 passages/s on 2 cores). The second
    session is made on first use."""

    def __init__(self, path: Path) -> None:
        self.path = path
        limit = _thread_limit()
        self.session = self._session(threads=limit or 0)  # 0: ONNX Runtime's default, every core
        self.inputs = [i.name for i in self.session.get_inputs()]
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
        self.workers = max(1, min(cores, limit or cores))
        self._bulk: tuple[Any, ThreadPoolExecutor] | None = None
        self._lock = threading.Lock()
        marker = path.parent / MARKER  # absent while the export is being checked
        self.info: dict[str, Any] = json.loads(marker.read_text(encoding="utf-8")) if marker.is_file() else {}

    def _session(self, threads: int) -> Any:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.intra_op_num_threads = threads
        return ort.InferenceSession(str(self.path), options, providers=["CPUExecutionProvider"])

    def __call__(self, features: dict[str, np.ndarray], session: Any = None) -> np.ndarray:
        ids = features["input_ids"]  # one sequence per row: a token type the tokenizer left out is 0
        feed = {name: np.ascontiguousarray(features[name] if name in features else np.zeros_like(ids), dtype=np.int64)
                for name in self.inputs}
        return (session or self.session).run(None, feed)[0]

    def map(self, batches: list[dict[str, np.ndarray]]) -> list[np.ndarray]:
        """Each batch's embeddings: on the every-core session for a single batch or a single
        core, else in parallel on the one-core session."""
        if len(batches) < 2 or self.workers < 2:
            return [self(batch) for batch in batches]
        with self._lock:
            if self._bulk is None:
                self._bulk = (self._session(threads=1),
                              ThreadPoolExecutor(self.workers, thread_name_prefix="textsearch-onnx"))
        session, pool = self._bulk
        return list(pool.map(lambda batch: self(batch, session), batches))


def _thread_limit() -> int | None:
    """``OMP_NUM_THREADS`` when set: the cores this process was given (Ray sets it to a worker's
    CPUs, so that actors sharing a node do not each spread over all its cores)."""
    try:
        return max(1, int(os.environ["OMP_NUM_THREADS"]))
    except (KeyError, ValueError):
        return None


TOKENS_PER_ROW = 128  # a batch holds at most batch_size × this many tokens, padding included


def encode(model: Any, forward: OnnxForward, texts: Sequence[str], prompt: str, batch_size: int,
           tokenizing: AbstractContextManager[Any] | None = None) -> np.ndarray:
    """``model.encode(texts, prompt=prompt, normalize_embeddings=True)`` on ONNX Runtime, whose
    graph holds the whole model (transformer, pooling and what follows). ``tokenizing`` is held
    while the tokenizer runs."""
    if not texts:
        return np.zeros((0, 0), dtype=np.float32)
    with tokenizing or nullcontext():  # here, once: a fast tokenizer shared between threads can fail ("Already borrowed")
        # stripped, as sentence-transformers' own tokenize does: the vectors are torch's
        tokens = model.tokenizer([(prompt + t).strip() for t in texts], truncation=True,
                                 max_length=model.max_seq_length, return_attention_mask=False)
    out = _run(forward, tokens, batch_size, model.tokenizer.pad_token_id or 0)
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    return out / np.maximum(norms, 1e-12)


def score_pairs(model: Any, forward: OnnxForward, queries: Sequence[str], passages: Sequence[str],
                batch_size: int, tokenizing: AbstractContextManager[Any] | None = None) -> np.ndarray:
    """``CrossEncoder.predict(list(zip(queries, passages)))`` (the sigmoid of its one logit) on
    ONNX Runtime."""
    if not len(queries):
        return np.zeros(0, dtype=np.float32)
    with tokenizing or nullcontext():
        tokens = model.tokenizer(list(queries), list(passages), truncation=True, max_length=_longest_input(model),
                                 return_attention_mask=False)
    logits = _run(forward, tokens, batch_size, model.tokenizer.pad_token_id or 0).reshape(-1)
    return (1.0 / (1.0 + np.exp(-logits.astype(np.float64)))).astype(np.float32)


def _longest_input(model: Any) -> int:
    """A CrossEncoder's longest input in tokens: ``max_seq_length`` (sentence-transformers 6; its
    ``max_length`` is deprecated there), else ``max_length``."""
    return int(getattr(model, "max_seq_length", None) or model.max_length)


def _run(forward: OnnxForward, tokens: Any, batch_size: int, pad: int) -> np.ndarray:
    """The graph's output for every tokenised text, in order. Texts are sorted by token count and
    batched by a token budget: short texts go batch_size at a time, long ones fewer (attention's
    memory grows with the square of the length), and each batch pads little."""
    features = [name for name in forward.inputs if name in tokens]
    lengths = np.array([len(ids) for ids in tokens["input_ids"]])
    order = np.argsort(-lengths, kind="stable")
    batches: list[np.ndarray] = []
    start = 0
    while start < len(order):
        size = max(1, min(batch_size, batch_size * TOKENS_PER_ROW // int(lengths[order[start]])))
        batches.append(order[start:start + size])
        start += size
    padded = [_pad(tokens, features, rows, int(lengths[rows[0]]), pad) for rows in batches]
    out = np.zeros((0, 0), dtype=np.float32)
    for rows, outputs in zip(batches, forward.map(padded)):
        outputs = outputs.reshape(len(rows), -1)
        if not out.size:
            out = np.zeros((len(lengths), outputs.shape[1]), dtype=np.float32)
        out[rows] = outputs
    return out


def _pad(tokens: Any, features: list[str], rows: np.ndarray, width: int, pad: int) -> dict[str, np.ndarray]:
    """The batch's token features, right-padded to ``width``, with its attention mask."""
    batch = {name: np.full((len(rows), width), pad if name == "input_ids" else 0, dtype=np.int64)
             for name in [*features, "attention_mask"]}
    for i, row in enumerate(rows):
        n = len(tokens["input_ids"][row])
        batch["attention_mask"][i, :n] = 1
        for name in features:
            batch[name][i, :n] = tokens[name][row]
    return batch


class LightModel:
    """What the ONNX path needs of a sentence-transformers folder, read from its files: the
    tokenizer, the prompts, the longest input and the vector size. Valid for the plain stack the
    export covers (Transformer → Pooling → Normalize); ``light_model`` says when it applies."""

    def __init__(self, folder: Path, spm: Path | None = None) -> None:
        def read(name: str) -> dict[str, Any]:
            path = folder / name
            return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}

        self.tokenizer = LightTokenizer(folder / "tokenizer.json", spm)
        # as sentence-transformers fills them: its default query/document prompts, then the saved ones
        saved = read("config_sentence_transformers.json").get("prompts") or {}
        self.prompts: dict[str, str] = {k: v or "" for k, v in {"query": None, "document": None, **saved}.items()}
        self.max_seq_length = int(read("sentence_bert_config.json").get("max_seq_length") or 512)
        self.dimension = int(read("1_Pooling/config.json")["word_embedding_dimension"])

    def get_sentence_embedding_dimension(self) -> int:
        return self.dimension


LIGHT_STACK = ["sentence_transformers.models.Transformer", "sentence_transformers.models.Pooling",
               "sentence_transformers.models.Normalize"]


def light_model(model_path: str, precision: str) -> tuple[LightModel, OnnxForward] | None:
    """The model without torch — its tokenizer and its exported graph — when it was exported
    already and is a plain sentence-transformers stack; else None (load it the full way)."""
    folder = Path(model_path)
    try:
        modules = json.loads((folder / "modules.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if [m.get("type") for m in modules] != LIGHT_STACK or not (folder / "tokenizer.json").is_file():
        return None
    if not (folder / "1_Pooling" / "config.json").is_file() or not is_exported(model_path, precision):
        return None
    export = _export_folder(model_path, precision)
    return LightModel(folder, spm_model(folder / "tokenizer.json", export, CHECK_TEXTS)), OnnxForward(export / "model.onnx")


class LightCrossEncoder:
    """What ``score_pairs`` needs of a CrossEncoder folder, read from its files: the tokenizer
    (pairs as transformers makes them) and the longest input (``max_seq_length``, as the
    CrossEncoder was given it)."""

    def __init__(self, folder: Path, max_length: int, spm: Path | None = None) -> None:
        self.tokenizer = LightTokenizer(folder / "tokenizer.json", spm)
        self.max_seq_length = max_length


def light_cross_encoder(model_path: str, max_length: int) -> tuple[LightCrossEncoder, OnnxForward] | None:
    """The reranker without torch — its tokenizer and its exported graph — when it was exported
    already from a folder with a ``tokenizer.json``, and the export did not find the light
    tokenizer's scores off torch's; else None (load it the full way, exporting on first use)."""
    folder = Path(model_path)
    if not (folder / "tokenizer.json").is_file() or not is_exported(model_path, "fp32"):
        return None
    export = _export_folder(model_path, "fp32")
    info = json.loads((export / MARKER).read_text(encoding="utf-8"))
    if info.get("kind") != "reranker" or info.get("light") is False:
        return None
    spm = spm_model(folder / "tokenizer.json", export, CHECK_TEXTS, pairs=True)
    return LightCrossEncoder(folder, max_length, spm), OnnxForward(export / "model.onnx")


def is_exported(model_path: str, precision: str) -> bool:
    return _is_complete(_export_folder(model_path, precision))


def load(model: Any, model_path: str, precision: str, show_progress: bool = False) -> OnnxForward:
    """The model's exported transformer at ``precision``, exporting it on first use (which needs
    ``model``'s weights). From then on ``model`` only tokenises: its transformer weights are
    released. The session maps the weights file rather than reading it, so a process holds
    in memory only the pages the texts touch (of the 250k-row embedding table, few)."""
    if precision not in PRECISIONS:
        raise ModelError(f"unknown precision '{precision}' — use one of {', '.join(PRECISIONS)}")
    folder = _export_folder(model_path, precision)
    _export_once(folder, lambda: _export_atomically(model, folder, precision, show_progress))
    model[0].auto_model.to("meta")
    return OnnxForward(folder / "model.onnx")


def load_reranker(model: Any, model_path: str, show_progress: bool = False) -> OnnxForward:
    """A sentence-transformers CrossEncoder exported as ``load`` exports an encoder (fp32; its
    transformer weights are released once exported); scores with ``score_pairs``."""
    folder = _export_folder(model_path, "fp32")

    def export() -> None:
        progress(f"exporting the reranker to ONNX (one time, ~10 s) into {folder}", show_progress)
        with building(folder) as tmp:
            _export_reranker(model, model_path, tmp)

    _export_once(folder, export)
    model.model.to("meta")
    return OnnxForward(folder / "model.onnx")


def _export_once(folder: Path, export: Callable[[], None]) -> None:
    """Run ``export()`` unless ``folder`` holds a complete export; under the folder's lock, so
    that processes sharing the cache export once."""
    if not _is_complete(folder):
        folder.parent.mkdir(parents=True, exist_ok=True)
        with file_lock(folder.parent / f".{folder.name}.lock"):
            if not _is_complete(folder):
                export()


def _export_reranker(model: Any, model_path: str, folder: Path) -> None:
    """Export, check against torch (scores within MAX_SCORE_DIFF), mark. The graph is checked
    with the CrossEncoder's own tokenizer and, where the folder has a ``tokenizer.json``, with the
    light one a cold process uses (``light_cross_encoder``); the marker says whether that one may
    be used. Exports older than that check have it unsaid: their graph was checked, and the light
    tokenizer gives transformers' ids (``tokenizers``, or a sentencepiece model checked on pairs)."""
    start = time.perf_counter()
    # short zh and en pairs, and one past max_length (both cut as transformers cuts them)
    queries = [*CHECK_TEXTS[:9], CHECK_TEXTS[13]]
    passages = [*CHECK_TEXTS[9:18], " ".join(CHECK_TEXTS * 6)]
    reference = np.asarray(model.predict(list(zip(queries, passages)), convert_to_numpy=True,
                                         show_progress_bar=False), dtype=np.float64).reshape(-1)
    graph = folder / "raw.onnx"
    encoded = model.tokenizer(queries[:2], passages[:2], padding=True, return_tensors="pt")
    _trace(lambda features: model.model(**features).logits, model.model, model.model, encoded, "logits", graph)
    _save_mapped(graph, folder / "model.onnx")
    graph.unlink()
    scores = score_pairs(model, OnnxForward(folder / "model.onnx"), queries, passages, 4)
    diff = float(np.abs(scores - reference).max())
    if diff > MAX_SCORE_DIFF:
        raise ModelError(f"the ONNX export of this reranker does not reproduce it (largest score difference "
                         f"to torch {diff:.5f}) — use runtime torch")
    info: dict[str, Any] = {"precision": "fp32", "kind": "reranker", "export_version": EXPORT_VERSION,
                            "max_score_diff": round(diff, 7)}
    if (Path(model_path) / "tokenizer.json").is_file():
        spm = spm_model(Path(model_path) / "tokenizer.json", folder, CHECK_TEXTS, pairs=True)
        light = LightCrossEncoder(Path(model_path), _longest_input(model), spm)
        light_diff = float(np.abs(score_pairs(light, OnnxForward(folder / "model.onnx"), queries, passages, 4)
                                  - reference).max())
        info.update(light=light_diff <= MAX_SCORE_DIFF, light_max_score_diff=round(light_diff, 7))
        if light_diff > MAX_SCORE_DIFF:
            logger.warning("the light tokenizer of reranker %s scores %.5f off torch; a cold process will load "
                           "torch to tokenise", model_path, light_diff)
    info["seconds"] = round(time.perf_counter() - start, 1)
    (folder / MARKER).write_text(json.dumps(info, indent=2), encoding="utf-8")


def _export_folder(model_path: str, precision: str) -> Path:
    """One folder per model folder, its weights' size and time, ONNX Runtime version and precision."""
    import hashlib

    import onnxruntime

    source = Path(model_path)
    stamp = [str(source.absolute()), onnxruntime.__version__, precision, str(EXPORT_VERSION), str(OUTLIER_RATIO)]
    for weights in sorted(source.rglob("*.safetensors")) if source.is_dir() else []:
        stat = weights.stat()
        stamp.append(f"{weights.relative_to(source)}:{stat.st_size}:{stat.st_mtime_ns}")
    key = hashlib.sha256("\n".join(stamp).encode()).hexdigest()[:16]
    return cache_dir() / "onnx" / f"{source.name or 'model'}-{precision}-{key}"


def _is_complete(folder: Path) -> bool:
    return (folder / MARKER).is_file() and (folder / "model.onnx").is_file()


def _export_atomically(model: Any, folder: Path, precision: str, show_progress: bool) -> None:
    progress(f"exporting the encoder to ONNX ({precision}, one time, ~10 s) into {folder}", show_progress)
    with building(folder) as tmp:
        info = _export(model, tmp, precision)
    progress(f"exported in {info['seconds']:.0f} s; cosine to torch: mean {info['mean_cosine']}, "
             f"min {info['min_cosine']}", show_progress)


def _export(model: Any, folder: Path, precision: str) -> dict[str, Any]:
    """Export, quantise (int8), check against torch; the marker is written last."""
    start = time.perf_counter()
    reference = model.encode(CHECK_TEXTS, normalize_embeddings=True, convert_to_numpy=True)
    graph = folder / "raw.onnx"
    _export_graph(model, graph)
    kept: list[str] = []
    if precision == "int8":
        kept = _quantize(model, graph, folder / "int8.onnx")
        graph.unlink()
        graph = folder / "int8.onnx"
    _save_mapped(graph, folder / "model.onnx")
    graph.unlink()
    vectors = encode(model, OnnxForward(folder / "model.onnx"), CHECK_TEXTS, "", 8)
    cosines = (vectors * reference).sum(axis=1)
    least = MIN_FP32_COSINE if precision == "fp32" else None
    if (least and cosines.min() < least) or (precision == "int8" and cosines.mean() < MIN_INT8_COSINE):
        raise ModelError(
            f"the ONNX export of this model does not reproduce it (cosine to torch: mean "
            f"{cosines.mean():.4f}, min {cosines.min():.4f}) — use --runtime torch"
        )
    info = {"precision": precision, "export_version": EXPORT_VERSION, "fp32_layers": kept,
            "mean_cosine": round(float(cosines.mean()), 5), "min_cosine": round(float(cosines.min()), 5),
            "seconds": round(time.perf_counter() - start, 1)}
    (folder / MARKER).write_text(json.dumps(info, indent=2), encoding="utf-8")
    return info


def _save_mapped(source: Path, dest: Path) -> None:
    """Weights in ``model.onnx.data`` beside the graph: ONNX Runtime maps such a file instead of
    copying it into memory."""
    import onnx

    onnx.save_model(onnx.load(str(source)), str(dest), save_as_external_data=True,
                    all_tensors_to_one_file=True, location=dest.name + ".data", size_threshold=1024)
    mode = 0o666 & ~_umask()  # onnx writes the data file 0600; a shared cache wants the umask's
    for path in (dest, dest.with_name(dest.name + ".data")):
        path.chmod(mode)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _export_graph(model: Any, path: Path) -> None:
    """The whole sentence-transformers model (token features in, sentence embedding out) → ONNX."""
    encoded = model.tokenizer(["query: 你好", "passage: hello world"], padding=True, return_tensors="pt")
    _trace(lambda features: model(features)["sentence_embedding"], model, model[0].auto_model, encoded,
           "sentence_embedding", path)


def _trace(forward: Any, owner: Any, transformer: Any, encoded: Any, output: str, path: Path) -> None:
    """``forward(token features)`` of the torch module ``owner`` → ONNX, with dynamic batch and
    length; the attention of ``transformer`` (a transformers model in ``owner``) in its plain
    ("eager") form, which ONNX Runtime fuses when it loads the graph."""
    import warnings

    import torch

    names = [n for n in ("input_ids", "attention_mask", "token_type_ids") if n in encoded]

    class Forward(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.owner = owner  # registered: its weights become the graph's initializers

        def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
            return forward(dict(zip(names, inputs)))

    attention = transformer.config._attn_implementation
    transformer.set_attn_implementation("eager")
    try:
        axes = {**{n: {0: "batch", 1: "tokens"} for n in names}, output: {0: "batch"}}
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tracer warnings about shapes the dynamic axes cover
            torch.onnx.export(Forward().eval(), tuple(encoded[n] for n in names), str(path),
                              input_names=names, output_names=[output], dynamic_axes=axes,
                              opset_version=17, dynamo=False)
    finally:
        transformer.set_attn_implementation(attention)


def _quantize(model: Any, source: Path, dest: Path) -> list[str]:
    """Dynamic int8 (per channel) on the linear layers not fed by outlier activations; returns
    the names of those kept fp32."""
    import onnx
    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic

    linear = [name for name, module in model[0].auto_model.named_modules()
              if isinstance(module, torch.nn.Linear) and "pooler" not in name]
    outliers = set(_outlier_layers(model))
    matmuls = [n.name for n in onnx.load(str(source), load_external_data=False).graph.node if n.op_type == "MatMul"]
    quantized = []
    for name in linear:
        found = [node for node in matmuls if node.endswith(f"/{_scope(name)}/MatMul")]
        if len(found) != 1:
            raise ModelError(f"cannot find the linear layer {name} in the exported graph — "
                             "use --runtime onnx or torch for this model")
        if name not in outliers:
            quantized.append(found[0])
    quiet = logging.getLogger()  # the quantiser logs advice for static quantisation on the root logger
    level = quiet.level
    quiet.setLevel(logging.ERROR)
    try:
        quantize_dynamic(str(source), str(dest), weight_type=QuantType.QInt8, per_channel=True,
                         op_types_to_quantize=["MatMul"], nodes_to_quantize=quantized)
    finally:
        quiet.setLevel(level)
    return sorted(outliers)


def _scope(module_name: str) -> str:
    """A torch module path as the ONNX exporter scopes it: ``encoder.layer.4.output.dense`` →
    ``encoder/layer.4/output/dense`` (a list's index stays joined to the list by a dot)."""
    parts: list[str] = []
    for part in module_name.split("."):
        if part.isdigit() and parts:
            parts[-1] += f".{part}"
        else:
            parts.append(part)
    return "/".join(parts)


def _outlier_layers(model: Any) -> list[str]:
    """Linear layers whose inputs' largest |x| exceeds OUTLIER_RATIO × their mean |x| on CHECK_TEXTS."""
    import torch

    seen: dict[str, tuple[float, float]] = {}
    hooks = []
    for name, module in model[0].auto_model.named_modules():
        if isinstance(module, torch.nn.Linear) and "pooler" not in name:
            def record(_m: Any, inputs: tuple[torch.Tensor, ...], _o: Any, name: str = name) -> None:
                x = inputs[0].detach().abs()
                top, mean = seen.get(name, (0.0, 0.0))
                seen[name] = (max(top, float(x.max())), max(mean, float(x.mean())))
            hooks.append(module.register_forward_hook(record))
    try:
        model.encode(CHECK_TEXTS, batch_size=len(CHECK_TEXTS))
    finally:
        for hook in hooks:
            hook.remove()
    return [name for name, (top, mean) in seen.items() if mean > 0 and top > OUTLIER_RATIO * mean]
