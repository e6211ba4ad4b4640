"""The LightningCLI behind ``fit``, ``validate``, ``test`` and ``predict``, composed the Lightning way.

What this project adds to a plain LightningCLI, each through a public extension point so that the run's
``config.yaml`` shows it and a user's own setting replaces it:

- always-on callbacks declared like ``ModelCheckpoint``: ``--checkpoint.*``, ``--export.*``, ``--resume.*``,
  ``--views.*``, ``--predictions.*``;
- ``trainer_defaults``: atomic checkpoint files (``trainer.plugins``), and :class:`GracefulStop` (SIGTERM/Ctrl-C);
- ``before_instantiate_classes``: the default logger (TensorBoard without its placeholder ``hp_metric``, continuing
  a resumed run's folder), and :class:`EpochProgressBar` (plain lines in a file) unless a bar is configured.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path
from typing import Any

from jsonargparse import Namespace
from lightning.pytorch.callbacks import Callback, ModelSummary, ProgressBar, RichProgressBar
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger
from lightning.pytorch.utilities.exceptions import SIGTERMException

from mnist_lightning.commands import LIGHTNING_COMMANDS, program_name
from mnist_lightning.common.contract import MONITOR
from mnist_lightning.common.errors import UserError, report_error
from mnist_lightning.common.layout import (
    BEST_FILENAME,
    CONFIG_NAME,
    checkpoints_folder,
    keep_earlier_metrics,
    resolve_checkpoint,
)
from mnist_lightning.common.mnist_files import FILES, raw_folder
from mnist_lightning.model.checkpoints import (
    check_checkpoint,
    checkpoint_val_acc,
    load_checkpoint,
    saved_checkpoint_folder,
)
from mnist_lightning.model.compiled_step import check_compile
from mnist_lightning.training.callbacks.export import OnnxExport
from mnist_lightning.training.callbacks.graceful_stop import GracefulStop, abort_on_next_ctrl_c
from mnist_lightning.training.callbacks.prediction_csv import PredictionCsv
from mnist_lightning.training.callbacks.progress import BAR_REFRESH, EpochProgressBar
from mnist_lightning.training.callbacks.resume import ResumeCheckpoint
from mnist_lightning.training.callbacks.resume_guard import (
    ScheduleGuard,
    check_resume_length,
    check_resume_settings,
    stop_note,
)
from mnist_lightning.training.callbacks.step_hooks import (
    LeanModelCheckpoint,
    LeanModelSummary,
    LeanSaveConfigCallback,
)
from mnist_lightning.training.callbacks.views import TensorBoardViews
from mnist_lightning.training.cli_parser import MNISTArgumentParser, MNISTTrainer
from mnist_lightning.training.config_errors import check_accelerator, config_error_message, no_checkpoint_message
from mnist_lightning.training.data import MNISTDataModule
from mnist_lightning.training.module import MNISTClassifier
from mnist_lightning.training.multi_step import check_steps_per_call
from mnist_lightning.training.quiet import (
    expect_full_checkpoint_folder,
    hide_known_noise,
    metrics_kept_aside,
    same_folder_spelled_twice,
)
from mnist_lightning.training.run_folder import default_logger, logger_folder, resume_in_place, shown_path

SUBCOMMANDS = LIGHTNING_COMMANDS
DEFAULT_BAR = {
    "class_path": f"{EpochProgressBar.__module__}.{EpochProgressBar.__name__}",
    "init_args": {"refresh_rate": BAR_REFRESH},
}


def _class(entry: Any) -> type | None:
    """The class a parsed ``class_path`` entry names (None for anything else)."""
    path = entry.get("class_path") if isinstance(entry, (dict, Namespace)) else None
    if not isinstance(path, str) or "." not in path:
        return None
    module, _, name = path.rpartition(".")
    return getattr(importlib.import_module(module), name, None)


def _is_default_bar(entry: Any) -> bool:
    args = entry.get("init_args") if isinstance(entry, (dict, Namespace)) else None
    return _class(entry) is EpochProgressBar and args is not None and args.get("refresh_rate") == BAR_REFRESH


class MNISTCLI(LightningCLI):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        cli_args = kwargs.get("args")
        self.argv = list(cli_args) if isinstance(cli_args, list) else sys.argv[1:]  # for the resume hint
        self.resume_from: Path | None = None
        self.evaluated: Path | None = None  # the checkpoint a validate/test/predict run reads
        self.resumed_step: int | None = None  # global_step of the checkpoint fit resumes from
        hide_known_noise()
        self.schedule_guard = ScheduleGuard()  # told the checkpoint in parse_arguments
        defaults = dict(kwargs.pop("trainer_defaults", None) or {})
        # a user's own --trainer.plugins replaces the atomic checkpoint IO, as any default
        defaults.setdefault("plugins", {"class_path": "mnist_lightning.training.checkpoint_io.AtomicCheckpointIO"})
        extra = defaults.pop("callbacks", None) or []
        # callbacks in trainer_defaults are always added by LightningCLI; these have no settings of their own.
        # ScheduleGuard comes first: a refused resume stops before any other callback starts the run.
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
                "checkpoint.monitor": MONITOR,
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
        if sub in ("validate", "test", "predict") and not self.config[sub].get("ckpt_path"):
            raise UserError(no_checkpoint_message(sub))  # before any run folder is made
        if sub and (ckpt := self.config[sub].get("ckpt_path")):
            root, name = logger_folder(self.config[sub].trainer)
            path = resolve_checkpoint(ckpt, root, name)
            # a clear error now rather than a traceback from deep inside Lightning
            ckpt = check_checkpoint(path, self.config[sub].model.hidden_layers if sub == "fit" else None)
            self.config[sub].ckpt_path = str(path)
            if sub == "fit":
                check_resume_settings(path, ckpt, self.config[sub].model)
                check_resume_length(path, ckpt, self.config[sub].trainer)
                self.schedule_guard.resume_from(path, ckpt)
                self.resume_from, self.resumed_step = path, int(ckpt.get("global_step", 0))
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
        if config.model.compile and self.subcommand == "fit":
            check_compile(trainer)
        if self.resume_from is None:  # nothing to guard: one callback fewer for Lightning to visit on every step
            self.trainer_defaults["callbacks"].remove(self.schedule_guard)
        if trainer.logger in (None, True):  # Lightning's default logger, minus its placeholder hp_metric=-1
            trainer.logger = default_logger(trainer)
        if self.subcommand == "fit":
            if (run := resume_in_place(trainer.logger, self.resume_from)) is not None:
                expect_full_checkpoint_folder(checkpoints_folder(run))
        else:  # validate/test/predict of a run's checkpoint log into <run>/<stage>/, not a new run folder
            resume_in_place(trainer.logger, self.evaluated, self.subcommand)
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

    before_validate = before_test = before_predict = _check_data

    def before_fit(self) -> None:
        self._check_data()
        if self.resume_from is not None and self.trainer.is_global_zero:
            self.schedule_guard.watch(Path(self.trainer.log_dir or self.trainer.default_root_dir))
            # a CSVLogger deletes its run's metrics.csv when it starts: the earlier epochs stay, as metrics-<n>.csv
            for logger in self.trainer.loggers:
                if isinstance(logger, CSVLogger) and keep_earlier_metrics(logger.log_dir) is not None:
                    metrics_kept_aside(logger.log_dir)

    def after_fit(self) -> None:
        trainer = self.trainer
        if not trainer.is_global_zero:
            return
        ckpt = trainer.checkpoint_callback
        export = next((c for c in trainer.callbacks if isinstance(c, OnnxExport)), None)
        lines = ["", "Training finished."]
        last = next((c for c in trainer.callbacks if isinstance(c, ResumeCheckpoint)), None)
        trained_here = last is not None and last.path is not None  # not in ddp_spawn's launching process
        if trained_here and (note := stop_note(trainer, self.resumed_step, last.stopped_at)):
            lines.append(f"  {note}")
        if ckpt is not None and ckpt.best_model_path:
            score = ckpt.best_model_score
            if score is None:  # ddp_spawn's workers keep the score (only the path comes back); the file has it
                score = checkpoint_val_acc(load_checkpoint(ckpt.best_model_path))
            shown = "" if score is None else f" ({MONITOR} {float(score):.4f})"
            lines.append(f"  best checkpoint : {shown_path(ckpt.best_model_path)}{shown}")
        if trained_here and last.path.is_file():
            lines.append(f"  last checkpoint : {shown_path(last.path)}")
        if (compiled := getattr(self.model, "compiled", None)) is not None and compiled.compile_seconds is not None:
            lines.append(f"  compiled step   : built in {compiled.compile_seconds:.1f} s (torch.compile, first step)")
        if export is not None and export.path is not None:
            lines.append(f"  ONNX model      : {shown_path(export.path)}")
        if export is not None and export.torch_path is not None:
            lines.append(f"  PyTorch model   : {shown_path(export.torch_path)}  (MyMNIST.load)")
        # only a TensorBoard logger writes event files; logger.log_dir, not trainer.log_dir: that is collective
        for logger in trainer.loggers:
            if isinstance(logger, TensorBoardLogger):
                lines.append(f"  TensorBoard     : tensorboard --logdir {shown_path(Path(logger.log_dir).parent)}")
            elif isinstance(logger, CSVLogger):
                lines.append(f"  metrics (CSV)   : {shown_path(logger.experiment.metrics_file_path)}")
        print("\n".join(lines), flush=True)

    def after_predict(self) -> None:
        # printed once the progress bar has closed its line, so the summary starts a line of its own in a file too
        writer = next((c for c in self.trainer.callbacks if isinstance(c, PredictionCsv)), None)
        if writer is not None and writer.report:
            print(writer.report, flush=True)


def run_cli(args: list[str] | None = None, extra_callbacks: list[Callback] | None = None, **kwargs: Any) -> MNISTCLI:
    """Build (and by default run) the CLI; ``extra_callbacks`` are added to the Trainer (benchmarks, tests)."""
    return MNISTCLI(
        MNISTClassifier,
        MNISTDataModule,
        trainer_class=MNISTTrainer,  # `--trainer.limit_train_batches 1` is one batch, not the whole epoch
        seed_everything_default=42,
        save_config_kwargs={"overwrite": True, "config_filename": CONFIG_NAME},
        parser_class=MNISTArgumentParser,  # --print_config shows the logger used
        trainer_defaults={"callbacks": extra_callbacks} if extra_callbacks else None,
        # raise instead of printing the whole usage: lightning_main turns the error into one specific paragraph
        parser_kwargs={
            "prog": program_name(),  # not __main__.py
            "exit_on_error": False,
            **{sub: {"exit_on_error": False} for sub in SUBCOMMANDS},
        },
        args=args,
        **kwargs,
    )


def lightning_main(args: list[str] | None = None) -> int:
    """``fit``/``validate``/``test``/``predict``; the exit status (UserError is the router's to report)."""
    try:
        run_cli(args)
    except argparse.ArgumentError as err:
        return report_error(config_error_message(err, sys.argv[1:] if args is None else args))
    except SIGTERMException as stop:  # GracefulStop saved a checkpoint and printed how to resume
        abort_on_next_ctrl_c()  # this process exits now
        return stop.code if isinstance(stop.code, int) else 1
    return 0
