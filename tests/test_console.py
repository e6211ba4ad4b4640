"""What a user reads on the console, from real subprocesses: the end of a fit in a file and on a terminal (each
line once, nothing spliced into the bar), the run summary, --print_config, and Ctrl-C."""

from __future__ import annotations

import fcntl
import os
import pty
import struct
import subprocess
import sys
import termios
from pathlib import Path

import pytest
import torch
import yaml

from mnist_lightning.commands import main
from tests.helpers.synthetic import small_args

ROOT = Path(__file__).resolve().parents[1]
STOPPED = "`Trainer.fit` stopped: `max_epochs=2` reached."


def env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}


def fit_args(data_dir: Path, *extra: str) -> list[str]:
    bar = ("--trainer.enable_progress_bar", "true", "--trainer.log_every_n_steps", "5")
    return [sys.executable, "-m", "mnist_lightning", "fit", *small_args(data_dir, *bar, *extra)]


def on_a_terminal(command: list[str], cwd: Path) -> tuple[int, str]:
    """Run with stdout and stderr on a pseudo-terminal, as in a shell; returns (exit status, everything shown)."""
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 160, 0, 0))  # 0 columns: tqdm draws nothing
    proc = subprocess.Popen(command, cwd=cwd, env=env(), stdin=subprocess.DEVNULL, stdout=follower, stderr=follower)
    os.close(follower)
    shown = b""
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        shown += chunk
    os.close(leader)
    return proc.wait(timeout=600), shown.decode("utf-8", errors="replace")


def test_a_fit_into_a_file_prints_each_line_once_and_an_honest_summary(data_dir: Path, tmp_path: Path) -> None:
    logger = ("--trainer.logger", "CSVLogger", "--trainer.logger.save_dir", ".", "--trainer.logger.name", "mycsv")
    done = subprocess.run(  # stdout and stderr into one pipe, as `fit ... > log 2>&1`
        fit_args(data_dir, *logger), cwd=tmp_path, env=env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    out = done.stdout.decode()
    assert done.returncode == 0, out[-3000:]
    assert "\r" not in out and "\x1b[" not in out  # no redraws: a file keeps every one of them
    lines = out.splitlines()
    epochs = [line for line in lines if line.startswith("Epoch ")]
    assert [e.split(":")[0] for e in epochs] == ["Epoch 0", "Epoch 1"], out  # one line per epoch, each once
    assert all("val/acc=" in e and "batches" in e for e in epochs)
    assert lines.count(STOPPED) == 1  # a line of its own, not spliced into a bar
    summary = lines[lines.index("Training finished.") + 1 :]
    paths = [line.split(" : ", 1)[1].split()[0] for line in summary]
    assert len(paths) == 5 and all(p.startswith("mycsv/version_0/") for p in paths), summary  # one spelling
    assert not any("TensorBoard" in line or "tensorboard" in line for line in summary)  # no event files to show
    assert paths[-1] == "mycsv/version_0/metrics.csv" and (tmp_path / paths[-1]).is_file()
    assert not list((tmp_path / "mycsv").rglob("events.out.tfevents.*"))


def test_on_a_terminal_the_stop_message_starts_its_own_line_and_the_bar_is_not_redrawn(
    data_dir: Path, tmp_path: Path
) -> None:
    code, shown = on_a_terminal(fit_args(data_dir), tmp_path)
    assert code == 0, shown[-3000:]
    before, stop, after = shown.partition(STOPPED)
    assert stop and before.endswith("\n"), shown[-1500:]  # after the bar's closed line, not inside it
    assert "Epoch " not in after  # the final bar is not drawn again after the message
    assert "tensorboard --logdir lightning_logs" in after  # a relative path, like every other line of the summary
    assert "best checkpoint : lightning_logs/version_0/checkpoints/best-" in after


def test_print_config_shows_the_logger_the_run_uses(data_dir: Path, tmp_path: Path, capsys) -> None:
    args = small_args(data_dir, "--trainer.default_root_dir", str(tmp_path), "--trainer.max_epochs", "1")
    with pytest.raises(SystemExit) as stop:
        main(["fit", *args, "--print_config"])
    assert stop.value.code == 0
    printed = yaml.safe_load(capsys.readouterr().out)["trainer"]["logger"]
    assert main(["fit", *args, "--trainer.limit_train_batches", "1"]) == 0
    saved = yaml.safe_load((tmp_path / "lightning_logs" / "version_0" / "config.yaml").read_text())["trainer"]["logger"]
    assert printed == saved and printed["class_path"] == "lightning.pytorch.loggers.TensorBoardLogger"
    assert printed["init_args"]["save_dir"] == str(tmp_path) and printed["init_args"]["default_hp_metric"] is False


def stopped_fit(data_dir: Path, folder: Path, faults: str) -> subprocess.CompletedProcess:
    (folder / "faults.yaml").write_text(f"trainer:\n  callbacks: {faults}\n")
    args = fit_args(data_dir, "--config", str(folder / "faults.yaml"), "--trainer.max_epochs", "3")
    return subprocess.run(args, cwd=folder, env=env(), capture_output=True, text=True)


def test_ctrl_c_says_ctrl_c_and_a_second_one_while_exiting_ends_it_quietly(data_dir: Path, tmp_path: Path) -> None:
    ctrl_c = "{class_path: tests.helpers.faults.SignalAt, init_args: {step: 13, signal: SIGINT}}"
    done = stopped_fit(data_dir, tmp_path, f"[{ctrl_c}, tests.helpers.faults.CtrlCAtExit]")
    assert done.returncode == 130, done.stderr[-3000:]
    assert "SIGTERM" not in done.stderr  # no "[rank: 0] Received SIGTERM: 15" for a Ctrl-C
    assert "Ctrl-C: stopping after this batch" in done.stderr
    assert "Training stopped by SIGINT at epoch 1, step 13" in done.stderr
    assert done.stderr.rstrip().endswith("Ctrl-C again: exiting now (the checkpoint above is complete).")
    assert "KeyboardInterrupt" not in done.stderr and "Exception ignored" not in done.stderr
    last = torch.load(tmp_path / "lightning_logs" / "version_0" / "checkpoints" / "last.ckpt", weights_only=True)
    assert last["global_step"] == 13


def test_a_real_sigterm_is_still_reported_as_one(data_dir: Path, tmp_path: Path) -> None:
    done = stopped_fit(
        data_dir, tmp_path, "[{class_path: tests.helpers.faults.SignalAt, init_args: {step: 5, signal: SIGTERM}}]"
    )
    assert done.returncode == 143, done.stderr[-3000:]
    assert "Received SIGTERM: 15" in done.stderr and "Training stopped by SIGTERM" in done.stderr
