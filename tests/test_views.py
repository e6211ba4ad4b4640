"""TensorBoard views, read back from the event files with TensorBoard's own reader."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.hparams import plugin_data_pb2

from mnist_lightning.commands import main
from mnist_lightning.common.inspect_run import describe, read_run
from mnist_lightning.training.callbacks.views import HP_METRICS
from mnist_lightning.training.data import MNISTDataModule
from tests.helpers.synthetic import small_args

EPOCHS = 2  # the trained_run fixture's


def events_of(run: Path) -> EventAccumulator:
    events = EventAccumulator(str(run), size_guidance={"scalars": 0, "images": 0, "tensors": 0})
    events.Reload()
    return events


def test_fit_logs_confusion_matrices_per_digit_accuracy_misclassified_and_lr(trained_run: Path, data_dir: Path) -> None:
    events = events_of(trained_run / "lightning_logs" / "version_0")
    tags = events.Tags()
    # one confusion matrix and one misclassified grid per validation epoch (the sanity check logs none)
    for tag in ("val/confusion_matrix", "val/misclassified"):
        images = events.Images(tag)
        assert len(images) == EPOCHS
        decoded = Image.open(io.BytesIO(images[-1].encoded_image_string))
        assert decoded.size == (images[-1].width, images[-1].height) and decoded.mode == "RGB"
    matrix = np.asarray(Image.open(io.BytesIO(events.Images("val/confusion_matrix")[-1].encoded_image_string)))
    assert (np.abs(matrix.astype(int) - [33, 102, 172]).sum(axis=2) < 30).any()  # coloured diagonal cells

    per_digit = {d: events.Scalars(f"val/acc_digit_{d}") for d in range(10)}
    assert all(len(v) == EPOCHS and 0.0 <= v[-1].value <= 1.0 for v in per_digit.values())
    # per-digit accuracies weighted by how many of each digit the val set has give back val/acc
    dm = MNISTDataModule(str(data_dir), verify_md5=False, val_size=100)
    dm.setup()
    counts = torch.bincount(dm.splits["val"][1], minlength=10).numpy()
    weighted = sum(per_digit[d][-1].value * counts[d] for d in range(10)) / counts.sum()
    assert weighted == pytest.approx(events.Scalars("val/acc")[-1].value, abs=1e-5)

    # per step, at the steps and step numbers train/loss_step is written (log_every_n_steps 2: 1, 3, 5, ...)
    lr = events.Scalars("train/lr")
    assert [e.step for e in lr] == [e.step for e in events.Scalars("train/loss_step")] == list(range(1, 10 * EPOCHS, 2))
    assert [e.value for e in lr] == pytest.approx([1e-3] * len(lr))
    assert "hp_metric" not in tags["scalars"]  # Lightning's placeholder -1 is gone
    best = events.Scalars("hp/best_val_acc")
    assert len(best) == 1 and best[0].value == pytest.approx(max(e.value for e in events.Scalars("val/acc")))

    # the HPARAMS tab: the experiment names the metric columns, the session holds this run's config
    plugin = {
        tag: plugin_data_pb2.HParamsPluginData.FromString(c) for tag, c in events.PluginTagToContent("hparams").items()
    }
    experiment = plugin["_hparams_/experiment"].experiment
    # both columns from the first record on (the first one fixes them); hp/test_acc's value comes from a `test`
    assert [m.name.tag for m in experiment.metric_infos] == list(HP_METRICS)
    params = plugin["_hparams_/session_start_info"].session_start_info.hparams
    assert params["model.lr"].number_value == pytest.approx(1e-3)
    assert params["model.hidden_layers"].string_value == "[256, 32]"
    assert params["data.batch_size"].number_value == 50 and params["trainer.max_epochs"].number_value == EPOCHS


def test_test_adds_its_views_and_the_test_score_to_the_trained_runs_hparams(trained_run: Path, data_dir: Path) -> None:
    fitted = trained_run / "lightning_logs" / "version_0"
    best = next((fitted / "checkpoints").glob("best-*.ckpt"))
    args = small_args(data_dir, "--trainer.default_root_dir", str(trained_run), "--ckpt_path", str(best))
    assert main(["test", *args]) == 0
    own = read_run(fitted / "test")  # a test run logs inside the run its checkpoint came from
    assert [len(own["images"][t]) for t in ("test/confusion_matrix", "test/misclassified")] == [1, 1]
    assert all(len(own["scalars"][f"test/acc_digit_{d}"]) == 1 for d in range(10))
    test_acc = own["scalars"]["test/acc"][-1]

    row = read_run(fitted)  # the fitted run's HPARAMS row now has both metric columns
    assert row["hp_metrics"] == list(HP_METRICS)
    assert row["scalars"]["hp/test_acc"][-1] == pytest.approx(test_acc)
    assert row["hparams"]["model.lr"] == pytest.approx(1e-3)
    text = describe(fitted)
    assert "val/confusion_matrix: 2" in text and "[hp/test_acc] = " in text


def test_fit_logs_no_test_score_until_a_test_does(data_dir: Path, tmp_path: Path) -> None:
    args = small_args(data_dir, "--trainer.default_root_dir", str(tmp_path), "--trainer.max_epochs", "1")
    assert main(["fit", *args]) == 0
    run = tmp_path / "lightning_logs" / "version_0"
    fitted = read_run(run)
    assert fitted["hp_metrics"] == list(HP_METRICS)  # the HPARAMS tab has the test column already...
    assert "hp/test_acc" not in fitted["scalars"] and len(fitted["scalars"]["hp/best_val_acc"]) == 1  # ...no NaN
    assert "[hp/test_acc] = (not logged yet)" in describe(run)
    assert main(["test", *args, "--ckpt_path", "best"]) == 0
    tested = read_run(run)
    assert tested["hp_metrics"] == list(HP_METRICS)
    assert tested["scalars"]["hp/test_acc"] == pytest.approx(read_run(run / "test")["scalars"]["test/acc"])


def test_views_can_be_switched_off(data_dir: Path, tmp_path: Path) -> None:
    args = small_args(data_dir, "--trainer.default_root_dir", str(tmp_path), "--trainer.max_epochs", "1")
    assert main(["fit", *args, "--trainer.limit_train_batches", "2", "--views.enabled", "false"]) == 0
    events = events_of(tmp_path / "lightning_logs" / "version_0")
    assert events.Tags()["images"] == [] and "val/acc" in events.Tags()["scalars"]
    assert not any(t.startswith("val/acc_digit") for t in events.Tags()["scalars"])


def test_inspect_run_and_bad_view_settings_fail_clearly(tmp_path: Path, data_dir: Path, capsys) -> None:
    from mnist_lightning.common.inspect_run import main as inspect_main

    assert inspect_main([str(tmp_path)]) == 2
    assert "holds no TensorBoard event files" in capsys.readouterr().err
    args = small_args(data_dir, "--trainer.default_root_dir", str(tmp_path), "--views.misclassified", "-1")
    assert main(["fit", *args]) == 2
    assert "views.misclassified must be >= 0" in capsys.readouterr().err
