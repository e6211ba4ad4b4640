"""The levers behind configs/record.yaml, each on the validation split only: a plain in-memory loop over the same net.

    python benchmarks/record_ablation.py --data /path/holding/MNIST --epochs 100 --ema 0.999
    python benchmarks/record_ablation.py --data ... --mode teacher --epochs 8 --save teacher.pt   # a small CNN
    python benchmarks/record_ablation.py --data ... --epochs 25 --teacher teacher.pt               # distilled

The student is the project's MyMNIST 784-256-32-10 (standardised inputs) with the project's BatchAugment, AdamW and
torch's OneCycleLR stepped per batch, as configs/best.yaml; ``--ema`` also scores an exponential moving average of
the weights (torch.optim.swa_utils.AveragedModel), ``--teacher`` adds a distillation term (KL to the teacher's
softened logits on the same augmented batch). Prints val accuracy after every epoch and a RESULT json line; the
test set is never read. The results and what was chosen from them: benchmarks/ACCURACY.md, benchmarks/TUNING.md.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from mnist_lightning.common.contract import MNIST_MEAN, MNIST_STD
from mnist_lightning.model.net import MyMNIST
from mnist_lightning.training.augment import BatchAugment
from mnist_lightning.training.data import MNISTDataModule


class SmallCNN(nn.Module):
    """A teacher: two 3x3 conv blocks (BatchNorm, ReLU, 2x2 max-pool), ``width`` then 2 x ``width`` channels, FC 128."""

    def __init__(self, width: int = 16) -> None:
        super().__init__()
        self.layers = nn.Sequential(
            *(nn.Conv2d(1, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU(), nn.MaxPool2d(2)),
            *(nn.Conv2d(width, 2 * width, 3, padding=1), nn.BatchNorm2d(2 * width), nn.ReLU(), nn.MaxPool2d(2)),
            *(nn.Flatten(), nn.Linear(2 * width * 49, 128), nn.ReLU(), nn.Linear(128, 10)),
        )

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.layers((images.reshape(-1, 1, 28, 28) - MNIST_MEAN) / MNIST_STD)


def splits(data: str) -> tuple[torch.Tensor, ...]:
    """Train and val exactly as the DataModule splits them (its default val_size), pixels in [0, 1]."""
    datamodule = MNISTDataModule(data_dir=data, download=False, verify_md5=False)
    datamodule.setup("fit")
    (x_train, y_train), (x_val, y_val) = datamodule.splits["train"], datamodule.splits["val"]
    return x_train.float() / 255, y_train, x_val.float() / 255, y_val


@torch.no_grad()
def accuracy(net: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> float:
    net.eval()
    correct = sum(
        int((net(x).argmax(1) == y).sum()) for x, y in zip(images.split(1000), labels.split(1000), strict=True)
    )
    net.train()
    return correct / len(labels)


def distill_loss(logits: torch.Tensor, teacher: torch.Tensor, labels: torch.Tensor, args: argparse.Namespace):
    t = args.temperature
    soft = F.kl_div(F.log_softmax(logits / t, 1), F.log_softmax(teacher / t, 1), reduction="batchmean", log_target=True)
    hard = F.cross_entropy(logits, labels, label_smoothing=args.label_smoothing)
    return args.alpha * soft * t * t + (1 - args.alpha) * hard


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default="data", help="folder holding MNIST/raw/")
    p.add_argument("--mode", default="student", choices=["student", "teacher"])
    p.add_argument("--epochs", type=int, default=25)
    p.add_argument("--lr", type=float, default=3e-3, help="OneCycle's peak")
    p.add_argument("--weight-decay", type=float, default=0.05)
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--warmup", type=float, default=0.2)
    for name, default in (("shift", 2.0), ("rotate", 10.0), ("scale", 0.1), ("elastic", 1.0)):
        p.add_argument(f"--{name}", type=float, default=default, help="BatchAugment amount")
    p.add_argument("--label-smoothing", type=float, default=0.0)
    p.add_argument("--ema", type=float, default=0.0, help="EMA decay per step (0: off)")
    p.add_argument("--teacher", type=Path, help="a teacher saved by --mode teacher --save: distil from it")
    p.add_argument("--width", type=int, default=16, help="the teacher CNN's first channel count")
    p.add_argument("--alpha", type=float, default=0.9, help="weight of the distillation term")
    p.add_argument("--temperature", type=float, default=4.0)
    p.add_argument("--save", type=Path, help="write the trained net's state_dict here")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    x_train, y_train, x_val, y_val = splits(args.data)
    net = SmallCNN(args.width) if args.mode == "teacher" else MyMNIST([256, 32], standardize=True)
    teacher = None
    if args.teacher:
        teacher = SmallCNN(args.width)
        teacher.load_state_dict(torch.load(args.teacher, weights_only=True))
        teacher.eval()
        print(f"teacher val acc {accuracy(teacher, x_val, y_val):.4f}", flush=True)
    augment = BatchAugment(args.shift, args.rotate, args.scale, args.elastic)
    opt = torch.optim.AdamW(net.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    steps = args.epochs * math.ceil(len(y_train) / args.batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=args.lr, total_steps=steps, pct_start=args.warmup)
    ema = AveragedModel(net, multi_avg_fn=get_ema_multi_avg_fn(args.ema), use_buffers=True) if args.ema else None
    start, history = time.perf_counter(), []
    for epoch in range(args.epochs):
        for idx in torch.randperm(len(y_train)).split(args.batch_size):
            images, labels = augment(x_train[idx]), y_train[idx]
            logits = net(images)
            if teacher is None:
                loss = F.cross_entropy(logits, labels, label_smoothing=args.label_smoothing)
            else:
                with torch.no_grad():
                    taught = teacher(images)
                loss = distill_loss(logits, taught, labels, args)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            if ema is not None:
                ema.update_parameters(net)
        val = accuracy(net, x_val, y_val)
        ema_val = accuracy(ema.module, x_val, y_val) if ema is not None else None
        history.append({"epoch": epoch, "s": round(time.perf_counter() - start, 1), "val": val, "ema_val": ema_val})
        print(json.dumps(history[-1]), flush=True)
    if args.save:
        torch.save(net.state_dict(), args.save)
    result = {"args": {k: str(v) for k, v in vars(args).items()}, "final": history[-1]}
    print("RESULT", json.dumps(result | {"best_val": max(max(h["val"], h["ema_val"] or 0) for h in history)}))


if __name__ == "__main__":
    main()
