"""What a resumed ``fit`` must agree on with its checkpoint: the model/optimizer settings and the schedule length.

Lightning restores the optimizer's state (its learning rate and weight decay included) and the LR schedule's
position from the checkpoint; with other settings in the config, the run would silently go on with a mix of both.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L

from mnist_lightning.common.atomic import replace_atomically
from mnist_lightning.common.errors import UserError
from mnist_lightning.common.layout import run_of_checkpoint
from mnist_lightning.training.callbacks.step_hooks import batch_hooks_where_used
from mnist_lightning.training.module import SCHEDULE_KEY

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


def check_resume_settings(path: Path, ckpt: dict[str, Any], model: Any) -> None:
    """One paragraph naming every model/optimizer setting in which ``model`` (the config's) differs from ``ckpt``'s
    (``path``'s contents, already read by ``check_checkpoint``)."""
    saved = ckpt.get("hyper_parameters", {})
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


@batch_hooks_where_used
class ScheduleGuard(L.Callback):
    """Refuses to resume a per-step LR schedule into a run of another length, leaving the run as it was.

    OneCycle cannot step past its end and a cosine would jump to another point of its curve; the length is fixed
    when the run starts, so resuming needs the same ``max_epochs`` / ``max_steps`` / batches per epoch. The new
    length is known once the optimizers are configured (on_fit_start), after Lightning has rewritten the run's
    ``config.yaml``: a refusal puts the run's own config back. (Asking the trainer earlier would build the training
    loader before the checkpoint's loader position is restored, and the resume would no longer be exact.)
    """

    def __init__(self) -> None:
        self.ckpt_path: Path | None = None  # the checkpoint `fit` resumes from (trainer.ckpt_path is set later)
        self._resumed: dict[str, Any] | None = None  # its schedule record, read with it in parse_arguments
        self._saved: dict[str, Any] | None = None
        self._config: tuple[Path, bytes] | None = None

    def resume_from(self, path: Path, ckpt: dict[str, Any]) -> None:
        """The checkpoint ``fit`` resumes from, already read (None in its record: no schedule, or an older one)."""
        self.ckpt_path, self._resumed = path, ckpt.get(SCHEDULE_KEY)

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        self._saved = self._config = None
        if stage != "fit" or self.ckpt_path is None:
            return
        self._saved = self._resumed
        config = Path(trainer.log_dir or trainer.default_root_dir) / "config.yaml"  # runs before SaveConfigCallback
        if self._saved and trainer.is_global_zero and config.is_file():
            self._config = config, config.read_bytes()

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        schedule = getattr(pl_module, "schedule", None)  # what configure_optimizers built for this run
        if not self._saved or not schedule or int(self._saved["steps"]) == schedule["steps"]:
            return
        if self._config is not None:
            path, content = self._config
            with replace_atomically(path) as tmp:
                tmp.write_bytes(content)
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
