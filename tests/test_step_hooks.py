"""Per-batch hooks only where used: Lightning skips a callback's hook that is None, so a training step dispatches
only the hooks that do something, and the lean callbacks still behave (and checkpoint) as Lightning's own."""

from __future__ import annotations

from pathlib import Path

import lightning as L
import pytest
import torch
from lightning.pytorch.callbacks import Callback, ModelCheckpoint, ModelSummary, TQDMProgressBar

from mnist_lightning.training.callbacks.step_hooks import PER_BATCH_HOOKS, batch_hooks_where_used
from mnist_lightning.training.cli import MNISTCLI, run_cli
from tests.helpers.synthetic import small_args

TRAIN_STEP_HOOKS = PER_BATCH_HOOKS[:6]


def live_hooks(callbacks: list[Callback]) -> dict[str, list[str]]:
    """Per callback class: the per-step training hooks Lightning would call (callable ones)."""
    return {
        type(c).__name__: [h for h in TRAIN_STEP_HOOKS if callable(getattr(c, h))]
        for c in callbacks
        if any(callable(getattr(c, h)) for h in TRAIN_STEP_HOOKS)
    }


@batch_hooks_where_used
class LiveHooks(L.Callback):
    """Records, during training, which callbacks' per-step hooks Lightning would call."""

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.seen = live_hooks(trainer.callbacks)


def fit(args: list[str]) -> tuple[MNISTCLI, dict[str, list[str]]]:
    probe = LiveHooks()
    return run_cli(["fit", *args], extra_callbacks=[probe]), probe.seen


def test_a_default_fit_dispatches_only_the_hooks_that_work(
    data_dir: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    args = small_args(data_dir, "--trainer.default_root_dir", str(tmp_path), "--trainer.max_epochs", "1")
    cli, seen = fit([*args, "--trainer.enable_progress_bar", "true"])
    callbacks = cli.trainer.callbacks
    # nine callbacks (and the probe; the schedule guard only joins a resumed run), of which only the bar (redraws)
    # and the views (train/lr) work on every step
    assert len(callbacks) == 10 and not any(type(c).__name__ == "ScheduleGuard" for c in callbacks)
    assert seen == {
        "EpochProgressBar": ["on_train_batch_end"],
        "TensorBoardViews": ["on_before_optimizer_step"],
    }
    # the lean ones are Lightning's own classes underneath, and there is exactly one summary, printed once
    for cls in (TQDMProgressBar, ModelSummary, ModelCheckpoint):
        assert sum(isinstance(c, cls) for c in callbacks) == 1, cls
    assert caplog.text.count("Trainable params") == 1  # Lightning logs the summary
    assert "already configured with model summary" not in caplog.text
    # checkpoints file the best-checkpoint state under ModelCheckpoint's own key, as before the lean subclass
    ckpt = torch.load(Path(cli.trainer.checkpoint_callback.best_model_path), weights_only=True)
    assert [k for k in ckpt["callbacks"] if "best_model_path" in ckpt["callbacks"][k]] == [
        next(k for k in ckpt["callbacks"] if k.startswith("ModelCheckpoint{"))
    ]


def test_hooks_that_have_work_are_live(data_dir: Path, tmp_path: Path) -> None:
    # step checkpoints and step-interval best checkpoints need their per-batch hook
    args = small_args(data_dir, "--trainer.default_root_dir", str(tmp_path), "--trainer.max_epochs", "1")
    args += ["--resume.every_n_train_steps", "4", "--checkpoint.every_n_train_steps", "4"]
    cli, hooks = fit([*args, "--trainer.enable_model_summary", "false"])
    assert hooks["ResumeCheckpoint"] == ["on_train_batch_end"]
    assert hooks["LeanModelCheckpoint"] == ["on_train_batch_end"]
    assert not any(isinstance(c, ModelSummary) for c in cli.trainer.callbacks)  # switched off: none at all
