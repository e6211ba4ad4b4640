"""The LightningCLI behind ``fit``, ``validate``, ``test`` and ``predict``, composed the Lightning way.

What this project adds to a plain LightningCLI, each through a public extension point so that the run's
``config.yaml`` shows it and a user's own setting replaces it:

- always-on callbacks declared like ``ModelCheckpoint``: ``--checkpoint.*``, ``--export.*``, ``--resume.*``,
  ``--views.*``, ``--predictions.*``;
- ``trainer_defaults``: atomic checkpoint files (``trainer.plugins``), and :class:`GracefulStop` (SIGTERM/Ctrl-C);
- ``before_instantiate_classes``: the default logger (TensorBoard without its placeholder ``hp_metric``, continuing
  a resumed run's folder), and a progress bar that redraws every ``BAR_REFRESH`` steps unless one is configured.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from pathlib import Path
from typing import Any

from jsonargparse import Namespace
from lightning.pytorch.callbacks import Callback, ModelSummary, ProgressBar, RichProgressBar
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI
from lightning.pytorch.utilities.exceptions import SIGTERMException

from mnist_lightning.common.layout import BEST_FILENAME, LOG_NAME, resolve_checkpoint, run_of_checkpoint
from mnist_lightning.common.mnist_files import FILES, raw_folder
from mnist_lightning.model.checkpoints import check_checkpoint, saved_checkpoint_folder
from mnist_lightning.training.accelerators import check_accelerator
from mnist_lightning.training.callbacks.export import OnnxExport
from mnist_lightning.training.callbacks.graceful_stop import GracefulStop
from mnist_lightning.training.callbacks.prediction_csv import PredictionCsv
from mnist_lightning.training.callbacks.resume import ResumeCheckpoint
from mnist_lightning.training.callbacks.resume_guard import ScheduleGuard, check_resume_settings
from mnist_lightning.training.callbacks.step_hooks import (
    LeanModelCheckpoint,
    LeanModelSummary,
    LeanSaveConfigCallback,
    LeanTQDMProgressBar,
)
from mnist_lightning.training.callbacks.views import TensorBoardViews
from mnist_lightning.training.config_errors import config_error_message
from mnist_lightning.training.data import MNISTDataModule
from mnist_lightning.training.module import MNISTClassifier
from mnist_lightning.training.multi_step import check_steps_per_call
from mnist_lightning.training.quiet import expect_full_checkpoint_folder, hide_known_noise, same_folder_spelled_twice

SUBCOMMANDS = ("fit", "validate", "test", "predict")
# Lightning's default bar redraws after every step: ~0.2 ms each, >10 % of an epoch here; every 20 steps still
# moves smoothly
BAR_REFRESH = 20
DEFAULT_BAR = {
    "class_path": f"{LeanTQDMProgressBar.__module__}.LeanTQDMProgressBar",
    "init_args": {"refresh_rate": BAR_REFRESH},
}
DEFAULT_LOGGER = "lightning.pytorch.loggers.TensorBoardLogger"


def _class(entry: Any) -> type | None:
    """The class a parsed ``class_path`` entry names (None for anything else)."""
    path = entry.get("class_path") if isinstance(entry, (dict, Namespace)) else None
    if not isinstance(path, str) or "." not in path:
        return None
    module, _, name = path.rpartition(".")
    return getattr(importlib.import_module(module), name, None)


def _is_default_bar(entry: Any) -> bool:
    args = entry.get("init_args") if isinstance(entry, (dict, Namespace)) else None
    return _class(entry) is LeanTQDMProgressBar and args is not None and args.get("refresh_rate") == BAR_REFRESH


class MNISTCLI(LightningCLI):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        cli_args = kwargs.get("args")
        self.argv = list(cli_args) if isinstance(cli_args, list) else sys.argv[1:]  # for the resume hint
        self.resume_from: Path | None = None
        self.evaluated: Path | None = None  # the checkpoint a validate/test/predict run reads
        hide_known_noise()
        self.schedule_guard = ScheduleGuard()  # told the checkpoint in parse_arguments
        defaults = dict(kwargs.pop("trainer_defaults", None) or {})
        # a user's own --trainer.plugins replaces the atomic checkpoint IO, as any default
        defaults.setdefault("plugins", {"class_path": "mnist_lightning.training.checkpoint_io.AtomicCheckpointIO"})
        extra = defaults.pop("callbacks", None) or []
        # callbacks in trainer_defaults are always added by LightningCLI; these have no settings of their own.
        # ScheduleGuard comes first: its check runs before the run's config.yaml is (re)written.
        defaults["callbacks"] = [
            self.schedule_guard,
            GracefulStop(self.argv),
            *(extra if isinstance(extra, list) else [extra]),
        ]
        kwargs.setdefault("save_config_callback", LeanSaveConfigCallback)
        super().__init__(*args, trainer_defaults=defaults, **kwargs)

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        # always-on callbacks, each configurable: --checkpoint.*, --export.*, --resume.*, --views.*, --predictions.*
        parser.add_lightning_class_args(LeanModelCheckpoint, "checkpoint")
        parser.set_defaults(
            {
                "checkpoint.monitor": "val/acc",
                "checkpoint.mode": "max",
                "checkpoint.save_last": False,  # last.ckpt is ResumeCheckpoint's, written every epoch
                "checkpoint.filename": BEST_FILENAME,
                "checkpoint.auto_insert_metric_name": False,
                # a resumed run re-saving the same epoch overwrites (atomically) instead of adding '-v1' copies
                "checkpoint.enable_version_counter": False,
            }
        )
        parser.add_lightning_class_args(OnnxExport, "export")
        parser.add_lightning_class_args(ResumeCheckpoint, "resume")  # --resume.every_n_train_steps N
        parser.add_lightning_class_args(TensorBoardViews, "views")
        parser.add_lightning_class_args(PredictionCsv, "predictions")
        parser.link_arguments("model.steps_per_call", "data.steps_per_call")  # one setting, told to the loader
        # shown by --print_config; dropped in before_instantiate_classes when another bar is configured
        parser.set_defaults({"trainer.callbacks": [DEFAULT_BAR]})

    def _stage_config(self) -> Namespace:
        return self.config[self.subcommand] if self.subcommand else self.config

    def parse_arguments(self, parser: LightningArgumentParser, args: object) -> None:
        super().parse_arguments(parser, args)
        sub = self.config.get("subcommand")
        if sub and (ckpt := self.config[sub].get("ckpt_path")):
            root, name = _logger_folder(self.config[sub].trainer)
            path = resolve_checkpoint(ckpt, root, name)
            # a clear error now rather than a traceback from deep inside Lightning
            ckpt = check_checkpoint(path, self.config[sub].model.hidden_layers if sub == "fit" else None)
            self.config[sub].ckpt_path = str(path)
            if sub == "fit":
                check_resume_settings(path, ckpt, self.config[sub].model)
                self.schedule_guard.resume_from(path, ckpt)
                self.resume_from = path
            else:
                self.evaluated = path
                # evaluation reads the checkpoint callback's state from the folder it saved in, instead of being
                # pointed at a new one (which Lightning warns about and which would drop its best-model record)
                if self.config[sub].checkpoint.dirpath is None and (saved := saved_checkpoint_folder(ckpt)):
                    self.config[sub].checkpoint.dirpath = saved
                    same_folder_spelled_twice(saved)

    def before_instantiate_classes(self) -> None:
        trainer = self._stage_config().trainer
        check_accelerator(trainer.accelerator, trainer.devices)
        config = self._stage_config()
        check_steps_per_call(config.model.steps_per_call, trainer, config.resume.every_n_train_steps, config.checkpoint)
        if trainer.logger in (None, True):  # Lightning's default logger, minus its placeholder hp_metric=-1
            trainer.logger = Namespace(
                class_path=DEFAULT_LOGGER,
                init_args=Namespace(
                    # as Trainer spells its default logger's save_dir, so ModelCheckpoint keeps its best-k state
                    save_dir=os.path.normpath(os.path.expanduser(trainer.default_root_dir or os.getcwd())),
                    name=LOG_NAME,
                    version=None,
                    default_hp_metric=False,
                ),
            )
        if self.subcommand == "fit":
            if (run := _resume_in_place(trainer.logger, self.resume_from)) is not None:
                expect_full_checkpoint_folder(run / "checkpoints")
        else:  # validate/test/predict of a run's checkpoint log into <run>/<stage>/, not a new run folder
            _resume_in_place(trainer.logger, self.evaluated, self.subcommand)
        callbacks = list(trainer.callbacks or [])
        bars = [c for c in callbacks if (cls := _class(c)) is not None and issubclass(cls, ProgressBar)]
        if trainer.enable_progress_bar is False or len(bars) > 1:  # the user's choice wins over the default bar
            callbacks = [c for c in callbacks if not _is_default_bar(c)]
        elif not bars:  # a config file that lists callbacks of its own still gets the quieter bar
            callbacks.append(Namespace(DEFAULT_BAR))
        # the model summary Lightning would add, minus its per-batch hooks; configured ones and Rich bars win
        rich = any(issubclass(_class(c), RichProgressBar) for c in callbacks if _class(c) is not None)
        if trainer.enable_model_summary is False or rich:
            callbacks = [c for c in callbacks if _class(c) is not LeanModelSummary]
        elif not any(issubclass(_class(c), ModelSummary) for c in callbacks if _class(c) is not None):
            callbacks.append(Namespace(class_path=f"{LeanModelSummary.__module__}.LeanModelSummary"))
        trainer.callbacks = callbacks

    def _check_data(self) -> None:
        """Read and check MNIST before the trainer creates a run folder, so bad data leaves no trace behind."""
        dm = self.datamodule
        if dm.hparams.download and not all((raw_folder(dm.hparams.data_dir) / name).is_file() for name in FILES):
            return  # a download is due: Lightning's prepare_data does it once per machine, not every DDP rank
        dm.prepare_data()
        dm.setup(self.subcommand)  # decodes and caches the splits; the trainer's own setup() reuses them

    before_fit = before_validate = before_test = before_predict = _check_data

    def after_fit(self) -> None:
        trainer = self.trainer
        if not trainer.is_global_zero:
            return
        ckpt = trainer.checkpoint_callback
        export = next((c for c in trainer.callbacks if isinstance(c, OnnxExport)), None)
        lines = ["", "Training finished."]
        if ckpt is not None and ckpt.best_model_path:
            lines.append(f"  best checkpoint : {ckpt.best_model_path} (val/acc {float(ckpt.best_model_score):.4f})")
        last = next((c for c in trainer.callbacks if isinstance(c, ResumeCheckpoint)), None)
        if last is not None and last.path is not None and last.path.is_file():
            lines.append(f"  last checkpoint : {last.path}")
        if export is not None and export.path is not None:
            lines.append(f"  ONNX model      : {export.path}")
        if export is not None and export.torch_path is not None:
            lines.append(f"  PyTorch model   : {export.torch_path}  (MyMNIST.load)")
        log_dir = trainer.logger.log_dir if trainer.logger else None  # not trainer.log_dir: that is collective
        if log_dir:
            lines.append(f"  TensorBoard     : tensorboard --logdir {Path(log_dir).parent}")
        print("\n".join(lines), flush=True)

    def after_predict(self) -> None:
        # printed once the progress bar has closed its line, so the summary starts a line of its own in a file too
        writer = next((c for c in self.trainer.callbacks if isinstance(c, PredictionCsv)), None)
        if writer is not None and writer.report:
            print(writer.report, flush=True)


def _logger_folder(trainer: Namespace) -> tuple[str, str | None]:
    """(save_dir, name) of the configured logger, where ``best``/``last`` are looked up (any name: None)."""
    logger = trainer.logger
    if logger in (None, True):
        return trainer.default_root_dir or ".", LOG_NAME
    args = logger.get("init_args") if isinstance(logger, (dict, Namespace)) else None
    if args is not None and args.get("save_dir") is not None:
        return str(args.get("save_dir")), args.get("name")
    return trainer.default_root_dir or ".", None


def _resume_in_place(logger: Any, ckpt: Path | None, subfolder: str | None = None) -> Path | None:
    """A fit resumed from ``<save_dir>/<name>/<version>/checkpoints/`` of this logger continues in that folder; an
    evaluation of such a checkpoint logs into ``<version>/<subfolder>``. Returns the run folder, if it is one."""
    args = logger.get("init_args") if isinstance(logger, (dict, Namespace)) else None
    run = run_of_checkpoint(ckpt) if ckpt is not None else None
    if run is None or args is None or args.get("save_dir") is None:
        return None
    if run.parent.resolve() != (Path(str(args.save_dir)) / str(args.get("name") or "")).resolve():
        return None
    number = run.name.removeprefix("version_")
    if subfolder:  # a string version is used as the folder name as it is, by every Lightning logger
        args.version = f"{run.name}/{subfolder}"
    else:
        args.version = int(number) if run.name.startswith("version_") and number.isdigit() else run.name
    return run


def run_cli(args: list[str] | None = None, extra_callbacks: list[Callback] | None = None, **kwargs: Any) -> MNISTCLI:
    """Build (and by default run) the CLI; ``extra_callbacks`` are added to the Trainer (benchmarks, tests)."""
    return MNISTCLI(
        MNISTClassifier,
        MNISTDataModule,
        seed_everything_default=42,
        save_config_kwargs={"overwrite": True},
        trainer_defaults={"callbacks": extra_callbacks} if extra_callbacks else None,
        # raise instead of printing the whole usage: lightning_main turns the error into one specific paragraph
        parser_kwargs={"exit_on_error": False, **{sub: {"exit_on_error": False} for sub in SUBCOMMANDS}},
        args=args,
        **kwargs,
    )


def lightning_main(args: list[str] | None = None) -> int:
    """``fit``/``validate``/``test``/``predict``; the exit status (UserError is the router's to report)."""
    try:
        run_cli(args)
    except argparse.ArgumentError as err:
        print(f"error: {config_error_message(err, sys.argv[1:] if args is None else args)}", file=sys.stderr)
        return 2
    except SIGTERMException as stop:  # GracefulStop saved a checkpoint and printed how to resume
        return stop.code if isinstance(stop.code, int) else 1
    return 0
