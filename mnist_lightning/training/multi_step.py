"""``--model.steps_per_call K``: K optimizer steps per Lightning step, with the logs and checkpoints of K = 1.

Lightning's per-batch machinery (hooks, progress, logging checks) costs ~2,000 Python calls, more than this model's
whole step; with K batches per call it runs once per K steps. The module trains by manual optimization, exactly as
the automatic loop does (forward, zero_grad, backward, step, scheduler step), so the weights are the same bit for bit.
Lightning counts its batches in calls, so what it would place by batch count is placed here by optimizer step.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from functools import partial
from typing import Any

import lightning as L
import torch

from mnist_lightning.common.errors import UserError
from mnist_lightning.model.compiled_step import CompiledStep

Batch = tuple[torch.Tensor, torch.Tensor]


def train_steps(module: L.LightningModule, batches: list[Batch]) -> None:
    """The K optimizer steps of one call, each as Lightning's automatic optimization runs it, or compiled."""
    trainer = module.trainer
    optimizer, scheduler = module.optimizers(), module.lr_schedulers()
    every = trainer.log_every_n_steps
    compiled = module.compiled
    if compiled is None and module.hparams.compile:
        compiled = module.compiled = CompiledStep(module.net, optimizer.optimizer, module._smoothing)
    first, max_steps = trainer.global_step, trainer.max_steps  # global_step counts optimizer.step() calls
    for step, batch in enumerate(batches, start=first):  # each batch below is one optimizer.step()
        if 0 <= max_steps <= step:
            return  # max_steps inside a call: stop where K = 1 stops
        if compiled is not None and compiled.fits(batch[0]):
            images = module.augment(batch[0]) if module._augment else batch[0]
            # the update is the closure's; torch's Adam skips every weight (none has a .grad) and Lightning counts
            # the step and calls its hooks as for any step
            loss = optimizer.step(closure=partial(compiled, images, batch[1], module.train_sums))
        else:
            loss = module.train_loss(batch)
            optimizer.zero_grad()
            module.manual_backward(loss)
            optimizer.step()
            if compiled is not None:
                optimizer.zero_grad()  # no stale .grad for torch's Adam to apply at the next compiled step
        if scheduler is not None:
            scheduler.step()
        if every and (step + 1) % every == 0:  # where and when K = 1 writes train/loss_step
            value = float(loss.detach())
            for logger in module.loggers:
                logger.log_metrics({"train/loss_step": value, "epoch": module.current_epoch}, step)
            module.log("train/loss_step", value, on_step=True, on_epoch=False, prog_bar=True, logger=False)


def log_call_step(module: L.LightningModule) -> None:
    """Epoch metrics at the step number K = 1 writes them at, instead of Lightning's count of calls: a logged "step"
    sets it, and "epoch" is then logged by hand, as Lightning adds it only to records without a "step"."""
    # K = 1 logs them inside its last batch, before Lightning counts that batch as stepped
    module.log("step", float(module.global_step - 1), on_step=False, on_epoch=True)
    module.log("epoch", float(module.current_epoch), on_step=False, on_epoch=True)


def optimizer_steps(trainer: L.Trainer) -> float:
    """``trainer.estimated_stepping_batches`` in optimizer steps: Lightning counts calls, which hold K steps each."""
    total = trainer.estimated_stepping_batches  # also builds the train loader, if it was not yet
    loader = trainer.train_dataloader
    if getattr(loader, "steps_per_call", 1) == 1 or not math.isfinite(total) or trainer.max_epochs == -1:
        return total  # (with max_epochs -1 Lightning's estimate is max_steps, already in steps)
    # accumulate_grad_batches and limit_train_batches are refused with K > 1 (check_steps_per_call)
    steps = len(loader.sampler) * max(trainer.max_epochs, 1)
    return min(steps, trainer.max_steps) if trainer.max_steps != -1 else steps


def groups_of(batches: Iterator[Batch], k: int) -> Iterator[list[Batch]]:
    """Lists of ``k`` consecutive batches; the epoch's last list holds what is left."""
    group: list[Batch] = []
    for batch in batches:
        group.append(batch)
        if len(group) == k:
            yield group
            group = []
    if group:
        yield group


def check_steps_per_call(k: int, trainer: Any, every_n_train_steps: int, checkpoint: Any) -> None:
    """Refuse, in one paragraph, the Trainer settings that count Lightning batches, which hold K steps each."""
    if k == 1:
        return
    refused = []
    if trainer.get("accumulate_grad_batches", 1) != 1:
        refused.append("trainer.accumulate_grad_batches (Lightning accumulates only in automatic optimization)")
    if trainer.get("gradient_clip_val"):
        refused.append("trainer.gradient_clip_val (Lightning clips only in automatic optimization)")
    if trainer.get("val_check_interval") not in (None, 1.0):
        refused.append("trainer.val_check_interval (it would count calls of K steps, not steps)")
    if trainer.get("limit_train_batches") not in (None, 1.0):
        refused.append("trainer.limit_train_batches (it would count calls of K steps; trainer.max_steps works)")
    if trainer.get("overfit_batches") not in (None, 0, 0.0):
        refused.append("trainer.overfit_batches (it would count calls of K steps)")
    if checkpoint.get("every_n_train_steps") or checkpoint.get("train_time_interval"):
        refused.append("checkpoint.every_n_train_steps/train_time_interval (use --resume.every_n_train_steps)")
    if every_n_train_steps % k:
        refused.append(f"resume.every_n_train_steps {every_n_train_steps}, which is not a multiple of {k}")
    if refused:
        raise UserError(
            f"model.steps_per_call {k} runs {k} optimizer steps in each Lightning batch, so it cannot be combined "
            f"with {'; '.join(refused)}. Either drop --model.steps_per_call (the default 1 trains the very same "
            "weights) or leave those settings at their defaults."
        )
