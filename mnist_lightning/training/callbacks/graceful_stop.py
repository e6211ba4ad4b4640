"""A clean stop on SIGTERM / Ctrl-C: every rank stops at the same batch, saves ``last.ckpt``, prints how to resume."""

from __future__ import annotations

import logging
import os
import shlex
import signal
import sys
import threading
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.utilities.exceptions import SIGTERMException

from mnist_lightning.training.callbacks.resume import ResumeCheckpoint
from mnist_lightning.training.callbacks.step_hooks import batch_hooks_where_used


def resume_command(argv: list[str], ckpt: Path) -> str:
    """The command line that continues this run from ``ckpt``: the same arguments, another ``--ckpt_path``."""
    args, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg == "--ckpt_path":
            skip = True
        elif not arg.startswith("--ckpt_path="):
            args.append(arg)
    return shlex.join([sys.executable, "-m", "mnist_lightning", *args, "--ckpt_path", str(ckpt)])


# Lightning's signal connector logs "[rank: N] Received SIGTERM: 15" from the handler GracefulStop runs
SIGNAL_LOG = logging.getLogger("lightning.pytorch.trainer.connectors.signal_connector")


class _DropSigtermNotice(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "Received SIGTERM" not in record.getMessage()


def abort_on_next_ctrl_c() -> None:
    """A stopped run is exiting (atexit: event files, loader workers): another Ctrl-C ends the process at once,
    instead of interrupting an atexit callback with "Exception ignored ... KeyboardInterrupt"."""

    def abort(signum: int, frame: Any) -> None:
        print("\nCtrl-C again: exiting now (the checkpoint above is complete).", file=sys.stderr, flush=True)
        sys.stdout.flush()
        os._exit(128 + signum)

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, abort)


@batch_hooks_where_used
class GracefulStop(L.Callback):
    """SIGTERM or a first Ctrl-C: finish the current batch, save ``last.ckpt``, print how to resume, exit 128+signal.

    The signal only sets a flag; at the end of each training batch the ranks agree on it (one tiny all-reduce
    under DDP) and only then, on every rank at the same step, is Lightning's own SIGTERM handler run, which makes
    Lightning stop after that batch. Run straight from the signal, that handler would start a collective at
    whatever point each rank happened to be, and ranks that got the signal at different steps would stop at
    different steps: both deadlock the collective checkpoint save. A first Ctrl-C takes the same path instead of
    interrupting mid-step, where the state would not be resumable; a second one aborts at once (the previous
    ``last.ckpt`` stays).
    """

    def __init__(self, argv: list[str]) -> None:
        self.argv = argv
        self.signal: int | None = None
        self._previous: Any = None
        self._lightning_sigterm: Any = None

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        launched_by_rank_zero = trainer.strategy.launcher is not None and not trainer.is_global_zero
        # a terminal's Ctrl-C reaches every rank; rank zero's request reaches the others through the agreement
        handler = signal.SIG_IGN if launched_by_rank_zero else self._on_sigint
        self._previous = signal.signal(signal.SIGINT, handler)
        self._lightning_sigterm = signal.signal(signal.SIGTERM, self._on_sigterm)
        if trainer.world_size == 1:  # no other rank to agree with: the per-batch check waits for a signal
            self.on_train_batch_end = None  # type: ignore[assignment]

    def _request(self, sig: int) -> None:
        self.signal = sig
        self.__dict__.pop("on_train_batch_end", None)  # the check is back for the batch now running

    def _on_sigterm(self, signum: int, frame: Any) -> None:
        if self.signal is None:
            self._request(signal.SIGTERM)

    def on_train_batch_end(self, trainer: L.Trainer, *args: Any) -> None:
        if self._lightning_sigterm is None:
            return
        signum = self.signal or 0
        if trainer.world_size > 1:  # the ranks that were not signalled stop for the same reason
            flag = torch.tensor(float(signum), device=trainer.strategy.root_device)
            signum = int(trainer.strategy.reduce(flag, reduce_op="max"))
        if signum:
            self.signal = signum
            if callable(self._lightning_sigterm):  # sets trainer.received_sigterm: Lightning stops after this batch
                # which logs "Received SIGTERM", false for a Ctrl-C: that one record is dropped (ours said it)
                dropped = _DropSigtermNotice() if signum != signal.SIGTERM else None
                if dropped:
                    SIGNAL_LOG.addFilter(dropped)
                try:
                    self._lightning_sigterm(signal.SIGTERM, None)
                finally:
                    if dropped:
                        SIGNAL_LOG.removeFilter(dropped)

    def _on_sigint(self, signum: int, frame: Any) -> None:
        if self.signal is not None:
            raise KeyboardInterrupt
        self._request(signal.SIGINT)
        print(
            "\nCtrl-C: stopping after this batch to save a resumable checkpoint (Ctrl-C again aborts now).",
            file=sys.stderr,
            flush=True,
        )

    def teardown(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        self.__dict__.pop("on_train_batch_end", None)
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
            self._previous = None
        if self._lightning_sigterm is not None:
            signal.signal(signal.SIGTERM, self._lightning_sigterm)
            self._lightning_sigterm = None

    def on_exception(self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException) -> None:
        if not isinstance(exception, SIGTERMException):
            return
        sig = self.signal or signal.SIGTERM
        exception.code = 128 + sig  # the exit status a shell reports for a process stopped by that signal
        resume = next((c for c in trainer.callbacks if isinstance(c, ResumeCheckpoint)), None)
        if resume is None or resume.path is None:
            return
        path = resume.save(trainer)
        if trainer.is_global_zero:
            print(
                f"\nTraining stopped by {signal.Signals(sig).name} at epoch {trainer.current_epoch}, "
                f"step {trainer.global_step}; saved a resumable checkpoint to {path}.\n"
                f"Resume with:\n  {resume_command(self.argv, path)}",
                file=sys.stderr,
                flush=True,
            )
