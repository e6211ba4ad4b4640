"""One trial of ``tune``: a normal ``fit`` through the project's CLI, watched by a callback that reports to Optuna.

The trial is the same run as ``python -m mnist_lightning fit ...`` with the proposed options: its own run folder,
TensorBoard events, checkpoints, ``config.yaml``, HPARAMS row and ONNX export. A trial that is clearly behind is
stopped the way early stopping stops a run (``trainer.should_stop`` after a validation), so it still ends as a
complete run, and is then recorded as pruned.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Any

import lightning as L
import optuna
from lightning.pytorch.utilities.exceptions import SIGTERMException

from mnist_lightning.common.contract import MONITOR
from mnist_lightning.common.errors import UserError
from mnist_lightning.common.layout import trial_version
from mnist_lightning.training.cli import run_cli
from mnist_lightning.tune.report import EPOCHS_ATTR, LOGGER_ATTR, RUN_ATTR, WORKER_ATTR
from mnist_lightning.tune.space import SearchSpace, as_cli_args, with_fixed


class SearchStopped(KeyboardInterrupt):
    """SIGTERM or Ctrl-C during a trial (Lightning's SIGTERMException is a SystemExit, which Optuna would leave
    "running"; a KeyboardInterrupt it marks failed). ``code`` is the exit status GracefulStop chose."""

    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


class OptunaReport(L.Callback):
    """Reports each epoch's ``val/acc`` to the trial and stops the run when the pruner says it is behind."""

    def __init__(self, trial: optuna.Trial) -> None:
        self.trial = trial
        self.best: float | None = None
        self.pruned = False

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.world_size > 1:  # pruning decisions would have to be shared by all ranks
            raise UserError("tune runs each trial in one process; use --trainer.devices 1 (and no num_nodes > 1).")
        if trainer.logger is not None and trainer.logger.log_dir:
            self.trial.set_user_attr(RUN_ATTR, str(trainer.logger.log_dir))

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        value = trainer.callback_metrics.get(MONITOR)
        if trainer.sanity_checking or value is None:
            return
        value, epoch = float(value), trainer.current_epoch
        self.best = value if self.best is None else max(self.best, value)
        self.trial.report(value, step=epoch)
        self.trial.set_user_attr(EPOCHS_ATTR, epoch + 1)
        if self.trial.should_prune():
            self.pruned = True
            trainer.should_stop = True


def logger_args(add_logger: bool, folder: Path, number: int) -> list[str]:
    """Each trial's run folder is ``<study folder>/trial_NNNN``: named by its (unique) trial number, so workers
    never race for the same ``version_N``."""
    version = trial_version(number)
    if not add_logger:  # the user's own logger keeps its folder, with the study's folder inside it
        return ["--trainer.logger.version", f"{folder.name}/{version}"]
    return [
        "--trainer.logger",
        "lightning.pytorch.loggers.TensorBoardLogger",
        "--trainer.logger.save_dir",
        str(folder.parent),
        "--trainer.logger.name",
        folder.name,
        "--trainer.logger.version",
        version,
        "--trainer.logger.default_hp_metric",
        "false",  # as the project's default logger: no placeholder hp_metric
    ]


def make_objective(base: list[str], space: SearchSpace, add_logger: bool, folder: Path) -> Any:
    """The objective: best ``val/acc`` of one ``fit`` with the trial's proposals (never the test set)."""

    def objective(trial: optuna.Trial) -> float:
        params = {p.name: p.suggest(trial) for p in space.params}
        trial.set_user_attr(LOGGER_ATTR, add_logger)
        trial.set_user_attr(WORKER_ATTR, f"{socket.gethostname()}:{os.getpid()}")  # which worker ran it
        args = ["fit", *with_fixed(base, space.fixed), *as_cli_args(params)]
        args += logger_args(add_logger, folder, trial.number)
        report = OptunaReport(trial)
        try:
            run_cli(args, extra_callbacks=[report])
        except SIGTERMException as stop:
            raise SearchStopped(stop.code if isinstance(stop.code, int) else 130) from None
        if report.best is None:
            raise UserError(
                f"trial {trial.number} logged no {MONITOR}; tune needs validation every epoch (keep "
                "--trainer.limit_val_batches above 0 and check_val_every_n_epoch 1)."
            )
        if report.pruned:
            raise optuna.TrialPruned(f"behind the other trials after {trial.user_attrs.get(EPOCHS_ATTR)} epoch(s)")
        return report.best

    return objective
