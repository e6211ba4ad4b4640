"""Atomic checkpoint files: the default for every checkpoint `fit` writes; a failed write keeps the old file."""

from __future__ import annotations

import pickle
import stat
from pathlib import Path
from typing import Any

import pytest
import torch

from mnist_lightning.common.errors import UserError
from mnist_lightning.training.checkpoint_io import AtomicCheckpointIO
from mnist_lightning.training.cli import run_cli
from tests.helpers.synthetic import small_args


def test_fit_writes_every_checkpoint_through_the_atomic_io(data_dir: Path, tmp_path: Path) -> None:
    args = small_args(data_dir, "--trainer.max_epochs", "1", "--trainer.limit_train_batches", "2")
    cli = run_cli(["fit", *args, "--export.enabled", "false", "--trainer.default_root_dir", str(tmp_path)])
    assert type(cli.trainer.strategy.checkpoint_io) is AtomicCheckpointIO
    files = list((tmp_path / "lightning_logs" / "version_0" / "checkpoints").iterdir())
    assert sorted(f.name.split("-")[0] for f in files) == ["best", "last.ckpt"]  # no temp files left
    assert all(stat.S_IMODE(f.stat().st_mode) == 0o644 for f in files)


class FailsMidWrite(AtomicCheckpointIO):
    def write(self, checkpoint: dict[str, Any], f: Any) -> None:
        f.write(b"half a checkpoint")
        raise OSError(28, "No space left on device")


def test_a_failed_save_keeps_the_previous_file_whole(tmp_path: Path) -> None:
    path = tmp_path / "last.ckpt"
    AtomicCheckpointIO().save_checkpoint({"state_dict": {"w": torch.ones(3)}}, path)
    before = path.read_bytes()
    with pytest.raises(UserError, match="No space left on device.*previous file, if any, is untouched"):
        FailsMidWrite().save_checkpoint({"state_dict": {"w": torch.zeros(3)}}, path)
    assert path.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == ["last.ckpt"]
    assert torch.equal(AtomicCheckpointIO().load_checkpoint(path)["state_dict"]["w"], torch.ones(3))


class Payload:
    def __reduce__(self) -> tuple:
        return (print, ("pickled code ran",))


def test_loading_never_unpickles_code_even_when_asked_to(tmp_path: Path) -> None:
    path = tmp_path / "evil.ckpt"
    torch.save({"state_dict": {}, "x": Payload()}, path)
    with pytest.raises(pickle.UnpicklingError, match="Weights only load failed"):
        AtomicCheckpointIO().load_checkpoint(path, weights_only=False)
