"""2-process DDP (CPU, gloo) on best.yaml: each rank augments with its own random stream, and a SIGTERM stops
both ranks at the same step with a last.ckpt that resumes bit for bit (every rank's random state included)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import torch

from tests.helpers.synthetic import fit_in_subprocess, small_args

pytestmark = pytest.mark.slow
REPO = Path(__file__).parents[1]
STEPS = 10  # 2 epochs of 500 / 2 ranks / 50 per batch = 5 steps


def ddp_fit(data_dir: Path, root: Path, callbacks: str, *extra: str) -> subprocess.CompletedProcess:
    root.mkdir(parents=True, exist_ok=True)
    (root / "probe.yaml").write_text(f"trainer:\n  callbacks: [{callbacks}]\n")
    args = small_args(data_dir, "--export.enabled", "false", "--views.enabled", "false")
    args[1] = str(REPO / "configs" / "best.yaml")
    args += ["--config", str(REPO / "configs" / "ddp.yaml"), "--config", str(root / "probe.yaml"), *extra]
    return fit_in_subprocess(args, root, timeout=300)


def record(root: Path) -> str:
    return f"{{class_path: tests.helpers.probes.RecordAugment, init_args: {{folder: {root / 'seen'}}}}}"


def augment_keys(root: Path) -> list[dict[str, str]]:
    return [json.loads((root / "seen" / f"augment{r}.json").read_text()) for r in (0, 1)]


def last(root: Path) -> dict:
    return torch.load(root / "lightning_logs" / "version_0" / "checkpoints" / "last.ckpt", weights_only=True)


@pytest.fixture(scope="module")
def reference(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("ddp_reference")
    proc = ddp_fit(data_dir, root, record(root))
    assert proc.returncode == 0, proc.stderr[-3000:]
    return root


def test_each_rank_warps_with_its_own_stream(reference: Path) -> None:
    rank0, rank1 = augment_keys(reference)
    assert rank0.keys() == rank1.keys() == {str(s) for s in range(STEPS)}
    assert all(rank0[s] != rank1[s] for s in rank0)  # was equal at every step: one stream of noise on N shards
    assert len(set(rank0.values())) == STEPS  # and each step draws anew


def test_sigterm_stops_both_ranks_and_resumes_bitwise(data_dir: Path, reference: Path, tmp_path: Path) -> None:
    # SIGTERM to rank 0 only after step 7 (mid-epoch 1), as a scheduler signals the launching process
    fault = "{class_path: tests.helpers.faults.SignalAt, init_args: {step: 7, signal: SIGTERM, rank: 0}}"
    stopped = ddp_fit(data_dir, tmp_path, f"{record(tmp_path)}, {fault}")
    assert stopped.returncode == 143, stopped.stderr[-3000:]
    assert stopped.stderr.count("Training stopped by SIGTERM") == 1 and "Resume with:" in stopped.stderr
    ckpt = last(tmp_path)
    assert ckpt["global_step"] == 7 and len(ckpt["mnist_lightning_rng_per_rank"]) == 2
    assert not list(tmp_path.glob("**/*.tmp"))
    before = augment_keys(tmp_path)
    for rank in (0, 1):  # both ranks ran the same 7 steps, with the reference's draws
        assert before[rank] == {s: k for s, k in augment_keys(reference)[rank].items() if int(s) < 7}

    resumed = ddp_fit(data_dir, tmp_path, record(tmp_path), "--ckpt_path", "last")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    after, expected = augment_keys(tmp_path), augment_keys(reference)
    for rank in (0, 1):  # each rank continues its own stream where it stopped
        assert after[rank] == {s: k for s, k in expected[rank].items() if int(s) >= 7}
    final, uninterrupted = last(tmp_path), last(reference)
    assert final["global_step"] == uninterrupted["global_step"] == STEPS
    for name, tensor in uninterrupted["state_dict"].items():
        assert torch.equal(final["state_dict"][name], tensor), name
