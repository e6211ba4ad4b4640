"""Test-only callbacks loaded into a real `fit` subprocess through its config file."""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

import lightning as L
import torch


def image_key(image: torch.Tensor) -> str:
    """A stable key for one image given as float pixels in [0, 1] (or as the original uint8 row)."""
    pixels = image.mul(255).round() if image.is_floating_point() else image
    return hashlib.md5(pixels.to(torch.uint8).cpu().numpy().tobytes()).hexdigest()


class RecordSeen(L.Callback):
    """Each rank writes ``rank<R>.json``: the training images it saw per epoch and the metrics it ended with."""

    def __init__(self, folder: str) -> None:
        self.folder = Path(folder)
        self.seen: dict[int, list[str]] = {}

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule, batch, batch_idx: int) -> None:
        self.seen.setdefault(trainer.current_epoch, []).extend(image_key(row) for row in batch[0])

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        record = {
            "rank": trainer.global_rank,
            "world_size": trainer.world_size,
            "seen": self.seen,
            "metrics": {k: float(v) for k, v in trainer.callback_metrics.items()},
        }
        self.folder.mkdir(parents=True, exist_ok=True)
        (self.folder / f"rank{trainer.global_rank}.json").write_text(json.dumps(record))


class RecordAugment(L.Callback):
    """Each rank writes ``augment<R>.json``: per step, a key of the model's augmentation applied to one fixed batch
    with the random state that step starts from (drawn in a forked RNG, so training itself is unchanged)."""

    def __init__(self, folder: str) -> None:
        self.folder = Path(folder)
        self.keys: dict[int, str] = {}

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule, batch, batch_idx: int) -> None:
        with torch.random.fork_rng(devices=[]):
            fixed = torch.linspace(0, 1, 4 * 784).reshape(4, 784)
            self.keys[trainer.global_step] = image_key(pl_module.augment(fixed).reshape(-1))

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        (self.folder / f"augment{trainer.global_rank}.json").write_text(json.dumps(self.keys))

    def on_exception(self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException) -> None:
        self.on_train_end(trainer, pl_module)


class SlowEpochs(L.Callback):
    """Sleep ``seconds`` after each training epoch: widens the window in which a test can kill a run mid-way."""

    def __init__(self, seconds: float = 1.0) -> None:
        self.seconds = seconds

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        time.sleep(self.seconds)
