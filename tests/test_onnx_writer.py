"""The direct MyMNIST -> ONNX writer: the same graph and outputs as torch's dynamo exporter, and an `export`
command that never imports Lightning."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from mnist_lightning import MyMNIST
from mnist_lightning.model.onnx import _dynamo_export, cpu_float_copy, export_onnx, mymnist_graph
from tests.helpers.import_blocker import blocked_env

LIGHTNING_SIDE = "lightning,pytorch_lightning,torchmetrics,torchvision"


def run_onnx(model: onnx.ModelProto | Path, x: np.ndarray) -> np.ndarray:
    source = str(model) if isinstance(model, Path) else model.SerializeToString()
    return ort.InferenceSession(source, providers=["CPUExecutionProvider"]).run(["numbers"], {"images": x})[0]


@pytest.mark.parametrize("options", [{}, {"standardize": True}, {"standardize": True, "dropout": 0.3}])
def test_direct_graph_matches_the_dynamo_exporter(options: dict, tmp_path: Path) -> None:
    torch.manual_seed(0)
    net = MyMNIST([64, 16, 8], **options)
    out = export_onnx(net, tmp_path / "direct.onnx")
    direct, dynamo = onnx.load(out), _dynamo_export(cpu_float_copy(net))
    assert [n.op_type for n in direct.graph.node] == [n.op_type for n in dynamo.graph.node]
    assert direct.opset_import[0].version == dynamo.opset_import[0].version
    for proto in (direct, dynamo):  # dynamic batch in, float32 in and out
        (inp,), (outp,) = proto.graph.input, proto.graph.output
        assert inp.type.tensor_type.elem_type == outp.type.tensor_type.elem_type == onnx.TensorProto.FLOAT
        assert inp.type.tensor_type.shape.dim[0].dim_param and inp.type.tensor_type.shape.dim[1].dim_value == 784
    for n in (1, 5, 300):
        x = np.random.default_rng(n).random((n, 784), dtype=np.float32)
        got = run_onnx(out, x)
        np.testing.assert_allclose(got, run_onnx(dynamo, x), atol=1e-6)
        with torch.no_grad():
            np.testing.assert_allclose(got, net.eval()(torch.from_numpy(x)).numpy(), atol=1e-5)


class Squashed(MyMNIST):
    """A net the direct writer does not know: its forward differs from MyMNIST's."""

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return super().forward(images).tanh()


def test_other_nets_fall_back_to_the_dynamo_exporter(tmp_path: Path) -> None:
    net = Squashed([32]).eval()
    assert mymnist_graph(net) is None
    out = export_onnx(net, tmp_path / "other.onnx")
    x = np.random.default_rng(0).random((3, 784), dtype=np.float32)
    with torch.no_grad():
        np.testing.assert_allclose(run_onnx(out, x), net(torch.from_numpy(x)).numpy(), atol=1e-5)


def test_export_command_runs_with_lightning_blocked(blocker: Path, trained_run: Path, tmp_path: Path) -> None:  # noqa: F811
    ckpt = next((trained_run / "lightning_logs/version_0/checkpoints").glob("best-*.ckpt"))
    out = tmp_path / "blocked.onnx"
    proc = subprocess.run(
        [sys.executable, "-m", "mnist_lightning", "export", "--ckpt_path", str(ckpt), "--output", str(out)],
        env=blocked_env(blocker, LIGHTNING_SIDE),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert out.is_file() and f"-> {out}" in proc.stdout
