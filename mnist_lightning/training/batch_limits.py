"""The Trainer the CLI builds: Lightning's own, with ``limit_*_batches`` read integer first from the command line.

Lightning types these ``float | int | None``; jsonargparse tries the union in that order, so ``1`` became ``1.0``,
which Lightning reads as the whole epoch. Here the union is ``int | float | None``: ``1`` is one batch, ``1.0`` all
of them, ``0.25`` a quarter (in a config file as on the command line).
"""

from __future__ import annotations

from typing import Any

import lightning as L


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
