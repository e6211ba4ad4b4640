"""The compiled step against the eager one on the real MNIST: one epoch of configs/base.yaml each, then the largest
weight difference and both validation accuracies, checked against the stated tolerance.

    python benchmarks/compile_tolerance.py --data data          (a step of make bench)
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from baselines import SPEED, project_fit_args  # noqa: E402

from mnist_lightning import run_cli  # noqa: E402
from mnist_lightning.common.mnist_files import FILES, raw_folder  # noqa: E402
from mnist_lightning.model.compiled_step import VAL_ACC_TOL, WEIGHTS_ATOL  # noqa: E402


def one_epoch(data: str, root: str, *extra: str) -> tuple[float, dict]:
    quiet = ("--trainer.max_epochs", "1", "--trainer.enable_progress_bar", "false", "--export.enabled", "false")
    cli = run_cli(project_fit_args(data, root, *quiet, *extra))
    weights = {k: v.detach().clone() for k, v in cli.model.net.state_dict().items()}
    return float(cli.trainer.callback_metrics["val/acc"]), weights


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="data", help="folder holding MNIST/raw/*.gz (real MNIST)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:  # a copy: nothing is written next to the user's files
        raw = raw_folder(scratch)
        raw.mkdir(parents=True)
        for name in FILES:
            shutil.copyfile(raw_folder(args.data) / name, raw / name)
        eager_acc, eager = one_epoch(scratch, f"{scratch}/eager")
        speed_acc, speed = one_epoch(scratch, f"{scratch}/speed", *SPEED)
    dw = max(float((speed[k] - eager[k]).abs().max()) for k in eager)
    ok = dw <= WEIGHTS_ATOL and abs(speed_acc - eager_acc) <= VAL_ACC_TOL
    print(
        f"compile tolerance, 1 epoch of base.yaml: max |w_speed - w_eager| = {dw:.2e} (atol {WEIGHTS_ATOL:g}); "
        f"val/acc eager {eager_acc:.4f}, speed.yaml {speed_acc:.4f} (tolerance {VAL_ACC_TOL:g}): "
        f"{'PASS' if ok else 'FAIL'}"
    )
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
