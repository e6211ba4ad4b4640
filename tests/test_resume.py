"""Crash and resume for real: a `fit` subprocess killed at different moments, resumed, compared bitwise."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from mnist_lightning.commands import main
from tests.helpers.synthetic import small_args

pytestmark = pytest.mark.slow
REPO = Path(__file__).parents[1]
STEPS_PER_EPOCH = 10  # 500 synthetic training images (600 - val 100), batch 50


def fit_args(data_dir: Path, *extra: str) -> list[str]:
    # no --trainer.default_root_dir: runs land in the current folder, as for most users
    return [
        "fit",
        *small_args(data_dir, "--trainer.max_epochs", "3", "--export.enabled", "false"),
        "--resume.every_n_train_steps",
        "4",
        *extra,
    ]


def checkpoints(root: Path) -> Path:
    return root / "lightning_logs" / "version_0" / "checkpoints"


def load_last(root: Path) -> dict:
    return torch.load(checkpoints(root) / "last.ckpt", weights_only=True)


def epoch_curves(root: Path) -> dict[str, list[tuple[int, float]]]:
    """The per-epoch TensorBoard scalars of the run (all its event files, as TensorBoard shows them)."""
    events = EventAccumulator(str(root / "lightning_logs" / "version_0"))
    events.Reload()
    return {
        tag: sorted((e.step, e.value) for e in events.Scalars(tag)) for tag in ("train/loss", "train/acc", "val/acc")
    }


@pytest.fixture(scope="module")
def reference(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The uninterrupted run with the same seed and config."""
    root = tmp_path_factory.mktemp("reference")
    cwd = os.getcwd()
    os.chdir(root)
    try:
        assert main(fit_args(data_dir)) == 0
    finally:
        os.chdir(cwd)
    return root


# name: (fault injected through a config file, expected exit status, global step held by last.ckpt after the crash)
KILLS = {
    # killed mid-epoch 1 at step 14: the step-12 checkpoint is the newest, steps 13-14 are lost and replayed
    "sigkill_mid_epoch": ("callbacks: [{class_path: tests.helpers.faults.SignalAt, init_args: {step: 14}}]", -9, 12),
    # killed right after the end-of-epoch-1 checkpoint (step 20), as epoch 2 starts
    "sigkill_after_epoch_checkpoint": (
        "callbacks: [{class_path: tests.helpers.faults.SignalAt, init_args: {step: 20, when: epoch_start}}]",
        -9,
        20,
    ),
    # killed half-way through writing the 4th last.ckpt (step 12): the epoch-0 one (step 10) must survive intact
    "sigkill_during_checkpoint_save": (
        "plugins: {class_path: tests.helpers.faults.KillDuringSave, init_args: {at: 4}}",
        -9,
        10,
    ),
    # SIGTERM and Ctrl-C: a resumable checkpoint at the very step, a resume hint, exit 128 + signal
    "sigterm": (
        "callbacks: [{class_path: tests.helpers.faults.SignalAt, init_args: {step: 17, signal: SIGTERM}}]",
        143,
        17,
    ),
    "ctrl_c": (
        "callbacks: [{class_path: tests.helpers.faults.SignalAt, init_args: {step: 23, signal: SIGINT}}]",
        130,
        23,
    ),
}


@pytest.mark.parametrize("kill", list(KILLS))
def test_killed_fit_resumes_to_bitwise_identical_weights(
    kill: str, reference: Path, data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fault, status, saved_step = KILLS[kill]
    (tmp_path / "fault.yaml").write_text(f"trainer:\n  {fault}\n")
    args = fit_args(data_dir, "--config", str(tmp_path / "fault.yaml"))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run(
        [sys.executable, "-m", "mnist_lightning", *args], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert proc.returncode == status, proc.stderr[-2000:]
    assert load_last(tmp_path)["global_step"] == saved_step  # the crash happened where intended
    assert "Training finished" not in proc.stdout

    if kill == "sigkill_during_checkpoint_save":
        assert list(checkpoints(tmp_path).glob(".last.ckpt.*.tmp"))  # the half-written file never took the name
    monkeypatch.chdir(tmp_path)
    if status > 0:  # a clean stop: told how to resume, with the exact command
        assert f"saved a resumable checkpoint to {checkpoints(tmp_path) / 'last.ckpt'}" in proc.stderr
        command = proc.stderr.split("Resume with:\n")[1].splitlines()[0].strip()
        resume = shlex.split(command)
        assert resume[:3] == [sys.executable, "-m", "mnist_lightning"] and resume[-2] == "--ckpt_path"
        assert main(resume[3:]) == 0
    else:
        assert main(fit_args(data_dir, "--ckpt_path", "last")) == 0

    got, want = load_last(tmp_path), load_last(reference)
    assert got["global_step"] == want["global_step"] == 3 * STEPS_PER_EPOCH
    for key, value in want["state_dict"].items():
        if key.startswith("net."):
            assert torch.equal(got["state_dict"][key], value), key  # bitwise, not allclose
    for param, state in want["optimizer_states"][0]["state"].items():
        for name, value in state.items():
            assert torch.equal(got["optimizer_states"][0]["state"][param][name], value), (param, name)
    # the logged epoch metrics too: a mid-epoch checkpoint carries the running train/loss and train/acc sums
    assert epoch_curves(tmp_path) == epoch_curves(reference)
    # resumed in the same run folder, with the same best checkpoint, and no temp files left behind
    assert [p.name for p in (tmp_path / "lightning_logs").iterdir()] == ["version_0"]
    assert sorted(p.name for p in checkpoints(tmp_path).iterdir()) == sorted(
        p.name for p in checkpoints(reference).iterdir()
    )
