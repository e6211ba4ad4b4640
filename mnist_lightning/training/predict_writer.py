"""``predict``: a Lightning ``BasePredictionWriter`` that turns predictions into a CSV and a printed summary."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import BasePredictionWriter

from mnist_lightning.common.predictions import Prediction, predictions, summary, write_csv


class PredictionCsv(BasePredictionWriter):
    """Write ``file, digit, probability, top3, label`` for every predicted image to ``output`` (default
    ``predictions.csv`` in the run folder) and print a short table, or the accuracy on MNIST's test set."""

    def __init__(self, output: str | None = None, enabled: bool = True) -> None:
        super().__init__(write_interval="epoch")  # one CSV, written once every prediction is in
        self.output, self.enabled = output, enabled
        self.path: Path | None = None
        self.rows: list[Prediction] = []

    def write_on_epoch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Sequence[Any], batch_indices: Any
    ) -> None:
        if not self.enabled or not trainer.is_global_zero or not outputs:
            return
        probs = torch.cat([p["probabilities"] for p in outputs]).float().cpu().numpy()
        labels = None
        if all("labels" in p for p in outputs):
            labels = torch.cat([p["labels"] for p in outputs]).cpu().numpy()
        files = getattr(trainer.datamodule, "predict_files", None)
        names = [str(f) for f in files] if files else [f"mnist-test/{i:05d}" for i in range(len(probs))]
        self.rows = predictions(names, probs, labels)
        target = (
            Path(self.output) if self.output else Path(trainer.log_dir or trainer.default_root_dir) / "predictions.csv"
        )
        self.path = write_csv(target, self.rows)
        print(summary(self.rows, self.path), flush=True)
