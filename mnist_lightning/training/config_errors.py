"""One specific paragraph for a bad command line or config file, instead of jsonargparse's full usage dump, and for
an accelerator or device count that is not there (before the Trainer is built)."""

from __future__ import annotations

import argparse
import re
from pathlib import Path
from typing import Any

import torch
import yaml
from lightning.pytorch.accelerators import CUDAAccelerator, MPSAccelerator

from mnist_lightning.common.errors import UserError

HELP = "Run `python -m mnist_lightning fit --help` for every option, or add --print_config to see the resolved config."


def _config_files(argv: list[str]) -> list[str]:
    files = []
    for i, arg in enumerate(argv):
        if arg == "--config" and i + 1 < len(argv):
            files.append(argv[i + 1])
        elif arg.startswith("--config="):
            files.append(arg.removeprefix("--config="))
    return files


def _yaml_problem(argv: list[str]) -> str | None:
    """Name the config file that is not valid YAML, with the line and column of the problem."""
    for name in _config_files(argv):
        try:
            yaml.safe_load(Path(name).read_text())
        except yaml.YAMLError as err:
            mark = getattr(err, "problem_mark", None)
            where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
            problem = getattr(err, "problem", None) or str(err).splitlines()[0]
            return f"config file {name} is not valid YAML{where}: {problem}. Fix the YAML syntax there."
        except OSError:
            continue
    return None


def config_error_message(err: argparse.ArgumentError, argv: list[str]) -> str:
    msg = " ".join(str(err).split())  # one line
    for python, plain in (("a <class 'int'>", "an integer"), ("a <class 'float'>", "a number")):
        msg = msg.replace(python, plain)
    msg = re.sub(r"<class '(\w+)'>", r"\1", msg)
    if "Problems parsing config" in msg and (problem := _yaml_problem(argv)):
        return problem
    if m := re.search(r'key "config": File does not exist: (.+)$', msg):
        name = m.group(1).strip("'")
        return f"config file {name} does not exist; check the path given to --config (e.g. configs/base.yaml)."
    if m := re.search(r"does not accept option '([^']+)'", msg) or re.search(r"unrecognized arguments: (.+)$", msg):
        return f"unknown option {m.group(1)}: no such setting (check its spelling and section). {HELP}"
    if m := re.search(
        r"Parser key \"([^\"]+)\".*class_path '([^']+)': the following arguments are required: ([\w, ]+)", msg
    ):
        key, cls, needed = m.group(1), m.group(2).rsplit(".", 1)[-1], m.group(3).split(", ")
        flags = " ".join(f"--{key}.{name} VALUE" for name in needed)
        return f"{key} {cls} needs {', '.join(needed)}; add {flags} (e.g. --{key}.{needed[0]} .). {HELP}"
    if m := re.search(r'Parser key "([^"]+)": (.+)$', msg):
        return f"invalid value for {m.group(1)}: {m.group(2)}. {HELP}"
    return f"invalid command line or config: {msg}. {HELP}"


def no_checkpoint_message(stage: str) -> str:
    """``validate``/``test``/``predict`` without ``--ckpt_path``: they would read a freshly built, untrained net."""
    what = "predict with" if stage == "predict" else "score"
    return (
        f"{stage} needs --ckpt_path: without it, it would {what} the random weights of an untrained model and "
        f"create a run folder for that. To {stage} a trained run, add --ckpt_path best (its best checkpoint; 'last' "
        "for the newest, or a .ckpt file); to train one first: python -m mnist_lightning fit --config "
        "configs/base.yaml."
    )


FIX = "Use --trainer.accelerator cpu, or auto (a GPU when there is one, else the CPU)."


def _found() -> str:
    build = f"CUDA {torch.version.cuda} build" if torch.version.cuda else "CPU-only build, no CUDA"
    return f"torch {torch.__version__} ({build}) sees {torch.cuda.device_count()} CUDA GPU(s)"


def check_accelerator(accelerator: Any, devices: Any) -> None:
    """Raise :class:`UserError` when ``accelerator`` ("gpu"/"cuda"/"mps") or ``devices`` GPUs are not available."""
    if not isinstance(accelerator, str):
        return  # an Accelerator class or instance: its own checks apply
    name = accelerator.lower()
    if name in ("gpu", "cuda"):
        available = CUDAAccelerator.auto_device_count() if CUDAAccelerator.is_available() else 0
        if name == "gpu" and not available and MPSAccelerator.is_available():
            return  # Lightning's "gpu" also means Apple's MPS
        if not available:
            raise UserError(
                f"trainer.accelerator {accelerator!r} needs a CUDA GPU, but none was found: {_found()}. {FIX}"
            )
        wanted = int(devices) if isinstance(devices, int) or (isinstance(devices, str) and devices.isdigit()) else 0
        if wanted > available:
            raise UserError(
                f"trainer.devices {wanted} asks for {wanted} GPUs, but this machine has {available}: {_found()}. "
                f"Use --trainer.devices {available} (or -1 for all of them)."
            )
    elif name == "mps" and not MPSAccelerator.is_available():
        raise UserError(f"trainer.accelerator 'mps' needs an Apple-silicon GPU, but none was found: {_found()}. {FIX}")
