"""Where runs live, for any logger: ``<root>/<logger name>/<version>/`` with ``checkpoints/`` and ``mnist.onnx``.

Lightning's default logger writes ``<root>/lightning_logs/version_N``; a ``CSVLogger`` or one named
``--trainer.logger.name mycsv`` writes the same shape under another name. ``best``, ``last`` and ``latest`` mean
"of the run that wrote such a file most recently", found under every logger name unless one is given. Needs no torch.
"""

from __future__ import annotations

import re
from pathlib import Path

from mnist_lightning.common.contract import MONITOR
from mnist_lightning.common.errors import UserError

LOG_NAME = "lightning_logs"  # Lightning's default logger folder
CHECKPOINTS = "checkpoints"
LAST_NAME = "last.ckpt"
ONNX_NAME = "mnist.onnx"
BEST_PREFIX = "best-"
# file name of the best checkpoint; '/' inside the braces is the metric key, not a folder
BEST_FILENAME = BEST_PREFIX + "epoch{epoch:02d}-acc{" + MONITOR + ":.4f}"
TRAIN_HINT = "train first (python -m mnist_lightning fit --config configs/base.yaml)"


def run_dirs(root: str | Path = ".", log_name: str | None = None) -> list[Path]:
    """Run folders ``<root>/<log_name or any>/<version>`` that hold checkpoints or an export, sorted by path."""
    names = [log_name] if log_name else ["*"]
    runs = {p.parent for name in names for p in Path(root).glob(f"{name}/*/{CHECKPOINTS}") if p.is_dir()}
    runs |= {p.parent for name in names for p in Path(root).glob(f"{name}/*/{ONNX_NAME}") if p.is_file()}
    return sorted(runs)


def _acc(ckpt: Path) -> float:
    match = re.search(r"acc(\d+\.\d+)", ckpt.name)
    return float(match.group(1)) if match else -1.0


def _newest(files: list[Path]) -> Path | None:
    return max(files, key=lambda p: p.stat().st_mtime_ns, default=None)


def _where(root: str | Path, log_name: str | None) -> str:
    return str(Path(root) / log_name) if log_name else f"{root} (any logger folder)"


def find_checkpoint(which: str, root: str | Path = ".", log_name: str | None = None) -> Path:
    """``last.ckpt``, or the highest-scoring ``best-*.ckpt``, of the run that saved a checkpoint most recently."""
    found: dict[Path, Path] = {}  # the wanted file of each run that has one -> the run's newest checkpoint
    for run in run_dirs(root, log_name):
        ckpts = sorted((run / CHECKPOINTS).glob("*.ckpt"))
        if which == "last" and (run / CHECKPOINTS / LAST_NAME).is_file():
            found[run / CHECKPOINTS / LAST_NAME] = _newest(ckpts)
        elif which == "best" and (best := [c for c in ckpts if c.name.startswith(BEST_PREFIX)]):
            found[max(best, key=_acc)] = _newest(ckpts)
    if not found:
        raise UserError(
            f"no '{which}' checkpoint found under {_where(root, log_name)}; {TRAIN_HINT} or pass --ckpt_path "
            "PATH/TO/FILE.ckpt."
        )
    return max(found, key=lambda f: found[f].stat().st_mtime_ns)


def resolve_checkpoint(
    ckpt_path: str | Path | None, root: str | Path = ".", log_name: str | None = None
) -> Path | None:
    """Turn 'best'/'last' into a file of the newest run; other paths are returned as they are."""
    if ckpt_path in (None, ""):
        return None
    if str(ckpt_path) in ("best", "last"):
        return find_checkpoint(str(ckpt_path), root, log_name)
    return Path(ckpt_path)


def newest_onnx(root: str | Path = ".") -> Path:
    """``latest``: the ``mnist.onnx`` written most recently by any run under ``root``."""
    if (onnx := _newest([run / ONNX_NAME for run in run_dirs(root) if (run / ONNX_NAME).is_file()])) is None:
        raise UserError(f"no {ONNX_NAME} under {_where(root, None)}; {TRAIN_HINT} or pass --onnx PATH/TO/{ONNX_NAME}")
    return onnx


def best_of_run(run: Path) -> Path | None:
    """The highest-scoring ``best-*.ckpt`` of one run folder, if it has any."""
    best = (run / CHECKPOINTS).glob(f"{BEST_PREFIX}*.ckpt")
    return max(sorted(best), key=_acc, default=None)


def run_of_checkpoint(ckpt: str | Path) -> Path | None:
    """The run folder of a checkpoint saved as ``<run>/checkpoints/<file>``, else None."""
    path = Path(ckpt).resolve()
    return path.parent.parent if path.parent.name == CHECKPOINTS else None
