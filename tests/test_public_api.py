"""``from mnist_lightning import MyMNIST, MNISTClassifier, MNISTDataModule, run_cli``: the public path, resolved on
first use so that ``import mnist_lightning`` alone stays torch-free."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import mnist_lightning
from mnist_lightning import MNISTClassifier, MNISTDataModule, MyMNIST, run_cli
from mnist_lightning.model import net
from mnist_lightning.training import cli, data, module
from tests.helpers.synthetic import small_args

ROOT = Path(__file__).parents[1]
HEAVY = ("torch", "lightning", "pytorch_lightning", "torchmetrics", "torchvision")
# prints which heavy packages are loaded after each step, as JSON
PROBE = f"""
import json, sys
heavy = lambda: sorted({{m.split(".")[0] for m in sys.modules}} & set({HEAVY!r}))
steps = {{}}
import mnist_lightning
steps["import"] = heavy()
mnist_lightning.MyMNIST
steps["MyMNIST"] = heavy()
mnist_lightning.run_cli
steps["run_cli"] = heavy()
print(json.dumps(steps))
"""


def test_import_loads_nothing_heavy_until_a_name_is_used(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=tmp_path, capture_output=True, text=True, timeout=300, check=True
    )
    steps = json.loads(proc.stdout.strip().splitlines()[-1])
    assert steps["import"] == []  # neither torch nor Lightning
    assert "torch" in steps["MyMNIST"] and "lightning" not in steps["MyMNIST"]  # model/ is torch without Lightning
    assert "lightning" in steps["run_cli"]


def test_public_names_are_the_defining_modules_own() -> None:
    assert MyMNIST is net.MyMNIST and MNISTClassifier is module.MNISTClassifier
    assert MNISTDataModule is data.MNISTDataModule and run_cli is cli.run_cli
    assert set(mnist_lightning.__all__) >= {"MyMNIST", "MNISTClassifier", "MNISTDataModule", "run_cli"}
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        mnist_lightning.Nope  # noqa: B018 - the lookup is the test


def test_public_names_train_and_predict(data_dir: Path, tmp_path: Path) -> None:
    args = small_args(data_dir, "--trainer.default_root_dir", str(tmp_path), "--trainer.max_epochs", "1")
    cli_run = run_cli(["fit", *args, "--trainer.limit_train_batches", "2"])
    assert isinstance(cli_run.model, MNISTClassifier) and isinstance(cli_run.datamodule, MNISTDataModule)
    saved = MyMNIST.load(Path(cli_run.trainer.log_dir) / "mnist.pt")
    assert saved(torch.zeros(3, 784)).shape == (3, 10)
