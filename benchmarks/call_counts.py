"""Python function calls per optimizer step (cProfile, so machine load does not matter): plain loop, bare Lightning,
this project.

    python benchmarks/call_counts.py --data data          (real MNIST; without --data: synthetic of the same size)

Each contender trains twice, for N1 and N2 steps of one epoch, under cProfile, after an unprofiled warm-up run;
(calls(N2) - calls(N1)) / (N2 - N1) is the per-step cost with everything that happens once per run (start-up,
validation, checkpoints, export) cancelled out, and what happens every few steps (logging, the bar) averaged in.
One torch thread. ``--top K`` lists the K functions whose call counts grow the most per step (where the cost goes).
"""

from __future__ import annotations

import argparse
import cProfile
import json
import pstats
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import lightning as L
import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from baselines import SPEED, project_fit_args  # noqa: E402

from mnist_lightning.common.mnist_files import FILES, raw_folder  # noqa: E402
from mnist_lightning.model.net import MyMNIST  # noqa: E402

BATCH, LR, HIDDEN = 128, 1e-3, [256, 32]
N1, N2 = 100, 300  # multiples of base.yaml's log_every_n_steps (50) and of the bar's refresh (20)


def _train_tensors(data_dir: str, split: str = "train") -> tuple[torch.Tensor, torch.Tensor]:
    from mnist_lightning.training.data import MNISTDataModule

    dm = MNISTDataModule(data_dir, download=False, verify_md5=False)
    dm.setup("fit")
    return dm.splits[split]


def plain(data_dir: str, steps: int) -> None:
    """A plain PyTorch loop over in-memory tensors, fused Adam."""
    x, y = _train_tensors(data_dir)
    torch.manual_seed(0)
    model = MyMNIST(HIDDEN)
    optimizer = torch.optim.Adam(model.parameters(), lr=LR, fused=True)
    for idx in torch.randperm(len(y)).split(BATCH)[:steps]:
        loss = F.cross_entropy(model(x[idx].float().div_(255)), y[idx])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()


class InMemoryBatches:
    """Index-sliced shuffled batches of in-memory tensors: what the project's loader does, without its extras."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor, batch: int = BATCH, shuffle: bool = True) -> None:
        self.x, self.y, self.batch, self.shuffle = x, y, batch, shuffle

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        order = torch.randperm(len(self.y)) if self.shuffle else torch.arange(len(self.y))
        for idx in order.split(self.batch):
            yield self.x[idx].float().div_(255), self.y[idx]

    def __len__(self) -> int:
        return -(-len(self.y) // self.batch)


class BareModule(L.LightningModule):
    """A minimal LightningModule: the net, cross-entropy, fused Adam; validation accuracy, not logged."""

    def __init__(self) -> None:
        super().__init__()
        self.net = MyMNIST(HIDDEN)

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        return F.cross_entropy(self.net(batch[0]), batch[1])

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        return (self.net(batch[0]).argmax(1) == batch[1]).float().mean()

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.parameters(), lr=LR, fused=True)


def bare_trainer(**settings: Any) -> L.Trainer:
    """Trainer without logger, checkpointing, bar or summary."""
    return L.Trainer(
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        **settings,
    )


def bare_lightning(data_dir: str, steps: int) -> None:
    """A minimal LightningModule; Trainer without logger, checkpointing, bar or summary."""
    bare_trainer(max_epochs=1, max_steps=steps).fit(BareModule(), InMemoryBatches(*_train_tensors(data_dir)))


def project(data_dir: str, steps: int, *extra: str) -> None:
    """``fit --config configs/base.yaml`` through run_cli: the real default callbacks, logger, bar and export."""
    from mnist_lightning.training.cli import run_cli

    with tempfile.TemporaryDirectory() as root:
        # max_steps counts optimizer steps whatever steps_per_call
        limits = ("--data.verify_md5", "false", "--trainer.max_epochs", "1", "--trainer.max_steps", str(steps))
        run_cli(project_fit_args(data_dir, root, *limits, *extra))


def _profiled(run: Callable[[str, int], None], data_dir: str, steps: int) -> pstats.Stats:
    profile = cProfile.Profile()
    profile.enable()
    try:
        run(data_dir, steps)
    finally:
        profile.disable()
    return pstats.Stats(profile)


def per_step(run: Callable[[str, int], None], data_dir: str, top: int = 0) -> tuple[float, list[tuple[float, str]]]:
    """Calls per optimizer step, and the ``top`` functions whose call counts grow the most per step."""
    run(data_dir, 20)  # warm-up: imports, caches, first-call paths
    short, long = _profiled(run, data_dir, N1), _profiled(run, data_dir, N2)
    calls = (long.total_calls - short.total_calls) / (N2 - N1)
    growth = []
    for func, (_, ncalls, *_rest) in long.stats.items():
        before = short.stats.get(func, (0, 0))[1]
        growth.append(((ncalls - before) / (N2 - N1), f"{Path(func[0]).name}:{func[1]}({func[2]})"))
    return calls, sorted(growth, reverse=True)[:top]


CONTENDERS: dict[str, Callable[[str, int], None]] = {
    "plain": plain,
    "bare_lightning": bare_lightning,
    "project": project,
    "project_k8": lambda d, n: project(d, n, "--model.steps_per_call", "8"),
    "project_speed": lambda d, n: project(d, n, *SPEED),
}


def synthetic_copy(scratch: str) -> str:
    """Synthetic digits in MNIST's own files and sizes (60,000 + 10,000), written under ``scratch``."""
    from tests.helpers.synthetic import make_mnist

    return str(make_mnist(Path(scratch), n_train=60000, n_test=10000))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=None, help="folder holding MNIST/raw/*.gz (default: synthetic data)")
    parser.add_argument("--only", nargs="*", default=None, help="subset of " + ", ".join(CONTENDERS))
    parser.add_argument("--top", type=int, default=0, help="list the K functions called most per step")
    parser.add_argument("--json", action="store_true", help="print one JSON line (for bench_train.py)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as scratch:
        if args.data is None:
            data = synthetic_copy(scratch)
        else:  # a copy: nothing is written next to the user's files
            raw = raw_folder(scratch)
            raw.mkdir(parents=True)
            for name in FILES:
                shutil.copyfile(raw_folder(args.data) / name, raw / name)
            data = scratch
        counts = {}
        for name in args.only or list(CONTENDERS):
            counts[name], growth = per_step(CONTENDERS[name], data, args.top)
            if not args.json:
                print(f"{name}: {counts[name]:,.0f} calls per optimizer step", flush=True)
                for n, func in growth:
                    print(f"    {n:8.1f}  {func}")
    if args.json:
        print("CALLS " + json.dumps(counts))
    elif "bare_lightning" in counts:
        for name in ("plain", "project", "project_k8", "project_speed"):
            if name in counts:
                print(f"{name} / bare_lightning = {counts[name] / counts['bare_lightning']:.2f}")


if __name__ == "__main__":
    main()
