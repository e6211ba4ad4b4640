"""TensorBoard beyond curves: confusion matrices, per-digit accuracy, misclassified digits, learning rate, and
hparams with real metrics (best ``val/acc``, ``test/acc``) for the HPARAMS tab.

Everything happens at evaluation time or once per epoch; the per-training-step path is untouched.
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from lightning.pytorch.loggers import TensorBoardLogger
from PIL import Image
from torchmetrics.classification import MulticlassConfusionMatrix

from mnist_lightning.common.contract import INPUT_SIZE, MONITOR, NUM_CLASSES
from mnist_lightning.common.errors import UserError
from mnist_lightning.common.layout import EVENTS_GLOB, run_of_checkpoint
from mnist_lightning.model.checkpoints import checkpoint_val_acc, load_checkpoint
from mnist_lightning.training.callbacks.figures import confusion_image, misclassified_grid
from mnist_lightning.training.callbacks.step_hooks import batch_hooks_where_used

# the HPARAMS tab's metric columns; each run's value is the last one logged under that tag
HP_METRICS = ("hp/best_val_acc", "hp/test_acc")


@batch_hooks_where_used
class TensorBoardViews(L.Callback):
    """Per ``val``/``test`` epoch: ``{stage}/confusion_matrix`` and ``{stage}/misclassified`` images and
    ``{stage}/acc_digit_0..9`` scalars; ``train/lr`` every ``log_every_n_steps`` optimizer steps; hparams with
    ``hp/best_val_acc`` after ``fit`` and ``hp/test_acc`` after ``test`` (written into the tested checkpoint's own
    run, so one row per run)."""

    def __init__(self, enabled: bool = True, misclassified: int = 64, hparams: bool = True) -> None:
        if misclassified < 0:
            raise UserError(f"views.misclassified must be >= 0 (0: no grid), got {misclassified}.")
        self.enabled, self.misclassified, self.hparams = enabled, misclassified, hparams
        # Every rank evaluates the whole val/test set here (those loaders are not sharded): no sum across ranks.
        self.confmat = MulticlassConfusionMatrix(NUM_CLASSES, validate_args=False, sync_on_compute=False)
        self._wrong: list[tuple[torch.Tensor, ...]] = []

    def _active(self, trainer: L.Trainer) -> bool:
        return self.enabled and not trainer.sanity_checking and bool(trainer.loggers)

    # --- evaluation: accumulate on the device, draw once at the end of the epoch
    def _start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self._active(trainer):
            self.confmat = self.confmat.to(pl_module.device)
            self.confmat.reset()
            self._wrong = []

    def _update(self, trainer: L.Trainer, outputs: Any, batch: Any) -> None:
        if not self._active(trainer) or not isinstance(outputs, dict) or "logits" not in outputs:
            return
        logits, labels = outputs["logits"], outputs["labels"]
        preds = logits.argmax(dim=-1)
        self.confmat.update(preds, labels)
        if self.misclassified and trainer.is_global_zero:
            wrong = (preds != labels).nonzero().squeeze(1)
            confidence = logits[wrong].float().softmax(dim=-1).amax(dim=-1)
            conf, order = confidence.sort(descending=True)  # the most confident mistakes are the telling ones
            conf, keep = conf[: self.misclassified], wrong[order[: self.misclassified]]
            self._wrong.append((batch[0][keep].cpu(), labels[keep].cpu(), preds[keep].cpu(), conf.cpu()))

    def _publish(self, trainer: L.Trainer, stage: str) -> None:
        if not self._active(trainer):
            return
        matrix = self.confmat.compute().cpu()
        if not trainer.is_global_zero:
            return
        step = trainer.global_step
        rows = matrix.sum(dim=1)
        per_digit = {f"{stage}/acc_digit_{d}": float(matrix[d, d] / rows[d]) for d in range(NUM_CLASSES) if rows[d]}
        for logger in trainer.loggers:
            logger.log_metrics(per_digit, step)
        for tb in _tensorboards(trainer):
            title = f"{stage} confusion matrix, epoch {trainer.current_epoch}, {int(matrix.sum())} digits"
            add_png(tb, f"{stage}/confusion_matrix", confusion_image(matrix, title), step)
            add_png(tb, f"{stage}/misclassified", self._grid(), step)

    def _grid(self) -> Any:
        if not self._wrong:
            return misclassified_grid(torch.zeros(0, INPUT_SIZE), *(torch.zeros(0),) * 3)
        images, labels, preds, conf = (torch.cat(parts) for parts in zip(*self._wrong, strict=True))
        order = conf.argsort(descending=True)[: self.misclassified]
        return misclassified_grid(images[order], labels[order], preds[order], conf[order])

    def on_validation_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._start(trainer, pl_module)

    def on_test_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._start(trainer, pl_module)

    def on_validation_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0) -> None:  # noqa: ANN001
        self._update(trainer, outputs, batch)

    def on_test_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0) -> None:  # noqa: ANN001
        self._update(trainer, outputs, batch)

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._publish(trainer, "val")

    def on_test_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._publish(trainer, "test")

    # --- learning rate per step, as LearningRateMonitor(logging_interval="step") logs it, under one tag for every
    # recipe: the LR the coming optimizer step uses, on the steps (and at the step numbers) Lightning writes
    # train/loss_step, so that OneCycle and cosine show their per-step shape
    # once per optimizer step, not per batch: with accumulate_grad_batches a step spans several batches
    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._steps = trainer.global_step  # counted here: asking the trainer costs ~8 calls on every step

    def on_before_optimizer_step(self, trainer: L.Trainer, pl_module: L.LightningModule, *args: Any) -> None:
        step, self._steps = self._steps, self._steps + 1  # the hook runs once per optimizer step, before it
        if (step + 1) % trainer.log_every_n_steps or not self._active(trainer):
            return
        if not trainer.is_global_zero:
            return
        groups = [g for opt in trainer.optimizers for g in opt.param_groups]
        lrs = {"train/lr" if len(groups) == 1 else f"train/lr_group{i}": float(g["lr"]) for i, g in enumerate(groups)}
        for logger in trainer.loggers:
            logger.log_metrics(lrs, step)

    # --- hparams: the config of the run next to the numbers that matter
    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        ckpt = trainer.checkpoint_callback
        if not (self.hparams and self._active(trainer) and trainer.is_global_zero):
            return
        if ckpt is not None and ckpt.best_model_score is not None:
            score = float(ckpt.best_model_score)
        else:
            score = float(trainer.callback_metrics.get(MONITOR, float("nan")))
        for tb in _tensorboards(trainer):
            # hp/test_acc gets its column now and its value from a `test` of this run: none is logged before
            hparams_row(tb, run_hparams(trainer, pl_module), {"hp/best_val_acc": score}, trainer.global_step)

    def on_test_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not (self.hparams and self._active(trainer) and trainer.is_global_zero):
            return
        if "test/acc" not in trainer.callback_metrics:
            return
        val = checkpoint_val_acc(load_checkpoint(trainer.ckpt_path)) if trainer.ckpt_path else None
        # both columns, as at the end of fit (a run folder's first HPARAMS record fixes them)
        metrics = {
            "hp/best_val_acc": float("nan") if val is None else val,
            "hp/test_acc": float(trainer.callback_metrics["test/acc"]),
        }
        params, source = run_hparams(trainer, pl_module), run_of_checkpoint(trainer.ckpt_path)
        if source is not None and not any(source.glob(EVENTS_GLOB)):  # not a TensorBoard run: no row to add there
            source = None
        for tb in _tensorboards(trainer):
            if source is not None and source.resolve() != Path(tb.log_dir).resolve():
                # the trained run's own folder gets the row with its test score, through a logger opened there
                # (not finalized: that would replace the run's hparams.yaml)
                trained = TensorBoardLogger(
                    source.parent.parent, source.parent.name, source.name, default_hp_metric=False
                )
                trained.log_hyperparams(params, metrics, trainer.global_step)
                trained.experiment.close()
            else:
                tb.log_hyperparams(params, metrics, trainer.global_step)


def hparams_row(tb: TensorBoardLogger, params: dict[str, Any], metrics: dict[str, float], step: int) -> None:
    """The run's HPARAMS record with a column for every one of ``HP_METRICS``, and values for ``metrics`` only.

    TensorBoard's hparams plugin takes a run's metric columns from the experiment record of its first HPARAMS
    record and each column's value from the run's scalar of that tag; ``log_hyperparams(params, metrics)`` would
    make a column only for a logged value, so the record is written here, as that method writes it.
    """
    from torch.utils.tensorboard.summary import hparams

    tb.log_hyperparams(params)  # the params for hparams.yaml; with no metrics it writes no record itself
    for summary in hparams(params, dict.fromkeys(HP_METRICS, 0.0)):  # only the keys are read: the columns
        tb.experiment.file_writer.add_summary(summary, step)
    tb.log_metrics(metrics, step)


def add_png(tb: TensorBoardLogger, tag: str, image: np.ndarray, step: int) -> None:
    """``add_image`` of an RGB uint8 [H, W, 3] array, as PNG at zlib level 1: PIL's default level 6 and add_image's
    float round trip took three times as long, every validation, for files a sixth smaller."""
    from tensorboard.compat.proto.summary_pb2 import Summary

    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG", compress_level=1)
    height, width, channels = image.shape
    picture = Summary.Image(height=height, width=width, colorspace=channels, encoded_image_string=buffer.getvalue())
    tb.experiment.file_writer.add_summary(Summary(value=[Summary.Value(tag=tag, image=picture)]), step)


def _tensorboards(trainer: L.Trainer) -> list[TensorBoardLogger]:
    return [lg for lg in trainer.loggers if isinstance(lg, TensorBoardLogger)]


def run_hparams(trainer: L.Trainer, pl_module: L.LightningModule) -> dict[str, Any]:
    """Model and data settings (as Lightning logs them) plus seed and epochs, as TensorBoard-friendly values."""
    params: dict[str, Any] = {f"model.{k}": v for k, v in pl_module.hparams.items() if not k.startswith("_")}
    if trainer.datamodule is not None:
        skip = {"predict_path", "_instantiator"}  # not settings of the run (the latter is LightningCLI's own)
        params.update({f"data.{k}": v for k, v in trainer.datamodule.hparams.items() if k not in skip})
    params["seed"] = os.environ.get("PL_GLOBAL_SEED", "none")
    params["trainer.max_epochs"] = trainer.max_epochs
    # TensorBoard takes numbers and strings (it would show booleans as 0/1)
    return {k: v if isinstance(v, (int, float, str)) and not isinstance(v, bool) else str(v) for k, v in params.items()}
