"""Where runs live: ``<root>/lightning_logs/version_N/`` with ``checkpoints/``, event files and ``mnist.onnx``."""

from __future__ import annotations

import os
import re
from pathlib import Path

from mnist_lightning.errors import UserError

LOG_NAME = "lightning_logs"
BEST_PREFIX = "best-"
# file name of the best checkpoint; '/' inside the braces is the metric key, not a folder
BEST_FILENAME = BEST_PREFIX + "epoch{epoch:02d}-acc{val/acc:.4f}"


def run_dirs(root: str | Path = ".") -> list[Path]:
    """The run folders under ``root``, oldest first by version number."""
    runs = [p for p in (Path(root) / LOG_NAME).glob("version_*") if p.is_dir()]
    return sorted(runs, key=lambda p: int(re.sub(r"\D", "", p.name) or -1))


def _acc(ckpt: Path) -> float:
    match = re.search(r"acc(\d+\.\d+)", ckpt.name)
    return float(match.group(1)) if match else -1.0


def find_checkpoint(which: str, root: str | Path = ".") -> Path:
    """'best' or 'last' checkpoint of the newest run under ``root`` that has one."""
    for run in reversed(run_dirs(root)):
        ckpts = run / "checkpoints"
        if which == "last" and (ckpts / "last.ckpt").is_file():
            return ckpts / "last.ckpt"
        if which == "best" and (best := sorted(ckpts.glob(BEST_PREFIX + "*.ckpt"), key=_acc)):
            return best[-1]
    raise UserError(
        f"no '{which}' checkpoint found under {Path(root) / LOG_NAME}; train first "
        "(python -m mnist_lightning fit --config configs/base.yaml) or pass --ckpt_path PATH/TO/FILE.ckpt."
    )


def resolve_checkpoint(ckpt_path: str | Path | None, root: str | Path = ".") -> Path | None:
    """Turn 'best'/'last' into a file of the newest run; other paths are returned as they are."""
    if ckpt_path in (None, ""):
        return None
    if str(ckpt_path) in ("best", "last"):
        return find_checkpoint(str(ckpt_path), root)
    return Path(ckpt_path)


def check_checkpoint(path: Path, hidden_layers: list[int] | None = None) -> None:
    """Fail with a clear message unless ``path`` is a MNISTClassifier checkpoint (of ``hidden_layers``, if given)."""
    from mnist_lightning.export import net_from_checkpoint

    _, ckpt = net_from_checkpoint(path)  # readable, weights_only, and its weights fit its own architecture
    saved = list(ckpt.get("hyper_parameters", {}).get("hidden_layers", []))
    if hidden_layers is not None and saved and saved != list(hidden_layers):
        raise UserError(
            f"checkpoint {path} holds a net with hidden_layers {saved}, but the config asks for "
            f"{list(hidden_layers)}; training cannot resume into a different architecture. Pass "
            f"--model.hidden_layers '{saved}' to resume it, or drop --ckpt_path to train the new one from scratch."
        )


def run_logger(root: str | Path = ".", ckpt: Path | None = None):  # noqa: ANN201 - TensorBoardLogger, lazily
    """The TensorBoard logger of a run: Lightning's default, without its placeholder ``hp_metric = -1``.

    Resuming from ``ckpt`` inside ``<root>/lightning_logs/version_N/checkpoints/`` continues in that run folder;
    otherwise the run gets a new version folder as usual.
    """
    from lightning.pytorch.loggers import TensorBoardLogger

    version = None
    if ckpt is not None:
        run = ckpt.resolve().parent.parent
        logs = (Path(root) / LOG_NAME).resolve()
        if ckpt.resolve().parent.name == "checkpoints" and run.parent == logs and run.name.startswith("version_"):
            number = run.name.removeprefix("version_")
            version = int(number) if number.isdigit() else run.name
    # spelled as Trainer spells its default logger's save_dir, so that ModelCheckpoint finds its dirpath unchanged
    # and restores its best-k bookkeeping
    save_dir = os.path.normpath(os.path.expanduser(root))
    return TensorBoardLogger(save_dir=save_dir, name=LOG_NAME, version=version, default_hp_metric=False)
