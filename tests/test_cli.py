"""The real CLI end to end: fit, then validate/test/predict/export from what it wrote."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from mnist_lightning import MNISTDataModule
from mnist_lightning.commands import main
from mnist_lightning.model.checkpoints import net_from_checkpoint
from tests.helpers.synthetic import small_args


def run_dir(root: Path) -> Path:
    """The trained_run fixture's own run: the first one under root."""
    return root / "lightning_logs" / "version_0"


def test_fit_writes_checkpoints_events_and_verified_onnx(trained_run: Path, data_dir: Path) -> None:
    run = run_dir(trained_run)
    ckpts = {p.name for p in (run / "checkpoints").iterdir()}
    assert "last.ckpt" in ckpts and any(n.startswith("best-") for n in ckpts)

    # the checkpoint loads without unpickling arbitrary objects and holds plain hyperparameters
    ckpt = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)
    assert ckpt["hyper_parameters"]["hidden_layers"] == [256, 32]
    assert ckpt["epoch"] == 1

    events = EventAccumulator(str(run))
    events.Reload()
    val_acc = [e.value for e in events.Scalars("val/acc")]
    assert len(val_acc) == 2 and 0.0 <= val_acc[-1] <= 1.0
    assert val_acc[-1] > 0.5  # the synthetic digits are easy: a run that learned nothing fails here
    assert {"train/loss", "train/acc", "val/loss", "train/loss_step"} <= set(events.Tags()["scalars"])

    model = onnx.load(run / "mnist.onnx")
    assert [i.name for i in model.graph.input] == ["images"] and [o.name for o in model.graph.output] == ["numbers"]
    assert model.graph.input[0].type.tensor_type.shape.dim[0].dim_param  # dynamic batch axis
    assert not list(run.glob("*.data")) and not list(run.glob(".mnist.onnx*"))  # self-contained, no temp left
    session = ort.InferenceSession(str(run / "mnist.onnx"))
    dm = MNISTDataModule(str(data_dir), verify_md5=False, val_size=100)
    dm.setup()
    images, labels = dm.splits["test"]
    x = images.float().div(255).numpy()
    for n in (1, 3, 200):
        (logits,) = session.run(["numbers"], {"images": x[:n]})
        assert logits.shape == (n, 10)
    best = next((run / "checkpoints").glob("best-*.ckpt"))
    net, _ = net_from_checkpoint(best)
    with torch.no_grad():
        want = net(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(logits, want, atol=1e-4)


def test_fit_prints_where_everything_is(tmp_path: Path, data_dir: Path, capsys) -> None:
    # its own folder: a second run in the shared trained_run would become every later test's "best"
    args = small_args(data_dir, "--trainer.default_root_dir", str(tmp_path), "--trainer.max_epochs", "1")
    assert main(["fit", *args]) == 0
    out = capsys.readouterr().out
    for what in ("best checkpoint", "ONNX model", "tensorboard --logdir", "val/acc"):
        assert what in out


def test_fit_twice_in_the_same_folder(data_dir: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    args = ["fit", *small_args(data_dir, "--trainer.max_epochs", "1", "--trainer.limit_train_batches", "2")]
    assert main(args) == 0
    assert main(args) == 0
    runs = sorted(p.name for p in (tmp_path / "lightning_logs").iterdir())
    assert runs == ["version_0", "version_1"]
    assert all((tmp_path / "lightning_logs" / r / "config.yaml").is_file() for r in runs)


@pytest.mark.parametrize("stage", ["validate", "test"])
def test_validate_and_test_from_best_checkpoint(stage: str, trained_copy: Path, data_dir: Path, capsys) -> None:
    args = small_args(data_dir, "--trainer.default_root_dir", str(trained_copy), "--ckpt_path", "best")
    assert main([stage, *args]) == 0
    out = capsys.readouterr().out
    key = "val/acc" if stage == "validate" else "test/acc"
    assert key in out


def test_predict_from_a_checkpoint_path(trained_run: Path, data_dir: Path) -> None:
    from mnist_lightning import run_cli

    ckpt = run_dir(trained_run) / "checkpoints" / "last.ckpt"
    cli = run_cli(
        [
            "predict",
            *small_args(
                data_dir,
                "--trainer.default_root_dir",
                str(trained_run),
                "--trainer.logger",
                "false",
                "--ckpt_path",
                str(ckpt),
            ),
        ]
    )
    preds = cli.trainer.predict_loop.predictions
    digits = torch.cat([p["digits"] for p in preds])
    labels = torch.cat([p["labels"] for p in preds])
    assert len(digits) == 200
    assert (digits == labels).float().mean() > 0.5
    probs = torch.cat([p["probabilities"] for p in preds])
    torch.testing.assert_close(probs.sum(dim=1), torch.ones(200))


def test_export_command_writes_a_verified_onnx_without_training(trained_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "exported.onnx"
    proc = subprocess.run(
        [sys.executable, "-m", "mnist_lightning", "export", "--ckpt_path", "best", "--output", str(out)],
        cwd=trained_run,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert str(out) in proc.stdout
    meta = {p.key: p.value for p in onnx.load(out).metadata_props}
    assert meta["hidden_layers"] == "[256, 32]" and meta["checkpoint"].endswith(".ckpt")
    assert "val_acc" in meta
    ort.InferenceSession(str(out)).run(None, {"images": np.zeros((2, 784), np.float32)})


def test_bad_input_gives_one_line_error_and_nonzero_exit(tmp_path: Path, data_dir: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "mnist_lightning", "test", *small_args(data_dir), "--ckpt_path", "best"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 2
    assert "no 'best' checkpoint found" in proc.stderr and "Traceback" not in proc.stderr
