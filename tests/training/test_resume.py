"""Checkpoint and resume: a run stopped by Ctrl-C or by a crash goes on from its last checkpoint and
ends where an uninterrupted run ends (same steps, same adapter, same proxies); a resume that is not
the same run is refused. On the tiny model of conftest.py."""

from __future__ import annotations

import json
import re
import signal
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file
from transformers import TrainerCallback
from typer.testing import CliRunner

from textsearch.cli import app
from textsearch.errors import InvalidArgumentError, TrainingInterruptedError
from textsearch.training.bi_encoder import TrainConfig, train

pytestmark = pytest.mark.usefixtures("one_thread")

LABELLED = [{"text": f"{word} {i}", "label": word} for word in ("cat", "rain", "bread", "train") for i in range(6)]
PAIRS = [{"anchor": f"question {i}", "positive": f"answer {i}"} for i in range(12)]
# labelled: 4 labels × 6 texts = 3 batches of 8 an epoch; pairs: 12 rows = 3 batches of 4; 3 epochs
RUNS = {"labelled": ("proxy-anchor", 8, LABELLED), "pairs": ("mnrl", 4, PAIRS)}
STEPS = 9


class CtrlC(TrainerCallback):
    """Presses Ctrl-C (a real SIGINT) ``times`` times at the end of step ``step``."""

    def __init__(self, step: int, times: int = 1) -> None:
        self.step, self.times = step, times

    def on_step_end(self, args, state, control, **kwargs) -> None:
        if state.global_step == self.step:
            for _ in range(self.times):
                signal.raise_signal(signal.SIGINT)


class Crash(TrainerCallback):
    """The process dies at a point: after step ``step``, or before the first (``step`` 0)."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_train_begin(self, args, state, control, **kwargs) -> None:
        if self.step == 0 and state.global_step == 0:
            raise RuntimeError("power cut")

    def on_step_end(self, args, state, control, **kwargs) -> None:
        if state.global_step == self.step:
            raise RuntimeError("power cut")


@pytest.fixture(params=sorted(RUNS))
def run(request, tmp_path: Path, tiny_model: str):
    loss, batch_size, rows = RUNS[request.param]
    data = tmp_path / f"{request.param}.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    config = TrainConfig(loss=loss, batch_size=batch_size, epochs=3.0, lr=1e-3, base_model=tiny_model, log_every=1,
                         save_every=2)

    def go(out: Path, **kwargs):
        return train(data, out, kwargs.pop("config", config), device="cpu", **kwargs)

    go.data, go.config = data, config  # type: ignore[attr-defined]
    return go


def same_adapter(one: Path, two: Path) -> None:
    a, b = (load_file(str(d / "adapter_model.safetensors")) for d in (one, two))
    assert a.keys() == b.keys()
    for key in a:
        np.testing.assert_allclose(a[key], b[key], atol=1e-6)


def test_ctrl_c_saves_a_checkpoint_and_resume_ends_as_an_uninterrupted_run(run, tmp_path: Path) -> None:
    whole = run(tmp_path / "whole")
    out, handler = tmp_path / "out", signal.getsignal(signal.SIGINT)
    with pytest.raises(TrainingInterruptedError, match=rf"interrupted at step 5 of {STEPS}; its checkpoint is in "):
        run(out, callbacks=[CtrlC(5)])
    assert signal.getsignal(signal.SIGINT) is handler  # Ctrl-C is the caller's again
    assert not out.exists()
    assert sorted(p.name for p in (tmp_path / ".out.training" / "checkpoints").iterdir()) == ["checkpoint-5"]
    resumed = run(out, resume=True)
    # the proxies of proxy-anchor come back from the checkpoint too, or the adapters would differ
    assert (whole.steps, resumed.steps, resumed.resumed_from_step) == (STEPS, STEPS, 5)
    assert (resumed.first_loss, resumed.last_loss) == (whole.first_loss, whole.last_loss)
    same_adapter(tmp_path / "whole", out)
    assert not (tmp_path / ".out.training").exists()


def test_a_crash_resumes_from_the_last_saved_checkpoint(run, tmp_path: Path) -> None:
    run(tmp_path / "whole")
    out = tmp_path / "out"
    with pytest.raises(RuntimeError, match="power cut"):
        run(out, callbacks=[Crash(5)])  # checkpoints every 2 steps: the last is step 4's
    assert sorted(p.name for p in (tmp_path / ".out.training" / "checkpoints").iterdir()) == ["checkpoint-4"]
    resumed = run(out, resume=True)
    assert (resumed.steps, resumed.resumed_from_step) == (STEPS, 4)
    same_adapter(tmp_path / "whole", out)


def test_a_second_ctrl_c_stops_at_once(run, tmp_path: Path) -> None:
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path / "out", callbacks=[CtrlC(3, times=2)])
    assert sorted(p.name for p in (tmp_path / ".out.training" / "checkpoints").iterdir()) == ["checkpoint-2"]


def test_resume_refuses_what_is_not_the_interrupted_run(run, tmp_path: Path) -> None:
    out = tmp_path / "out"
    with pytest.raises(InvalidArgumentError, match=r"--resume: no interrupted run of .*out to go on with"):
        run(out, resume=True)
    with pytest.raises(RuntimeError):
        run(out, callbacks=[Crash(0)])
    with pytest.raises(InvalidArgumentError, match=r"saved no checkpoint yet .* drop --resume to start over"):
        run(out, resume=True)
    with pytest.raises(TrainingInterruptedError):
        run(out, callbacks=[CtrlC(1)])
    with pytest.raises(InvalidArgumentError, match=r"--resume: the interrupted run used epochs=3.0, this one "
                                                   r"epochs=4.0 — give the same options"):
        run(out, resume=True, config=replace(run.config, epochs=4.0))
    assert run(out, resume=True, config=replace(run.config, log_every=3, save_every=5)).steps == STEPS  # free to change
    with pytest.raises(TrainingInterruptedError):
        run(out, callbacks=[CtrlC(1)])
    run.data.write_text(run.data.read_text(encoding="utf-8").replace(' 0"', ' zero"', 1), encoding="utf-8")
    with pytest.raises(InvalidArgumentError, match=r"is not the file the interrupted run trained on"):
        run(out, resume=True)
    assert (tmp_path / ".out.training" / "checkpoints" / "checkpoint-1").is_dir()  # refusals keep it
    fresh = run(out)  # without --resume: starts over, discarding the interrupted run
    assert (fresh.steps, fresh.resumed_from_step) == (STEPS, 0)


def test_the_command_resumes(tmp_path: Path, tiny_model: str) -> None:
    data = tmp_path / "labelled.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in LABELLED), encoding="utf-8")
    out = tmp_path / "out"
    args = ["train", str(data), "--out", str(out), "--loss", "multi-similarity", "--batch-size", "8",
            "--epochs", "3", "--base", tiny_model, "--quiet"]
    runner = CliRunner()
    missing = runner.invoke(app, [*args, "--resume"])
    assert missing.exit_code == 2 and missing.stderr.startswith("error: --resume: no interrupted run of ")
    with pytest.raises(TrainingInterruptedError):
        train(data, out, TrainConfig(loss="multi-similarity", batch_size=8, epochs=3, base_model=tiny_model),
              device="cpu", callbacks=[CtrlC(4)])
    done = runner.invoke(app, [*args, "--resume"])
    assert done.exit_code == 0, done.output
    assert re.match(rf"trained {out} on 24 texts \((cpu|cuda)\): 9 steps \(resumed at step 4\) in ", done.stdout)
