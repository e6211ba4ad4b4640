"""The one command router, for ``python -m mnist_lightning`` and the installed ``mnist-lightning`` alike.

It imports nothing heavy itself: ``serve`` and ``predict-onnx`` load only the torch-free ``inference`` package,
``export`` loads torch, and the Lightning subcommands (``fit``, ``validate``, ``test``, ``predict``, ``--help``)
load the LightningCLI. Every command's :class:`UserError` ends as one ``error:`` paragraph and exit status 2.
"""

from __future__ import annotations

import importlib
import os
import sys

from mnist_lightning.common.errors import UserError, report_error

# every command with its line of the top-level help, in the order shown; the first four are the LightningCLI's
HELP = {
    "fit": "train a model (--config configs/base.yaml; --ckpt_path last continues a run)",
    "validate": "score a trained checkpoint on the validation split (--ckpt_path best|last|FILE)",
    "test": "score a trained checkpoint on the MNIST test set (--ckpt_path best|last|FILE)",
    "predict": "predict the test set or your own images (--data.predict_path) from a checkpoint",
    "export": "write a checkpoint's ONNX model (and MyMNIST .pt) without training",
    "predict-onnx": "predict images with an exported ONNX model, without torch",
    "serve": "the draw-a-digit web page and JSON API for an ONNX model",
    "tune": "search hyperparameters with Optuna, each trial a real fit",
}
LIGHTNING_COMMANDS = ("fit", "validate", "test", "predict")
# command -> (module, function taking the remaining arguments); the LIGHTNING_COMMANDS go to the LightningCLI
COMMANDS = {
    "serve": ("mnist_lightning.inference.serve", "serve_main"),
    "predict-onnx": ("mnist_lightning.inference.onnx_predict", "predict_onnx_main"),
    "export": ("mnist_lightning.model.export_command", "export_main"),
    "tune": ("mnist_lightning.tune.command", "tune_main"),
}
LIGHTNING = ("mnist_lightning.training.cli", "lightning_main")


def program_name() -> str:
    """How the user started us: ``mnist-lightning`` (the console script) or ``python -m mnist_lightning``."""
    name = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else ""
    return name if name.startswith("mnist-lightning") else "python -m mnist_lightning"


def usage() -> str:
    """The top-level help: every command with its line."""
    prog = program_name()
    width = max(map(len, HELP))
    lines = [f"usage: {prog} COMMAND [options]", "", "commands:"]
    lines += [f"  {name:<{width}}  {line}" for name, line in HELP.items()]
    lines += ["", f"`{prog} COMMAND --help` lists a command's options."]
    return "\n".join(lines)


def _no_such_command(command: str) -> UserError:
    what = f"unknown command {command!r}" if command else "no command given"
    prog = program_name()
    return UserError(
        f"{what}. The commands are {', '.join(HELP)}: run `{prog} COMMAND [options]` "
        f"(`{prog} --help` says what each does, `{prog} COMMAND --help` lists its options)."
    )


def main(args: list[str] | None = None) -> int:
    """Run one command; returns the exit status. ``args`` None reads ``sys.argv``."""
    argv = sys.argv[1:] if args is None else list(args)
    command = argv[0] if argv else ""
    try:
        if command in ("-h", "--help"):
            print(usage())
            return 0
        # an option first (-c CONFIG, --print_config) is the LightningCLI's own top-level form
        if command not in HELP and not command.startswith("-"):
            raise _no_such_command(command)
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
