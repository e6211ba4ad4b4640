"""What the CLI parses differently from a plain LightningCLI.

- :class:`MNISTArgumentParser`: ``--print_config`` shows the logger a run will use (as its ``config.yaml`` does)
  instead of ``logger: null``.
- :class:`MNISTTrainer`: ``limit_*_batches`` read integer first. Lightning types them ``float | int | None`` and
  jsonargparse tries the union in that order, so ``1`` became ``1.0``, the whole epoch; here ``1`` is one batch,
  ``1.0`` all of them, ``0.25`` a quarter (in a config file as on the command line).
"""

from __future__ import annotations

import warnings
from typing import Any

import lightning as L
from jsonargparse import Namespace
from lightning.pytorch.cli import LightningArgumentParser

from mnist_lightning.training.run_folder import default_logger


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


class MNISTTrainer(L.Trainer):
    def __init__(
        self,
        *,
        limit_train_batches: int | float | None = None,
        limit_val_batches: int | float | None = None,
        limit_test_batches: int | float | None = None,
        limit_predict_batches: int | float | None = None,
        **kwargs: Any,
    ) -> None:
        """
        Args:
            limit_train_batches: training batches per epoch: an int is a count, a float a fraction (1.0: all).
            limit_val_batches: validation batches per check: an int is a count, a float a fraction, 0 none.
            limit_test_batches: test batches: an int is a count, a float a fraction.
            limit_predict_batches: predict batches: an int is a count, a float a fraction.
            **kwargs: every other ``lightning.Trainer`` argument.
        """
        super().__init__(
            limit_train_batches=limit_train_batches,
            limit_val_batches=limit_val_batches,
            limit_test_batches=limit_test_batches,
            limit_predict_batches=limit_predict_batches,
            **kwargs,
        )
