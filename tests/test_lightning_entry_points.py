"""Lightning's own entry points, without the CLI: the module and data module as any Lightning user would use them."""

from __future__ import annotations

from pathlib import Path

import lightning as L
import torch

from mnist_lightning.training.data import MNISTDataModule
from mnist_lightning.training.module import MNISTClassifier


def datamodule(data_dir: Path) -> MNISTDataModule:
    return MNISTDataModule(str(data_dir), batch_size=50, val_size=100, download=False, verify_md5=False, seed=0)


def test_load_from_checkpoint_gives_the_trained_weights(trained_run: Path) -> None:
    best = next(trained_run.glob("lightning_logs/version_0/checkpoints/best-*.ckpt"))
    model = MNISTClassifier.load_from_checkpoint(best, map_location="cpu")
    ckpt = torch.load(best, map_location="cpu", weights_only=True)
    assert list(model.hparams.hidden_layers) == list(ckpt["hyper_parameters"]["hidden_layers"])
    assert model.hparams.lr == ckpt["hyper_parameters"]["lr"]
    saved = ckpt["state_dict"]
    assert saved.keys() == model.state_dict().keys()
    assert all(torch.equal(model.state_dict()[k], v) for k, v in saved.items())
    model.eval()
    with torch.no_grad():
        assert model(torch.rand(3, 784)).shape == (3, 10)


def test_a_hand_built_trainer_fits_and_tests(data_dir: Path, tmp_path: Path) -> None:
    L.seed_everything(0)
    model, dm = MNISTClassifier(), datamodule(data_dir)
    trainer = L.Trainer(
        max_epochs=1,
        limit_train_batches=4,
        accelerator="cpu",
        default_root_dir=tmp_path,
        enable_progress_bar=False,
        log_every_n_steps=1,
    )
    trainer.fit(model, datamodule=dm)
    assert trainer.global_step == 4 and "val/acc" in trainer.callback_metrics
    (result,) = trainer.test(model, datamodule=dm)
    assert 0.0 <= result["test/acc"] <= 1.0 and "test/loss" in result
    assert trainer.checkpoint_callback is not None and Path(trainer.checkpoint_callback.best_model_path).is_file()
