"""What a resumed ``fit`` must agree on with its checkpoint: the model/optimizer settings and the schedule length.

Lightning restores the optimizer's state (its learning rate and weight decay included) and the LR schedule's
position from the checkpoint; with other settings in the config, the run would silently go on with a mix of both.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L

from mnist_lightning.common.errors import UserError
from mnist_lightning.common.runs import run_of_checkpoint
from mnist_lightning.training.checkpoints import load_checkpoint
from mnist_lightning.training.classifier import SCHEDULE_KEY, schedule_steps

# settings that change what is trained or how; compile and fused_adam only change how fast (hidden_layers has
# its own message in checkpoints.check_checkpoint)
IGNORED = {"compile", "fused_adam", "hidden_layers"}


def _same(saved: Any, wanted: Any) -> bool:
    if isinstance(saved, (int, float)) and isinstance(wanted, (int, float)) and not isinstance(saved, bool):
        return float(saved) == float(wanted)
    return saved == wanted


def _run_config(path: Path) -> str:
    run = run_of_checkpoint(path)
    config = run / "config.yaml" if run is not None else None
    return f"--config {config}" if config is not None and config.is_file() else "the run's own config"


def check_resume_settings(path: Path, model: Any) -> None:
    """One paragraph naming every model/optimizer setting in which ``model`` (the config's) differs from ``path``'s."""
    saved = load_checkpoint(path).get("hyper_parameters", {})
    diffs = [
        (name, value, model.get(name))
        for name, value in saved.items()
        if name not in IGNORED and name in model and not _same(value, model.get(name))
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


class ScheduleGuard(L.Callback):
    """Refuses to resume a per-step LR schedule into a run of another length (before the run folder is touched).

    OneCycle cannot step past its end and a cosine would jump to another point of its curve; the length is fixed
    when the run starts, so resuming needs the same ``max_epochs`` / ``max_steps`` / batches per epoch.
    """

    def __init__(self) -> None:
        self.ckpt_path: Path | None = None  # the checkpoint `fit` resumes from (trainer.ckpt_path is set later)

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if (
            stage != "fit"
            or self.ckpt_path is None
            or getattr(pl_module.hparams, "lr_schedule", "constant") == "constant"
        ):
            return
        saved = load_checkpoint(self.ckpt_path).get(SCHEDULE_KEY)
        if not saved:
            return  # a checkpoint without a schedule, or from before this check
        total = schedule_steps(trainer)
        if int(saved["steps"]) == total:
            return
        epochs, steps = saved.get("max_epochs"), saved.get("max_steps")
        length = f"--trainer.max_epochs {epochs}" + (f" --trainer.max_steps {steps}" if steps not in (None, -1) else "")
        raise UserError(
            f"checkpoint {self.ckpt_path} is part of a run whose {pl_module.hparams.lr_schedule!r} learning-rate "
            f"schedule spans {saved['steps']} steps ({length}), but this fit would span {total} steps. A per-step "
            f"schedule cannot be stretched part-way through. To finish that run, resume it with {length} (and its "
            "batch size and batch limits it had); to train longer, start a new run with the longer setting (drop "
            "--ckpt_path)."
        )
