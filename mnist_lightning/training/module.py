"""The LightningModule: the plain MyMNIST net, CrossEntropy, Adam(W) with optional LR schedules, per-stage accuracy."""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import fields
from functools import partial

import lightning as L
import torch
import torch.nn.functional as F
from lightning.pytorch.utilities.types import OptimizerLRSchedulerConfig
from torch import nn
from torch.optim.lr_scheduler import LambdaLR, LRScheduler, OneCycleLR
from torchmetrics import MeanMetric
from torchmetrics.classification import MulticlassAccuracy

from mnist_lightning.common.contract import INPUT_SIZE, NUM_CLASSES
from mnist_lightning.common.errors import UserError
from mnist_lightning.model.compiled_step import CompiledStep, check_one_process
from mnist_lightning.model.net import MyMNIST
from mnist_lightning.model.options import DEFAULTS, LrSchedule, ModelOptions, Optimizer, architecture
from mnist_lightning.training.augment import BatchAugment
from mnist_lightning.training.callbacks.step_hooks import step_hooks_where_used
from mnist_lightning.training.multi_step import log_call_step, optimizer_steps, train_steps
from mnist_lightning.training.rank_seeds import seed_rank

STAGES = ("train", "val", "test")
SCHEDULE_KEY = "mnist_lightning_schedule"  # in checkpoints: the step count the LR schedule was built for


@step_hooks_where_used
class MNISTClassifier(L.LightningModule):
    """Wraps :class:`MyMNIST`; logs ``{train,val,test}/{loss,acc}``; predicts digits and probabilities."""

    def __init__(
        self,
        hidden_layers: Sequence[int] = DEFAULTS.hidden_layers,
        lr: float = DEFAULTS.lr,
        fused_adam: bool = DEFAULTS.fused_adam,
        compile: bool = DEFAULTS.compile,
        optimizer: Optimizer = DEFAULTS.optimizer,
        weight_decay: float = DEFAULTS.weight_decay,
        lr_schedule: LrSchedule = DEFAULTS.lr_schedule,
        warmup: float = DEFAULTS.warmup,
        label_smoothing: float = DEFAULTS.label_smoothing,
        dropout: float = DEFAULTS.dropout,
        standardize: bool = DEFAULTS.standardize,
        augment_shift: float = DEFAULTS.augment_shift,
        augment_rotate: float = DEFAULTS.augment_rotate,
        augment_scale: float = DEFAULTS.augment_scale,
        augment_elastic: float = DEFAULTS.augment_elastic,
        steps_per_call: int = DEFAULTS.steps_per_call,
    ) -> None:
        """Defaults are the tutorial's recipe; see ``configs/best.yaml`` and ``configs/fast.yaml`` for tuned ones.

        The options, their defaults and checks are :class:`ModelOptions`; this signature is what LightningCLI reads.
        ``lr_schedule``: "onecycle" (torch's OneCycleLR peaking at ``lr`` after a ``warmup`` fraction of the steps,
        with momentum cycling) or "cosine" (linear warmup over a ``warmup`` fraction, then cosine decay to 0), both
        stepped per batch. ``standardize`` and ``dropout`` live inside MyMNIST (see there); the ``augment_*``
        amounts (see :class:`BatchAugment`) warp training batches only. ``steps_per_call`` K > 1: the loader hands
        K consecutive batches at once and :meth:`training_step` runs their K optimizer steps itself (manual
        optimization): the same weights bit for bit, with a K-th of Lightning's per-batch cost.
        """
        super().__init__()
        hparams = ModelOptions.from_arguments(locals()).hparams()
        self.augment = BatchAugment(**{f.name: hparams[f"augment_{f.name}"] for f in fields(BatchAugment)})
        self.save_hyperparameters(hparams)
        self._augment = self.augment.enabled  # a plain attribute, read on every step
        # K > 1 and the compiled step run their optimizer steps themselves (manual optimization, same weights)
        self.automatic_optimization = steps_per_call == 1 and not compile
        self._steps_per_call = steps_per_call  # a plain attribute: automatic_optimization is a property
        self.compiled: CompiledStep | None = None  # --model.compile: built at the first training step
        self.schedule: dict[str, int] | None = None  # the LR schedule's length, set by configure_optimizers
        self.net = MyMNIST(**architecture(hparams))
        self.example_input_array = torch.zeros(1, INPUT_SIZE)  # the model summary counts FLOPs on it
        # Per-stage metrics accumulate on the device and are logged once per epoch: self.log() on every step
        # costs more than the step itself here. Training: plain sums [loss x samples, correct, samples] (a torchmetrics
        # update costs ~100 Python calls, a third of a plain step); val/test: torchmetrics, validate_args=False
        # (the checks sync the host on every update).
        self.train_sums = torch.zeros(3)
        self._smoothing = float(label_smoothing)  # a plain attribute: hparams lookups cost calls on every step
        self.metrics = nn.ModuleDict()
        for stage in STAGES[1:]:
            # nan_strategy="disable": the NaN check is an `if tensor.any()`, a host sync on every step on a GPU
            self.metrics[f"{stage}_loss"] = MeanMetric(nan_strategy="disable")
            self.metrics[f"{stage}_acc"] = MulticlassAccuracy(NUM_CLASSES, average="micro", validate_args=False)

    def setup(self, stage: str) -> None:
        if stage == "fit" and self.hparams.compile:
            check_one_process(self.trainer.world_size)
        # before a resume restores the saved streams; rank 0 keeps the stream seed_everything started
        if stage == "fit" and self.trainer.world_size > 1 and self.trainer.global_rank > 0:
            seed_rank(self.trainer.global_rank)

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        if self.schedule is not None:  # read back by resume_guard.ScheduleGuard when the run is resumed
            checkpoint[SCHEDULE_KEY] = self.schedule

    def on_fit_start(self) -> None:
        self.train_sums = self.train_sums.to(self.device)  # a restored mid-epoch sum keeps its value
        if self.device.type == "cpu" and not torch.cuda.is_available():
            # Lightning's PYTORCH_NVML_BASED_CUDA_CHECK=1 makes every Adam.step() retry NVML; no GPU: nothing to protect
            os.environ["PYTORCH_NVML_BASED_CUDA_CHECK"] = "0"

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        # in the net's own dtype: the model summary's example image is float32 also under 64-true / bf16-true
        return self.net(images.to(self.dtype))

    def _shared_step(self, batch: tuple[torch.Tensor, torch.Tensor], stage: str) -> tuple[torch.Tensor, torch.Tensor]:
        images, labels = batch
        logits = self.net(images)
        # label smoothing is a training-time regulariser: val/test losses stay the plain cross-entropy
        loss = F.cross_entropy(logits, labels)
        # one value per sample: with nan_strategy="disable" MeanMetric ignores `weight`, so weight by repetition
        self.metrics[f"{stage}_loss"].update(loss.detach().expand(len(labels)))
        self.metrics[f"{stage}_acc"].update(logits.detach(), labels)
        return loss, logits

    def _log_epoch(self, stage: str) -> None:
        for name in ("loss", "acc"):
            self.log(f"{stage}/{name}", self.metrics[f"{stage}_{name}"], prog_bar=True)

    def train_loss(self, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        """One training batch's loss, added (with its correct count) to the epoch's running ``train_sums``."""
        images, labels = batch
        if self._augment:  # training batches only, on the device the batch is already on
            images = self.augment(images)
        logits = self.net(images)
        loss = F.cross_entropy(logits, labels, label_smoothing=self._smoothing)
        n, sums = labels.shape[0], self.train_sums  # shape, not len(): Tensor.__len__ is Python
        sums[0].add_(loss.detach().float(), alpha=n)
        sums[1].add_(torch.eq(logits.detach().argmax(1), labels).sum())
        sums[2].add_(n)
        return loss

    def training_step(
        self, batch: tuple[torch.Tensor, torch.Tensor] | list[tuple[torch.Tensor, torch.Tensor]], batch_idx: int
    ) -> torch.Tensor | None:
        if not self.automatic_optimization:
            return train_steps(self, batch if self._steps_per_call > 1 else [batch])
        loss = self.train_loss(batch)
        # at the logger's own pace: Lightning writes step metrics when the step count + 1 is a multiple of N, so a
        # value logged on any other step would be written N-1 steps late
        if (self.global_step + 1) % self.trainer.log_every_n_steps == 0:
            self.log("train/loss_step", loss, on_step=True, on_epoch=False, prog_bar=True)
        return loss

    # Evaluation steps hand their logits to callbacks (views.TensorBoardViews); Lightning 2.x keeps none of them.
    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> dict[str, torch.Tensor]:
        _, logits = self._shared_step(batch, "val")
        return {"logits": logits.detach(), "labels": batch[1]}

    def test_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> dict[str, torch.Tensor]:
        _, logits = self._shared_step(batch, "test")
        return {"logits": logits.detach(), "labels": batch[1]}

    def on_train_epoch_end(self) -> None:
        # summed over the ranks (each holds its own shard's sums), as torchmetrics would at compute()
        loss, correct, n = self.trainer.strategy.reduce(self.train_sums.clone(), reduce_op="sum").tolist()
        self.train_sums.zero_()
        if n:
            self.log_dict({"train/loss": loss / n, "train/acc": correct / n}, prog_bar=True)
        if not self.automatic_optimization:
            log_call_step(self)

    def on_validation_epoch_end(self) -> None:
        self._log_epoch("val")
        if not self.automatic_optimization and self.trainer.state.fn == "fit":
            log_call_step(self)

    def on_test_epoch_end(self) -> None:
        self._log_epoch("test")

    def predict_step(self, batch: tuple[torch.Tensor, ...], batch_idx: int) -> dict[str, torch.Tensor]:
        probs = self.net(batch[0]).softmax(dim=-1)
        out = {"digits": probs.argmax(dim=-1), "probabilities": probs}
        if len(batch) > 1:
            out["labels"] = batch[1]
        return out

    def configure_optimizers(self) -> OptimizerLRSchedulerConfig | torch.optim.Optimizer:
        hp = self.hparams
        # fused: one kernel for all parameters instead of several small ops per tensor
        cls = torch.optim.AdamW if hp.optimizer == "adamw" else torch.optim.Adam
        opt = cls(self.parameters(), lr=hp.lr, weight_decay=hp.weight_decay, fused=hp.fused_adam)
        if hp.lr_schedule == "constant":
            return opt
        total = schedule_steps(self.trainer)
        self.schedule = {"steps": total, "max_epochs": self.trainer.max_epochs, "max_steps": self.trainer.max_steps}
        if hp.lr_schedule == "onecycle":
            pct = onecycle_pct_start(hp.warmup, total)
            sched: LRScheduler = OneCycleLR(opt, max_lr=hp.lr, total_steps=total, pct_start=pct)
        else:
            sched = LambdaLR(opt, partial(warmup_cosine, warmup_steps=int(hp.warmup * total), total_steps=total))
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}


def schedule_steps(trainer: L.Trainer) -> int:
    """The number of optimizer steps a per-step LR schedule spans: the whole run, as the trainer estimates it."""
    total = optimizer_steps(trainer)
    if not math.isfinite(total):
        raise UserError(
            "model.lr_schedule 'onecycle'/'cosine' needs a bounded run: set trainer.max_epochs or max_steps."
        )
    return max(int(total), 1)


def onecycle_pct_start(warmup: float, total: int) -> float:
    """OneCycleLR's ``pct_start``: ``warmup``, unless the rise would last one step or less in a very short run.

    OneCycleLR divides by ``pct_start * total - 1`` (ZeroDivisionError when the rise is exactly one step), and a
    rise shorter than one step skips the warmup; such runs (under ``1 / warmup`` steps) rise for 1.5 steps instead.
    """
    if warmup * total > 1:
        return warmup
    return 0.5 / total if total == 1 else 1.5 / total


def warmup_cosine(step: int, warmup_steps: int, total_steps: int) -> float:
    """LR factor: linear warmup from ~0 to 1 over ``warmup_steps``, then half a cosine down to 0 at ``total_steps``."""
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    progress = min((step - warmup_steps) / max(total_steps - warmup_steps, 1), 1.0)
    return 0.5 * (1 + math.cos(math.pi * progress))
