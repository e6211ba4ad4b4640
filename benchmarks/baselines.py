"""The contenders of bench_train.py that are not this project: the tutorial, the plain loop, bare Lightning, the floor.

Each returns ``{"epoch_s": [...], "train_samples": n, ...}``; bench_train.py runs each in a process of its own.
"""

from __future__ import annotations

import resource
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from mnist_lightning.common.mnist_files import raw_folder
from mnist_lightning.model.net import MyMNIST
from mnist_lightning.training.data import load_split

BASE_CONFIG = Path(__file__).resolve().parents[1] / "configs" / "base.yaml"
SPEED = ("--config", str(BASE_CONFIG.with_name("speed.yaml")))  # layered on base.yaml: the compiled K-step body


def project_fit_args(data_dir: str, root: str, *extra: str) -> list[str]:
    """``fit --config configs/base.yaml`` as users run it, on ``data_dir`` (no download), into ``root``."""
    return [
        "fit",
        "--config",
        str(BASE_CONFIG),
        "--data.data_dir",
        data_dir,
        "--data.download",
        "false",
        "--trainer.default_root_dir",
        root,
        *extra,
    ]


BATCH, LR, HIDDEN = 128, 1e-3, [256, 32]


def peak_rss_mb() -> float:
    """This process's peak, or its child's where it ran the work in one (the whole-fit contender)."""
    usage = (resource.getrusage(who).ru_maxrss for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))
    return max(usage) / 1024


def test_accuracy(net: torch.nn.Module, data_dir: str) -> float:
    images, labels = load_split(raw_folder(data_dir), "t10k")
    with torch.no_grad():
        return (net(images.float().div(255)).argmax(1) == labels).float().mean().item()


def run_tutorial(data_dir: str, epochs: int) -> dict:
    """(a) The tutorial: torchvision MNIST + ToTensor through a DataLoader, plain Adam, all 60k images."""
    from torch.utils.data import DataLoader
    from torchvision import datasets, transforms

    torch.manual_seed(0)
    train = datasets.MNIST(data_dir, train=True, download=True, transform=transforms.ToTensor())
    loader = DataLoader(train, batch_size=BATCH, shuffle=True)
    model = MyMNIST(HIDDEN)
    optimizer = torch.optim.Adam(model.parameters(), lr=LR)
    criterion = torch.nn.CrossEntropyLoss()
    times = []
    for _ in range(epochs):
        start = time.perf_counter()
        for images, labels in loader:
            loss = criterion(model(images), labels)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        times.append(time.perf_counter() - start)
    return {"epoch_s": times, "train_samples": len(train), "test_acc": test_accuracy(model.eval(), data_dir)}


def run_plain(data_dir: str, epochs: int, fused: bool = True) -> dict:
    """(b) Plain PyTorch, data in memory, index-sliced shuffled batches; the same split, optimizer and
    validation pass as (c), so c/b is what Lightning costs."""
    from mnist_lightning.training.data import MNISTDataModule

    torch.manual_seed(0)
    dm = MNISTDataModule(data_dir, download=False)
    dm.setup("fit")
    (x, y), (xv, yv) = dm.splits["train"], dm.splits["val"]
    model = MyMNIST(HIDDEN)
    optimizer = torch.optim.Adam(model.parameters(), lr=LR, fused=fused or None)
    times = []
    for epoch in range(epochs):
        start = time.perf_counter()
        g = torch.Generator().manual_seed(epoch)
        for idx in torch.randperm(len(y), generator=g).split(BATCH):
            loss = F.cross_entropy(model(x[idx].float().div_(255)), y[idx])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        with torch.no_grad():
            model.eval()
            (model(xv.float().div(255)).argmax(1) == yv).float().mean().item()
            model.train()
        times.append(time.perf_counter() - start)
    return {"epoch_s": times, "train_samples": len(y), "test_acc": test_accuracy(model.eval(), data_dir)}


def run_bare_lightning(data_dir: str, epochs: int) -> dict:
    """(b2) Bare Lightning: a minimal LightningModule over the same in-memory batches, validation each epoch; no
    logger, checkpoints, bar or summary. c/b2 is what this project adds to Lightning."""
    import lightning as L
    from call_counts import BareModule, InMemoryBatches, _train_tensors, bare_trainer

    class Clock(L.Callback):
        def __init__(self) -> None:
            self.times: list[float] = []

        def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
            self.start = time.perf_counter()

        def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
            self.times.append(time.perf_counter() - self.start)  # validation runs before this hook

    torch.manual_seed(0)
    train, val = _train_tensors(data_dir), _train_tensors(data_dir, "val")
    model, clock = BareModule(), Clock()
    trainer = bare_trainer(max_epochs=epochs, callbacks=[clock], num_sanity_val_steps=0)
    trainer.fit(model, InMemoryBatches(*train), InMemoryBatches(*val, batch=2000, shuffle=False))
    return {"epoch_s": clock.times, "train_samples": len(train[1]), "test_acc": test_accuracy(model.net, data_dir)}


def run_floor(data_dir: str, epochs: int) -> dict:
    """(d) Measured sgemm throughput and the matmul FLOPs one epoch of (c) needs."""
    from torch.utils.flop_counter import FlopCounterMode

    a, b = torch.randn(2048, 2048), torch.randn(2048, 2048)
    for _ in range(3):
        a @ b
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(5):
            a @ b
        best = min(best, (time.perf_counter() - start) / 5)
    gflops = 2 * 2048**3 / best / 1e9
    model = MyMNIST(HIDDEN)
    x, y = torch.rand(BATCH, 784), torch.randint(0, 10, (BATCH,))
    with FlopCounterMode(display=False) as counter:
        F.cross_entropy(model(x), y).backward()
    step_flops = counter.get_total_flops()
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(torch.rand(1, 784))
    sample_fwd = counter.get_total_flops()
    train_n, val_n = 55000, 5000
    epoch_flops = step_flops * train_n / BATCH + sample_fwd * val_n
    return {
        "sgemm_gflops": gflops,
        "epoch_gflop": epoch_flops / 1e9,
        "epoch_s": [epoch_flops / (gflops * 1e9)],
        "train_samples": train_n,
    }
