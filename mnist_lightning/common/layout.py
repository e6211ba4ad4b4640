"""Every path and file name the project reads or writes; every other module asks here. Needs no torch.

A run is ``<root>/<logger name>/<version>/`` with ``checkpoints/`` (``best-*.ckpt``, ``last.ckpt``), the exports
``mnist.onnx`` and ``mnist.pt``, and one subfolder per evaluation of its checkpoints (``test/``, ``predict/``...).
Lightning's default logger writes ``<root>/lightning_logs/version_N``; a ``CSVLogger`` or one named
``--trainer.logger.name mycsv`` writes the same shape under another name. ``best``, ``last`` and ``latest`` mean
"of the run that wrote such a file most recently", found under every logger name unless one is given.
A tune study's trials are runs ``<root>/lightning_logs/<study folder>/trial_NNNN`` (see :func:`study_folder`).
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from mnist_lightning.common.contract import MONITOR
from mnist_lightning.common.errors import UserError

LOG_NAME = "lightning_logs"  # Lightning's default logger folder
CHECKPOINTS = "checkpoints"
LAST_NAME = "last.ckpt"
ONNX_NAME = "mnist.onnx"
TORCH_SUFFIX = ".pt"  # the plain-PyTorch twin of an ONNX export: mnist.pt beside mnist.onnx
CONFIG_NAME = "config.yaml"  # LightningCLI's SaveConfigCallback default
METRICS_CSV = "metrics.csv"  # Lightning's CSVLogger
EVENTS_GLOB = "events.out.tfevents.*"  # TensorBoard's event files
PREDICTIONS_CSV = "predictions.csv"
# MNIST's raw files, as torchvision lays them out under the data folder
MNIST_RAW = Path("MNIST", "raw")
TRAIN_IMAGES, TRAIN_LABELS = "train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"
TEST_IMAGES, TEST_LABELS = "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"
SPLIT_FILES = {"train": (TRAIN_IMAGES, TRAIN_LABELS), "t10k": (TEST_IMAGES, TEST_LABELS)}  # by file-name prefix
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


def run_of_checkpoint(ckpt: str | Path | None) -> Path | None:
    """The run folder of a checkpoint saved as ``<run>/checkpoints/<file>``, else None."""
    if not ckpt:
        return None
    path = Path(ckpt).resolve()
    return path.parent.parent if path.parent.name == CHECKPOINTS else None


def checkpoints_folder(run: str | Path) -> Path:
    return Path(run) / CHECKPOINTS


def evaluation_version(run: Path, stage: str) -> str:
    """The logger version under which validate/test/predict of a run's checkpoint log: ``<run>/<stage>/``."""
    return f"{run.name}/{stage}"


def torch_file_for(onnx_path: Path) -> Path:
    """``mnist.pt`` goes beside ``mnist.onnx`` under the same name (the plain-PyTorch copy of the same net)."""
    return onnx_path.with_suffix(TORCH_SUFFIX)


def export_path(ckpt_path: Path) -> Path:
    """Where ``export`` puts a checkpoint's model unless ``--output`` says: in its run folder (beside ``checkpoints/``),
    as ``mnist.onnx`` for the run's best checkpoint (what ``fit`` exported) and as ``mnist-<checkpoint name>.onnx``
    for any other, so exporting ``last`` never replaces the best one's file. Outside a run: beside the checkpoint."""
    run = run_of_checkpoint(ckpt_path)
    if run is not None and (best := best_of_run(run)) is not None and best.resolve() == ckpt_path.resolve():
        return run / ONNX_NAME
    return (run or ckpt_path.resolve().parent) / f"{Path(ONNX_NAME).stem}-{ckpt_path.stem}.onnx"


def predictions_csv(log_dir: str | Path) -> Path:
    """``predict``'s CSV in its run folder (``<run>/predict/`` when it predicts with a run's checkpoint)."""
    return Path(log_dir) / PREDICTIONS_CSV


def onnx_predictions_csv(model: str | Path) -> Path:
    """``<run>/predict/``, where torch ``predict`` of the run's checkpoints writes its ``predictions.csv``; named after
    the model, so neither command's CSV replaces the other's, nor one model's another's."""
    model = Path(model)
    return model.parent / "predict" / f"{Path(PREDICTIONS_CSV).stem}-{model.stem}.csv"


def mnist_raw_folder(data_dir: str | Path) -> Path:
    return Path(data_dir) / MNIST_RAW


def keep_earlier_metrics(log_dir: str | Path) -> Path | None:
    """Move a resumed run's ``metrics.csv`` aside to the first free ``metrics-<n>.csv`` (CSVLogger deletes it)."""
    old = Path(log_dir) / METRICS_CSV
    if not old.is_file():
        return None
    n = 1
    while (kept := old.with_name(f"{old.stem}-{n}{old.suffix}")).exists():
        n += 1
    return old.rename(kept)


TRIAL_PREFIX = "trial_"


def default_storage(runs: Path, study: str) -> str:
    return f"sqlite:///{runs / study}.db"


def storage_file(url: str) -> Path | None:
    """The file of a SQLite or journal storage (None for a database server)."""
    if url.startswith("sqlite:///"):
        return Path(url.removeprefix("sqlite:///")).expanduser()
    return None if "://" in url else Path(url).expanduser()


def _storage_key(url: str) -> str:
    """The same storage however it is spelled: a storage file by its absolute path."""
    file = storage_file(url)
    return url if file is None else str(file.resolve())


def study_folder(runs: Path, study: str, storage_url: str) -> Path:
    """A study's trial runs: ``<runs>/<study>`` with its default storage, ``<runs>/<study>-<8 hex digits of the
    storage>`` with any other, so that studies of one name in two storages never share a folder."""
    key = _storage_key(storage_url)
    if key == _storage_key(default_storage(runs, study)):
        return runs / study
    return runs / f"{study}-{hashlib.sha256(key.encode()).hexdigest()[:8]}"


def best_config_path(storage_url: str, folder: Path) -> Path:
    """``<study folder name>-best.yaml`` beside the storage file (beside the study folder for a database server)."""
    file = storage_file(storage_url)
    return (folder.parent if file is None else file.parent) / f"{folder.name}-best.yaml"


def trial_version(number: int) -> str:
    """A trial's run folder in its study folder: named by its trial number, unique in the study."""
    return f"{TRIAL_PREFIX}{number:04d}"


def trial_folders(folder: Path) -> list[Path]:
    return [p for p in sorted(folder.glob(f"{TRIAL_PREFIX}*")) if p.is_dir()]


def foreign_trials(folders: list[Path], numbers: set[int]) -> list[Path]:
    """The trial folders that no trial numbered in ``numbers`` wrote: an earlier study's."""
    return [p for p in folders if not (n := p.name.removeprefix(TRIAL_PREFIX)).isdigit() or int(n) not in numbers]
