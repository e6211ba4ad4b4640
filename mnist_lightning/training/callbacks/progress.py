"""The CLI's default progress bar: Lightning's tqdm bar whose lines end where a fit's messages start, and plain
lines where stdout is no terminal (a file, a pipe, a CI log), where every tqdm redraw would be kept."""

from __future__ import annotations

import sys

import lightning as L
from lightning.pytorch.callbacks import TQDMProgressBar
from lightning.pytorch.callbacks.progress.tqdm_progress import Tqdm

from mnist_lightning.training.callbacks.step_hooks import batch_hooks_where_used

# Lightning's default bar redraws after every step: ~0.2 ms each, >10 % of an epoch here; every 20 steps still
# moves smoothly
BAR_REFRESH = 20
STALE_AT_EPOCH_END = ("train/loss", "train/acc")


@batch_hooks_where_used
class EpochProgressBar(TQDMProgressBar):
    """``TQDMProgressBar`` with ``leave=True``: each epoch's bar is closed when the epoch ends, so Lightning's
    "`Trainer.fit` stopped" starts a line of its own instead of being spliced into the bar (and the bar is not drawn
    again after it). Where stdout is not a terminal it draws no bars at all and prints one line per finished epoch.
    """

    def __init__(self, refresh_rate: int = BAR_REFRESH, process_position: int = 0, leave: bool = True) -> None:
        super().__init__(refresh_rate, process_position, leave)
        self._tty: bool | None = None  # whether stdout is a terminal, asked once: the bar's hooks ask every step

    @property
    def would_draw(self) -> bool:
        """Enabled on this rank, as Lightning's bar decides (False on every rank but zero)."""
        return TQDMProgressBar.is_enabled.fget(self)

    @property
    def is_enabled(self) -> bool:
        if self._tty is None:
            self._tty = sys.stdout.isatty()
        return self._tty and self.would_draw

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        super().on_train_epoch_end(trainer, pl_module)
        if self.would_draw and not self.is_enabled:
            # train/loss and train/acc are logged by the module's on_train_epoch_end, which Lightning runs after this
            # hook: here they are still the previous epoch's, so the line shows only this epoch's numbers
            fresh = {k: v for k, v in self.get_metrics(trainer, pl_module).items() if k not in STALE_AT_EPOCH_END}
            metrics = ", ".join(f"{k}={Tqdm.format_num(v)}" for k, v in fresh.items())
            print(f"Epoch {trainer.current_epoch}: {self.total_train_batches} batches, {metrics}", flush=True)
