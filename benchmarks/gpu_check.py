"""One-command check of the GPU path (``make gpu-check DATA=/folder/holding/MNIST``), on the real MNIST.

On a CUDA machine it runs, each case in its own process through the real CLI: base.yaml 2 epochs in 32-true (also
with ``--model.steps_per_call 8`` and with configs/speed.yaml, the compiled K-step body) and bf16-mixed, best.yaml
2 epochs in bf16-mixed, the same with ``--model.compile true``, a 2-process DDP fit when 2+ GPUs are visible, a
SIGKILL mid-run + ``--ckpt_path last`` resume compared with the uninterrupted base 32-true run, and an ONNX export
of a GPU-trained checkpoint checked in onnxruntime against the torch model. It prints one table (case, s/epoch,
test acc, peak GPU memory, GPU utilisation where NVML answers, pass/fail) and exits 1 if any case failed. Without
CUDA it prints one line and exits 0.

Resume tolerance: GPU kernels need not be bitwise deterministic, so the resumed run passes when its weights are
within 1e-3 (max abs) of the uninterrupted run's and its test accuracy within 0.002; the table says if it was bitwise.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
MIN_ACC = 0.95  # 2 epochs of any recipe reach ~0.97+; lower means the path is broken, not a worse recipe
RESUME_WEIGHTS_ATOL, RESUME_ACC_TOL = 1e-3, 0.002
KILL_STEP = 500  # base.yaml: 430 steps per epoch, so mid-epoch 2 (last.ckpt every 200 steps)


def fit_args(config: str, data: str, root: Path, *extra: str) -> list[str]:
    return [
        *("--config", str(ROOT / "configs" / f"{config}.yaml"), "--data.data_dir", data),
        *("--trainer.accelerator", "gpu", "--trainer.devices", "1", "--trainer.max_epochs", "2"),
        *("--trainer.enable_progress_bar", "false", "--trainer.default_root_dir", str(root), *extra),
    ]


CASES: dict[str, tuple[str, tuple[str, ...]]] = {
    "base 32-true": ("base", ("--trainer.precision", "32-true", "--resume.every_n_train_steps", "200")),
    # K optimizer steps per Lightning batch (#21): the same training, Lightning's per-batch Python once per 8 steps
    "base 32-true K=8": ("base", ("--trainer.precision", "32-true", "--model.steps_per_call", "8")),
    "base bf16-mixed": ("base", ("--trainer.precision", "bf16-mixed")),
    "best bf16-mixed": ("best", ("--trainer.precision", "bf16-mixed")),
    "best bf16-mixed compile": ("best", ("--trainer.precision", "bf16-mixed", "--model.compile", "true")),
    # the compiled K-step body (#25): configs/speed.yaml on the tutorial recipe, beside "base 32-true K=8"
    "base 32-true speed.yaml": (
        "base",
        ("--trainer.precision", "32-true", "--config", str(ROOT / "configs" / "speed.yaml")),
    ),
    "base ddp 2 GPUs": ("base", ("--trainer.strategy", "ddp", "--trainer.devices", "2")),
}


def worker(case: str, data: str, root: Path, extra: list[str]) -> None:
    """Run one case in this process; print one RESULT line of JSON (s/epoch, test acc, peak memory, paths)."""
    import lightning as L
    import torch

    from mnist_lightning import run_cli

    class EpochTimer(L.Callback):
        """Seconds per epoch, and the GPU's utilisation sampled every 50 ms meanwhile (if torch can read it)."""

        def __init__(self) -> None:
            self.times: list[float] = []
            self.busy: list[float] = []
            self.running = threading.Event()

        def _sample(self) -> None:
            while self.running.is_set():
                try:
                    self.busy.append(float(torch.cuda.utilization()))
                except Exception:  # noqa: BLE001 - needs NVML (nvidia-ml-py); no column then
                    return
                time.sleep(0.05)

        def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
            torch.cuda.synchronize()
            self.start = time.perf_counter()
            if trainer.current_epoch > 0:  # the first epoch pays for start-up (and compilation)
                self.running.set()
                threading.Thread(target=self._sample, daemon=True).start()

        def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
            torch.cuda.synchronize()
            self.times.append(time.perf_counter() - self.start)
            self.running.clear()

    config, options = CASES[case]
    args = fit_args(config, data, root, *options, *extra)
    timer = EpochTimer()
    cli = run_cli(["fit", *args], extra_callbacks=[timer])
    if not cli.trainer.is_global_zero:
        return
    best = cli.trainer.checkpoint_callback.best_model_path
    run = Path(cli.trainer.logger.log_dir)
    test = run_cli(["test", *args, "--trainer.devices", "1", "--trainer.strategy", "auto", "--ckpt_path", best])
    steady = timer.times[1:] or timer.times  # the first epoch pays for start-up (and compilation)
    result = {
        "s_per_epoch": sum(steady) / len(steady),
        "test_acc": float(test.trainer.callback_metrics["test/acc"]),
        "peak_mib": torch.cuda.max_memory_allocated() / 2**20,
        **({"gpu_util": sum(timer.busy) / len(timer.busy)} if timer.busy else {}),
        "best": best,
        "last": str(run / "checkpoints" / "last.ckpt"),
    }
    print("RESULT " + json.dumps(result), flush=True)


def run_case(case: str, data: str, root: Path, *extra: str, expect: int = 0) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--worker", case, "--data", data, "--root", str(root), "--", *extra]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=root.parent)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    if proc.returncode != expect or (expect == 0 and not lines):
        tail = (proc.stderr.strip().splitlines() or ["(no output)"])[-1]
        return {"ok": False, "why": f"exit {proc.returncode}: {tail[:120]}"}
    return {"ok": True, **(json.loads(lines[-1][7:]) if lines else {})}


def resume_check(data: str, work: Path, reference: dict[str, Any]) -> dict[str, Any]:
    import torch

    root = work / "resume"
    fault = root / "kill.yaml"
    root.mkdir()
    kill = f"{{class_path: tests.helpers.faults.SignalAt, init_args: {{step: {KILL_STEP}}}}}"
    fault.write_text(f"trainer:\n  callbacks: [{kill}]\n")
    killed = run_case("base 32-true", data, root, "--config", str(fault), expect=-9)
    if not killed["ok"]:
        return killed
    resumed = run_case("base 32-true", data, root, "--ckpt_path", "last")
    if not resumed["ok"] or not reference.get("ok"):
        return resumed if not resumed["ok"] else {"ok": False, "why": "no uninterrupted run to compare with"}
    a = torch.load(resumed["last"], map_location="cpu", weights_only=True)["state_dict"]
    b = torch.load(reference["last"], map_location="cpu", weights_only=True)["state_dict"]
    diff = max(float((a[k].float() - b[k].float()).abs().max()) for k in b)
    acc_diff = abs(resumed["test_acc"] - reference["test_acc"])
    ok = diff <= RESUME_WEIGHTS_ATOL and acc_diff <= RESUME_ACC_TOL
    note = "bitwise" if diff == 0 else f"max |dw| {diff:.1e}, |d acc| {acc_diff:.4f}"
    return {**resumed, "ok": ok, "why": note}


def export_check(data: str, work: Path, trained: dict[str, Any]) -> dict[str, Any]:
    import numpy as np
    import onnxruntime as ort
    import torch

    from mnist_lightning.model.checkpoints import net_from_checkpoint
    from mnist_lightning.training.data import load_split

    if not trained.get("ok"):
        return {"ok": False, "why": "no GPU-trained checkpoint"}
    out = work / "gpu.onnx"
    cmd = [sys.executable, "-m", "mnist_lightning", "export", "--ckpt_path", trained["best"], "--output", str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    if proc.returncode != 0:
        return {"ok": False, "why": f"export exit {proc.returncode}"}
    images, labels = load_split(Path(data) / "MNIST" / "raw", "t10k")
    x = images.float().div(255).numpy()
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    (logits,) = session.run(None, {session.get_inputs()[0].name: x})
    net, _ = net_from_checkpoint(trained["best"])
    with torch.no_grad():
        expected = net(torch.from_numpy(x)).numpy()
    acc = float((logits.argmax(1) == labels.numpy()).mean())
    diff = float(np.abs(logits - expected).max())
    return {
        "ok": diff < 1e-3 and abs(acc - trained["test_acc"]) < 1e-3,
        "test_acc": acc,
        "why": f"max |dlogit| {diff:.1e}",
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="data", help="folder holding MNIST/raw/*.gz")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--root", help=argparse.SUPPRESS)
    parser.add_argument("extra", nargs="*", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker, args.data, Path(args.root), args.extra)
        return 0
    import torch

    if not torch.cuda.is_available():
        print(f"gpu-check needs a CUDA GPU; torch {torch.__version__} sees none here, so nothing was run.")
        return 0
    data = str(Path(args.data).resolve())
    results: dict[str, dict[str, Any]] = {}
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="gpu_check_") as tmp:
        work = Path(tmp)
        for case in CASES:
            if "ddp" in case and torch.cuda.device_count() < 2:
                results[case] = {"ok": True, "why": "skipped: 1 GPU visible"}
                continue
            root = work / case.replace(" ", "_")
            root.mkdir()
            results[case] = run_case(case, data, root)
        results["SIGKILL + resume"] = resume_check(data, work, results["base 32-true"])
        results["export + onnxruntime"] = export_check(data, work, results["best bf16-mixed"])
    print(f"\n{torch.cuda.get_device_name(0)}, {torch.cuda.device_count()} GPU(s), torch {torch.__version__}")
    print("| case | s/epoch | test acc | peak GPU MiB | GPU util % | result |")
    print("| --- | ---: | ---: | ---: | ---: | --- |")
    failed = 0
    for case, r in results.items():
        ok = r["ok"] and ("test_acc" not in r or r["test_acc"] >= MIN_ACC)
        failed += not ok
        cells = [f"{r[k]:.2f}" if k in r else "" for k in ("s_per_epoch",)]
        cells += [f"{r['test_acc']:.4f}" if "test_acc" in r else "", f"{r['peak_mib']:.0f}" if "peak_mib" in r else ""]
        cells += [f"{r['gpu_util']:.0f}" if "gpu_util" in r else ""]
        verdict = ("pass" if ok else "FAIL") + (f" ({r['why']})" if r.get("why") else "")
        print(f"| {case} | {' | '.join(cells)} | {verdict} |")
    k1, k8 = results["base 32-true"], results["base 32-true K=8"]
    if "s_per_epoch" in k1 and "s_per_epoch" in k8:
        print(f"\nsteps_per_call 8 vs 1 (base 32-true): {k8['s_per_epoch'] / k1['s_per_epoch']:.2f} x the epoch time")
    print(f"\n{len(results) - failed}/{len(results)} passed in {time.perf_counter() - start:.0f} s")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
