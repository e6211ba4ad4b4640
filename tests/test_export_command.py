"""`export` from any checkpoint: the metadata the ONNX file carries, and the same verification as after `fit`."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from mnist_lightning.commands import main
from mnist_lightning.model.checkpoints import net_from_checkpoint


def metadata(path: Path) -> tuple[str, dict[str, str]]:
    model = onnx.load(path)
    return model.doc_string, {p.key: p.value for p in model.metadata_props}


@pytest.mark.parametrize("which", ["best", "last"])
def test_export_any_checkpoint_carries_its_own_metadata(which: str, trained_run: Path, tmp_path: Path) -> None:
    run = trained_run / "lightning_logs" / "version_0"
    ckpt_path = next((run / "checkpoints").glob("best-*.ckpt")) if which == "best" else run / "checkpoints/last.ckpt"
    out = tmp_path / f"{which}.onnx"
    assert main(["export", "--ckpt_path", str(ckpt_path), "--output", str(out)]) == 0
    doc, meta = metadata(out)
    assert "white digit on black" in doc and "[0, 1]" in doc and "784" in doc
    assert meta["labels"] == "0,1,2,3,4,5,6,7,8,9"
    assert meta["input_convention"] == "28x28 flattened to 784, pixels in [0,1], white digit on black background"
    assert meta["hidden_layers"] == "[256, 32]" and meta["checkpoint"] == str(ckpt_path)
    # val_acc is that checkpoint's own: read back from the run's event file, not the run's best for last.ckpt
    events = EventAccumulator(str(run))
    events.Reload()
    val_acc = [e.value for e in events.Scalars("val/acc")]
    want = max(val_acc) if which == "best" else val_acc[-1]
    assert float(meta["val_acc"]) == pytest.approx(want, abs=1e-4)
    # and the model is that checkpoint's net
    net, _ = net_from_checkpoint(ckpt_path)
    x = np.random.default_rng(0).random((5, 784), dtype=np.float32)
    (got,) = ort.InferenceSession(str(out)).run(["numbers"], {"images": x})
    with torch.no_grad():
        np.testing.assert_allclose(got, net(torch.from_numpy(x)).numpy(), atol=1e-4)


def test_fit_export_has_the_same_metadata(trained_run: Path) -> None:
    run = trained_run / "lightning_logs" / "version_0"
    _, meta = metadata(run / "mnist.onnx")
    assert meta["checkpoint"].endswith(".ckpt") and Path(meta["checkpoint"]).name.startswith("best-")
    assert meta["labels"] == "0,1,2,3,4,5,6,7,8,9" and meta["hidden_layers"] == "[256, 32]"
    assert 0.0 <= float(meta["val_acc"]) <= 1.0


def test_export_of_a_bad_checkpoint_fails_clearly_and_writes_nothing(tmp_path: Path, capsys) -> None:
    bad = tmp_path / "broken.ckpt"
    bad.write_bytes(b"not a checkpoint")
    out = tmp_path / "out.onnx"
    assert main(["export", "--ckpt_path", str(bad), "--output", str(out)]) == 2
    assert "is not a PyTorch file: it holds text" in capsys.readouterr().err
    assert not out.exists() and [p.name for p in tmp_path.iterdir()] == ["broken.ckpt"]
