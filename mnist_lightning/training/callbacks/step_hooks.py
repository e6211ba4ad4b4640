"""Per-batch hooks only where a callback or the module uses them: Lightning calls a hook only when it is callable.

Lightning dispatches every per-step hook to every callback, each through a profiler context (~14 Python calls); with
nine always-on callbacks that was ~40 % of a training step's Python calls, nearly all of them no-op defaults.
"""

from __future__ import annotations

from typing import TypeVar

import lightning as L
from lightning.pytorch.callbacks import Callback, ModelCheckpoint, ModelSummary
from lightning.pytorch.cli import SaveConfigCallback

C = TypeVar("C", bound=type[Callback])
M = TypeVar("M", bound=type[L.LightningModule])

# the hooks Lightning calls on every training batch or optimizer step, and on every evaluation batch
TRAIN_STEP_HOOKS = (
    "on_train_batch_start",
    "on_train_batch_end",
    "on_before_backward",
    "on_after_backward",
    "on_before_optimizer_step",
    "on_before_zero_grad",
)
PER_BATCH_HOOKS = (
    *TRAIN_STEP_HOOKS,
    "on_validation_batch_start",
    "on_validation_batch_end",
    "on_test_batch_start",
    "on_test_batch_end",
    "on_predict_batch_start",
    "on_predict_batch_end",
)


def batch_hooks_where_used(cls: C) -> C:
    """Class decorator: the per-batch hooks ``cls`` inherits as Callback's no-op defaults become None (skipped)."""
    for name in PER_BATCH_HOOKS:
        if getattr(cls, name) is getattr(Callback, name):
            setattr(cls, name, None)
    return cls


def step_hooks_where_used(cls: M) -> M:
    """Class decorator: the per-training-step hooks a LightningModule inherits as no-op defaults become None.

    Its evaluation batch hooks stay: Lightning reads their signatures before every evaluation loop.
    """
    for name in TRAIN_STEP_HOOKS:
        if getattr(cls, name) is getattr(L.LightningModule, name):
            setattr(cls, name, None)
    return cls


# Lightning's own always-on callbacks, the same but for the per-batch hooks they leave at the no-op default


@batch_hooks_where_used
class LeanModelSummary(ModelSummary):
    """The model summary at the start of fit, which the CLI configures where Lightning would add its own."""


@batch_hooks_where_used
class LeanSaveConfigCallback(SaveConfigCallback):
    """LightningCLI's writer of the run's ``config.yaml``."""


@batch_hooks_where_used
class LeanModelCheckpoint(ModelCheckpoint):
    """The best-checkpoint callback (``--checkpoint.*``)."""

    @property
    def state_key(self) -> str:
        # filed in checkpoints under ModelCheckpoint's own key, so that runs before and after this class resume alike
        return super().state_key.replace(type(self).__qualname__, ModelCheckpoint.__qualname__, 1)

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        super().on_train_start(trainer, pl_module)
        # no step or time interval (this project's default: the best val/acc at epoch ends): no per-batch work.
        # ModelCheckpoint keeps both settings private; they are only read here
        if self._every_n_train_steps < 1 and self._train_time_interval is None:
            self.on_train_batch_end = None  # type: ignore[assignment]
