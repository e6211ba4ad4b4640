"""``mnist.pt``: the plain-PyTorch model file that fit and export write beside ``mnist.onnx``."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch

from mnist_lightning.commands import main
from mnist_lightning.common.errors import UserError
from mnist_lightning.model.checkpoints import net_from_checkpoint
from mnist_lightning.model.net import PT_FORMAT, MyMNIST
from tests.helpers.import_blocker import blocked_env
from tests.helpers.synthetic import small_args

# the tutorial's workflow with the file, in a process where Lightning cannot be imported
LOAD_WITHOUT_LIGHTNING = """
import sys
import numpy as np
import torch
from mnist_lightning import MyMNIST

net = MyMNIST.load(sys.argv[1])
net.eval()
with torch.no_grad():
    out = net(torch.from_numpy(np.load(sys.argv[2])))
np.save(sys.argv[3], out.numpy())
print("lightning" in sys.modules, type(net).__name__)
"""


def run_files(root: Path) -> tuple[Path, Path, Path]:
    run = root / "lightning_logs" / "version_0"
    return run / "mnist.pt", run / "mnist.onnx", next((run / "checkpoints").glob("best-*.ckpt"))


def test_fit_writes_a_weights_only_model_file(trained_run: Path) -> None:
    pt, _, best = run_files(trained_run)
    record = torch.load(pt, weights_only=True)
    assert record["format"] == PT_FORMAT and record["source_checkpoint"] == str(best)
    assert record["hidden_layers"] == [256, 32] and record["standardize"] is False and record["dropout"] == 0.0
    assert "white digit on black" in record["input_convention"]
    assert list(record["state_dict"]) == [f"layers.{i}.{w}" for i in (0, 2, 4) for w in ("weight", "bias")]
    assert all(t.dtype == torch.float32 and t.device.type == "cpu" for t in record["state_dict"].values())


def test_loads_without_lightning_and_agrees_with_checkpoint_and_onnx(
    trained_run: Path, blocker: Path, tmp_path: Path
) -> None:
    pt, onnx, best = run_files(trained_run)
    x = torch.rand(64, 784, generator=torch.Generator().manual_seed(0))
    np.save(tmp_path / "x.npy", x.numpy())
    proc = subprocess.run(
        [sys.executable, "-c", LOAD_WITHOUT_LIGHTNING, str(pt), str(tmp_path / "x.npy"), str(tmp_path / "y.npy")],
        env=blocked_env(blocker, "lightning,pytorch_lightning"),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["False", "MyMNIST"]
    got = np.load(tmp_path / "y.npy")
    net, _ = net_from_checkpoint(best)
    with torch.no_grad():
        assert np.array_equal(got, net(x).numpy())  # the same weights, bit for bit
    (onnx_out,) = ort.InferenceSession(str(onnx)).run(["numbers"], {"images": x.numpy()})
    np.testing.assert_allclose(got, onnx_out, atol=1e-5, rtol=0)


def test_damaged_or_foreign_files_are_one_paragraph(trained_run: Path, tmp_path: Path) -> None:
    pt, _, best = run_files(trained_run)
    cut = tmp_path / "cut.pt"
    cut.write_bytes(pt.read_bytes()[: pt.stat().st_size // 2])
    foreign = tmp_path / "foreign.pt"
    torch.save({"weights": torch.ones(3)}, foreign)
    for path, words in ((cut, "is truncated: it starts like a model file"), (foreign, "not an mnist-lightning model")):
        with pytest.raises(UserError, match=words) as err:
            MyMNIST.load(path)
        assert "\n" not in str(err.value) and str(path) in str(err.value)
    with pytest.raises(UserError, match="checkpoint"):
        MyMNIST.load(best)  # a Lightning checkpoint is not a model file either
    with pytest.raises(UserError, match="plain model file"):
        net_from_checkpoint(pt)  # and the other way round


def test_a_text_file_gets_the_same_sentence_as_model_file_and_as_checkpoint(
    data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    readme = tmp_path / "README.md"
    readme.write_text("# mnist-lightning\n\nTrain, inspect and ship an MNIST digit classifier.\n")
    with pytest.raises(UserError) as err:
        MyMNIST.load(readme)
    as_model = str(err.value)
    assert main(["test", *small_args(data_dir, "--ckpt_path", str(readme))]) == 2
    as_checkpoint = capsys.readouterr().err.removeprefix("error: ").strip()
    # one reader: the same sentence, naming what each caller expected
    holds = f"{readme} is not a PyTorch file: it holds text (it starts with '# mnist-lightning')"
    assert as_model.startswith(f"{holds}, not a model file. ") and "mnist.pt" in as_model
    assert as_checkpoint.startswith(f"{holds}, not a checkpoint. ")
    assert "Weights only" not in as_model and "pickled" not in as_model


@pytest.mark.parametrize("fmt", ["onnx", "pt", "both"])
def test_export_formats(fmt: str, trained_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    _, _, best = run_files(trained_run)
    out = tmp_path / ("model.pt" if fmt == "pt" else "model.onnx")
    assert main(["export", "--ckpt_path", str(best), "--format", fmt, "--output", str(out)]) == 0
    written = sorted(p.name for p in tmp_path.iterdir())
    assert written == {"onnx": ["model.onnx"], "pt": ["model.pt"], "both": ["model.onnx", "model.pt"]}[fmt]
    assert capsys.readouterr().out.count("exported") == len(written)
    if fmt != "onnx":
        net, _ = net_from_checkpoint(best)
        loaded = MyMNIST.load(tmp_path / "model.pt")
        pairs = zip(net.state_dict().values(), loaded.state_dict().values(), strict=True)
        assert all(torch.equal(a, b) for a, b in pairs)


@pytest.mark.parametrize("precision", ["64-true", "bf16-true"])
def test_model_file_is_float32_after_other_precisions(precision: str, data_dir: Path, tmp_path: Path) -> None:
    args = small_args(data_dir, "--trainer.max_epochs", "1", "--trainer.limit_train_batches", "2")
    assert main(["fit", *args, "--trainer.precision", precision, "--trainer.default_root_dir", str(tmp_path)]) == 0
    record = torch.load(tmp_path / "lightning_logs" / "version_0" / "mnist.pt", weights_only=True)
    assert {t.dtype for t in record["state_dict"].values()} == {torch.float32}
