"""Which run folder a CLI command writes into, and how the CLI prints paths.

A ``fit`` resumed from a run's checkpoint continues in that run's folder; ``validate``/``test``/``predict`` of a
run's checkpoint log into ``<run>/<stage>/``; anything else gets the logger's next version.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from jsonargparse import Namespace

from mnist_lightning.common.layout import LOG_NAME, evaluation_version, run_of_checkpoint

DEFAULT_LOGGER = "lightning.pytorch.loggers.TensorBoardLogger"


def default_logger(trainer: Namespace) -> Namespace:
    """Lightning's default logger for this trainer config, minus its placeholder ``hp_metric=-1``."""
    return Namespace(
        class_path=DEFAULT_LOGGER,
        init_args=Namespace(
            # as Trainer spells its default logger's save_dir, so ModelCheckpoint keeps its best-k state
            save_dir=os.path.normpath(os.path.expanduser(trainer.default_root_dir or os.getcwd())),
            name=LOG_NAME,
            version=None,
            default_hp_metric=False,
        ),
    )


def shown_path(path: str | os.PathLike) -> str:
    """One spelling for every path the CLI prints: relative to the working folder when inside it, else absolute."""
    full = os.path.abspath(path)
    inside = os.path.commonpath([full, os.getcwd()]) == os.getcwd()
    return os.path.relpath(full) if inside else full


def logger_folder(trainer: Namespace) -> tuple[str, str | None]:
    """(save_dir, name) of the configured logger, where ``best``/``last`` are looked up (any name: None)."""
    logger = trainer.logger
    if logger in (None, True):
        return trainer.default_root_dir or ".", LOG_NAME
    args = logger.get("init_args") if isinstance(logger, (dict, Namespace)) else None
    if args is not None and args.get("save_dir") is not None:
        return str(args.get("save_dir")), args.get("name")
    return trainer.default_root_dir or ".", None


def resume_in_place(logger: Any, ckpt: Path | None, subfolder: str | None = None) -> Path | None:
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
        args.version = evaluation_version(run, subfolder)
    else:
        args.version = int(number) if run.name.startswith("version_") and number.isdigit() else run.name
    return run
