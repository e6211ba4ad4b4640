"""``python -m mnist_lightning fit|validate|test|predict|export|predict-onnx``: LightningCLI, clear errors, summary."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from lightning.pytorch import Trainer
from lightning.pytorch.callbacks import Callback, ModelCheckpoint
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI
from lightning.pytorch.loggers import TensorBoardLogger

from mnist_lightning.data import MNISTDataModule
from mnist_lightning.errors import UserError
from mnist_lightning.export import OnnxExport, load_checkpoint
from mnist_lightning.module import MNISTClassifier
from mnist_lightning.predict_writer import PredictionCsv
from mnist_lightning.runs import BEST_FILENAME, resolve_checkpoint
from mnist_lightning.views import TensorBoardViews


class MNISTCLI(LightningCLI):
    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        # always-on callbacks, configurable as --checkpoint.* and --export.*
        parser.add_lightning_class_args(ModelCheckpoint, "checkpoint")
        parser.set_defaults(
            {
                "checkpoint.monitor": "val/acc",
                "checkpoint.mode": "max",
                "checkpoint.save_last": True,
                "checkpoint.filename": BEST_FILENAME,
                "checkpoint.auto_insert_metric_name": False,
            }
        )
        parser.add_lightning_class_args(OnnxExport, "export")
        parser.add_lightning_class_args(TensorBoardViews, "views")
        parser.add_lightning_class_args(PredictionCsv, "predictions")

    def instantiate_trainer(self, **kwargs: Any) -> Trainer:
        trainer_cfg = self._get(self.config_init, "trainer", default={})
        if trainer_cfg.get("logger") in (None, True):  # the default; a configured logger is left as it is
            # Lightning's default logger, minus its placeholder hp_metric=-1: views.py logs real metrics as hparams
            root = trainer_cfg.get("default_root_dir") or os.getcwd()
            kwargs["logger"] = TensorBoardLogger(save_dir=root, default_hp_metric=False)
        return super().instantiate_trainer(**kwargs)

    def parse_arguments(self, parser: LightningArgumentParser, args: object) -> None:
        super().parse_arguments(parser, args)
        sub = self.config.get("subcommand")
        if sub and (ckpt := self.config[sub].get("ckpt_path")):
            root = self.config[sub].trainer.default_root_dir or "."
            path = resolve_checkpoint(ckpt, root)
            load_checkpoint(path)  # a clear error now rather than a traceback from deep inside Lightning
            self.config[sub].ckpt_path = str(path)

    def after_fit(self) -> None:
        trainer = self.trainer
        if not trainer.is_global_zero:
            return
        ckpt = trainer.checkpoint_callback
        export = next((c for c in trainer.callbacks if isinstance(c, OnnxExport)), None)
        lines = ["", "Training finished."]
        if ckpt is not None and ckpt.best_model_path:
            lines.append(f"  best checkpoint : {ckpt.best_model_path} (val/acc {float(ckpt.best_model_score):.4f})")
            lines.append(f"  last checkpoint : {ckpt.last_model_path}")
        if export is not None and export.path is not None:
            lines.append(f"  ONNX model      : {export.path}")
        if trainer.log_dir:
            lines.append(f"  TensorBoard     : tensorboard --logdir {Path(trainer.log_dir).parent}")
        print("\n".join(lines), flush=True)


def run_cli(args: list[str] | None = None, extra_callbacks: list[Callback] | None = None) -> MNISTCLI:
    """Build and run the CLI; ``extra_callbacks`` are added to the Trainer (benchmarks, tests)."""
    return MNISTCLI(
        MNISTClassifier,
        MNISTDataModule,
        seed_everything_default=42,
        save_config_kwargs={"overwrite": True},
        trainer_defaults={"callbacks": extra_callbacks} if extra_callbacks else None,
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
    return 0


def main_exit() -> None:
    """Console-script entry point (``mnist-lightning ...``)."""
    sys.exit(main())
