"""The fixes behind the combination matrix, each pinned where it broke: augmentation in half precision, OneCycle
on short runs, step-aligned curves, a missing accelerator, and resumes that disagree with their checkpoint."""

from __future__ import annotations

import lightning as L
import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from torch.optim.lr_scheduler import OneCycleLR

from mnist_lightning import run_cli
from mnist_lightning.commands import main
from mnist_lightning.training.augment import BatchAugment
from mnist_lightning.training.module import onecycle_pct_start
from mnist_lightning.training.rank_seeds import rank_seed
from tests.helpers.synthetic import small_args

AUGMENT = BatchAugment(shift=2, rotate=10, scale=0.1, elastic=1)


def warped(images: torch.Tensor, seed: int = 0) -> torch.Tensor:
    torch.manual_seed(seed)
    return AUGMENT(images)


def test_augmentation_grid_is_float32_under_any_precision() -> None:
    images = torch.rand(8, 784)
    reference = warped(images)
    # bf16-mixed: autocast would compute the grid matmuls in bf16; now the result is the float32 one, bit for bit
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert torch.equal(warped(images), reference)
    # bf16-true / 16-true / 64-true: half or double default dtype and images; the warp comes back in that dtype
    for dtype in (torch.bfloat16, torch.float16, torch.float64):
        previous = torch.get_default_dtype()
        torch.set_default_dtype(dtype)
        try:
            out = warped(images.to(dtype))
        finally:
            torch.set_default_dtype(previous)
        assert out.dtype == dtype
        # same draws, same float32 grid: only the input's and output's rounding differ
        tolerance = 1e-6 if dtype == torch.float64 else 2e-2
        assert (out.float() - reference).abs().max() < tolerance


def test_onecycle_steps_through_any_length_and_warmup() -> None:
    for total in range(1, 80):
        for warmup in (0.05, 0.15, 0.2, 0.3, 0.5, 0.9):
            opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
            pct = onecycle_pct_start(warmup, total)
            sched = OneCycleLR(opt, max_lr=0.1, total_steps=total, pct_start=pct)
            for _ in range(total):
                opt.step()
                sched.step()  # raised ZeroDivisionError where warmup * total == 1 (e.g. 5 steps at 0.2)
            if warmup * total > 1:
                assert pct == warmup  # runs long enough keep their warmup exactly


def test_rank_seeds_differ_per_rank_and_keep_rank_zero() -> None:
    assert rank_seed(42, 0) == 42
    seeds = {rank_seed(s, r) for s in range(5) for r in range(1, 9)}
    assert len(seeds) == 40 and not seeds & set(range(5))
    assert rank_seed(42, 1) == rank_seed(42, 1) < 2**63


class LossPerStep(L.Callback):
    def __init__(self) -> None:
        self.loss: dict[int, float] = {}

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:  # noqa: ANN001
        self.loss[trainer.global_step - 1] = float(outputs["loss"])  # the step this batch was


def test_loss_step_and_lr_curves_hold_the_value_of_the_step_they_are_drawn_at(data_dir, tmp_path) -> None:
    record = LossPerStep()
    extra = ("--trainer.log_every_n_steps", "3", "--model.lr_schedule", "onecycle", "--model.warmup", "0.3")
    cli = run_cli(["fit", *small_args(data_dir, "--trainer.default_root_dir", str(tmp_path), *extra)], [record])
    events = EventAccumulator(cli.trainer.logger.log_dir)
    events.Reload()
    loss = events.Scalars("train/loss_step")
    assert [e.step for e in loss] == [2, 5, 8, 11, 14, 17]  # Lightning writes when (step + 1) % 3 == 0
    assert [e.value for e in loss] == pytest.approx([record.loss[e.step] for e in loss], rel=1e-6)
    # the per-step OneCycle curve: the LR each of those steps used, rising then falling
    sched = OneCycleLR(torch.optim.SGD([torch.zeros(1)], lr=1e-3), max_lr=1e-3, total_steps=20, pct_start=0.3)
    expected = []
    for _ in range(20):
        expected.append(sched.get_last_lr()[0])
        sched.optimizer.step()
        sched.step()
    lr = events.Scalars("train/lr")
    assert [e.step for e in lr] == [e.step for e in loss]
    assert [e.value for e in lr] == pytest.approx([expected[e.step] for e in lr], rel=1e-5)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message on a machine without a GPU")
def test_missing_gpu_is_one_paragraph(data_dir, tmp_path, capsys) -> None:
    args = small_args(data_dir, "--trainer.default_root_dir", str(tmp_path), "--trainer.accelerator", "gpu")
    assert main(["fit", *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: trainer.accelerator 'gpu' needs a CUDA GPU, but none was found: torch ")
    assert "sees 0 CUDA GPU(s)" in err and "--trainer.accelerator cpu" in err and "Traceback" not in err
    assert err.count("\n") == 1 and not (tmp_path / "lightning_logs").exists()


@pytest.mark.slow
def test_resume_refuses_another_schedule_length_or_other_settings(data_dir, tmp_path, capsys) -> None:
    onecycle = ("--model.optimizer", "adamw", "--model.lr_schedule", "onecycle", "--model.warmup", "0.2")
    tiny = ("--trainer.max_epochs", "1", "--trainer.limit_train_batches", "3", "--export.enabled", "false")
    args = small_args(data_dir, "--trainer.default_root_dir", str(tmp_path), *tiny, *onecycle)
    assert main(["fit", *args]) == 0
    run = tmp_path / "lightning_logs" / "version_0"
    config = (run / "config.yaml").read_bytes()
    last = run / "checkpoints" / "last.ckpt"
    saved = last.read_bytes()
    capsys.readouterr()

    # more epochs: OneCycle "Tried to step 4 times" before; now one paragraph saying how to go on
    assert main(["fit", *args, "--trainer.max_epochs", "2", "--ckpt_path", "last"]) == 2
    err = capsys.readouterr().err
    assert "'onecycle' learning-rate schedule spans 3 steps (--trainer.max_epochs 1)" in err
    assert "this fit would span 6 steps" in err and "drop --ckpt_path" in err and err.count("\n") == 1

    # the config's optimizer and schedule (base.yaml's) differ from the checkpoint's: every difference named
    base = small_args(data_dir, "--trainer.default_root_dir", str(tmp_path), *tiny)
    assert main(["fit", *base, "--model.lr", "0.002", "--ckpt_path", str(last)]) == 2
    err = capsys.readouterr().err
    for named in (
        "model.optimizer is 'adamw' in the checkpoint but 'adam' in the config",
        "model.lr_schedule is 'onecycle' in the checkpoint but 'constant' in the config",
        "model.warmup is 0.2 in the checkpoint but 0.0 in the config",
        "model.lr is 0.001 in the checkpoint but 0.002 in the config",
        f"--config {run / 'config.yaml'}",
    ):
        assert named in err, named
    assert err.count("\n") == 1
    # neither refusal touched the run's config or checkpoint
    assert (run / "config.yaml").read_bytes() == config and last.read_bytes() == saved


@pytest.mark.skipif(torch.cuda.is_available(), reason="the no-GPU path")
def test_gpu_check_without_cuda_says_so_in_one_line() -> None:
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).parents[1] / "benchmarks" / "gpu_check.py"
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and proc.stderr == ""
    assert proc.stdout.startswith("gpu-check needs a CUDA GPU") and proc.stdout.count("\n") == 1
