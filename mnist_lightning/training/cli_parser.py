"""The CLI's argument parser and the default logger it fills in, so that ``--print_config`` shows the logger a run
will use (as the run's ``config.yaml`` does) instead of ``logger: null``."""

from __future__ import annotations

import os
import warnings
from typing import Any

from jsonargparse import Namespace
from lightning.pytorch.cli import LightningArgumentParser

from mnist_lightning.common.layout import LOG_NAME

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


class MNISTArgumentParser(LightningArgumentParser):
    """``--print_config`` dumps the config before ``before_instantiate_classes`` fills in the logger: fill it in the
    same way here (a no-op for the run's config.yaml, which is dumped after)."""

    def dump(self, cfg: Namespace, *args: Any, **kwargs: Any) -> str:
        trainer = cfg.get("trainer") if isinstance(cfg, Namespace) else None
        if isinstance(trainer, Namespace) and trainer.get("logger") in (None, True):
            cfg = cfg.clone()
            cfg.trainer.logger = default_logger(trainer)
        with warnings.catch_warnings():
            # Lightning's SaveConfigCallback passes skip_none, which jsonargparse 4.49 deprecates: their call, not
            # ours (the same message pyproject.toml hides where it comes from lightning.pytorch.cli)
            warnings.filterwarnings(
                "ignore", message=r"(?s)\s*skip_none parameter was deprecated", category=DeprecationWarning
            )
            return super().dump(cfg, *args, **kwargs)
