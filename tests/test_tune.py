"""``tune``: real Optuna studies whose trials are real ``fit`` runs through the CLI, on the synthetic MNIST."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
import yaml
from optuna.trial import TrialState
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from mnist_lightning.commands import main
from mnist_lightning.training.cli import run_cli
from tests.helpers.synthetic import small_args

ROOT = Path(__file__).parents[1]
SPACE = {
    "fixed": {"trainer.max_epochs": 2},
    "params": {
        "model.lr": {"type": "float", "low": 1e-4, "high": 1e-2, "log": True},
        "data.batch_size": {"type": "choice", "choices": [25, 50]},
        "model.dropout": {"type": "float", "low": 0.0, "high": 0.2},
    },
}


def write_space(path: Path, space: dict) -> Path:
    path.write_text(yaml.safe_dump(space))
    return path


def tune_args(data_dir: Path, root: Path, space: Path, *extra: str) -> list[str]:
    args = small_args(data_dir, "--trainer.default_root_dir", str(root), "--trainer.enable_model_summary", "false")
    return ["tune", *args, "--tune.space", str(space), *extra]


def load(root: Path, study: str) -> optuna.Study:
    return optuna.load_study(study_name=study, storage=f"sqlite:///{root / 'lightning_logs' / study}.db")


def test_search_runs_normal_trials_continues_and_writes_a_config_that_fits(data_dir: Path, tmp_path: Path) -> None:
    space = write_space(tmp_path / "space.yaml", SPACE)
    args = tune_args(data_dir, tmp_path, space, "--tune.n_trials", "3", "--tune.study_name", "s")
    assert main(args) == 0
    study = load(tmp_path, "s")
    trials = study.get_trials()
    assert [t.number for t in trials] == [0, 1, 2] and all(t.state == TrialState.COMPLETE for t in trials)
    for t in trials:  # each trial is a normal run: its folder, config, checkpoints, curves and HPARAMS row
        run = tmp_path / "lightning_logs" / "s" / f"trial_{t.number:04d}"
        assert Path(t.user_attrs["run_dir"]) == run
        config = yaml.safe_load((run / "config.yaml").read_text())
        assert config["model"]["lr"] == pytest.approx(t.params["model.lr"])
        assert config["data"]["batch_size"] == t.params["data.batch_size"]
        assert list((run / "checkpoints").glob("best-*.ckpt")) and (run / "mnist.onnx").is_file()
        events = EventAccumulator(str(run), size_guidance={"scalars": 0, "tensors": 0}).Reload()
        accs = [e.value for e in events.Scalars("val/acc")]
        assert t.value == pytest.approx(max(accs)) and t.user_attrs["epochs"] == len(accs) == 2
        assert events.Scalars("hp/best_val_acc")[0].value == pytest.approx(t.value)
        assert "_hparams_/session_start_info" in events.PluginTagToContent("hparams")

    # the same command again continues the study: up to the new total, not three more
    assert main([*args[:-4], "--tune.n_trials", "4", "--tune.study_name", "s"]) == 0
    assert [t.number for t in load(tmp_path, "s").get_trials(states=(TrialState.COMPLETE,))] == [0, 1, 2, 3]

    # the best trial's config, written next to the storage, reproduces it as a new ordinary run
    best = load(tmp_path, "s").best_trial
    found = tmp_path / "lightning_logs" / "s-best.yaml"
    assert yaml.safe_load(found.read_text())["trainer"]["logger"] is None
    cli = run_cli(["fit", "--config", str(found)])
    assert float(cli.trainer.checkpoint_callback.best_model_score) == pytest.approx(best.value)
    assert Path(cli.trainer.log_dir) == tmp_path / "lightning_logs" / "version_0"


def test_same_seed_proposes_the_same_trials(data_dir: Path, tmp_path: Path) -> None:
    space = write_space(tmp_path / "space.yaml", {**SPACE, "fixed": {"trainer.max_epochs": 1}})
    proposals = {}
    for name, seed in (("a", "7"), ("b", "7"), ("c", "8")):
        extra = ("--tune.n_trials", "3", "--tune.study_name", name, "--tune.seed", seed)
        assert main([*tune_args(data_dir, tmp_path, space, *extra), "--trainer.limit_train_batches", "2"]) == 0
        proposals[name] = [t.params for t in load(tmp_path, name).get_trials()]
    assert len(proposals["a"]) == 3 and proposals["a"] == proposals["b"]
    assert proposals["c"] != proposals["a"]  # the seed is what fixes them
    assert len({p["model.lr"] for p in proposals["a"]}) == 3  # and trials differ from each other


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"model.nope": {"type": "float", "low": 0.1, "high": 0.2}}, "model.nope"),
        ({"model.lr": {"type": "float", "low": 0.01, "high": 0.01}}, "empty range"),
        ({"model.lr": {"type": "choice", "choices": []}}, "empty or missing 'choices'"),
        ({"model.lr": {"low": 0.1, "high": 0.2}}, "no 'type'"),
        ({"model.optimizer": {"type": "choice", "choices": ["adam", "sgd"]}}, "'sgd'"),
    ],
)
def test_a_bad_space_is_one_paragraph_and_starts_nothing(
    data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture, params: dict, expected: str
) -> None:
    space = write_space(tmp_path / "bad.yaml", {"params": params})
    assert main(tune_args(data_dir, tmp_path, space)) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err and "Traceback" not in err
    assert expected in err and str(space) in err
    assert not (tmp_path / "lightning_logs").exists()  # no storage, no run folder


def _worker(data_dir: Path, root: Path, space: Path, *extra: str, stdout: int = subprocess.DEVNULL) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "mnist_lightning", *tune_args(data_dir, root, space, *extra)]
    return subprocess.Popen(command, env=env, stdout=stdout, stderr=subprocess.PIPE, text=True)


@pytest.mark.slow
def test_two_workers_share_one_study(data_dir: Path, tmp_path: Path) -> None:
    space = write_space(tmp_path / "space.yaml", {**SPACE, "fixed": {"trainer.max_epochs": 1}})
    extra = ("--tune.n_trials", "4", "--tune.study_name", "shared")
    workers = [_worker(data_dir, tmp_path, space, *extra) for _ in range(2)]
    for w in workers:
        _, err = w.communicate(timeout=300)
        assert w.returncode == 0, err[-2000:]
    trials = load(tmp_path, "shared").get_trials()
    assert sorted(t.number for t in trials) == [0, 1, 2, 3]  # N in total, each number once
    assert all(t.state == TrialState.COMPLETE for t in trials)
    assert len({t.user_attrs["worker"] for t in trials}) == 2  # both took part
    assert len({t.user_attrs["run_dir"] for t in trials}) == 4


@pytest.mark.slow
def test_a_killed_worker_s_trial_is_failed_and_the_rerun_completes_the_study(data_dir: Path, tmp_path: Path) -> None:
    space = write_space(tmp_path / "space.yaml", {**SPACE, "fixed": {"trainer.max_epochs": 3}})
    extra = ("--tune.n_trials", "3", "--tune.study_name", "k", "--tune.heartbeat", "1")
    # each epoch lasts over a second, so the trial is surely still running when it is killed
    slow = ("--trainer.callbacks+=tests.helpers.probes.SlowEpochs", "--trainer.callbacks.seconds", "1.0")
    worker = _worker(data_dir, tmp_path, space, *extra, *slow)
    deadline = time.monotonic() + 240
    # kill it inside its second trial, once that has validated an epoch (its best checkpoint is saved then); watched
    # through its run folder, as opening the storage while the worker still creates its tables would race with it
    second = tmp_path / "lightning_logs" / "k" / "trial_0001" / "checkpoints"
    while time.monotonic() < deadline and worker.poll() is None and not list(second.glob("best-*.ckpt")):
        time.sleep(0.2)
    assert worker.poll() is None, "the worker ended before it could be killed"
    os.kill(worker.pid, signal.SIGKILL)
    worker.wait()
    time.sleep(2.5)  # past the heartbeat's grace period (2 x 1 s)

    assert main(tune_args(data_dir, tmp_path, space, *extra)) == 0
    states = {t.number: t.state for t in load(tmp_path, "k").get_trials()}
    assert states[1] == TrialState.FAIL
    assert sum(s == TrialState.COMPLETE for s in states.values()) == 3 and TrialState.RUNNING not in states.values()


@pytest.mark.slow
def test_trials_clearly_behind_are_pruned_and_still_leave_a_run(data_dir: Path, tmp_path: Path) -> None:
    # lr 1e-7 cannot learn in 3 epochs; 0.01 learns the synthetic digits at once
    space = write_space(
        tmp_path / "space.yaml",
        {"fixed": {"trainer.max_epochs": 3}, "params": {"model.lr": {"type": "choice", "choices": [0.01, 1e-7]}}},
    )
    extra = ["--tune.n_trials", "5", "--tune.study_name", "p", "--tune.seed", "2"]  # proposes 0.01 first
    extra += ["--tune.pruner_startup_trials", "1", "--tune.pruner_warmup_epochs", "0"]
    assert main(tune_args(data_dir, tmp_path, space, *extra)) == 0
    trials = load(tmp_path, "p").get_trials()
    pruned = [t for t in trials if t.state == TrialState.PRUNED]
    assert pruned and all(t.params["model.lr"] == 1e-7 for t in pruned)
    assert all(t.params["model.lr"] == 0.01 for t in trials if t.state == TrialState.COMPLETE)
    for t in pruned:  # stopped after its first epoch, as a run that ended normally
        assert t.user_attrs["epochs"] == 1
        assert (Path(t.user_attrs["run_dir"]) / "config.yaml").is_file()


@pytest.mark.slow
def test_ctrl_c_fails_the_trial_under_way_and_still_reports(data_dir: Path, tmp_path: Path) -> None:
    space = write_space(tmp_path / "space.yaml", SPACE)
    extra = ("--tune.n_trials", "3", "--tune.study_name", "c", "--trainer.max_epochs", "50")  # the command line wins
    worker = _worker(data_dir, tmp_path, space, *extra, stdout=subprocess.PIPE)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and worker.poll() is None:  # Ctrl-C inside its first trial, after an epoch
        if list((tmp_path / "lightning_logs" / "c" / "trial_0000" / "checkpoints").glob("best-*.ckpt")):
            break
        time.sleep(0.2)
    worker.send_signal(signal.SIGINT)
    out, err = worker.communicate(timeout=120)
    assert worker.returncode == 128 + signal.SIGINT, err[-2000:]
    (trial,) = load(tmp_path, "c").get_trials()
    assert trial.state == TrialState.FAIL and trial.user_attrs["epochs"] < 50
    assert "Search interrupted" in out and "1 fail" in out and "No trial has completed yet" in out


def test_fixed_options_sit_between_the_config_file_and_the_command_line() -> None:
    from mnist_lightning.tune.space import with_fixed

    args = ["--config", "a.yaml", "--model.lr", "0.1"]
    assert with_fixed(args, {"model.lr": 0.2, "trainer.max_epochs": 3}) == [
        "--config",
        "a.yaml",
        "--model.lr",
        "0.2",
        "--trainer.max_epochs",
        "3",
        "--model.lr",
        "0.1",
    ]
    assert with_fixed(["--data.batch_size", "8"], {"model.dropout": 0.1})[:2] == ["--model.dropout", "0.1"]


@pytest.mark.parametrize("name", ["fast", "best"])
def test_the_shipped_spaces_fit_their_configs(name: str) -> None:
    from mnist_lightning.tune.command import check_against_cli
    from mnist_lightning.tune.space import load_space

    space = load_space(ROOT / "configs" / "search" / f"{name}.yaml")
    config = check_against_cli(["--config", str(ROOT / "configs" / f"{name}.yaml")], space)  # raises if not
    assert {p.name.split(".")[0] for p in space.params} <= {"model", "data", "trainer"}
    assert config.trainer.max_epochs == space.fixed["trainer.max_epochs"]


def test_a_missing_database_driver_is_named_with_its_install_command(
    data_dir: Path, tmp_path: Path, monkeypatch, capsys
) -> None:
    # SQLAlchemy reads postgresql:// with psycopg 3; without it Optuna only said "Failed to import DB access module"
    monkeypatch.setitem(sys.modules, "psycopg", None)  # an import of it fails, as when it is not installed
    space = write_space(tmp_path / "space.yaml", SPACE)
    url = "postgresql://optuna@127.0.0.1:1/optuna"
    assert main(tune_args(data_dir, tmp_path, space, "--tune.storage", url, "--tune.n_trials", "1")) == 2
    err = capsys.readouterr().err
    assert "'psycopg', which is not installed" in err and 'pip install "psycopg[binary]"' in err
    assert "postgresql+psycopg2://" in err and "Traceback" not in err
    assert not list(tmp_path.glob("**/*.ckpt"))
