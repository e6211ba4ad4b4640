"""What every command costs before and after its real work: wall times of whole commands, beside `import torch`.

    python benchmarks/bench_startup.py --data data --rounds 5        (make bench runs it after bench_train.py)

Each round runs every row once, in a fresh process, in the same order; the table reports medians over rounds, and
each target as a ratio against the same run's baselines T (`python -c "import torch"`) and L (`python -c "import
lightning"`). Set-up (one short fit for a checkpoint and mnist.onnx, 60 test digits as PNG files) is off the clock.
The section goes into benchmarks/RESULTS.md (after the per-epoch table) and benchmarks/startup.json.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.startup_report import write_section  # noqa: E402
from mnist_lightning.common.mnist_files import copy_raw, raw_folder, read_idx  # noqa: E402
from tests.helpers.server import free_port  # noqa: E402

PY = sys.executable
CLI = [PY, "-m", "mnist_lightning"]
BASE, FAST = str(ROOT / "configs" / "base.yaml"), str(ROOT / "configs" / "fast.yaml")
N_IMAGES = 60
# every command runs this checkout's package, wherever it is installed from
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}


def timed(cmd: list[str], cwd: Path) -> float:
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, env=ENV, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
    return wall


def serve_ready(onnx: Path, data: Path, cwd: Path) -> float:
    """Seconds from starting `serve` until GET /health answers."""
    port = free_port()
    start = time.perf_counter()
    proc = subprocess.Popen(
        [*CLI, "serve", "--onnx", str(onnx), "--data", str(data), "--port", str(port)],
        cwd=cwd,
        env=ENV,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        while True:
            if proc.poll() is not None:
                sys.exit(f"serve exited with {proc.returncode}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2):
                    return time.perf_counter() - start
            except OSError:
                time.sleep(0.02)
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def fit_overhead(data: Path, cwd: Path) -> float:
    """Whole 1-epoch `fit --config base.yaml` wall minus its one epoch (timed inside by a callback)."""
    start = time.perf_counter()
    cmd = [PY, __file__, "--fit-worker", "--data", str(data)]
    proc = subprocess.run(cmd, cwd=cwd, env=ENV, capture_output=True, text=True)
    wall = time.perf_counter() - start
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("EPOCH ")), None)
    if proc.returncode != 0 or line is None:
        sys.exit(f"fit worker failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
    return wall - float(line.split()[1])


def fit_worker(data: str) -> None:
    """The same run_cli that `python -m mnist_lightning fit` calls, plus a clock around the epoch."""
    import lightning as L

    from mnist_lightning import run_cli

    class Clock(L.Callback):
        def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
            self.start = time.perf_counter()

        def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
            if not trainer.sanity_checking:
                self.seconds = time.perf_counter() - self.start

    clock = Clock()
    run_cli(["fit", "--config", BASE, "--data.data_dir", data, "--trainer.max_epochs", "1"], extra_callbacks=[clock])
    print(f"EPOCH {clock.seconds}", flush=True)


def fit_fast(data: Path, cwd: Path) -> float:
    """`fit --config configs/fast.yaml` from start to a verified mnist.onnx (export verifies before publishing)."""
    run = Path(tempfile.mkdtemp(dir=cwd))
    wall = timed([*CLI, "fit", "--config", FAST, "--data.data_dir", str(data)], run)
    if not list(run.glob("lightning_logs/version_*/mnist.onnx")):
        sys.exit("fit --config configs/fast.yaml wrote no mnist.onnx")
    return wall


def prepare(scratch: Path, src: str) -> dict[str, Path]:
    """Real MNIST copy, one short trained run (checkpoint + mnist.onnx), 60 test digits as PNG files."""
    from PIL import Image

    data = scratch / "data"
    copy_raw(raw_folder(src), data)
    work = scratch / "work"
    work.mkdir()
    limits = ["--trainer.max_epochs", "1", "--trainer.limit_train_batches", "20"]
    limits += ["--trainer.enable_progress_bar", "false"]
    timed([*CLI, "fit", "--config", BASE, "--data.data_dir", str(data), *limits], work)
    digits = scratch / "digits"
    digits.mkdir()
    images = read_idx(raw_folder(data) / "t10k-images-idx3-ubyte.gz", 2051)
    for i in range(N_IMAGES):
        Image.fromarray(images[i]).save(digits / f"digit{i:02d}.png")
    ckpt = next(work.glob("lightning_logs/version_0/checkpoints/best-*.ckpt"))
    return {"data": data, "work": work, "digits": digits, "ckpt": ckpt, "onnx": ckpt.parents[1] / "mnist.onnx"}


def rows(p: dict[str, Path], scratch: Path) -> dict[str, Callable[[], float]]:
    w = p["work"]
    predict = ["predict", "--config", BASE, "--data.data_dir", str(p["data"]), "--ckpt_path", str(p["ckpt"])]
    predict += ["--data.predict_path", str(p["digits"]), "--predictions.output", str(scratch / "torch.csv")]
    return {
        "T: python -c 'import torch'": lambda: timed([PY, "-c", "import torch"], w),
        "L: python -c 'import lightning'": lambda: timed([PY, "-c", "import lightning"], w),
        "fit --help": lambda: timed([*CLI, "fit", "--help"], w),
        "export --ckpt_path best": lambda: timed([*CLI, "export", "--output", str(scratch / "x.onnx")], w),
        f"predict (torch), {N_IMAGES} images": lambda: timed([*CLI, *predict], w),
        f"predict-onnx, {N_IMAGES} images": lambda: timed(
            [*CLI, "predict-onnx", str(p["onnx"]), str(p["digits"]), "--output", str(scratch / "onnx.csv")], w
        ),
        "serve until /health answers": lambda: serve_ready(p["onnx"], p["data"], w),
        "fit fixed overhead (1-epoch base.yaml wall - 1 epoch)": lambda: fit_overhead(p["data"], w),
        "fit --config configs/fast.yaml (whole, to mnist.onnx)": lambda: fit_fast(p["data"], w),
    }


def import_breakdown(cwd: Path, command: list[str]) -> list[tuple[str, float]]:
    """Cumulative import seconds of the heaviest packages, from `python -X importtime`."""
    proc = subprocess.run([PY, "-X", "importtime", *command], cwd=cwd, env=ENV, capture_output=True, text=True)
    cumulative: dict[str, float] = {}
    for m in re.finditer(r"import time:\s+\d+ \|\s+(\d+) \|( *)(\S+)", proc.stderr):
        cumulative.setdefault(m.group(3), int(m.group(1)) / 1e6)  # first import only: later ones are cached
    watch = ["torch", "lightning", "torchmetrics", "torchvision", "torch._dynamo", "jsonargparse", "onnx"]
    watch += ["onnxruntime", "tensorboard", "mnist_lightning.training.cli", "mnist_lightning.model.export_command"]
    return [(name, cumulative[name]) for name in watch if name in cumulative]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="data", help="folder holding MNIST/raw/*.gz (real MNIST)")
    parser.add_argument("--rounds", type=int, default=5, help="alternating rounds; medians are reported")
    parser.add_argument("--out", default=str(ROOT / "benchmarks"))
    parser.add_argument("--note", default="", help="a line added under the table (e.g. the load on the machine)")
    parser.add_argument("--fit-worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.fit_worker:
        return fit_worker(args.data)
    with tempfile.TemporaryDirectory() as tmp:
        scratch = Path(tmp)
        print("set-up: copying MNIST, one short fit, 60 digit images ...", flush=True)
        cases = rows(prepare(scratch, args.data), scratch)
        times: dict[str, list[float]] = {name: [] for name in cases}
        for r in range(args.rounds):
            for name, run in cases.items():
                times[name].append(run())
                print(f"round {r + 1}/{args.rounds}: {name}: {times[name][-1]:.2f} s", flush=True)
        imports = {
            "fit --help": import_breakdown(scratch / "work", ["-m", "mnist_lightning", "fit", "--help"]),
            "export": import_breakdown(scratch / "work", ["-m", "mnist_lightning", "export", "--output", "y.onnx"]),
        }
    medians = {name: statistics.median(v) for name, v in times.items()}
    result = {"rounds": args.rounds, "median_s": medians, "all_s": times, "imports_s": imports}
    out = Path(args.out)
    (out / "startup.json").write_text(json.dumps(result, indent=2))
    print(write_section(out / "RESULTS.md", result, args.note))


if __name__ == "__main__":
    main()
