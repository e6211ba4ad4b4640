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
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# benchmarks/ is on sys.path when run as a script
from baselines import (  # noqa: E402
    SPEED,
    peak_rss_mb,
    project_fit_args,
    run_bare_lightning,
    run_floor,
    run_plain,
    run_tutorial,
    test_accuracy,
)
from train_report import write_report  # noqa: E402

from mnist_lightning.common.mnist_files import FILES, raw_folder  # noqa: E402


def run_project(data_dir: str, epochs: int, *extra: str, stop_at: float | None = None) -> dict:
    """(c) This project as users run it: the CLI with configs/base.yaml, validation, logging, checkpoints, bar."""
    import lightning as L

    from mnist_lightning import run_cli

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
            project_fit_args(data_dir, root, "--trainer.max_epochs", str(epochs), *extra),
            extra_callbacks=[clock],
        )
        net = cli.model.net.float().eval()
        out = {
            "epoch_s": clock.times,
            "train_samples": len(cli.datamodule.splits["train"][1]),
            "test_acc": test_accuracy(net, data_dir),
        }
        if cli.model.compiled is not None:
            out["compile_s"] = cli.model.compiled.compile_seconds
    if stop_at is not None:
        out["test_acc_per_epoch"] = clock.test_acc
        hit = next((i for i, a in enumerate(clock.test_acc) if a >= stop_at), None)
        out["time_to_target_s"] = None if hit is None else sum(clock.times[: hit + 1])
        out["epochs_to_target"] = None if hit is None else hit + 1
    return out


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


CONTENDERS = {
    "a_tutorial": lambda d, e: run_tutorial(d, e),
    "b_plain": lambda d, e: run_plain(d, e),
    "b_plain_default_adam": lambda d, e: run_plain(d, e, fused=False),
    "b_bare_lightning": lambda d, e: run_bare_lightning(d, e),
    "c_project": lambda d, e: run_project(d, e),
    "c_project_k8": lambda d, e: run_project(d, e, "--model.steps_per_call", "8"),
    "c_bf16": lambda d, e: run_project(d, e, "--trainer.precision", "bf16-mixed"),
    "c_speed": lambda d, e: run_project(d, e, *SPEED),
    "c_to_98": lambda d, e: run_project(d, 40, "--trainer.enable_progress_bar", "false", stop_at=0.98),
    "d_floor": lambda d, e: run_floor(d, e),
    "c_fit_50_epochs": lambda d, e: run_full_fit(d, 50),
}


ONE_ROUND = ("c_to_98", "c_fit_50_epochs")  # long single runs: one round is enough
# Per epoch as (wall of a 3-epoch run - wall of a 1-epoch run) / 2, each run a fresh process: start-up, compilation
# and the end-of-fit export cancel out (#25's measure for configs/speed.yaml). They compile from a cache warmed before
# the rounds: cold builds vary by seconds between processes (15.6-20.8 s seen), more than the 2 epochs measured
WALLS = {
    "w_plain": lambda d, e: run_plain(d, e),
    "w_project_k8": lambda d, e: run_project(d, e, "--model.steps_per_call", "8"),
    "w_speed": lambda d, e: run_project(d, e, *SPEED),
}


def worker(name: str, data_dir: str, epochs: int) -> None:
    start = time.perf_counter()
    out = {**CONTENDERS, **WALLS}[name](data_dir, epochs)
    out["wall_s"] = out.get("wall_s", time.perf_counter() - start)
    out["peak_rss_mb"] = peak_rss_mb()
    print("RESULT " + json.dumps(out), flush=True)


def spawn(name: str, data_dir: str, epochs: int, cache: str | None = None) -> dict:
    """One contender in a process of its own, with a cold torch.compile cache unless ``cache`` names a warm one."""
    with tempfile.TemporaryDirectory() as cold:
        proc = subprocess.run(
            [sys.executable, __file__, "--worker", name, "--data", data_dir, "--epochs", str(epochs)],
            capture_output=True,
            text=True,
            env={**os.environ, "TORCHINDUCTOR_CACHE_DIR": cache or cold},
        )
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")), None)
    if proc.returncode != 0 or line is None:
        sys.exit(f"{name} failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
    return json.loads(line[len("RESULT ") :])


def spawn_walls(name: str, data_dir: str, cache: str) -> dict:
    """One round of a WALLS contender: a 1-epoch and a 3-epoch run, per epoch = the difference / 2.

    Each run's own compile time (from the warm ``cache``) is taken off its wall first, so that what is left of the
    compile's variation from process to process does not land in the difference either."""
    one, three = spawn(name, data_dir, 1, cache), spawn(name, data_dir, 3, cache)
    net = [r["wall_s"] - (r.get("compile_s") or 0.0) for r in (one, three)]
    return {
        **three,
        "epoch_s": [(net[1] - net[0]) / 2],
        "raw_epoch_s": (three["wall_s"] - one["wall_s"]) / 2,  # the formula, compile times left in
        "wall_1_s": one["wall_s"],
        "compile_1_s": one.get("compile_s"),
    }


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

    names = args.only or [*CONTENDERS, *WALLS]
    src = raw_folder(args.data)
    if missing := [n for n in FILES if not (src / n).is_file()]:
        sys.exit(f"real MNIST needed: {', '.join(missing)} not in {src} (make bench DATA=folder-holding-MNIST)")
    with tempfile.TemporaryDirectory() as scratch:  # torchvision extracts next to the .gz: work on a copy
        raw = raw_folder(scratch)
        raw.mkdir(parents=True)
        for n in FILES:
            shutil.copyfile(src / n, raw / n)
        runs: dict[str, list[dict]] = {n: [] for n in names}
        warm = os.path.join(scratch, "compile-cache")
        for n in (n for n in names if n in WALLS):
            print(f"warm-up: {n} (fills the compile cache of the w_* runs) ...", flush=True)
            spawn(n, scratch, 1, warm)
        for r in range(args.rounds):
            for n in names:
                if n in ONE_ROUND and r > 0:
                    continue  # long single runs: one round is enough
                print(f"round {r + 1}/{args.rounds}: {n} ...", flush=True)
                runs[n].append(spawn_walls(n, scratch, warm) if n in WALLS else spawn(n, scratch, args.epochs))
        calls = {} if args.no_call_counts else call_counts(scratch)
    print("RUNS " + json.dumps(runs), flush=True)  # the raw rounds, in the log whatever the report does
    write_report(runs, args, calls)


if __name__ == "__main__":
    main()
