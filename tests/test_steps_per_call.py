"""``--model.steps_per_call K``: K optimizer steps per Lightning batch train, log and checkpoint exactly as K = 1."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from mnist_lightning.commands import main
from tests.helpers.synthetic import small_args
from tests.test_precision_matrix import PRECISIONS

REPO = Path(__file__).parents[1]
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
SCHEDULES = {"constant": (), "onecycle": ("--model.warmup", "0.3"), "cosine": ("--model.warmup", "0.2")}
# 500 synthetic training images, batch 50: 10 steps an epoch, so K = 4 ends each epoch with a call of 2, K = 8 of 2
STEPS_PER_EPOCH = 10


def fit(data_dir: Path, root: Path, k: int, *extra: str) -> int:
    args = small_args(data_dir, "--trainer.default_root_dir", str(root), "--export.enabled", "false", *extra)
    return main(["fit", *args, "--model.steps_per_call", str(k)])


def run_folder(root: Path) -> Path:
    return root / "lightning_logs" / "version_0"


def last(root: Path) -> dict:
    return torch.load(run_folder(root) / "checkpoints" / "last.ckpt", weights_only=True)


def scalars(root: Path) -> dict[str, list[tuple[int, float]]]:
    """Every scalar tag of the run as (step, value) points: per-step loss and LR, epoch and validation metrics."""
    events = EventAccumulator(str(run_folder(root)), size_guidance={"scalars": 0})
    events.Reload()
    # NaN (hp/test_acc before a test) as None, so that equal runs compare equal
    points = {tag: [(e.step, e.value) for e in events.Scalars(tag)] for tag in events.Tags()["scalars"]}
    # in step order: a resume in the same second as the killed run's start gets an event file that sorts first
    plain = {tag: [(s, None if math.isnan(v) else v) for s, v in p] for tag, p in points.items()}
    return {tag: sorted(p, key=lambda q: q[0]) for tag, p in plain.items()}


def assert_same_training(got: dict, want: dict) -> None:
    assert got["global_step"] == want["global_step"]
    for key, value in want["state_dict"].items():
        assert torch.equal(got["state_dict"][key], value), key  # bitwise, not allclose
    for param, state in want["optimizer_states"][0]["state"].items():
        for name, value in state.items():
            assert torch.equal(got["optimizer_states"][0]["state"][param][name], value), (param, name)
    assert got["optimizer_states"][0]["param_groups"] == want["optimizer_states"][0]["param_groups"]
    assert got["lr_schedulers"] == want["lr_schedulers"]


@pytest.mark.parametrize("schedule", list(SCHEDULES))
def test_k_steps_per_call_train_log_and_checkpoint_as_one(data_dir: Path, tmp_path: Path, schedule: str) -> None:
    extra = ("--model.lr_schedule", schedule, *SCHEDULES[schedule])
    runs = {}
    for k in (1, 4, 8):
        assert fit(data_dir, tmp_path / f"k{k}", k, *extra) == 0
        runs[k] = tmp_path / f"k{k}"
    want, want_scalars = last(runs[1]), scalars(runs[1])
    assert want["global_step"] == 2 * STEPS_PER_EPOCH
    # the per-step points are there to compare: every 2nd step (log_every_n_steps 2)
    assert [s for s, _ in want_scalars["train/loss_step"]] == list(range(1, 2 * STEPS_PER_EPOCH, 2))
    assert [s for s, _ in want_scalars["train/lr"]] == list(range(1, 2 * STEPS_PER_EPOCH, 2))
    for k in (4, 8):
        assert_same_training(last(runs[k]), want)
        assert scalars(runs[k]) == want_scalars  # train/loss_step, train/lr, epoch and val metrics, digit accuracies
        best = sorted(p.name for p in (run_folder(runs[k]) / "checkpoints").iterdir())
        assert best == sorted(p.name for p in (run_folder(runs[1]) / "checkpoints").iterdir())


def test_sigkill_mid_epoch_and_resume_with_k4_is_bitwise_the_k1_run(data_dir: Path, tmp_path: Path) -> None:
    # batch 25: 20 steps an epoch, a multiple of K = 4, so that checkpoints every 8 steps fall between calls
    extra = ("--data.batch_size", "25", "--resume.every_n_train_steps", "8")
    assert fit(data_dir, tmp_path / "k1", 1, *extra) == 0
    (tmp_path / "kill.yaml").write_text(
        "trainer:\n  callbacks: [{class_path: tests.helpers.faults.SignalAt, init_args: {step: 28}}]\n"
    )
    root = tmp_path / "k4"
    args = small_args(data_dir, "--trainer.default_root_dir", str(root), "--export.enabled", "false", *extra)
    cmd = [sys.executable, "-m", "mnist_lightning", "fit", *args, "--model.steps_per_call", "4"]
    proc = subprocess.run([*cmd, "--config", str(tmp_path / "kill.yaml")], env=ENV, capture_output=True, text=True)
    assert proc.returncode == -9, proc.stderr[-2000:]
    assert last(root)["global_step"] == 24  # killed at step 28 of epoch 1: steps 25-28 are replayed
    assert fit(data_dir, root, 4, *extra, "--ckpt_path", "last") == 0
    assert_same_training(last(root), last(tmp_path / "k1"))
    got, want = scalars(root), scalars(tmp_path / "k1")
    for tag in ("train/loss", "train/acc", "val/acc", "val/loss"):  # the running train sums were in the checkpoint
        assert got[tag] == want[tag], tag


@pytest.mark.parametrize(
    ("flag", "value", "named"),
    [
        ("--trainer.accumulate_grad_batches", "2", "trainer.accumulate_grad_batches"),
        ("--trainer.gradient_clip_val", "1.0", "trainer.gradient_clip_val"),
        ("--trainer.val_check_interval", "0.5", "trainer.val_check_interval"),
        ("--trainer.limit_train_batches", "3", "trainer.limit_train_batches"),
        ("--resume.every_n_train_steps", "6", "resume.every_n_train_steps 6"),
        ("--trainer.overfit_batches", "2", "trainer.overfit_batches"),
        ("--checkpoint.every_n_train_steps", "4", "checkpoint.every_n_train_steps"),
    ],
)
def test_flags_that_count_batches_are_refused_in_one_paragraph(
    data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture, flag: str, value: str, named: str
) -> None:
    assert fit(data_dir, tmp_path, 4, flag, value) == 2
    err = capsys.readouterr().err
    assert named in err and "model.steps_per_call 4" in err
    assert not (tmp_path / "lightning_logs").exists()  # refused before a run folder is made


def test_every_n_steps_needs_epochs_of_whole_calls(data_dir: Path, tmp_path: Path, capsys) -> None:
    # 10 steps an epoch with K = 4: step 12 would fall inside a call
    assert fit(data_dir, tmp_path, 4, "--resume.every_n_train_steps", "4") == 2
    assert "10 optimizer steps an epoch" in capsys.readouterr().err


def test_max_steps_inside_a_call_stops_where_k1_stops(data_dir: Path, tmp_path: Path) -> None:
    for k in (1, 4):
        assert fit(data_dir, tmp_path / f"k{k}", k, "--trainer.max_steps", "7") == 0
    assert_same_training(last(tmp_path / "k4"), last(tmp_path / "k1"))
    assert last(tmp_path / "k4")["global_step"] == 7


@pytest.mark.slow
def test_ddp_two_processes_k4_equals_k1(data_dir: Path, tmp_path: Path) -> None:
    runs = {}
    for k in (1, 4):
        runs[k] = tmp_path / f"k{k}"
        args = small_args(data_dir, "--config", str(REPO / "configs" / "ddp.yaml"), "--export.enabled", "false")
        cmd = [sys.executable, "-m", "mnist_lightning", "fit", *args, "--model.steps_per_call", str(k)]
        cmd += ["--trainer.default_root_dir", str(runs[k])]
        proc = subprocess.run(cmd, env=ENV, capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, proc.stderr[-3000:]
    assert_same_training(last(runs[4]), last(runs[1]))
    got, want = scalars(runs[4]), scalars(runs[1])
    for tag in ("train/loss", "train/acc", "val/acc", "train/loss_step"):
        assert got[tag] == want[tag], tag


@pytest.mark.parametrize("precision", PRECISIONS)
def test_every_precision_trains_the_same_with_k4(data_dir: Path, tmp_path: Path, precision: str) -> None:
    for k in (1, 4):
        assert fit(data_dir, tmp_path / f"k{k}", k, "--trainer.max_epochs", "1", "--trainer.precision", precision) == 0
    assert_same_training(last(tmp_path / "k4"), last(tmp_path / "k1"))
