"""The accuracy options (AdamW, LR schedules, label smoothing, dropout, standardisation, augmentation) and the
shipped configs/best.yaml, configs/fast.yaml and configs/record.yaml, on the synthetic data."""

from __future__ import annotations

from pathlib import Path

import lightning as L
import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from torch.optim.lr_scheduler import LambdaLR, OneCycleLR

from mnist_lightning import MNISTClassifier, MNISTDataModule, run_cli
from mnist_lightning.commands import main
from mnist_lightning.common.errors import UserError
from mnist_lightning.model.checkpoints import load_checkpoint, net_from_checkpoint
from mnist_lightning.model.net import MNIST_MEAN, MNIST_STD, MyMNIST
from mnist_lightning.training.module import warmup_cosine
from tests.helpers.synthetic import small_args

CONFIGS = Path(__file__).parents[1] / "configs"
ALL_OPTIONS = [
    *("--model.optimizer", "adamw", "--model.weight_decay", "0.05", "--model.lr", "0.003"),
    *("--model.lr_schedule", "onecycle", "--model.warmup", "0.3", "--model.label_smoothing", "0.1"),
    *("--model.dropout", "0.2", "--model.standardize", "true", "--model.augment_shift", "2"),
    *("--model.augment_rotate", "10", "--model.augment_scale", "0.1", "--model.augment_elastic", "1"),
]


@pytest.fixture(scope="module")
def tuned_run(data_dir: Path, tmp_path_factory: pytest.TempPathFactory):
    """One real CLI `fit` with every option switched on."""
    root = tmp_path_factory.mktemp("tuned")
    return run_cli(["fit", *small_args(data_dir, "--trainer.default_root_dir", str(root), *ALL_OPTIONS)])


def test_options_build_adamw_and_a_per_step_onecycle(tuned_run) -> None:
    trainer = tuned_run.trainer
    (opt,) = trainer.optimizers
    assert isinstance(opt, torch.optim.AdamW)
    assert opt.defaults["weight_decay"] == 0.05 and opt.defaults["fused"]
    (config,) = trainer.lr_scheduler_configs
    assert isinstance(config.scheduler, OneCycleLR) and config.interval == "step"
    assert config.scheduler.total_steps == trainer.estimated_stepping_batches == trainer.global_step
    # stepped once per batch to the very end: the LR has annealed far below its peak (after the last step it sits
    # one step past OneCycle's minimum, which on these 18 steps is still ~1 % of the peak)
    assert config.scheduler.last_epoch == trainer.global_step
    assert opt.param_groups[0]["lr"] < 0.003 / 50


def test_tuned_checkpoint_is_plain_and_its_onnx_standardizes_inside(tuned_run) -> None:
    best = tuned_run.trainer.checkpoint_callback.best_model_path
    hparams = load_checkpoint(best)["hyper_parameters"]  # weights_only=True
    assert hparams["standardize"] is True and hparams["dropout"] == 0.2 and hparams["augment_elastic"] == 1.0
    net, _ = net_from_checkpoint(best)
    path = Path(tuned_run.trainer.log_dir) / "mnist.onnx"
    onnx.checker.check_model(str(path))
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    pixels = torch.rand(9, 784)
    (got,) = session.run(["numbers"], {"images": pixels.numpy()})
    with torch.no_grad():
        # the exported graph takes raw pixels: it equals the plain layers applied to standardised inputs,
        # with dropout off (eval mode), so repeated runs agree exactly
        want = net.layers((pixels - MNIST_MEAN) / MNIST_STD).numpy()
    assert np.allclose(got, want, atol=1e-5)
    assert np.array_equal(got, session.run(["numbers"], {"images": pixels.numpy()})[0])
    assert not np.allclose(got, net.layers(pixels).detach().numpy(), atol=1e-3)


def test_standardize_adds_no_state_and_dropout_is_eval_off() -> None:
    plain, tuned = MyMNIST([16, 8]), MyMNIST([16, 8], dropout=0.5, standardize=True)
    assert len(plain.state_dict()) == len(tuned.state_dict())  # only Linear weights and biases
    tuned.eval()
    x = torch.rand(4, 784)
    assert torch.equal(tuned(x), tuned(x))
    assert torch.allclose(tuned(x), tuned.layers((x - MNIST_MEAN) / MNIST_STD))


def test_warmup_cosine_rises_linearly_then_decays_to_zero() -> None:
    factors = [warmup_cosine(s, warmup_steps=10, total_steps=110) for s in range(111)]
    assert factors[0] == pytest.approx(0.1) and factors[9] == pytest.approx(1.0)
    assert factors[10] == pytest.approx(1.0) and factors[60] == pytest.approx(0.5) and factors[110] == 0.0
    assert all(a >= b for a, b in zip(factors[10:], factors[11:], strict=False))
    assert warmup_cosine(0, warmup_steps=0, total_steps=5) == 1.0


def _tiny_fit(data_dir: Path, module: MNISTClassifier, **trainer_kwargs) -> L.Trainer:
    data = MNISTDataModule(str(data_dir), batch_size=50, val_size=100, download=False, verify_md5=False)
    kwargs = {"max_epochs": 1, "limit_train_batches": 3, "limit_val_batches": 1, "accelerator": "cpu"}
    trainer = L.Trainer(**kwargs | trainer_kwargs, logger=False, enable_checkpointing=False, enable_progress_bar=False)
    trainer.fit(module, datamodule=data)
    return trainer


def test_cosine_schedule_and_plain_adam(data_dir: Path) -> None:
    trainer = _tiny_fit(data_dir, MNISTClassifier(lr=0.01, lr_schedule="cosine", warmup=0.5), max_epochs=2)
    scheduler = trainer.lr_scheduler_configs[0].scheduler
    assert isinstance(scheduler, LambdaLR) and scheduler.last_epoch == 6
    assert trainer.optimizers[0].param_groups[0]["lr"] == pytest.approx(0.0, abs=1e-12)
    trainer = _tiny_fit(data_dir, MNISTClassifier())  # the tutorial: Adam, constant LR, no scheduler
    assert type(trainer.optimizers[0]) is torch.optim.Adam and not trainer.lr_scheduler_configs
    assert trainer.optimizers[0].param_groups[0]["lr"] == 1e-3


def test_schedule_on_an_unbounded_run_is_a_user_error(data_dir: Path) -> None:
    with pytest.raises(UserError, match="bounded run"):
        _tiny_fit(data_dir, MNISTClassifier(lr_schedule="onecycle", warmup=0.2), max_epochs=-1)


class SpyAugment:
    """Stands in for BatchAugment and records the batches it is given."""

    enabled = True

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        return images


def test_augmentation_touches_training_batches_only(data_dir: Path) -> None:
    module = MNISTClassifier(augment_shift=1)
    module.augment = spy = SpyAugment()
    trainer = _tiny_fit(data_dir, module, num_sanity_val_steps=1)
    assert spy.calls == 3  # the 3 training batches; not the sanity check's or the epoch's validation batch
    trainer.validate(module, datamodule=trainer.datamodule, verbose=False)
    trainer.predict(module, datamodule=trainer.datamodule)
    assert spy.calls == 3


def test_augmentation_keeps_shape_range_and_is_random() -> None:
    from mnist_lightning.training.augment import BatchAugment

    images = torch.zeros(64, 28, 28)
    images[:, 8:20, 10:18] = 1.0
    images = images.reshape(64, 784)
    assert BatchAugment()(images) is images and not BatchAugment().enabled
    out = BatchAugment(shift=2, rotate=15, scale=0.1, elastic=1.0)(images)
    assert out.shape == images.shape and out.dtype == images.dtype
    assert out.min() >= 0 and out.max() <= 1
    assert not torch.allclose(out[0], images[0]) and not torch.allclose(out[0], out[1])
    # a pure shift moves the block by at most 2 pixels and, resampled bilinearly inside the frame, keeps its ink
    shifted = BatchAugment(shift=2)(images).reshape(64, 28, 28)
    assert torch.allclose(shifted.sum((1, 2)), images.sum(1), rtol=1e-4)
    rows = (shifted.sum(2) * torch.arange(28.0)).sum(1) / shifted.sum((1, 2))
    assert rows.sub(13.5).abs().max() <= 2 + 1e-4 and rows.std() > 0.3


def test_augmentation_grid_matches_affine_grid_and_interpolate() -> None:
    """The matmul-built sampling grid is torch's own affine_grid plus a bilinearly upsampled 4x4 field."""
    import math

    import torch.nn.functional as F

    from mnist_lightning.training.augment import ELASTIC_GRID, BatchAugment

    images, amounts = torch.rand(32, 784), BatchAugment(shift=2, rotate=10, scale=0.1, elastic=1.5)
    torch.manual_seed(3)
    got = amounts(images)
    torch.manual_seed(3)  # the same draws, in the same order, as BatchAugment makes them
    u = [torch.rand(*shape).mul_(2).sub_(1) for shape in ((32,), (32,), (32, 2))]
    angle, zoom, shift = u[0] * math.radians(10), 1 + u[1] * 0.1, u[2] * (2 * 2 / 28)
    cos, sin = torch.cos(angle) / zoom, torch.sin(angle) / zoom
    theta = torch.stack([torch.stack([cos, -sin, shift[:, 0]], 1), torch.stack([sin, cos, shift[:, 1]], 1)], 1)
    grid = F.affine_grid(theta, [32, 1, 28, 28], align_corners=False)
    coarse = torch.randn(32, 2, ELASTIC_GRID, ELASTIC_GRID) * (1.5 * 2 / 28)
    grid = grid + F.interpolate(coarse, size=(28, 28), mode="bilinear", align_corners=True).permute(0, 2, 3, 1)
    want = F.grid_sample(images.reshape(32, 1, 28, 28), grid, align_corners=False).reshape(32, 784)
    assert torch.allclose(got, want, atol=1e-5)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"optimizer": "sgd"},
        {"lr_schedule": "step"},
        {"weight_decay": -0.1},
        {"dropout": 1.0},
        {"label_smoothing": float("nan")},
        {"lr_schedule": "onecycle"},  # needs warmup > 0
        {"augment_scale": 1.5},
        {"augment_shift": -1},
    ],
)
def test_bad_options_are_user_errors(kwargs: dict) -> None:
    with pytest.raises(UserError, match="model\\."):
        MNISTClassifier(**kwargs)


def test_bad_option_from_the_cli_is_one_clear_error(data_dir: Path, tmp_path: Path, capsys) -> None:
    code = main(["fit", *small_args(data_dir, "--trainer.default_root_dir", str(tmp_path), "--model.dropout", "2")])
    assert code == 2
    assert "model.dropout must be in [0, 1)" in capsys.readouterr().err
    assert not (tmp_path / "lightning_logs").exists()


@pytest.mark.parametrize("config", ["best", "fast", "record"])
def test_shipped_recipes_run(config: str, data_dir: Path, tmp_path: Path) -> None:
    cli = run_cli(
        ["fit", "--config", str(CONFIGS / f"{config}.yaml"), "--data.data_dir", str(data_dir)]
        + ["--data.verify_md5", "false", "--data.download", "false", "--data.val_size", "100"]
        + ["--trainer.max_epochs", "1", "--trainer.limit_train_batches", "2", "--trainer.accelerator", "cpu"]
        + ["--trainer.enable_progress_bar", "false", "--trainer.default_root_dir", str(tmp_path)]
    )
    hparams = cli.model.hparams
    assert hparams.hidden_layers == [256, 32]  # the same architecture as the tutorial
    assert (Path(cli.trainer.log_dir) / "mnist.onnx").is_file()
