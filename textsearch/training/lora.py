"""What both trainers share: the LoRA set-up, the work folder, the trainer run, hard-negative
mining, and publishing the finished folder atomically.

The work folder (``.<out>.training`` beside ``out``) survives an interrupted run: the trainer
checkpoints into it, and ``begin(…, resume=True)`` goes on from its last checkpoint when the run is
the same one (``run.json``: the train file's hash and the settings); Ctrl-C during
``run_trainer(…, interruptible=True)`` ends the step, saves a checkpoint and raises
``TrainingInterruptedError``.

``bi_encoder.py`` (bi-encoder) and ``cross_encoder.py`` (cross-encoder) each choose their model, data
and loss; everything around that is here, so the two cannot drift apart.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..models.adapters import ADAPTER_MARKER
from ..errors import InvalidArgumentError, TrainingInterruptedError, require
from ..models.loading import quiet_transformers
from .pairs import PairSet

logger = logging.getLogger(__name__)

# the layers LoRA adapts in a BERT-like encoder: attention projections and the dense layers
LORA_TARGETS = r".*encoder\.layer\.\d+\..*(query|key|value|dense)"
RUN_FILE = "run.json"  # in the work folder: what a resumed run must match


@dataclass
class TrainResult:
    out: str
    rows: int
    steps: int
    seconds: float
    pairs_per_second: float
    first_loss: float | None
    last_loss: float | None
    trainable_parameters: int
    device: str
    evaluation: dict[str, Any] | None = None  # on the eval file, against the base model (train(eval_file=…))
    resumed_from_step: int = 0  # the checkpoint an interrupted run went on from (0: trained from the start)


def check_installed() -> None:
    """Training needs the [train] extra: say so in one line before anything imports it."""
    require(("peft", "datasets"), "train", "training")


def start(seed: int, device: str | None) -> str:
    """Seed everything (before any LoRA matrix or head is initialised) and choose the device."""
    import torch
    from transformers import set_seed

    set_seed(seed)
    return device or ("cuda" if torch.cuda.is_available() else "cpu")


def check_out(out: Path) -> None:
    """Refuse an ``out`` that training would overwrite with a user's files in it: it must be new,
    empty, or a model that textsearch trained (its marker file is there)."""
    if out.exists() and not (out.is_dir() and (not any(out.iterdir()) or (out / ADAPTER_MARKER).is_file())):
        raise InvalidArgumentError(f"{out} exists and is not a model textsearch trained — training replaces "
                                   "its --out folder: give a new or empty folder")


def work_folder(out: Path) -> Path:
    """A fresh folder beside ``out`` to train in; ``publish`` moves the result into place. An
    interrupted run's folder there is discarded (``begin(…, resume=True)`` goes on with it instead)."""
    check_out(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    work = out.with_name(f".{out.name}.training")
    if (checkpoint := last_checkpoint(work)) is not None:
        logger.warning("starting over: discarding the interrupted run in %s (%s; `textsearch train … --resume` "
                       "goes on from it instead)", work, checkpoint.name)
    shutil.rmtree(work, ignore_errors=True)
    return work


def last_checkpoint(work: Path) -> Path | None:
    """The newest complete checkpoint (its trainer state is written last) in a work folder."""
    done = [(int(d.name.rsplit("-", 1)[1]), d) for d in (work / "checkpoints").glob("checkpoint-*")
            if d.name.rsplit("-", 1)[1].isdigit() and (d / "trainer_state.json").is_file()]
    return max(done)[1] if done else None


def begin(out: Path, run: dict[str, Any], resume: bool) -> tuple[Path, Path | None]:
    """The work folder to train ``out`` in, and the checkpoint to go on from (None: the start).
    ``run`` holds ``train_file``, ``train_sha256`` and ``settings`` (everything that decides the
    result); a fresh run records it, a resumed one must match the interrupted run's."""
    if not resume:
        work = work_folder(out)
        work.mkdir()
        (work / RUN_FILE).write_text(json.dumps(run, ensure_ascii=False, indent=2), encoding="utf-8")
        return work, None
    check_out(out)
    work = out.with_name(f".{out.name}.training")
    try:
        before = json.loads((work / RUN_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise InvalidArgumentError(f"--resume: no interrupted run of {out} to go on with (no {work / RUN_FILE}) "
                                   "— drop --resume to start") from None
    if before.get("train_sha256") != run["train_sha256"]:
        raise InvalidArgumentError(f"--resume: {run['train_file']} is not the file the interrupted run trained on "
                                   f"({before.get('train_file')}, as it was then) — give that file, or drop "
                                   "--resume to start over")
    was, now = before.get("settings", {}), run["settings"]
    changed = [k for k in dict.fromkeys([*was, *now]) if was.get(k) != now.get(k)]
    if changed:
        raise InvalidArgumentError(
            f"--resume: the interrupted run used {', '.join(f'{k}={was.get(k)!r}' for k in changed)}, this one "
            f"{', '.join(f'{k}={now.get(k)!r}' for k in changed)} — give the same options, or drop --resume to start over")
    checkpoint = last_checkpoint(work)
    if checkpoint is None:
        raise InvalidArgumentError(f"--resume: the interrupted run in {work} saved no checkpoint yet (one is saved "
                                   "every --save-every steps and on Ctrl-C) — drop --resume to start over")
    logger.info("resuming from %s", checkpoint)
    return work, checkpoint


def add_lora(model: Any, task: str, r: int, alpha: int, modules_to_save: list[str] | None = None) -> int:
    """Give ``model`` LoRA adapters (peft ``TaskType`` name ``task``); returns the trainable
    parameter count."""
    from peft import LoraConfig, TaskType

    model.add_adapter(LoraConfig(task_type=getattr(TaskType, task), r=r, lora_alpha=alpha, lora_dropout=0.1,
                                 target_modules=LORA_TARGETS, modules_to_save=modules_to_save))
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def arguments(args_class: Any, work: Path, device: str, *, epochs: float, batch_size: int, lr: float,
              warmup_ratio: float, seed: int, log_every: int, show_progress: bool, **extra: Any) -> Any:
    """The trainer arguments both trainers use (``extra``: their own)."""
    import torch

    return args_class(
        output_dir=str(work / "checkpoints"), num_train_epochs=epochs, per_device_train_batch_size=batch_size,
        learning_rate=lr, warmup_steps=warmup_ratio,  # a float below 1 is a share of the steps
        seed=seed, data_seed=seed, bf16=device == "cuda" and torch.cuda.is_bf16_supported(),
        use_cpu=device == "cpu", logging_steps=log_every, report_to="none", disable_tqdm=not show_progress,
        **extra,
    )


def mine(model: Any, pairs: PairSet, n: int) -> PairSet:
    """Add the n most similar non-positive texts of the training pool as negatives of each anchor,
    skipping the anchor's positives in any row (a sentence's translation, traditional form and
    synonym variant are all its answers) and candidates scoring within 5% of the positive (likely
    unlabeled paraphrases)."""
    from datasets import Dataset
    from sentence_transformers import mine_hard_negatives

    rows = pairs.rows
    corpus = sorted({r["positive"] for r in rows} | {n for r in rows for n in r["negative"]})
    mined = mine_hard_negatives(
        Dataset.from_dict({"anchor": [r["anchor"] for r in rows], "positive": [r["positive"] for r in rows]}),
        model,
        corpus=corpus,
        num_negatives=n + 3,  # spares for the candidates filtered out below
        relative_margin=0.05,
        query_prompt_name="query" if "query" in (model.prompts or {}) else None,
        corpus_prompt_name="passage" if "passage" in (model.prompts or {}) else None,
        output_format="n-tuple",
        verbose=False,
    )
    extra: dict[tuple[str, str], list[str]] = {}
    for item in mined:
        extra[(item["anchor"], item["positive"])] = [v for k, v in item.items() if k.startswith("negative")]
    answers: dict[str, set[str]] = defaultdict(set)  # every positive of an anchor, over all its rows
    for r in rows:
        answers[r["anchor"]].update((r["anchor"], r["positive"]))
    out = []
    for r in rows:
        found = [x for x in extra.get((r["anchor"], r["positive"]), [])
                 if x not in r["negative"] and x not in answers[r["anchor"]]]
        out.append({**r, "negative": r["negative"] + found[:n]})
    logger.info("mined hard negatives for %d of %d anchors", len(extra), len(rows))
    return PairSet(path=pairs.path, format=pairs.format, columns=pairs.columns, rows=out)


def run_trainer(trainer: Any, show_progress: bool, resume_from: Path | None = None,
                interruptible: bool = False) -> tuple[float, list[float]]:
    """Train (quietly unless ``show_progress``), from checkpoint ``resume_from`` if given; returns
    (seconds, the logged losses). ``interruptible``: Ctrl-C ends the current step, saves a
    checkpoint and raises ``TrainingInterruptedError`` (a second Ctrl-C stops at once)."""
    if not show_progress:
        from transformers.trainer_callback import PrinterCallback

        trainer.remove_callback(PrinterCallback)  # it prints every loss record to stdout
    started = time.perf_counter()
    with quiet_transformers(), (_stop_on_interrupt(trainer) if interruptible else nullcontext()) as stop:
        trainer.train(resume_from_checkpoint=str(resume_from) if resume_from else None)
    state = trainer.state
    if stop and stop["asked"] and state.global_step < state.max_steps:
        raise TrainingInterruptedError(
            f"training interrupted at step {state.global_step} of {state.max_steps}; its checkpoint is in "
            f"{trainer.args.output_dir} — run the same command with --resume (resume=True) to go on")
    return time.perf_counter() - started, [e["loss"] for e in state.log_history if "loss" in e]


@contextmanager
def _stop_on_interrupt(trainer: Any) -> Iterator[dict[str, bool]]:
    """While training, SIGINT asks the trainer to save a checkpoint after the current step and stop
    (a step cut in half would leave weights and optimizer state apart); a second one interrupts."""
    from transformers import TrainerCallback

    flag = {"asked": False}

    class Stop(TrainerCallback):  # type: ignore[misc]
        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            if flag["asked"]:
                control.should_save = control.should_training_stop = True

    def handler(signum: int, frame: Any) -> None:
        if flag["asked"]:
            raise KeyboardInterrupt
        flag["asked"] = True

    try:
        previous = signal.signal(signal.SIGINT, handler)
    except ValueError:  # not the main thread: no Ctrl-C reaches it
        previous = None
    callback = Stop()
    trainer.add_callback(callback)
    try:
        yield flag
    finally:
        trainer.remove_callback(callback)
        if previous is not None:
            signal.signal(signal.SIGINT, previous)


def publish(final: Path, out: Path, work: Path, marker: dict[str, Any]) -> None:
    """Write the marker into the finished folder and move it to ``out`` (replacing an older
    one), so ``out`` only ever holds a complete model; then drop the work folder."""
    (final / ADAPTER_MARKER).write_text(json.dumps(marker, ensure_ascii=False, indent=2), encoding="utf-8")
    for weights in final.rglob("*.safetensors"):  # safetensors writes 0600 whatever the umask
        shutil.copymode(final / ADAPTER_MARKER, weights)
    if out.exists():
        shutil.rmtree(out)
    os.replace(final, out)
    shutil.rmtree(work, ignore_errors=True)


def result(out: Path, rows: int, trainer: Any, seconds: float, losses: list[float], epochs: float,
           trainable: int, device: str, first_step: int = 0, per_epoch: int | None = None) -> TrainResult:
    """``per_epoch``: what one epoch trains on, if not all ``rows``; ``first_step``: where a resumed
    run went on from (the throughput counts this run's steps only)."""
    state = trainer.state
    share = (state.global_step - first_step) / state.max_steps if state.max_steps else 1.0
    seen = (rows if per_epoch is None else per_epoch) * epochs * share
    return TrainResult(
        out=str(out), rows=rows, steps=state.global_step, seconds=seconds,
        pairs_per_second=seen / seconds if seconds else 0.0,
        first_loss=losses[0] if losses else None, last_loss=losses[-1] if losses else None,
        trainable_parameters=trainable, device=device, resumed_from_step=first_step,
    )
