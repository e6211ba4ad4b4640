"""``python -m mnist_lightning fit|validate|test|predict|export|serve|predict-onnx``: LightningCLI, clear errors."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO
from lightning.pytorch import Trainer
from lightning.pytorch.callbacks import Callback, ModelCheckpoint, ProgressBar, TQDMProgressBar
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI
from lightning.pytorch.utilities.exceptions import SIGTERMException

from mnist_lightning.checkpoint_io import AtomicCheckpointIO
from mnist_lightning.config_errors import config_error_message
from mnist_lightning.data import MNISTDataModule
from mnist_lightning.errors import UserError
from mnist_lightning.export import OnnxExport
from mnist_lightning.mnist_files import FILES, raw_folder
from mnist_lightning.module import MNISTClassifier
from mnist_lightning.predict_writer import PredictionCsv
from mnist_lightning.resume import GracefulStop, ResumeCheckpoint
from mnist_lightning.runs import BEST_FILENAME, check_checkpoint, resolve_checkpoint, run_logger
from mnist_lightning.views import TensorBoardViews

SUBCOMMANDS = ("fit", "validate", "test", "predict")
BAR_REFRESH = 20  # steps between progress-bar redraws


class MNISTCLI(LightningCLI):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        cli_args = kwargs.get("args")
        self.argv = list(cli_args) if isinstance(cli_args, list) else sys.argv[1:]  # for the resume hint
        self.resume_from: Path | None = None
        super().__init__(*args, **kwargs)

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        # always-on callbacks, each configurable: --checkpoint.*, --export.*, --resume.*, --views.*, --predictions.*
        parser.add_lightning_class_args(ModelCheckpoint, "checkpoint")
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

    def parse_arguments(self, parser: LightningArgumentParser, args: object) -> None:
        super().parse_arguments(parser, args)
        sub = self.config.get("subcommand")
        if sub and (ckpt := self.config[sub].get("ckpt_path")):
            root = self.config[sub].trainer.default_root_dir or "."
            path = resolve_checkpoint(ckpt, root)
            # a clear error now rather than a traceback from deep inside Lightning
            check_checkpoint(path, self.config[sub].model.hidden_layers if sub == "fit" else None)
            self.config[sub].ckpt_path = str(path)
            if sub == "fit":
                self.resume_from = path

    def _check_data(self) -> None:
        """Read and check MNIST before the trainer creates a run folder, so bad data leaves no trace behind."""
        dm = self.datamodule
        if dm.hparams.download and not all((raw_folder(dm.hparams.data_dir) / name).is_file() for name in FILES):
            return  # a download is due: Lightning's prepare_data does it once per machine, not every DDP rank
        dm.prepare_data()
        dm.setup()  # decodes and caches the splits; the trainer's own setup() reuses them

    before_fit = before_validate = before_test = before_predict = _check_data

    def instantiate_trainer(self, **kwargs: Any) -> Trainer:
        config = self.config[self.subcommand].trainer
        if config.logger in (None, True):  # the default logger; a configured one is left as it is
            # Lightning's default minus its placeholder hp_metric=-1 (views.py logs real metrics as hparams); a
            # resumed fit continues in its checkpoint's own run folder: one TensorBoard run, checkpoints together
            kwargs["logger"] = run_logger(config.default_root_dir or os.getcwd(), self.resume_from)
        trainer = super().instantiate_trainer(**kwargs)
        trainer.callbacks.append(GracefulStop(self.argv))
        bar = trainer.progress_bar_callback
        if type(bar) is TQDMProgressBar and not any(isinstance(c, ProgressBar) for c in config.callbacks or []):
            # Lightning's default bar redraws after every step: ~0.2 ms each, >10 % of an epoch here; every
            # BAR_REFRESH steps still moves smoothly (a configured bar is left as it is)
            trainer.callbacks[trainer.callbacks.index(bar)] = TQDMProgressBar(refresh_rate=BAR_REFRESH)
        if type(trainer.strategy.checkpoint_io) is TorchCheckpointIO:  # the default; a user's own IO is kept
            trainer.strategy.checkpoint_io = AtomicCheckpointIO()
        return trainer

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
        log_dir = trainer.logger.log_dir if trainer.logger else None  # not trainer.log_dir: that is collective
        if log_dir:
            lines.append(f"  TensorBoard     : tensorboard --logdir {Path(log_dir).parent}")
        print("\n".join(lines), flush=True)


def run_cli(args: list[str] | None = None, extra_callbacks: list[Callback] | None = None) -> MNISTCLI:
    """Build and run the CLI; ``extra_callbacks`` are added to the Trainer (benchmarks, tests)."""
    return MNISTCLI(
        MNISTClassifier,
        MNISTDataModule,
        seed_everything_default=42,
        save_config_kwargs={"overwrite": True},
        trainer_defaults={"callbacks": extra_callbacks} if extra_callbacks else None,
        # raise instead of printing the whole usage: main() turns the error into one specific paragraph
        parser_kwargs={"exit_on_error": False, **{sub: {"exit_on_error": False} for sub in SUBCOMMANDS}},
        args=args,
    )


def main(args: list[str] | None = None) -> int:
    argv = sys.argv[1:] if args is None else args
    try:
        if argv[:1] == ["export"]:
            from mnist_lightning.export import export_main

            export_main(argv[1:])
        elif argv[:1] == ["serve"]:
            from mnist_lightning.serve import serve_main

            serve_main(argv[1:])
        elif argv[:1] == ["predict-onnx"]:
            from mnist_lightning.onnx_predict import main as onnx_main

            return onnx_main(argv[1:])
        else:
            run_cli(args)  # None: LightningCLI reads sys.argv itself (and does not warn about it)
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except argparse.ArgumentError as err:
        print(f"error: {config_error_message(err, argv)}", file=sys.stderr)
        return 2
    except SIGTERMException as stop:  # GracefulStop saved a checkpoint and printed how to resume
        return stop.code if isinstance(stop.code, int) else 1
    return 0


def main_exit() -> None:
    """Console-script entry point (``mnist-lightning ...``)."""
    sys.exit(main())
