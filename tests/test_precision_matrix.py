"""The combination matrix on CPU: every precision x recipe through fit, test, export and predict, and the short,
odd-length and other-logger runs people try first. Synthetic data, one tiny fit per cell, reused by its stages."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch

from mnist_lightning.commands import main
from mnist_lightning.model.checkpoints import load_checkpoint, net_from_checkpoint
from tests.helpers.synthetic import small_args

pytestmark = pytest.mark.slow
CONFIGS = Path(__file__).parents[1] / "configs"
PRECISIONS = ("32-true", "64-true", "bf16-mixed", "bf16-true", "16-mixed")
RECIPES = ("base", "best", "fast")
TINY = ("--trainer.max_epochs", "1", "--trainer.limit_train_batches", "2", "--trainer.limit_val_batches", "1")


def recipe_args(data_dir: Path, recipe: str, root: Path, *extra: str) -> list[str]:
    """small_args with ``configs/<recipe>.yaml`` in place of base.yaml, landing in ``root``."""
    args = small_args(data_dir, "--trainer.default_root_dir", str(root), *extra)
    args[1] = str(CONFIGS / f"{recipe}.yaml")
    return args


@pytest.mark.parametrize("recipe", RECIPES)
@pytest.mark.parametrize("precision", PRECISIONS)
def test_precision_and_recipe_fit_test_export_predict(
    data_dir: Path, tmp_path: Path, precision: str, recipe: str, capsys
) -> None:
    args = recipe_args(data_dir, recipe, tmp_path, *TINY, "--trainer.precision", precision)
    assert main(["fit", *args]) == 0, capsys.readouterr().err[-2000:]
    run = tmp_path / "lightning_logs" / "version_0"
    best = next((run / "checkpoints").glob("best-*.ckpt"))
    assert load_checkpoint(best)["hyper_parameters"]["lr"] > 0  # weights_only=True

    assert main(["test", *args, "--ckpt_path", str(best)]) == 0
    assert main(["predict", *args, "--ckpt_path", str(best)]) == 0
    predictions = run / "predict" / "predictions.csv"  # evaluations write inside the run they read
    with predictions.open() as f:
        assert len(list(csv.DictReader(f))) == 200  # the synthetic test set

    out = tmp_path / "exported.onnx"
    assert main(["export", "--ckpt_path", str(best), "--output", str(out)]) == 0
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    (inp,), (outp,) = session.get_inputs(), session.get_outputs()
    assert inp.type == outp.type == "tensor(float)"  # float32 whatever the training precision
    images = np.random.default_rng(0).random((16, 784), dtype=np.float32)
    (onnx_out,) = session.run(None, {inp.name: images})
    net, _ = net_from_checkpoint(best)
    with torch.no_grad():
        expected = net(torch.from_numpy(images)).numpy()
    np.testing.assert_allclose(onnx_out, expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("schedule", ("constant", "onecycle", "cosine"))
def test_every_schedule_runs_from_one_to_five_steps(data_dir: Path, tmp_path: Path, schedule: str, capsys) -> None:
    # fast.yaml's OneCycle warmup (0.15) and best.yaml's (0.2) at 1..5 total steps; 5 x 0.2 was a ZeroDivisionError
    extra = ("--model.lr_schedule", schedule, "--model.warmup", "0.2", "--export.enabled", "false")
    for batches in range(1, 6):
        root = tmp_path / str(batches)
        args = recipe_args(data_dir, "fast", root, *TINY, "--trainer.limit_train_batches", str(batches), *extra)
        assert main(["fit", *args, "--trainer.logger", "false"]) == 0, capsys.readouterr().err[-2000:]
        last = load_checkpoint(next(root.glob("**/last.ckpt")))
        assert last["global_step"] == batches
        if schedule != "constant":
            assert last["lr_schedulers"][0]["last_epoch"] == batches


def test_fast_dev_run_max_steps_and_csv_logger(data_dir: Path, tmp_path: Path, capsys) -> None:
    assert main(["fit", *recipe_args(data_dir, "best", tmp_path / "dev", "--trainer.fast_dev_run", "true")]) == 0
    # max_steps instead of epochs: 7 steps span an epoch boundary (10 batches of 50 per epoch, limited to 4)
    steps = ("--trainer.max_epochs", "-1", "--trainer.max_steps", "7", "--trainer.limit_train_batches", "4")
    assert main(["fit", *recipe_args(data_dir, "best", tmp_path / "steps", *steps)]) == 0
    last = load_checkpoint(next((tmp_path / "steps").glob("**/last.ckpt")))
    assert last["global_step"] == 7 and last["lr_schedulers"][0]["total_steps"] == 7

    csv_logger = ("--trainer.logger", "CSVLogger", "--trainer.logger.save_dir", str(tmp_path / "csv"))
    assert main(["fit", *recipe_args(data_dir, "best", tmp_path / "csv", *TINY, *csv_logger)]) == 0, (
        capsys.readouterr().err
    )
    metrics = next((tmp_path / "csv").glob("**/metrics.csv")).read_text()
    assert "val/acc" in metrics and "train/loss" in metrics
