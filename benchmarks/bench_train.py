"""Side-by-side training speed on the real MNIST: the tutorial loop, a plain in-memory loop, this project, the floor.

    python benchmarks/bench_train.py --data data --epochs 3        (or: make bench DATA=data)

Every contender runs in its own process (honest peak-memory figures), with the same model (784-256-32-10 GELU),
Adam lr 1e-3, batch 128 and number of epochs. Rounds alternate the contenders so that machine noise hits all of
them alike; the table reports the median seconds per epoch. Results go to benchmarks/RESULTS.md and results.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from machine_info import cpu_name  # noqa: E402 - benchmarks/ is on sys.path when run as a script

from mnist_lightning.common.mnist_files import FILES, raw_folder  # noqa: E402
from mnist_lightning.model.net import MyMNIST  # noqa: E402
from mnist_lightning.training.data import load_split  # noqa: E402

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


def run_project(data_dir: str, epochs: int, *extra: str, stop_at: float | None = None) -> dict:
    """(c) This project as users run it: the CLI with configs/base.yaml, validation, logging, checkpoints, bar."""
    import lightning as L

    from mnist_lightning.training.cli import run_cli

    class Clock(L.Callback):
        def __init__(self) -> None:
            self.times: list[float] = []
            self.test_acc: list[float] = []
            self.start = 0.0
            self.paused = 0.0

        def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
            self.start, self.paused = time.perf_counter(), 0.0

        def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
            if trainer.sanity_checking or not self.start:
                return
            self.times.append(time.perf_counter() - self.start)
            if stop_at is not None:  # time-to-accuracy: evaluate on test off the clock
                acc = test_accuracy(pl_module.net.eval(), data_dir)
                pl_module.net.train()
                self.test_acc.append(acc)
                trainer.should_stop = acc >= stop_at
            self.start = 0.0

    clock = Clock()
    with tempfile.TemporaryDirectory() as root:
        cli = run_cli(
            [
                "fit",
                "--config",
                str(ROOT / "configs" / "base.yaml"),
                "--data.data_dir",
                data_dir,
                "--data.download",
                "false",
                "--trainer.max_epochs",
                str(epochs),
                "--trainer.default_root_dir",
                root,
                *extra,
            ],
            extra_callbacks=[clock],
        )
        net = cli.model.net.float().eval()
        out = {
            "epoch_s": clock.times,
            "train_samples": len(cli.datamodule.splits["train"][1]),
            "test_acc": test_accuracy(net, data_dir),
        }
    if stop_at is not None:
        out["test_acc_per_epoch"] = clock.test_acc
        hit = next((i for i, a in enumerate(clock.test_acc) if a >= stop_at), None)
        out["time_to_target_s"] = None if hit is None else sum(clock.times[: hit + 1])
        out["epochs_to_target"] = None if hit is None else hit + 1
    return out


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


def run_full_fit(data_dir: str, epochs: int) -> dict:
    """The whole `python -m mnist_lightning fit --config configs/base.yaml` command, start-up and export included."""
    from mnist_lightning.common.layout import find_checkpoint
    from mnist_lightning.model.checkpoints import net_from_checkpoint

    with tempfile.TemporaryDirectory() as root:
        cmd = [
            sys.executable,
            "-m",
            "mnist_lightning",
            "fit",
            "--config",
            str(ROOT / "configs" / "base.yaml"),
            "--data.data_dir",
            os.path.abspath(data_dir),
            "--trainer.max_epochs",
            str(epochs),
        ]
        start = time.perf_counter()
        # this checkout's package, wherever the project is installed from
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
        subprocess.run(cmd, cwd=root, env=env, check=True, capture_output=True)
        wall = time.perf_counter() - start
        net, _ = net_from_checkpoint(find_checkpoint("best", root))
        return {
            "epoch_s": [wall / epochs],
            "wall_s": wall,
            "epochs": epochs,
            "train_samples": 55000,
            "test_acc": test_accuracy(net, data_dir),
        }


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


CONTENDERS = {
    "a_tutorial": lambda d, e: run_tutorial(d, e),
    "b_plain": lambda d, e: run_plain(d, e),
    "b_plain_default_adam": lambda d, e: run_plain(d, e, fused=False),
    "b_bare_lightning": lambda d, e: run_bare_lightning(d, e),
    "c_project": lambda d, e: run_project(d, e),
    "c_project_k8": lambda d, e: run_project(d, e, "--model.steps_per_call", "8"),
    "c_bf16": lambda d, e: run_project(d, e, "--trainer.precision", "bf16-mixed"),
    "c_compile": lambda d, e: run_project(d, e, "--model.compile", "true"),
    "c_to_98": lambda d, e: run_project(d, 40, "--trainer.enable_progress_bar", "false", stop_at=0.98),
    "d_floor": lambda d, e: run_floor(d, e),
    "c_fit_50_epochs": lambda d, e: run_full_fit(d, 50),
}


ONE_ROUND = ("c_to_98", "c_compile", "c_fit_50_epochs")  # long single runs: one round is enough


def worker(name: str, data_dir: str, epochs: int) -> None:
    out = CONTENDERS[name](data_dir, epochs)
    out["peak_rss_mb"] = peak_rss_mb()
    print("RESULT " + json.dumps(out), flush=True)


def spawn(name: str, data_dir: str, epochs: int) -> dict:
    proc = subprocess.run(
        [sys.executable, __file__, "--worker", name, "--data", data_dir, "--epochs", str(epochs)],
        capture_output=True,
        text=True,
    )
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")), None)
    if proc.returncode != 0 or line is None:
        sys.exit(f"{name} failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
    return json.loads(line[len("RESULT ") :])


def call_counts(data_dir: str) -> dict[str, float]:
    """benchmarks/call_counts.py in a process of its own: calls per optimizer step of each loop."""
    print("call counts (cProfile) ...", flush=True)
    cmd = [sys.executable, str(ROOT / "benchmarks" / "call_counts.py"), "--data", data_dir, "--json"]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("CALLS ")), None)
    if proc.returncode != 0 or line is None:
        sys.exit(f"call_counts.py failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
    return json.loads(line[len("CALLS ") :])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="data", help="folder holding MNIST/raw/*.gz (real MNIST)")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds; medians are reported")
    parser.add_argument("--only", nargs="*", default=None, help="subset of contenders")
    parser.add_argument("--out", default=str(ROOT / "benchmarks"))
    parser.add_argument("--note", default="", help="a line added under the table (e.g. the load on the machine)")
    parser.add_argument("--no-call-counts", action="store_true", help="skip benchmarks/call_counts.py")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(args.worker, args.data, args.epochs)

    names = args.only or list(CONTENDERS)
    src = raw_folder(args.data)
    if missing := [n for n in FILES if not (src / n).is_file()]:
        sys.exit(f"real MNIST needed: {', '.join(missing)} not in {src} (make bench DATA=folder-holding-MNIST)")
    with tempfile.TemporaryDirectory() as scratch:  # torchvision extracts next to the .gz: work on a copy
        raw = raw_folder(scratch)
        raw.mkdir(parents=True)
        for n in FILES:
            shutil.copyfile(src / n, raw / n)
        runs: dict[str, list[dict]] = {n: [] for n in names}
        for r in range(args.rounds):
            for n in names:
                if n in ONE_ROUND and r > 0:
                    continue  # long single runs: one round is enough
                print(f"round {r + 1}/{args.rounds}: {n} ...", flush=True)
                runs[n].append(spawn(n, scratch, args.epochs))
        calls = {} if args.no_call_counts else call_counts(scratch)
    write_report(runs, args, calls)


def summarise(runs: dict[str, list[dict]]) -> dict[str, dict]:
    table = {}
    for name, results in runs.items():
        epochs = [t for r in results for t in r["epoch_s"]]
        s = statistics.median(epochs)
        table[name] = {
            "s_per_epoch": s,
            "samples_per_s": results[0]["train_samples"] / s,
            "peak_rss_mb": max(r["peak_rss_mb"] for r in results),
            "epoch_s_all": epochs,
            **{k: v for k, v in results[0].items() if k not in ("epoch_s", "peak_rss_mb")},
        }
    return table


def write_report(runs: dict[str, list[dict]], args: argparse.Namespace, calls: dict[str, float]) -> None:
    table = summarise(runs)
    s = {k: v["s_per_epoch"] for k, v in table.items()}
    ratios = {}
    pairs = [("a_tutorial", "c_project"), ("c_project", "b_plain"), ("c_project", "d_floor")]
    pairs += [("c_project", "b_bare_lightning"), ("c_project_k8", "b_plain")]  # #21's target for the latter: <= 1.15
    for num, den in pairs:
        if num in s and den in s:
            ratios[f"{num}/{den}" if "k8" in num or "bare" in den else f"{num[0]}/{den[0]}"] = s[num] / s[den]
    import lightning

    meta = {
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{cpu_name()}, {os.cpu_count()} cores, torch threads {torch.get_num_threads()}",
        "python": platform.python_version(),
        "torch": torch.__version__,
        "lightning": lightning.__version__,
        "epochs": args.epochs,
        "rounds": args.rounds,
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    report = {"meta": meta, "ratios": ratios, "contenders": table, "calls_per_step": calls}
    (out / "results.json").write_text(json.dumps(report, indent=2))
    lines = [
        "# Training speed: side by side",
        "",
        f"{meta['date']} · {meta['machine']} · Python {meta['python']} · torch {meta['torch']} · "
        f"Lightning {meta['lightning']} · {args.epochs} epochs × {args.rounds} rounds, median s/epoch",
        "",
        "| contender | s/epoch | train samples/s | peak RSS (MB) | test acc after run |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for name, row in table.items():
        acc = f"{row['test_acc']:.4f}" if "test_acc" in row else "–"
        lines.append(
            f"| {name} | {row['s_per_epoch']:.3f} | {row['samples_per_s']:,.0f} | {row['peak_rss_mb']:.0f} | {acc} |"
        )
    lines += ["", "Ratios (s/epoch): " + ", ".join(f"{k} = {v:.2f}" for k, v in ratios.items())]
    if "d_floor" in table:
        d = table["d_floor"]
        lines.append(
            f"Floor: sgemm {d['sgemm_gflops']:.0f} GFLOP/s measured, {d['epoch_gflop']:.1f} GFLOP "
            "of matmul per epoch (FlopCounterMode: one training step × steps + validation forward)."
        )
    if "c_fit_50_epochs" in table:
        full = table["c_fit_50_epochs"]
        lines.append(
            f"Whole `fit --config configs/base.yaml` (50 epochs, start-up, checkpoints and ONNX export "
            f"included): {full['wall_s']:.1f} s wall; best checkpoint's test accuracy {full['test_acc']:.4f}."
        )
    if "c_to_98" in table and table["c_to_98"].get("time_to_target_s") is not None:
        c98 = table["c_to_98"]
        lines.append(
            f"Time to 98 % test accuracy with configs/base.yaml: {c98['time_to_target_s']:.1f} s of "
            f"training ({c98['epochs_to_target']} epochs; test accuracy evaluated off the clock)."
        )
    if calls:
        lines += ["", "Python function calls per optimizer step (benchmarks/call_counts.py, cProfile, 1 torch thread):"]
        lines += [", ".join(f"{name} {n:,.0f}" for name, n in calls.items())]
        if "bare_lightning" in calls and "project" in calls:
            ratio = calls["project"] / calls["bare_lightning"]
            lines.append(f"project / bare_lightning = {ratio:.2f} (target <= 1.15)")
    if args.note:
        lines += ["", args.note]
    from benchmarks.startup_report import keep_section  # bench_startup.py's section below this table stays

    startup = keep_section(out / "RESULTS.md")
    (out / "RESULTS.md").write_text("\n".join(lines) + "\n" + ("\n" + startup if startup else ""))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
