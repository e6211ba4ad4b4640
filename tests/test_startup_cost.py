"""Work a command skips because its result never needs it: `predict` on people's own images does not
decode MNIST's 70,000 images; `predict` on the test set still does."""

from __future__ import annotations

from pathlib import Path

from mnist_lightning.common.predictions import read_csv
from mnist_lightning.training.cli import run_cli
from tests.helpers.digit_images import make_digit_folder
from tests.helpers.synthetic import small_args
from tests.test_predict import best_ckpt


def predict_cli(root: Path, data_dir: Path, *extra: str):
    args = small_args(data_dir, "--trainer.default_root_dir", str(root), "--ckpt_path", str(best_ckpt(root)))
    return run_cli(["predict", *args, "--trainer.enable_progress_bar", "false", *extra])


def test_predict_on_own_images_skips_decoding_mnist(trained_run: Path, data_dir: Path, tmp_path: Path) -> None:
    digits = make_digit_folder(tmp_path / "mine")
    out = tmp_path / "own.csv"
    cli = predict_cli(
        trained_run, data_dir, "--data.predict_path", str(tmp_path / "mine"), "--predictions.output", str(out)
    )
    assert cli.datamodule.splits == {}
    assert sorted(Path(r["file"]).name for r in read_csv(out)) == sorted(digits)

    out = tmp_path / "test.csv"
    cli = predict_cli(trained_run, data_dir, "--predictions.output", str(out))
    assert set(cli.datamodule.splits) == {"train", "val", "test"}
    assert len(read_csv(out)) == len(cli.datamodule.splits["test"][1])
