"""Fault injection for the crash tests, loaded into a real `fit` subprocess through its config file."""

from __future__ import annotations

import atexit
import io
import os
import signal
import time
from typing import Any

import lightning as L
import torch

from mnist_lightning.training.checkpoint_io import AtomicCheckpointIO


class SignalAt(L.Callback):
    """Send ``signal`` to this process at the end of training step ``step`` ("batch"), or at the start of the epoch
    that follows step ``step`` ("epoch_start"): right after the end-of-epoch checkpoint."""

    def __init__(self, step: int, signal: str = "SIGKILL", when: str = "batch", rank: int | None = None) -> None:
        self.step, self.signal, self.when, self.rank = step, signal, when, rank  # rank: only that DDP rank fires

    def _fire(self, trainer: L.Trainer) -> None:
        if self.rank is not None and trainer.global_rank != self.rank:
            return
        if trainer.global_step == self.step and not trainer.sanity_checking:
            os.kill(os.getpid(), getattr(signal, self.signal))

    def on_train_batch_end(self, trainer: L.Trainer, *args: Any) -> None:
        if self.when == "batch":
            self._fire(trainer)

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.when == "epoch_start":
            self._fire(trainer)


class CtrlCAtExit(L.Callback):
    """A second Ctrl-C while the stopped process exits: SIGINT from inside an atexit callback, registered when the
    stop's exception reaches the callbacks (so it runs before the atexit callbacks of torch and TensorBoard)."""

    def on_exception(self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException) -> None:
        atexit.register(self._second_ctrl_c)

    @staticmethod
    def _second_ctrl_c() -> None:
        os.kill(os.getpid(), signal.SIGINT)
        for _ in range(100):  # the handler runs within the first iterations; a KeyboardInterrupt would end the loop
            time.sleep(0.01)


class KillDuringSave(AtomicCheckpointIO):
    """SIGKILL half-way through writing the ``at``-th ``last.ckpt``: a half-written temp file is left behind."""

    def __init__(self, at: int) -> None:
        super().__init__()
        self.at, self.count = at, 0
        self.target = ""

    def save_checkpoint(self, checkpoint: dict[str, Any], path: Any, storage_options: Any = None) -> None:
        self.target = os.path.basename(path)
        super().save_checkpoint(checkpoint, path, storage_options)

    def write(self, checkpoint: dict[str, Any], f: Any) -> None:
        if self.target == "last.ckpt":
            self.count += 1
            if self.count == self.at:
                buffer = io.BytesIO()
                torch.save(checkpoint, buffer)
                f.write(buffer.getvalue()[: len(buffer.getvalue()) // 2])
                f.flush()
                os.kill(os.getpid(), signal.SIGKILL)
        super().write(checkpoint, f)
