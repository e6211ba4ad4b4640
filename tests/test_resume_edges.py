"""Resumes that cannot continue, or have nothing left to do: one paragraph and exit 2, or a clean no-op; never a
traceback, never a run folder left changed or holding two best checkpoints."""

from __future__ import annotations

import shutil
from pathlib import Path

import onnx

from mnist_lightning.commands import main
from mnist_lightning.model.checkpoints import load_checkpoint
from tests.helpers.synthetic import small_args


def fit_args(data_dir: Path, root: Path, *extra: str) -> list[str]:
    return ["fit", *small_args(data_dir, "--trainer.default_root_dir", str(root), *extra)]


def test_resume_with_fewer_epochs_than_trained_is_one_paragraph(data_dir: Path, tmp_path: Path, capsys) -> None:
    assert main(fit_args(data_dir, tmp_path, "--trainer.max_epochs", "3")) == 0
    run = tmp_path / "lightning_logs" / "version_0"
    before = {p: p.read_bytes() for p in (run / "config.yaml", run / "checkpoints" / "last.ckpt")}
    capsys.readouterr()
    # Lightning: MisconfigurationException "You restored a checkpoint with current_epoch=..." from inside fit
    assert main([*fit_args(data_dir, tmp_path, "--trainer.max_epochs", "1"), "--ckpt_path", "last"]) == 2
    err = capsys.readouterr().err
    assert "has already trained 3 epochs, but --trainer.max_epochs is 1" in err and "--trainer.max_epochs 4" in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert {p: p.read_bytes() for p in before} == before  # the run is as it was
    assert sorted(p.name for p in tmp_path.glob("lightning_logs/*")) == ["version_0"]


def test_a_run_folder_copied_elsewhere_resumes_there(data_dir: Path, tmp_path: Path, capsys) -> None:
    original, copy = tmp_path / "original", tmp_path / "copy"
    assert main(fit_args(data_dir, original)) == 0
    shutil.copytree(original, copy)
    shutil.rmtree(original)  # moved: the checkpoints' recorded folder is gone
    checkpoints = copy / "lightning_logs" / "version_0" / "checkpoints"
    (best,) = checkpoints.glob("best-*.ckpt")
    capsys.readouterr()

    # nothing left to train (2 of 2 epochs): the summary and the export, from the copy (was float(None))
    assert main([*fit_args(data_dir, copy), "--ckpt_path", "last"]) == 0
    out = capsys.readouterr().out
    assert "Nothing left to train: it has trained --trainer.max_epochs 2" in out
    assert f"best checkpoint : {best} (val/acc " in out
    meta = onnx.load(str(copy / "lightning_logs" / "version_0" / "mnist.onnx")).metadata_props
    assert {p.key: p.value for p in meta}["checkpoint"] == str(best)  # the copy's best, not the removed original

    # training on: the copy keeps one best checkpoint (the old one was left beside the new one)
    assert main([*fit_args(data_dir, copy, "--trainer.max_epochs", "4"), "--ckpt_path", "last"]) == 0
    bests = list(checkpoints.glob("best-*.ckpt"))
    assert len(bests) == 1
    states = load_checkpoint(checkpoints / "last.ckpt")["callbacks"]
    state = next(v for k, v in states.items() if k.startswith("ModelCheckpoint"))
    assert Path(state["best_model_path"]) == bests[0] and Path(state["dirpath"]) == checkpoints
    assert not original.exists()
