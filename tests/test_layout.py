"""The layout's promises: inference runs with torch and Lightning blocked, through both entry points; the Trainer
is composed from the config (a user's own progress bar, logger and run=False use are kept); run lookup follows
the logger."""

from __future__ import annotations

import ast
import csv
import json
import os
import re
import subprocess
import sys
import textwrap
import urllib.request
from pathlib import Path

import pytest
import torch
import yaml
from lightning.pytorch.callbacks import TQDMProgressBar

from mnist_lightning.commands import main
from mnist_lightning.training.checkpoint_io import AtomicCheckpointIO
from mnist_lightning.training.cli import BAR_REFRESH, run_cli
from tests.helpers.digit_images import save_digit
from tests.helpers.import_blocker import TORCH_SIDE, blocked_env
from tests.helpers.server import running_server
from tests.helpers.synthetic import small_args

ROOT = Path(__file__).parents[1]
PACKAGE = ROOT / "mnist_lightning"
TORCH_FREE = ("common", "inference")  # the folders that never import torch or Lightning


def entry_points() -> list[list[str]]:
    script = Path(sys.executable).parent / "mnist-lightning"  # the installed console script
    assert script.is_file(), f"{script} missing: install the project (make install)"
    return [[sys.executable, "-m", "mnist_lightning"], [str(script)]]


def test_the_blocker_blocks(blocker: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", "import torch"], env=blocked_env(blocker), capture_output=True, text=True, timeout=60
    )
    assert proc.returncode != 0 and "torch is blocked" in proc.stderr


def test_common_and_inference_never_import_the_training_side() -> None:
    # statically: no module of common/ or inference/ (or the router) names torch, Lightning or training/
    for path in [*PACKAGE.glob("common/*.py"), *PACKAGE.glob("inference/*.py"), PACKAGE / "commands.py"]:
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            for name in names:
                assert name.split(".")[0] not in TORCH_SIDE.split(","), f"{path.name} imports {name}"
                assert not name.startswith("mnist_lightning.training"), f"{path.name} imports {name}"


def test_inference_and_common_import_with_torch_blocked(blocker: Path) -> None:
    modules = [f"mnist_lightning.{p.parent.name}.{p.stem}" for side in TORCH_FREE for p in PACKAGE.glob(f"{side}/*.py")]
    modules += ["mnist_lightning", "mnist_lightning.commands", "mnist_lightning.tune.space"]
    code = (
        "import importlib, sys\nfor m in sys.argv[1:]: importlib.import_module(m)\nprint('imported', len(sys.argv) - 1)"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, *modules], env=blocked_env(blocker), capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == f"imported {len(modules)}" and len(modules) >= 10


def test_model_imports_with_lightning_blocked(blocker: Path) -> None:
    # model/ is torch without Lightning: the export command and MyMNIST.load start in a fraction of the time
    modules = [f"mnist_lightning.model.{p.stem}" for p in PACKAGE.glob("model/*.py")]
    code = "import importlib, sys\nfor m in sys.argv[1:]: importlib.import_module(m)\nprint('ok')"
    env = blocked_env(blocker, "lightning,pytorch_lightning,torchmetrics")
    proc = subprocess.run([sys.executable, "-c", code, *modules], env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr


def test_no_folder_holds_more_than_twelve_modules_or_a_module_over_300_lines() -> None:
    for folder in [PACKAGE, *(p for p in PACKAGE.rglob("*") if p.is_dir() and p.name != "__pycache__")]:
        modules = [p for p in folder.glob("*.py") if p.name != "__init__.py"]
        assert len(modules) <= 12, f"{folder} holds {len(modules)} modules"
        for module in modules:
            assert len(module.read_text().splitlines()) <= 300, f"{module} is over 300 lines"


@pytest.mark.parametrize("entry", ["python -m", "installed script"])
def test_predict_onnx_runs_with_torch_blocked(entry: str, blocker: Path, trained_run: Path, tmp_path: Path) -> None:
    command = entry_points()[0 if entry == "python -m" else 1]
    model = trained_run / "lightning_logs" / "version_0" / "mnist.onnx"
    save_digit(tmp_path / "three.png", 3)
    proc = subprocess.run(
        [*command, "predict-onnx", str(model), str(tmp_path / "three.png"), "--output", str(tmp_path / "p.csv")],
        env=blocked_env(blocker),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    rows = list(csv.DictReader((tmp_path / "p.csv").open()))
    assert [r["file"] for r in rows] == [str(tmp_path / "three.png")] and rows[0]["digit"].isdigit()


@pytest.mark.parametrize("entry", ["python -m", "installed script"])
def test_serve_runs_with_torch_blocked(entry: str, blocker: Path, trained_run: Path) -> None:
    command = entry_points()[0 if entry == "python -m" else 1]
    model = trained_run / "lightning_logs" / "version_0" / "mnist.onnx"
    os.environ["BLOCK_IMPORTS"] = TORCH_SIDE  # read by the server's sitecustomize
    try:
        with running_server(model, None, command=command, pythonpath=[str(blocker)]) as url:
            with urllib.request.urlopen(url + "health", timeout=10) as response:
                assert json.load(response)["status"] == "ok"
            stroke = [1.0 if 12 <= i % 28 <= 15 and 4 <= i // 28 <= 23 else 0.0 for i in range(784)]  # a "1"
            request = urllib.request.Request(
                url + "predict", data=json.dumps(stroke).encode(), headers={"Content-Type": "application/json"}
            )
            with urllib.request.urlopen(request, timeout=10) as response:
                assert len(json.load(response)["probabilities"]) == 10
    finally:
        del os.environ["BLOCK_IMPORTS"]


def test_serve_without_the_web_extra_says_how_to_install_it(blocker: Path, trained_run: Path) -> None:
    model = trained_run / "lightning_logs" / "version_0" / "mnist.onnx"
    proc = subprocess.run(
        [sys.executable, "-m", "mnist_lightning", "serve", "--onnx", str(model)],
        env=blocked_env(blocker, "fastapi,uvicorn"),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.startswith("error: serve needs") and "mnist-lightning[serve]" in proc.stderr


def _bars(cli) -> list[TQDMProgressBar]:  # noqa: ANN001
    return [c for c in cli.trainer.callbacks if isinstance(c, TQDMProgressBar)]


def test_trainer_is_composed_from_the_config(data_dir: Path, tmp_path: Path) -> None:
    args = small_args(data_dir, "--trainer.max_epochs", "1", "--trainer.limit_train_batches", "2")
    args += ["--trainer.enable_progress_bar", "true", "--trainer.default_root_dir", str(tmp_path)]
    cli = run_cli(["fit", *args])
    assert [b.refresh_rate for b in _bars(cli)] == [BAR_REFRESH]
    assert type(cli.trainer.strategy.checkpoint_io) is AtomicCheckpointIO
    saved = yaml.safe_load((tmp_path / "lightning_logs" / "version_0" / "config.yaml").read_text())
    # what ran is what config.yaml says
    bars = [c for c in saved["trainer"]["callbacks"] if c["class_path"].endswith("ProgressBar")]
    assert [b["init_args"]["refresh_rate"] for b in bars] == [BAR_REFRESH]
    assert saved["trainer"]["logger"]["class_path"].endswith("TensorBoardLogger")
    assert saved["trainer"]["logger"]["init_args"]["default_hp_metric"] is False
    assert saved["trainer"]["plugins"]["class_path"].endswith("AtomicCheckpointIO")


def test_a_configured_progress_bar_is_kept_as_configured(data_dir: Path, tmp_path: Path) -> None:
    args = small_args(data_dir, "--trainer.max_epochs", "1", "--trainer.limit_train_batches", "3")
    args += ["--trainer.enable_progress_bar", "true", "--trainer.default_root_dir", str(tmp_path)]
    cli = run_cli(["fit", *args, "--trainer.callbacks+=TQDMProgressBar", "--trainer.callbacks.refresh_rate", "1"])
    bars = _bars(cli)
    assert [b.refresh_rate for b in bars] == [1] and cli.trainer.progress_bar_callback is bars[0]
    # and with the bar switched off there is none, not a clash with the default one
    off = small_args(data_dir, "--trainer.max_epochs", "1", "--trainer.limit_train_batches", "1")
    cli = run_cli(["fit", *off, "--trainer.default_root_dir", str(tmp_path / "off")])
    assert _bars(cli) == [] and cli.trainer.progress_bar_callback is None


def test_a_configured_checkpoint_io_is_kept(data_dir: Path, tmp_path: Path) -> None:
    args = small_args(data_dir, "--trainer.max_epochs", "1", "--trainer.limit_train_batches", "2")  # two batches
    args += ["--trainer.default_root_dir", str(tmp_path), "--export.enabled", "false"]
    cli = run_cli(["fit", *args, "--trainer.plugins", "lightning.fabric.plugins.io.torch_io.TorchCheckpointIO"])
    assert type(cli.trainer.strategy.checkpoint_io).__name__ == "TorchCheckpointIO"


def docs_block(heading: str) -> str:
    text = (ROOT / "docs" / "training.md").read_text()
    section = text[text.index(heading) :]
    return textwrap.dedent(re.search(r"```python\n(.*?)```", section, re.S).group(1))


def test_docs_programmatic_use_runs(data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    code = docs_block("### From Python")
    shown = '["--config", "configs/base.yaml", "--trainer.max_epochs", "1"]'
    assert shown in code
    small = small_args(data_dir, "--trainer.max_epochs", "1", "--trainer.limit_train_batches", "2")
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(code.replace(shown, repr(small)), namespace)  # noqa: S102 - the docs' own example
    cli = namespace["cli"]
    assert cli.subcommand is None and cli.trainer.state.finished
    assert 0.0 <= float(cli.trainer.callback_metrics["val/acc"]) <= 1.0
    assert (tmp_path / "lightning_logs" / "version_0" / "mnist.onnx").is_file()


def test_csv_logger_under_another_name_fit_test_export_resume(
    data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    monkeypatch.chdir(tmp_path)
    logger = ["--trainer.logger", "CSVLogger", "--trainer.logger.save_dir", ".", "--trainer.logger.name", "mycsv"]
    args = small_args(data_dir, "--trainer.limit_train_batches", "3", *logger)
    assert main(["fit", *args]) == 0
    run = tmp_path / "mycsv" / "version_0"
    assert {"metrics.csv", "config.yaml", "mnist.onnx", "checkpoints"} <= {p.name for p in run.iterdir()}
    assert not (tmp_path / "lightning_logs").exists()

    capsys.readouterr()
    assert main(["test", *args, "--ckpt_path", "best"]) == 0
    assert "test/acc" in capsys.readouterr().out

    out = tmp_path / "last.onnx"
    assert main(["export", "--ckpt_path", "last", "--output", str(out)]) == 0  # no logger flag: found anyway
    assert f"{Path('mycsv', 'version_0', 'checkpoints', 'last.ckpt')} -> {out}" in capsys.readouterr().out

    # resuming continues in the same run folder, with the same logger settings
    before = sorted((tmp_path / "mycsv").iterdir())
    assert main(["fit", *args, "--trainer.max_epochs", "3", "--ckpt_path", "last"]) == 0
    assert sorted((tmp_path / "mycsv").iterdir()) == before
    # Lightning's CSVLogger starts metrics.csv afresh when a run resumes: the earlier epochs stay in metrics-1.csv
    epochs = {row["epoch"] for row in csv.DictReader((run / "metrics.csv").open()) if row.get("val/acc")}
    assert epochs == {"2"}
    earlier = {row["epoch"] for row in csv.DictReader((run / "metrics-1.csv").open()) if row.get("val/acc")}
    assert earlier == {"0", "1"}
    assert torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)["epoch"] == 2


def test_a_logger_without_its_folder_is_one_paragraph(data_dir: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["fit", *small_args(data_dir, "--trainer.logger", "CSVLogger")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "CSVLogger needs save_dir" in err and "--trainer.logger.save_dir" in err
