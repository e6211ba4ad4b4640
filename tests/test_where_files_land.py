"""Where commands write: never over another command's or the user's files, and no trace of runs that are not runs."""

from __future__ import annotations

import csv
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from mnist_lightning.commands import main
from tests.helpers.synthetic import small_args

ROOT = Path(__file__).parents[1]
ONECYCLE = ("--model.optimizer", "adamw", "--model.lr_schedule", "onecycle", "--model.warmup", "0.2")
# two optimizer steps per epoch, as an integer count of batches whichever way the CLI reads a bare "1"
TINY = ("--trainer.max_epochs", "1", "--trainer.limit_train_batches", "2", "--trainer.limit_val_batches", "2")


def tune_args(data_dir: Path, root: Path, space: Path, *extra: str) -> list[str]:
    return ["tune", *small_args(data_dir, "--trainer.default_root_dir", str(root)), "--tune.space", str(space), *extra]


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` with its bytes."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_fast_dev_run_writes_nothing_and_replaces_nothing(
    data_dir: Path, trained_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "mnist.pt").write_bytes(b"the user's own file")
    # predict needs a checkpoint (a fast_dev_run fit writes none): one of the user's, outside any run folder
    shutil.copy(trained_run / "lightning_logs" / "version_0" / "checkpoints" / "last.ckpt", tmp_path / "given.ckpt")
    before = snapshot(tmp_path)
    assert main(["fit", *small_args(data_dir, "--trainer.fast_dev_run", "true")]) == 0
    assert main(["predict", *small_args(data_dir, "--trainer.fast_dev_run", "true", "--ckpt_path", "given.ckpt")]) == 0
    assert snapshot(tmp_path) == before


def test_a_refused_resume_leaves_every_file_of_the_run_as_it_was(
    data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    args = small_args(data_dir, "--trainer.default_root_dir", str(tmp_path), *TINY, *ONECYCLE)
    assert main(["fit", *args, "--export.enabled", "false"]) == 0
    runs = tmp_path / "lightning_logs"
    before = snapshot(runs)
    capsys.readouterr()
    assert main(["fit", *args, "--trainer.max_epochs", "2", "--ckpt_path", "last"]) == 2
    assert "cannot be stretched" in capsys.readouterr().err
    assert snapshot(runs) == before  # no new event file, the same config.yaml
    # resumed into a run folder of its own elsewhere: refused, and that folder is gone again
    elsewhere = tmp_path / "elsewhere"
    other = small_args(data_dir, "--trainer.default_root_dir", str(elsewhere), *TINY, *ONECYCLE)
    last = runs / "version_0" / "checkpoints" / "last.ckpt"
    assert main(["fit", *other, "--trainer.max_epochs", "2", "--ckpt_path", str(last)]) == 2
    assert not elsewhere.exists() and snapshot(runs) == before


def _epochs(path: Path) -> set[str]:
    return {row["epoch"] for row in csv.DictReader(path.open()) if row.get("val/acc")}


def test_resuming_a_csv_logger_run_keeps_the_earlier_metrics_file(
    data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    logger = ["--trainer.logger", "CSVLogger", "--trainer.logger.save_dir", "."]
    args = small_args(data_dir, *TINY, *logger, "--export.enabled", "false")
    assert main(["fit", *args]) == 0
    run = tmp_path / "lightning_logs" / "version_0"
    first = (run / "metrics.csv").read_bytes()
    assert main(["fit", *args, "--trainer.max_epochs", "2", "--ckpt_path", "last"]) == 0
    assert (run / "metrics-1.csv").read_bytes() == first  # the first part of the run, kept as it was
    assert _epochs(run / "metrics-1.csv") == {"0"} and _epochs(run / "metrics.csv") == {"1"}
    # a refused resume moves nothing aside
    refused = [*args, "--trainer.max_epochs", "3", "--ckpt_path", "last", *ONECYCLE]
    before = snapshot(tmp_path)
    assert main(["fit", *refused]) == 2
    assert snapshot(tmp_path) == before


@pytest.mark.slow
def test_two_studies_never_share_trial_folders_or_best_config(data_dir: Path, tmp_path: Path, capsys) -> None:
    space = tmp_path / "space.yaml"
    params = {"model.lr": {"type": "float", "low": 1e-3, "high": 1e-2}}
    space.write_text(yaml.safe_dump({"fixed": {"trainer.max_epochs": 1}, "params": params}))
    one = ("--tune.n_trials", "1", "--trainer.limit_train_batches", "2")
    runs = tmp_path / "lightning_logs"
    assert main(tune_args(data_dir, tmp_path, space, *one)) == 0  # the default storage and study name
    first = snapshot(runs)
    other = runs / "other.db"
    assert main(tune_args(data_dir, tmp_path, space, *one, "--tune.storage", f"sqlite:///{other}")) == 0
    after = snapshot(runs)
    assert {k: v for k, v in after.items() if k in first} == first  # nothing of the first study replaced
    assert len({Path(k).parts[0] for k in after if "trial_0000" in k}) == 2
    assert len([k for k in after if k.endswith("-best.yaml")]) == 2

    # starting over by deleting the storage: refused before any trial, the old trials untouched
    (runs / "tune-space.db").unlink()
    kept = snapshot(runs)
    capsys.readouterr()
    assert main(tune_args(data_dir, tmp_path, space, *one)) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "trial_0000" in err and "--tune.study_name" in err
    assert snapshot(runs) == kept


def _written_into_cwd(text: str) -> set[str]:
    """File names the docs' example commands write into the current folder."""
    names = set(re.findall(r"--(?:tune\.|predictions\.)?output[ =]([\w-]+\.\w+)", text))
    names |= {name.removesuffix(".onnx") + ".pt" for name in names if name.endswith(".onnx")}  # export's twin
    names |= set(re.findall(r"--trainer\.logger\.name[ =]([\w-]+)", text))
    names |= set(re.findall(r"--tune\.storage[ =]sqlite:///([\w-]+\.\w+)", text))  # relative: in the cwd
    return names | {"mnist.onnx", "mnist.pt"}  # what a fast_dev_run wrote before it stopped writing


def test_make_clean_removes_what_the_docs_examples_write(tmp_path: Path) -> None:
    docs = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    names = _written_into_cwd("\n".join(p.read_text() for p in docs if p.is_file()))
    assert {"model.pt", "preds.csv", "mycsv"} <= names  # the README's own examples, found
    if shutil.which("make") is None:
        pytest.skip("no make on this machine")
    for name in names:
        (tmp_path / name).write_text("x")
    subprocess.run(["make", "-f", str(ROOT / "Makefile"), "clean"], cwd=tmp_path, check=True, capture_output=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_gitignore_ignores_every_export() -> None:
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    names = ["mnist.pt", "model.pt", "mnist.onnx", "lightning_logs/x"]
    found = subprocess.run(["git", "check-ignore", "--no-index", *names], cwd=ROOT, capture_output=True, text=True)
    assert found.stdout.split() == names
