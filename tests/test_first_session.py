"""A user's first session, as real subprocesses in a fresh folder: no warning on stderr, no stray run folder, no file
that one command silently replaces for another, and line-oriented output on its own lines in a pipe."""

from __future__ import annotations

import fnmatch
import hashlib
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from mnist_lightning.common.predictions import read_csv
from tests.helpers.digit_images import make_digit_folder
from tests.helpers.synthetic import small_args

ROOT = Path(__file__).resolve().parents[1]
RUN = "lightning_logs/version_0"
# The "Where things land" table of docs/training.md for this session (fit, fit --ckpt_path last, test, validate,
# predict, export --ckpt_path last, predict-onnx of the run's mnist.onnx): every file the folder may hold, and no other.
README_FILES = [
    f"{RUN}/config.yaml",
    f"{RUN}/hparams.yaml",
    f"{RUN}/events.out.tfevents.*",
    f"{RUN}/checkpoints/best-epoch*-acc*.ckpt",
    f"{RUN}/checkpoints/last.ckpt",
    f"{RUN}/mnist.onnx",
    f"{RUN}/mnist.pt",
    f"{RUN}/mnist-last.onnx",
    f"{RUN}/mnist-last.pt",
    *(f"{RUN}/{stage}/{name}" for stage in ("test", "validate", "predict") for name in ("config.yaml", "hparams.yaml")),
    *(f"{RUN}/{stage}/events.out.tfevents.*" for stage in ("test", "validate", "predict")),
    f"{RUN}/predict/predictions.csv",
    f"{RUN}/predict/predictions-mnist.csv",
]
# what a warning looks like on stderr: Python's "file.py:LINE: Message" form, or any mention of one
WARNING_LINE = re.compile(r"\.py:\d+: |warn|deprecat|💡", re.IGNORECASE)


def run(folder: Path, *argv: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    done = subprocess.run(
        [sys.executable, "-m", "mnist_lightning", *argv], cwd=folder, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


@pytest.mark.slow
def test_first_session_is_quiet_and_leaves_only_the_documented_files(data_dir: Path, tmp_path: Path) -> None:
    folder = tmp_path / "fresh"
    folder.mkdir()
    digits = make_digit_folder(tmp_path / "mine")
    args = small_args(data_dir)
    stderr: dict[str, str] = {}
    stderr["fit"] = run(folder, "fit", *args).stderr
    stderr["fit --ckpt_path last"] = run(
        folder, "fit", *args, "--trainer.max_epochs", "3", "--ckpt_path", "last"
    ).stderr
    stderr["test"] = run(folder, "test", *args, "--ckpt_path", "best").stderr
    stderr["validate"] = run(folder, "validate", *args, "--ckpt_path", "last").stderr
    # with its progress bar, stdout a pipe: the accuracy must still start a line of its own
    predicted = run(folder, "predict", *args, "--ckpt_path", "best", "--trainer.enable_progress_bar", "true")
    stderr["predict"] = predicted.stderr
    assert re.search(r"^MNIST test set: 200 images, accuracy", predicted.stdout, re.MULTILINE), predicted.stdout
    best_onnx = md5(folder / RUN / "mnist.onnx")
    exported = run(folder, "export", "--ckpt_path", "last")
    stderr["export"] = exported.stderr
    assert f"-> {folder / RUN / 'mnist-last.onnx'}" in exported.stdout
    assert md5(folder / RUN / "mnist.onnx") == best_onnx  # the best checkpoint's export stays
    stderr["predict-onnx"] = run(folder, "predict-onnx", f"{RUN}/mnist.onnx", str(tmp_path / "mine")).stderr

    for command, text in stderr.items():
        warnings = [line for line in text.splitlines() if WARNING_LINE.search(line)]
        assert not warnings, f"{command}: {warnings}"

    files = sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())
    unnamed = [f for f in files if not any(fnmatch.fnmatch(f, pattern) for pattern in README_FILES)]
    missing = [pattern for pattern in README_FILES if not fnmatch.filter(files, pattern)]
    assert not unnamed and not missing, f"not in the docs' table: {unnamed}; absent: {missing}"
    assert sorted(p.name for p in (folder / "lightning_logs").iterdir()) == ["version_0"]  # one run, however used
    rows = read_csv(folder / RUN / "predict" / "predictions-mnist.csv")  # predict-onnx: beside torch predict's CSV
    assert sorted(Path(r["file"]).name for r in rows) == sorted(digits)
