"""Exact resume: ``last.ckpt`` every epoch (and every N steps) with every rank's RNG state and the loader position."""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import Checkpoint, ModelCheckpoint, Timer

from mnist_lightning.common.errors import UserError
from mnist_lightning.common.layout import LAST_NAME, checkpoints_folder
from mnist_lightning.training.callbacks.step_hooks import batch_hooks_where_used

SUMS_KEY = "mnist_lightning_train_sums"  # MNISTClassifier.train_sums, mid-epoch
RNG_KEY = "mnist_lightning_rng_per_rank"  # one rng_state() per DDP rank, in rank order


def rng_state() -> dict[str, Any]:
    """Every global RNG, as plain types and tensors so the checkpoint still loads with ``weights_only=True``."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "python": random.getstate(),
        "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, gauss],
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state()  # this rank's own device (Lightning made it the current one)
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    random.setstate(state["python"])
    kind, keys, pos, has_gauss, gauss = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, gauss))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state(state["cuda"])


def rng_states_of_all_ranks(trainer: L.Trainer) -> list[dict[str, Any]]:
    """Every rank's :func:`rng_state`, in rank order (a collective under DDP: every rank must call it)."""
    state = rng_state()
    if trainer.world_size == 1 or not torch.distributed.is_initialized():
        return [state]
    states: list[Any] = [None] * trainer.world_size
    torch.distributed.all_gather_object(states, state)
    return states


def _follow_moved_folder(trainer: L.Trainer, checkpoint: dict[str, Any]) -> None:
    """A run folder copied or moved elsewhere and resumed there: its ModelCheckpoint state names the old folder, so
    Lightning would drop the best score and the best-k record (and leave the old best file beside a new one).
    The state is read after every callback's on_load_checkpoint; here its paths are moved to the new folder."""
    best = trainer.checkpoint_callback
    if not isinstance(best, ModelCheckpoint) or best.dirpath is None or not trainer.ckpt_path:
        return
    new = os.path.normpath(best.dirpath)
    if os.path.normpath(os.path.dirname(os.path.abspath(trainer.ckpt_path))) != new:
        return  # resumed from a checkpoint outside the folder this run writes to: Lightning's own rule applies
    state = checkpoint.get("callbacks", {}).get(best.state_key)
    old = state.get("dirpath") if isinstance(state, dict) else None
    if not old or os.path.normpath(old) == new:
        return

    def moved(path: Any) -> Any:
        inside = isinstance(path, str) and path and os.path.dirname(os.path.normpath(path)) == os.path.normpath(old)
        return os.path.join(best.dirpath, os.path.basename(path)) if inside else path

    state["dirpath"] = best.dirpath
    for name in ("best_model_path", "kth_best_model_path", "last_model_path"):
        state[name] = moved(state.get(name))
    state["best_k_models"] = {moved(p): v for p, v in state.get("best_k_models", {}).items()}


@batch_hooks_where_used
class ResumeCheckpoint(Checkpoint):
    """Writes ``<checkpoints>/last.ckpt`` at every epoch end, every N training steps and after mid-epoch validation.

    ModelCheckpoint(save_last=True) only refreshes ``last.ckpt`` when it also saved a top-k file, i.e. not in
    epochs where ``val/acc`` did not improve; this callback saves regardless. It runs after the best-checkpoint
    callback, so ``last.ckpt`` also carries that callback's up-to-date state.
    """

    def __init__(self, every_n_train_steps: int = 0) -> None:
        if isinstance(every_n_train_steps, bool) or every_n_train_steps < 0:
            raise UserError(
                f"resume.every_n_train_steps must be 0 (only at epoch ends) or a positive step count, "
                f"got {every_n_train_steps}."
            )
        self.every_n_train_steps = every_n_train_steps
        self.dirpath: Path | None = None
        self._with_sums = False
        self._loader_states: list[dict[str, Any]] = []
        self._stopped_early = False
        self.stopped_at: tuple[int, int] | None = None  # (epoch, step) of a stop mid-epoch, saved to resume there

    @property
    def path(self) -> Path | None:
        return self.dirpath / LAST_NAME if self.dirpath is not None else None

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        # per step only for step checkpoints or a max_time stop; Lightning skips a hook that is None
        timed = any(isinstance(c, Timer) for c in trainer.callbacks)
        if self.every_n_train_steps or timed:
            vars(self).pop("on_train_batch_end", None)
        else:
            self.on_train_batch_end = None  # type: ignore[assignment]
        best = next((c for c in trainer.callbacks if isinstance(c, ModelCheckpoint) and c.dirpath), None)
        if best is not None:  # resolved (and broadcast from rank 0) in its own setup, which runs first
            self.dirpath = Path(best.dirpath)
        else:  # checkpointing of the best switched off: the run folder's own (log_dir is broadcast from rank 0)
            self.dirpath = checkpoints_folder(trainer.log_dir or trainer.default_root_dir)

    def save(self, trainer: L.Trainer, epoch_end: bool = False) -> Path:
        assert self.path is not None
        # mid-epoch, the running train/loss and train/acc sums are part of the state (see on_save_checkpoint)
        self._with_sums = not epoch_end and trainer.world_size == 1
        try:
            trainer.save_checkpoint(self.path, weights_only=False)  # every rank calls it (a barrier); rank 0 writes
        finally:
            self._with_sums = False
        return self.path

    def on_save_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict) -> None:
        # each rank draws from its own stream (rank_seeds), so each rank's state is saved, and restored by its rank
        checkpoint[RNG_KEY] = rng_states_of_all_ranks(trainer)
        # the running train sums are not in the state_dict; without them the epoch's train/acc after a mid-epoch
        # resume would count only the batches after it. Not at epoch ends (the sums are about to be reset), not under
        # DDP (each rank holds its own sums and only rank zero's would be saved).
        if self._with_sums and isinstance(sums := getattr(pl_module, "train_sums", None), torch.Tensor):
            checkpoint[SUMS_KEY] = sums.clone()

    def on_load_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict) -> None:
        states = checkpoint.get(RNG_KEY, [])
        if trainer.global_rank < len(states):  # with more ranks than the run had, the others keep a fresh stream
            set_rng_state(states[trainer.global_rank])
        _follow_moved_folder(trainer, checkpoint)
        fit_loop = checkpoint.get("loops", {}).get("fit_loop", {}).get("state_dict", {})
        self._loader_states = list(fit_loop.get("combined_loader", []))

        if isinstance(sums := checkpoint.get(SUMS_KEY), torch.Tensor):
            pl_module.train_sums = sums.to(pl_module.device)

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # Lightning hands the saved position to the training loader only when it builds that loader after the
        # restore; a per-step LR schedule asks for trainer.estimated_stepping_batches in configure_optimizers, which
        # builds it before, so the position would be lost and a mid-epoch resume would replay the epoch's first
        # batches. Handing it over again is harmless when Lightning already did (the same position).
        loader, states, self._loader_states = trainer.train_dataloader, self._loader_states, []
        k, n = getattr(loader, "steps_per_call", 1), self.every_n_train_steps
        if k > 1 and n and len(loader.sampler) % k:  # a checkpoint can only be written between calls
            raise UserError(
                f"resume.every_n_train_steps {n} with model.steps_per_call {k} needs epochs of whole calls, but this "
                f"run has {len(loader.sampler)} optimizer steps an epoch, so step-{n} checkpoints would fall inside "
                f"a call of {k} steps. Use a steps_per_call that divides {len(loader.sampler)}, or "
                "--resume.every_n_train_steps 0 (checkpoints at epoch ends only)."
            )
        if states and callable(getattr(loader, "load_state_dict", None)):
            loader.load_state_dict(states[0])

    def _skip(self, trainer: L.Trainer) -> bool:
        return bool(trainer.fast_dev_run) or trainer.sanity_checking or trainer.state.fn != "fit"

    def on_train_batch_end(self, trainer: L.Trainer, *args: Any) -> None:
        n = self.every_n_train_steps
        # not on an epoch's last batch: resuming from there would skip that epoch's validation; the epoch-end
        # checkpoint follows right after anyway
        last = trainer.fit_loop.epoch_loop.batch_progress.is_last_batch
        # a stop requested mid-epoch (max_time's Timer runs before this callback) ends the epoch early and Lightning
        # counts it as done: this mid-epoch checkpoint lets a resume finish that epoch, as after SIGTERM. Once only:
        # short of min_epochs/min_steps Lightning trains on with should_stop set.
        self._stopped_early = trainer.should_stop and not last and self.stopped_at is None
        if (self._stopped_early or n and trainer.global_step % n == 0) and not last and not self._skip(trainer):
            self.save(trainer)
            if self._stopped_early:
                self.stopped_at = (trainer.current_epoch, trainer.global_step)

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # a validation inside the epoch (val_check_interval < 1); the one at the epoch end is covered below
        if not trainer.fit_loop.epoch_loop.batch_progress.is_last_batch and not self._skip(trainer):
            self.save(trainer)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # after validation and after the best-checkpoint callback (which saves here too), so that its new best is
        # in last.ckpt; also covers epochs without validation
        if not self._skip(trainer) and not self._stopped_early:
            self.save(trainer, epoch_end=True)
