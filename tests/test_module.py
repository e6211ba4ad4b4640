from pathlib import Path

import torch
import torch.nn.functional as F

from mnist_lightning import MNISTClassifier
from mnist_lightning.commands import main
from tests.helpers.synthetic import small_args


def test_epoch_loss_is_the_per_sample_mean_over_uneven_batches() -> None:
    module = MNISTClassifier()
    batches = [(torch.rand(n, 784), torch.randint(0, 10, (n,))) for n in (50, 50, 7)]
    losses = [module._shared_step(b, "val")[0].detach() for b in batches]
    want = sum(loss * len(b[1]) for loss, b in zip(losses, batches, strict=True)) / 107
    torch.testing.assert_close(module.metrics["val_loss"].compute(), want)
    images = torch.cat([b[0] for b in batches])
    labels = torch.cat([b[1] for b in batches])
    acc = (module.net(images).argmax(1) == labels).float().mean()
    torch.testing.assert_close(module.metrics["val_acc"].compute(), acc)
    torch.testing.assert_close(want, F.cross_entropy(module.net(images), labels).detach(), rtol=1e-5, atol=1e-6)


def test_adam_is_fused_by_default_and_can_be_turned_off() -> None:
    assert MNISTClassifier().configure_optimizers().defaults["fused"] is True
    assert not MNISTClassifier(fused_adam=False).configure_optimizers().defaults["fused"]


def test_bf16_mixed_fit_on_cpu_still_exports_float32_onnx(data_dir: Path, tmp_path: Path) -> None:
    import onnx

    args = small_args(data_dir, "--trainer.default_root_dir", str(tmp_path), "--trainer.precision", "bf16-mixed")
    assert main(["fit", *args, "--trainer.max_epochs", "1"]) == 0
    model = onnx.load(next(tmp_path.glob("lightning_logs/version_0/mnist.onnx")))
    assert model.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert model.graph.output[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
