"""The Trainer-flag matrix: Lightning's common flags with the project's sampler, loader and always-on callbacks, each
checked for what Lightning documents it does (batches seen, steps taken, validation points, checkpoints, resume).

Synthetic data (tests/helpers/synthetic.py): 500 training images in batches of 50, so 10 batches an epoch, and 100
validation images (one batch, or four with --data.eval_batch_size 25).
"""

from __future__ import annotations

import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import lightning as L
import onnx
import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from mnist_lightning.commands import main
from mnist_lightning.model.checkpoints import load_checkpoint
from mnist_lightning.training.cli import MNISTCLI, run_cli
from tests.helpers.probes import image_key
from tests.helpers.synthetic import fit_in_subprocess, small_args

BATCHES = 10  # training batches per epoch of the synthetic split
FOUR_VAL_BATCHES = ("--data.eval_batch_size", "25")  # the 100 validation images in 4 batches
REPO = Path(__file__).parents[1]


class Probe(L.Callback):
    """Counts what Lightning ran: batches per epoch (by their first image), optimizer steps, validations."""

    def __init__(self, sleep_at_batch: int | None = None, sleep_s: float = 0.0) -> None:
        self.batches: dict[int, list[str]] = defaultdict(list)
        self.steps = 0
        self.val_at: list[int] = []  # global_step at each validation (sanity check excluded)
        self.val_batches: list[int] = []  # batches of each validation
        self.sanity_batches = 0
        self.grad_norms: list[float] = []  # after clipping: what the optimizer applied
        self.sleep_at_batch, self.sleep_s = sleep_at_batch, sleep_s

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        trainer.optimizers[0].register_step_post_hook(self._norm)

    def _norm(self, optimizer: torch.optim.Optimizer, *args: Any) -> None:
        grads = [p.grad for g in optimizer.param_groups for p in g["params"] if p.grad is not None]
        self.grad_norms.append(float(torch.linalg.vector_norm(torch.stack([g.norm() for g in grads]))))

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any, idx: int) -> None:
        self.batches[trainer.current_epoch].append(image_key(batch[0][0]))
        if idx == self.sleep_at_batch:  # a slow batch, so that max_time runs out at a known point
            time.sleep(self.sleep_s)

    def on_before_optimizer_step(self, trainer: L.Trainer, *args: Any) -> None:
        self.steps += 1

    def on_validation_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.sanity_checking:
            self.val_at.append(trainer.global_step)
            self.val_batches.append(0)

    def on_validation_batch_start(self, trainer: L.Trainer, *args: Any) -> None:
        if trainer.sanity_checking:
            self.sanity_batches += 1
        else:
            self.val_batches[-1] += 1


def fit(data_dir: Path, root: Path, *extra: str, probe: Probe | None = None) -> tuple[MNISTCLI, Probe]:
    probe = probe or Probe()
    cli = run_cli(["fit", *small_args(data_dir, "--trainer.default_root_dir", str(root), *extra)], [probe])
    return cli, probe


def run_folder(root: Path) -> Path:
    return root / "lightning_logs" / "version_0"


def last_ckpt(root: Path) -> dict[str, Any]:
    return load_checkpoint(run_folder(root) / "checkpoints" / "last.ckpt")


def best_files(root: Path) -> list[Path]:
    return sorted((run_folder(root) / "checkpoints").glob("best-*.ckpt"))


def scalar_steps(run: Path, tag: str) -> list[int]:
    events = EventAccumulator(str(run), size_guidance={"scalars": 0})
    events.Reload()
    return [e.step for e in events.Scalars(tag)]


def onnx_source(run: Path) -> str:
    """The checkpoint the run's mnist.onnx was exported from (its metadata)."""
    return {p.key: p.value for p in onnx.load(str(run / "mnist.onnx")).metadata_props}["checkpoint"]


def test_fast_dev_run_fits_one_batch_and_tests_one_batch(data_dir: Path, tmp_path: Path, trained_run: Path) -> None:
    cli, probe = fit(data_dir, tmp_path, "--trainer.fast_dev_run", "true")
    assert [len(b) for b in probe.batches.values()] == [1] and probe.steps == 1
    assert probe.val_batches == [1] and probe.sanity_batches == 0
    assert not list(tmp_path.glob("**/*.ckpt"))  # Lightning: no checkpoints in a fast_dev_run
    best = next(trained_run.glob("lightning_logs/version_0/checkpoints/best-*.ckpt"))
    test_args = small_args(data_dir, "--trainer.fast_dev_run", "true", "--trainer.default_root_dir", str(tmp_path))
    assert main(["test", *test_args, "--ckpt_path", str(best)]) == 0


def test_overfit_batches_repeats_the_same_batches_every_epoch(data_dir: Path, tmp_path: Path) -> None:
    _, probe = fit(data_dir, tmp_path, "--trainer.overfit_batches", "3")
    epoch0, epoch1 = probe.batches[0], probe.batches[1]
    assert len(epoch0) == 3 and epoch0 == epoch1  # the same 3 batches, in the same order (no shuffling)
    assert probe.val_batches == [1, 1]  # limit_val_batches follows overfit_batches (1 val batch exists)


def test_integer_batch_limits_count_batches_and_floats_are_fractions(data_dir: Path, tmp_path: Path) -> None:
    # `1` was read as 1.0, i.e. the whole epoch
    _, one = fit(data_dir, tmp_path / "one", "--trainer.limit_train_batches", "1", *FOUR_VAL_BATCHES)
    assert [len(b) for b in one.batches.values()] == [1, 1] and one.val_batches == [4, 4]
    assert last_ckpt(tmp_path / "one")["global_step"] == 2

    limits = ("--trainer.limit_train_batches", "0.5", "--trainer.limit_val_batches", "1")
    _, half = fit(data_dir, tmp_path / "half", *limits, *FOUR_VAL_BATCHES)
    assert [len(b) for b in half.batches.values()] == [5, 5] and half.val_batches == [1, 1]

    limits = ("--trainer.limit_train_batches", "3", "--trainer.limit_val_batches", "0.5")
    _, three = fit(data_dir, tmp_path / "three", *limits, *FOUR_VAL_BATCHES)
    assert [len(b) for b in three.batches.values()] == [3, 3] and three.val_batches == [2, 2]


def test_limit_val_batches_0_trains_without_validation(data_dir: Path, tmp_path: Path) -> None:
    _, probe = fit(data_dir, tmp_path, "--trainer.limit_val_batches", "0")
    assert probe.val_at == [] and probe.sanity_batches == 0 and probe.steps == 2 * BATCHES
    assert last_ckpt(tmp_path)["global_step"] == 2 * BATCHES
    assert (run_folder(tmp_path) / "mnist.onnx").is_file()  # exported from the final weights


def test_limit_train_batches_0_trains_nothing(data_dir: Path, tmp_path: Path) -> None:
    _, probe = fit(data_dir, tmp_path, "--trainer.limit_train_batches", "0")
    assert probe.steps == 0 and not probe.batches and probe.val_at == []


def test_accumulate_grad_batches_steps_once_per_two_batches_and_logs_lr_once_per_step(
    data_dir: Path, tmp_path: Path
) -> None:
    extra = ("--trainer.accumulate_grad_batches", "2", "--trainer.log_every_n_steps", "1")
    _, probe = fit(data_dir, tmp_path, *extra)
    assert probe.steps == BATCHES and sum(len(b) for b in probe.batches.values()) == 2 * BATCHES
    assert last_ckpt(tmp_path)["global_step"] == BATCHES
    # one point per optimizer step (it was two, at the same step, one per batch)
    assert scalar_steps(run_folder(tmp_path), "train/lr") == list(range(BATCHES))


def test_log_every_n_steps_1_logs_every_step(data_dir: Path, tmp_path: Path) -> None:
    fit(data_dir, tmp_path, "--trainer.log_every_n_steps", "1", "--trainer.max_epochs", "1")
    run = run_folder(tmp_path)
    assert scalar_steps(run, "train/loss_step") == list(range(BATCHES))
    assert scalar_steps(run, "train/lr") == list(range(BATCHES))


@pytest.mark.parametrize(
    ("interval", "expected"),
    [("0.5", [5, 10, 15, 20]), ("3", [3, 6, 9, 13, 16, 19])],
)
def test_val_check_interval_float_and_int(data_dir: Path, tmp_path: Path, interval: str, expected: list[int]) -> None:
    _, probe = fit(data_dir, tmp_path, "--trainer.val_check_interval", interval)
    assert probe.val_at == expected  # a float: that fraction of an epoch; an int: every N batches of an epoch
    # last.ckpt is written after each validation inside the epoch too, then at the epoch end
    assert last_ckpt(tmp_path)["global_step"] == 2 * BATCHES


def test_check_val_every_n_epoch_and_num_sanity_val_steps_0(data_dir: Path, tmp_path: Path) -> None:
    extra = ("--trainer.check_val_every_n_epoch", "2", "--trainer.num_sanity_val_steps", "0")
    _, probe = fit(data_dir, tmp_path, *extra)
    assert probe.val_at == [2 * BATCHES] and probe.sanity_batches == 0
    (best,) = best_files(tmp_path)
    assert best.name.startswith("best-epoch01-") and onnx_source(run_folder(tmp_path)) == str(best)
    _, default = fit(data_dir, tmp_path / "default", "--trainer.max_epochs", "1")
    assert default.sanity_batches == 1  # Lightning's default: up to 2 sanity batches, and there is 1


def test_gradient_clip_val_bounds_the_applied_gradient(data_dir: Path, tmp_path: Path) -> None:
    clip = 0.05
    _, free = fit(data_dir, tmp_path / "free", "--trainer.max_epochs", "1")
    _, clipped = fit(data_dir, tmp_path / "clip", "--trainer.max_epochs", "1", "--trainer.gradient_clip_val", str(clip))
    assert max(free.grad_norms) > 2 * clip  # the test means something: unclipped gradients are larger
    assert len(clipped.grad_norms) == BATCHES and max(clipped.grad_norms) <= clip * (1 + 1e-4)


def test_deterministic_runs_repeat_bitwise(data_dir: Path, tmp_path: Path) -> None:
    extra = ("--trainer.deterministic", "true", "--trainer.max_epochs", "1", "--trainer.limit_train_batches", "4")
    fit(data_dir, tmp_path / "a", *extra)
    fit(data_dir, tmp_path / "b", *extra)
    a, b = last_ckpt(tmp_path / "a")["state_dict"], last_ckpt(tmp_path / "b")["state_dict"]
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_early_stopping_stops_and_exports_the_best(data_dir: Path, tmp_path: Path) -> None:
    # threshold 0: the first validation already meets it, so training stops after epoch 0 of 3
    stop = (
        "--trainer.callbacks+=EarlyStopping",
        "--trainer.callbacks.monitor=val/acc",
        "--trainer.callbacks.mode=max",
        "--trainer.callbacks.stopping_threshold=0.0",
    )
    cli, probe = fit(data_dir, tmp_path, "--trainer.max_epochs", "3", *stop)
    assert list(probe.batches) == [0] and probe.val_at == [BATCHES]
    assert cli.trainer.early_stopping_callback.stopped_epoch == 0
    (best,) = best_files(tmp_path)
    assert best.name.startswith("best-epoch00-")
    assert onnx_source(run_folder(tmp_path)) == str(best)  # the export holds the best checkpoint's weights


def test_max_steps_stops_mid_epoch_and_a_resume_continues_that_epoch(data_dir: Path, tmp_path: Path) -> None:
    steps = ("--trainer.max_epochs", "5")
    _, first = fit(data_dir, tmp_path, *steps, "--trainer.max_steps", "13")
    assert first.steps == 13 and len(first.batches[1]) == 3
    ckpt = last_ckpt(tmp_path)
    assert ckpt["global_step"] == 13
    _, second = fit(data_dir, tmp_path, *steps, "--trainer.max_steps", "20", "--ckpt_path", "last")
    # epoch 1's remaining 7 batches, not a new epoch 2
    assert list(second.batches) == [1] and len(second.batches[1]) == BATCHES - 3 and second.steps == 7
    assert last_ckpt(tmp_path)["global_step"] == 20


def test_max_time_stop_mid_epoch_resumes_that_epoch(data_dir: Path, tmp_path: Path, capsys) -> None:
    # batch 3 takes longer than max_time, so the Timer stops the run after it (earlier, on a very slow machine)
    limit = ("--trainer.max_time", "00:00:00:02")
    _, first = fit(data_dir, tmp_path, *limit, probe=Probe(sleep_at_batch=3, sleep_s=2.5))
    stopped = first.steps
    assert 0 < stopped <= 4 and list(first.batches) == [0]
    assert "Stopped by --trainer.max_time in epoch 0" in capsys.readouterr().out
    ckpt = last_ckpt(tmp_path)
    assert ckpt["global_step"] == stopped
    assert ckpt["loops"]["fit_loop"]["state_dict"]["combined_loader"] == [{"epoch": 0, "batches_done": stopped}]

    # the same max_time again: Lightning's Timer counts the time already trained, so nothing is left; said plainly
    _, again = fit(data_dir, tmp_path, *limit, "--ckpt_path", "last")
    assert again.steps == 0 and "Nothing left to train: its --trainer.max_time is used up" in capsys.readouterr().out

    # more time: the rest of epoch 0, then epoch 1
    _, rest = fit(data_dir, tmp_path, "--trainer.max_time", "00:01:00:00", "--ckpt_path", "last")
    assert len(rest.batches[0]) == BATCHES - stopped and len(rest.batches[1]) == BATCHES
    assert last_ckpt(tmp_path)["global_step"] == 2 * BATCHES


@pytest.mark.slow
def test_ddp_spawn_on_two_cpu_processes_ends_with_the_summary(data_dir: Path, tmp_path: Path) -> None:
    # the launching process only gets the best path back from its workers; the summary crashed on the missing score
    spawn = ("--trainer.strategy", "ddp_spawn", "--trainer.devices", "2")
    args = small_args(data_dir, *spawn, "--export.enabled", "false")
    proc = fit_in_subprocess(args, tmp_path)
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    (best,) = best_files(tmp_path)
    assert f"best checkpoint : {best.relative_to(tmp_path)} (val/acc " in proc.stdout  # printed from the cwd
    assert last_ckpt(tmp_path)["global_step"] == 2 * BATCHES // 2  # each rank: half of the 10 batches, 2 epochs
