"""The LightningModule: the plain MyMNIST net, CrossEntropy, Adam, and per-stage accuracy."""

from __future__ import annotations

import os
from collections.abc import Sequence

import lightning as L
import torch
import torch.nn.functional as F
from torch import nn
from torchmetrics import MeanMetric
from torchmetrics.classification import MulticlassAccuracy

from mnist_lightning.errors import UserError
from mnist_lightning.model import NUM_CLASSES, MyMNIST

STAGES = ("train", "val", "test")


class MNISTClassifier(L.LightningModule):
    """Wraps :class:`MyMNIST`; logs ``{train,val,test}/{loss,acc}``; predicts digits and probabilities."""

    def __init__(
        self, hidden_layers: Sequence[int] = (256, 32), lr: float = 1e-3, fused_adam: bool = True, compile: bool = False
    ) -> None:
        super().__init__()
        hidden_layers = list(hidden_layers)
        if any(isinstance(h, bool) or not isinstance(h, int) or h <= 0 for h in hidden_layers):
            raise UserError(
                f"model.hidden_layers must be positive integers (one width per hidden layer), got {hidden_layers}; "
                "e.g. --model.hidden_layers '[256, 32]'."
            )
        if not lr > 0:
            raise UserError(f"model.lr must be > 0, got {lr}; e.g. --model.lr 0.001.")
        # plain types only, so checkpoints load with torch.load(weights_only=True)
        self.save_hyperparameters(
            {"hidden_layers": hidden_layers, "lr": float(lr), "fused_adam": bool(fused_adam), "compile": bool(compile)}
        )
        self.net = MyMNIST(hidden_layers)
        # Per-stage metrics accumulate on the device and are logged once per epoch: self.log() on every step
        # costs more than the step itself here. validate_args=False: the checks sync the host on every update.
        self.metrics = nn.ModuleDict()
        for stage in STAGES:
            # nan_strategy="disable": the NaN check is an `if tensor.any()`, a host sync on every step on a GPU
            self.metrics[f"{stage}_loss"] = MeanMetric(nan_strategy="disable")
            self.metrics[f"{stage}_acc"] = MulticlassAccuracy(NUM_CLASSES, average="micro", validate_args=False)

    def configure_model(self) -> None:
        if self.hparams.compile:
            self.net.compile()  # in place: state_dict keys and the ONNX export stay those of the plain net

    def on_fit_start(self) -> None:
        if self.device.type == "cpu" and not torch.cuda.is_available():
            # Lightning sets PYTORCH_NVML_BASED_CUDA_CHECK=1 (fork safety on GPU hosts), which makes the CUDA check
            # that Adam.step() runs on every step dlopen NVML and fail each time on a GPU-less host with a CUDA
            # build of torch: ~40 us per step, for nothing. Without a GPU there is no CUDA context to protect.
            os.environ["PYTORCH_NVML_BASED_CUDA_CHECK"] = "0"

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.net(images)

    def _shared_step(self, batch: tuple[torch.Tensor, torch.Tensor], stage: str) -> tuple[torch.Tensor, torch.Tensor]:
        images, labels = batch
        logits = self.net(images)
        loss = F.cross_entropy(logits, labels)
        # one value per sample: with nan_strategy="disable" MeanMetric ignores `weight`, so weight by repetition
        self.metrics[f"{stage}_loss"].update(loss.detach().expand(len(labels)))
        self.metrics[f"{stage}_acc"].update(logits.detach(), labels)
        return loss, logits

    def _log_epoch(self, stage: str) -> None:
        for name in ("loss", "acc"):
            self.log(f"{stage}/{name}", self.metrics[f"{stage}_{name}"], prog_bar=True)

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        loss, _ = self._shared_step(batch, "train")
        if batch_idx % self.trainer.log_every_n_steps == 0:  # a fine-grained curve, at the logger's own pace
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
        self._log_epoch("train")

    def on_validation_epoch_end(self) -> None:
        self._log_epoch("val")

    def on_test_epoch_end(self) -> None:
        self._log_epoch("test")

    def predict_step(self, batch: tuple[torch.Tensor, ...], batch_idx: int) -> dict[str, torch.Tensor]:
        probs = self.net(batch[0]).softmax(dim=-1)
        out = {"digits": probs.argmax(dim=-1), "probabilities": probs}
        if len(batch) > 1:
            out["labels"] = batch[1]
        return out

    def configure_optimizers(self) -> torch.optim.Optimizer:
        # fused: one kernel for all parameters instead of ~10 small ops per tensor (about 2x faster steps on CPU)
        return torch.optim.Adam(self.parameters(), lr=self.hparams.lr, fused=self.hparams.fused_adam)
