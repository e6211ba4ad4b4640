"""configs/record.yaml, the accuracy record: the tutorial's net exactly, and every path base.yaml has (a SIGKILL
mid-epoch and its resume, export, test, predict, tune, TensorBoard), on the synthetic data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
import yaml
from onnx import numpy_helper
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from mnist_lightning.commands import main
from mnist_lightning.model.net import MyMNIST
from tests.helpers.synthetic import fit_in_subprocess, small_args

pytestmark = pytest.mark.slow
RECORD = Path(__file__).parents[1] / "configs" / "record.yaml"
TUTORIAL_WEIGHTS = 784 * 256 + 256 + 256 * 32 + 32 + 32 * 10 + 10  # 209,514
KILL = "callbacks: [{class_path: tests.helpers.faults.SignalAt, init_args: {step: 14}}]"


def record_args(data_dir: Path, *extra: str) -> list[str]:
    """small_args on configs/record.yaml: 3 short epochs of 10 steps, last.ckpt every 4 steps, no export."""
    args = small_args(data_dir, "--trainer.max_epochs", "3", "--resume.every_n_train_steps", "4", *extra)
    args[1] = str(RECORD)
    return args


def last(root: Path) -> dict:
    return torch.load(root / "lightning_logs" / "version_0" / "checkpoints" / "last.ckpt", weights_only=True)


def test_record_is_the_tutorial_net_end_to_end(data_dir: Path, tmp_path: Path) -> None:
    config = yaml.safe_load(RECORD.read_text())
    assert config["model"]["hidden_layers"] == [256, 32]
    args = record_args(data_dir, "--trainer.default_root_dir", str(tmp_path))
    assert main(["fit", *args]) == 0
    run = tmp_path / "lightning_logs" / "version_0"
    net = MyMNIST.load(run / "mnist.pt")
    sizes = {t.name: numpy_helper.to_array(t).size for t in onnx.load(str(run / "mnist.onnx")).graph.initializer}
    weights = {name: sizes.pop(name) for name in net.state_dict()}
    assert sum(weights.values()) == TUTORIAL_WEIGHTS
    assert sizes == {"mean": 1, "std": 1}  # besides the weights, only standardize's two constants
    session = ort.InferenceSession(str(run / "mnist.onnx"), providers=["CPUExecutionProvider"])
    pixels = np.random.default_rng(0).random((8, 784), dtype=np.float32)  # the ONNX convention: [0, 1]
    (logits,) = session.run(["numbers"], {"images": pixels})
    with torch.no_grad():
        np.testing.assert_allclose(logits, net(torch.from_numpy(pixels)).numpy(), rtol=1e-4, atol=1e-5)
    events = EventAccumulator(str(run), size_guidance={"scalars": 0})
    events.Reload()
    assert [e.step for e in events.Scalars("val/acc")] == [9, 19, 29]  # TensorBoard: one point per epoch
    best = next((run / "checkpoints").glob("best-*.ckpt"))
    for stage in ("test", "predict"):
        assert main([stage, *args, "--ckpt_path", str(best)]) == 0
    assert (run / "predict" / "predictions.csv").is_file()
    out = tmp_path / "again.onnx"
    assert main(["export", "--ckpt_path", str(best), "--output", str(out)]) == 0 and out.is_file()


def test_record_killed_mid_epoch_resumes_bitwise(data_dir: Path, tmp_path: Path) -> None:
    reference, killed = tmp_path / "reference", tmp_path / "killed"
    for root in (reference, killed):
        root.mkdir()
    assert fit_in_subprocess(record_args(data_dir, "--export.enabled", "false"), reference).returncode == 0
    (killed / "kill.yaml").write_text(f"trainer:\n  {KILL}\n")
    crashed = fit_in_subprocess(record_args(data_dir, "--export.enabled", "false", "--config", "kill.yaml"), killed)
    assert crashed.returncode == -9 and last(killed)["global_step"] == 12  # the step-12 last.ckpt; 13-14 replayed
    resumed = fit_in_subprocess(record_args(data_dir, "--export.enabled", "false", "--ckpt_path", "last"), killed)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    got, want = last(killed), last(reference)
    assert got["global_step"] == want["global_step"] == 30
    for key, value in want["state_dict"].items():
        assert torch.equal(got["state_dict"][key], value), key  # bitwise: augmentation draws and all
    for param, state in want["optimizer_states"][0]["state"].items():
        for name, value in state.items():
            assert torch.equal(got["optimizer_states"][0]["state"][param][name], value), (param, name)


def test_tune_searches_around_record(data_dir: Path, tmp_path: Path) -> None:
    space = tmp_path / "space.yaml"
    lr = {"type": "float", "low": 1e-3, "high": 1e-2}
    space.write_text(yaml.safe_dump({"fixed": {"trainer.max_epochs": 1}, "params": {"model.lr": lr}}))
    args = record_args(data_dir, "--trainer.default_root_dir", str(tmp_path), "--trainer.enable_model_summary", "false")
    assert main(["tune", *args, "--tune.space", str(space), "--tune.n_trials", "2", "--tune.study_name", "r"]) == 0
    found = yaml.safe_load((tmp_path / "lightning_logs" / "r-best.yaml").read_text())
    assert found["model"]["augment_elastic"] == yaml.safe_load(RECORD.read_text())["model"]["augment_elastic"]
