"""A small synthetic MNIST in the real IDX .gz format, and the CLI arguments for a tiny, fast run on it."""

from __future__ import annotations

import gzip
import os
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).parents[2]


def write_idx(path: Path, array: np.ndarray, magic: int) -> None:
    header = struct.pack(">I", magic) + b"".join(struct.pack(">I", d) for d in array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


def synthetic_digits(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Learnable fake digits: class c lights up a 6x6 block at its own spot, plus noise."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, n)
    images = rng.integers(0, 60, (n, 28, 28))
    for i, c in enumerate(labels):
        r, col = 2 + (c // 5) * 12, 2 + (c % 5) * 5
        images[i, r : r + 6, col : col + 6] = 255
    return images.astype(np.uint8), labels.astype(np.uint8)


def make_mnist(data_dir: Path, n_train: int = 600, n_test: int = 200) -> Path:
    raw = data_dir / "MNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for prefix, n, seed in (("train", n_train, 0), ("t10k", n_test, 1)):
        images, labels = synthetic_digits(n, seed)
        write_idx(raw / f"{prefix}-images-idx3-ubyte.gz", images, 2051)
        write_idx(raw / f"{prefix}-labels-idx1-ubyte.gz", labels, 2049)
    return data_dir


def small_args(data_dir: Path, *extra: str) -> list[str]:
    """CLI arguments for a tiny, fast run on the synthetic data."""
    return [
        "--config",
        str(Path(__file__).parents[2] / "configs" / "base.yaml"),
        "--data.data_dir",
        str(data_dir),
        "--data.verify_md5",
        "false",
        "--data.download",
        "false",
        "--data.val_size",
        "100",
        "--data.batch_size",
        "50",
        "--trainer.max_epochs",
        "2",
        "--trainer.accelerator",
        "cpu",
        "--trainer.enable_progress_bar",
        "false",
        "--trainer.log_every_n_steps",
        "2",
        *extra,
    ]


def fit_in_subprocess(args: list[str], cwd: Path, timeout: int = 600) -> subprocess.CompletedProcess:
    """``python -m mnist_lightning fit ARGS`` as its own process in ``cwd``, importing this checkout's package."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run(
        [sys.executable, "-m", "mnist_lightning", "fit", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
