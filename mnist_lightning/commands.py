"""The one command router, for ``python -m mnist_lightning`` and the installed ``mnist-lightning`` alike.

It imports nothing heavy itself: ``serve`` and ``predict-onnx`` load only the torch-free ``inference`` package,
``export`` loads torch, and the Lightning subcommands (``fit``, ``validate``, ``test``, ``predict``, ``--help``)
load the LightningCLI. Every command's :class:`UserError` ends as one ``error:`` paragraph and exit status 2.
"""

from __future__ import annotations

import importlib
import sys

from mnist_lightning.common.errors import UserError, report_error

# command -> (module, function taking the remaining arguments); anything else goes to the LightningCLI
COMMANDS = {
    "serve": ("mnist_lightning.inference.serve", "serve_main"),
    "predict-onnx": ("mnist_lightning.inference.onnx_predict", "predict_onnx_main"),
    "export": ("mnist_lightning.model.export_command", "export_main"),
    "tune": ("mnist_lightning.tune.command", "tune_main"),
}
LIGHTNING = ("mnist_lightning.training.cli", "lightning_main")


def main(args: list[str] | None = None) -> int:
    """Run one command; returns the exit status. ``args`` None reads ``sys.argv``."""
    argv = sys.argv[1:] if args is None else list(args)
    command = argv[0] if argv else ""
    try:
        if command in COMMANDS:
            module, function = COMMANDS[command]
            getattr(importlib.import_module(module), function)(argv[1:])
            return 0
        module, function = LIGHTNING
        # None: LightningCLI reads sys.argv itself (and does not warn about being given both)
        return getattr(importlib.import_module(module), function)(args)
    except UserError as err:
        return report_error(err)


def main_exit() -> None:
    """Console-script entry point (``mnist-lightning ...``)."""
    sys.exit(main())
