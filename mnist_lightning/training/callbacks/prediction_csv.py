"""``predict``: a callback that turns predictions into a CSV and the summary the CLI prints."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L
import torch

from mnist_lightning.common.layout import predictions_csv
from mnist_lightning.common.predictions import Prediction, predictions, summary, write_csv
from mnist_lightning.training.callbacks.step_hooks import batch_hooks_where_used


@batch_hooks_where_used
class PredictionCsv(L.Callback):
    """Write ``file, digit, probability, top3, label`` for every predicted image to ``output`` (default
    ``predictions.csv`` in the predict run's folder) and keep a short table, or the accuracy on MNIST's test set, in
    ``report`` (the CLI prints it once the progress bar is done).

    A plain callback rather than Lightning's ``BasePredictionWriter``: that one asks the loader for the indices of
    every batch (and warns that ours has none), which a CSV in prediction order does not need.
    """

    def __init__(self, output: str | None = None, enabled: bool = True) -> None:
        self.output, self.enabled = output, enabled
        self.path: Path | None = None
        self.rows: list[Prediction] = []
        self.report: str | None = None
        self._outputs: list[dict[str, torch.Tensor]] = []

    def on_predict_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._outputs, self.report = [], None

    def on_predict_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int, *args: Any
    ) -> None:
        if self.enabled and trainer.is_global_zero and isinstance(outputs, dict):
            self._outputs.append(outputs)

    def on_predict_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        outputs, self._outputs = self._outputs, []
        if not self.enabled or not trainer.is_global_zero or not outputs:
            return
        probs = torch.cat([p["probabilities"] for p in outputs]).float().cpu().numpy()
        labels = None
        if all("labels" in p for p in outputs):
            labels = torch.cat([p["labels"] for p in outputs]).cpu().numpy()
        files = getattr(trainer.datamodule, "predict_files", None)
        names = [str(f) for f in files] if files else [f"mnist-test/{i:05d}" for i in range(len(probs))]
        self.rows = predictions(names, probs, labels)
        if not self.output and trainer.fast_dev_run:  # a smoke test writes only the file it was told to
            return
        target = Path(self.output) if self.output else predictions_csv(trainer.log_dir or trainer.default_root_dir)
        self.path = write_csv(target, self.rows)
        self.report = summary(self.rows, self.path)
