"""What a resumed ``fit`` must agree on with its checkpoint: the model/optimizer settings and the schedule length.

Lightning restores the optimizer's state (its learning rate and weight decay included) and the LR schedule's
position from the checkpoint; with other settings in the config, the run would silently go on with a mix of both.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import Timer

from mnist_lightning.common.atomic import replace_atomically
from mnist_lightning.common.errors import UserError
from mnist_lightning.common.layout import CONFIG_NAME, METRICS_CSV, run_of_checkpoint
from mnist_lightning.model.options import NAMES, SPEED_ONLY
from mnist_lightning.training.callbacks.step_hooks import batch_hooks_where_used
from mnist_lightning.training.module import SCHEDULE_KEY

# options a resume may change: those that only change how fast, and hidden_layers (check_checkpoint's own message)
IGNORED = SPEED_ONLY | {"hidden_layers"}


def _same(saved: Any, wanted: Any) -> bool:
    if isinstance(saved, (int, float)) and isinstance(wanted, (int, float)) and not isinstance(saved, bool):
        return float(saved) == float(wanted)
    return saved == wanted


def _run_config(path: Path) -> str:
    run = run_of_checkpoint(path)
    config = run / CONFIG_NAME if run is not None else None
    return f"--config {config}" if config is not None and config.is_file() else "the run's own config"


def check_resume_settings(path: Path, ckpt: dict[str, Any], model: Any) -> None:
    """One paragraph naming every model/optimizer setting in which ``model`` (the config's) differs from ``ckpt``'s
    (``path``'s contents, already read by ``check_checkpoint``)."""
    saved = ckpt.get("hyper_parameters", {})
    diffs = [
        (name, saved[name], model.get(name))
        for name in NAMES
        if name not in IGNORED and name in saved and name in model and not _same(saved[name], model.get(name))
    ]
    if not diffs:
        return
    listed = "; ".join(
        f"model.{name} is {value!r} in the checkpoint but {want!r} in the config" for name, value, want in diffs
    )
    flags = " ".join(f"--model.{name} {value}" for name, value, _ in diffs)
    raise UserError(
        f"checkpoint {path} was trained with other settings than this config asks for: {listed}. Resuming would "
        "continue the checkpoint's optimizer and schedule under the config's settings, a mix of both runs. Resume "
        f"with {_run_config(path)} (or add {flags}), or drop --ckpt_path to train these settings from scratch."
    )


def epochs_trained(ckpt: dict[str, Any]) -> int:
    """Whole epochs ``ckpt`` has finished (an epoch-end checkpoint counts its own epoch, a mid-epoch one does not)."""
    progress = ckpt.get("loops", {}).get("fit_loop", {}).get("epoch_progress", {}).get("current", {})
    return int(progress.get("processed", ckpt.get("epoch", 0)))


def check_resume_length(path: Path, ckpt: dict[str, Any], trainer: Any) -> None:
    """A resume may continue a run or find nothing left to do, but not end before the checkpoint's own epoch
    (Lightning's MisconfigurationException from deep inside ``fit``, after the run's config.yaml was rewritten)."""
    max_epochs, done = trainer.get("max_epochs"), epochs_trained(ckpt)
    if max_epochs in (None, -1) or done <= max_epochs:
        return
    raise UserError(
        f"checkpoint {path} has already trained {done} epochs, but --trainer.max_epochs is {max_epochs}: a resume "
        f"continues a run and cannot make it shorter. Resume with --trainer.max_epochs {done + 1} or more to train "
        f"on (--trainer.max_epochs {done} only re-exports it), or drop --ckpt_path to start a new {max_epochs}-epoch "
        "run."
    )


def stop_note(trainer: L.Trainer, resumed_step: int | None, stopped_at: tuple[int, int] | None) -> str | None:
    """One line for the end-of-fit summary when the run stopped before its epochs ran out, or never started."""
    timer = next((c for c in trainer.callbacks if isinstance(c, Timer)), None)
    time_up = timer is not None and timer.time_remaining() is not None and timer.time_remaining() <= 0
    if resumed_step is not None and trainer.global_step == resumed_step:
        if time_up:
            why = "its --trainer.max_time is used up (Lightning's Timer counts the time trained before the resume)"
        elif trainer.max_steps != -1 and trainer.global_step >= trainer.max_steps:
            why = f"it has reached --trainer.max_steps {trainer.max_steps}"
        else:
            why = f"it has trained --trainer.max_epochs {trainer.max_epochs}"
        return f"Nothing left to train: {why}; the summary below is of the checkpoint's run, re-exported."
    if time_up and stopped_at is not None:
        return (
            f"Stopped by --trainer.max_time in epoch {stopped_at[0]} at step {stopped_at[1]}; last.ckpt "
            "continues that epoch. Lightning's Timer counts the time already trained, so resume (--ckpt_path last) "
            "with a larger --trainer.max_time, or without it."
        )
    return None


@batch_hooks_where_used
class ScheduleGuard(L.Callback):
    """Refuses to resume a per-step LR schedule into a run of another length, leaving the run as it was.

    OneCycle cannot step past its end and a cosine would jump to another point of its curve; the length is fixed
    when the run starts, so resuming needs the same ``max_epochs`` / ``max_steps`` / batches per epoch. The new
    length is known once the optimizers are configured (on_fit_start). By then Lightning has opened the loggers (a
    new event file), rewritten the run's ``config.yaml`` and a CSVLogger has dropped ``metrics.csv``: a refusal puts
    the run folder back as it was when the command started. (Asking the trainer earlier would build the training
    loader before the checkpoint's loader position is restored, and the resume would no longer be exact.)
    """

    def __init__(self) -> None:
        self.ckpt_path: Path | None = None  # the checkpoint `fit` resumes from (trainer.ckpt_path is set later)
        self._resumed: dict[str, Any] | None = None  # its schedule record, read with it in parse_arguments
        self._saved: dict[str, Any] | None = None
        self._run: tuple[Path, set[str] | None, dict[str, bytes]] | None = None

    def resume_from(self, path: Path, ckpt: dict[str, Any]) -> None:
        """The checkpoint ``fit`` resumes from, already read (None in its record: a constant LR, no schedule)."""
        self.ckpt_path, self._resumed = path, ckpt.get(SCHEDULE_KEY)

    def watch(self, log_dir: Path) -> None:
        """The folder this fit will log into, told before anything is written there: what a refusal puts back."""
        if not self._resumed:
            return
        if not log_dir.exists():  # a new run folder: a refusal removes it, with the folders made for it
            while not log_dir.parent.exists():
                log_dir = log_dir.parent
            self._run = log_dir, None, {}
            return
        kept = {n: (log_dir / n).read_bytes() for n in (CONFIG_NAME, METRICS_CSV) if (log_dir / n).is_file()}
        self._run = log_dir, {p.name for p in log_dir.iterdir()}, kept

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        self._saved = self._resumed if stage == "fit" and self.ckpt_path is not None else None

    def _put_back(self) -> None:
        """The run folder's files as they were: new ones removed, the rewritten ones restored."""
        assert self._run is not None
        run, names, kept = self._run
        if names is None:
            shutil.rmtree(run, ignore_errors=True)
            return
        for new in [p for p in run.iterdir() if p.name not in names and p.is_file()]:
            new.unlink()  # an event file still open in its logger: on POSIX that only drops its name
        for name, content in kept.items():
            if not (run / name).is_file() or (run / name).read_bytes() != content:
                with replace_atomically(run / name) as tmp:
                    tmp.write_bytes(content)

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        schedule = getattr(pl_module, "schedule", None)  # what configure_optimizers built for this run
        if not self._saved or not schedule or int(self._saved["steps"]) == schedule["steps"]:
            return
        if self._run is not None and trainer.is_global_zero:
            self._put_back()
        saved = self._saved
        epochs, steps = saved.get("max_epochs"), saved.get("max_steps")
        length = f"--trainer.max_epochs {epochs}" + (f" --trainer.max_steps {steps}" if steps not in (None, -1) else "")
        raise UserError(
            f"checkpoint {self.ckpt_path} is part of a run whose {pl_module.hparams.lr_schedule!r} learning-rate "
            f"schedule spans {saved['steps']} steps ({length}), but this fit would span {schedule['steps']} steps. A "
            f"per-step schedule cannot be stretched part-way through. To finish that run, resume it with {length} "
            "(and the batch size and batch limits it had); to train longer, start a new run with the longer setting "
            "(drop --ckpt_path)."
        )
