"""Search with configs/search/fast.yaml under a fixed budget, then train what it found for some seeds and test it.

    python benchmarks/tune_bench.py --data /path/holding/MNIST --minutes 20 --workers 2 --seeds 0 1 2

The search is the real ``tune`` command, ``--workers`` processes sharing one SQLite study, each stopped after
``--minutes`` (a trial under way when the time is up still finishes). The best trial's config (written by ``tune``)
and ``configs/fast.yaml`` are then trained for each seed and tested once on the official test set, one after the
other in this process, as ``benchmarks/accuracy.py`` does. The result replaces the tune section of
``benchmarks/ACCURACY.md``. No human choice is involved between the search space and the final numbers.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import optuna
import torch

# benchmarks/ is on sys.path when run as a script
from accuracy import ROOT, TUNE_MARK, _mean, machine, run_one, seed_rows

from mnist_lightning.tune.report import top_table

SECTION = TUNE_MARK + ": written by benchmarks/tune_bench.py -->"
QUIET = ["--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false"]


def search(args: argparse.Namespace, work: Path) -> tuple[Path, str, float]:
    """Run the workers; (best config file, table of top trials, wall seconds)."""
    storage = f"sqlite:///{work / 'tune.db'}"
    command = [sys.executable, "-m", "mnist_lightning", "tune", "--config", str(ROOT / "configs" / "fast.yaml")]
    command += ["--tune.space", str(ROOT / "configs" / "search" / "fast.yaml"), "--tune.n_trials", "100000"]
    command += ["--tune.timeout", str(args.minutes * 60), "--tune.storage", storage, "--tune.study_name", "bench"]
    command += ["--tune.seed", str(args.seed), "--tune.output", str(work / "found.yaml")]
    command += ["--data.data_dir", args.data, "--trainer.default_root_dir", str(work), *QUIET]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": str(args.threads)}
    start = time.perf_counter()
    workers = []
    for i in range(args.workers):
        log = open(work / f"worker{i}.log", "w")
        workers.append((subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT), log))
        time.sleep(2)  # the first creates the database file
    for proc, log in workers:
        proc.wait()
        log.close()
        if proc.returncode != 0:
            sys.exit(f"a tune worker failed (exit {proc.returncode}); see {log.name}")
    seconds = time.perf_counter() - start
    study = optuna.load_study(study_name="bench", storage=storage)
    return work / "found.yaml", top_table(study, top=5), seconds


def section(rows: list[dict], table: str, seconds: float, args: argparse.Namespace, found: Path) -> str:
    found_text = "\n".join(line for line in found.read_text().splitlines() if not line.startswith("#"))
    model = {k: v for k, v in _model_lines(found_text)}
    out = [
        SECTION,
        "## A recipe found by `tune` (`make tune-bench`)",
        "",
        f"`python benchmarks/tune_bench.py {' '.join(a for a in sys.argv[1:] if a not in ('--note', args.note))}`; "
        f"{machine()}.",
        f"Search: `tune --config configs/fast.yaml --tune.space configs/search/fast.yaml --tune.seed {args.seed}`, "
        f"{args.workers} workers on one SQLite study, {args.minutes:g} minutes each ({seconds / 60:.1f} minutes "
        f"wall in all). {args.note}",
        "",
        "```",
        table,
        "```",
        "",
        "Found (searched options of the best trial): " + ", ".join(f"`{k}: {v}`" for k, v in model.items()),
        "",
        "Then trained for each seed and tested once, beside `fast.yaml` in the same session:",
        "",
        *seed_rows(rows),
    ]
    out += [
        "",
        "| config | runs | train time (s) | best val acc | test acc (mean ± std) |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for config in dict.fromkeys(r["config"] for r in rows):
        group = [r for r in rows if r["config"] == config]
        cells = [
            _mean(group, "train_s", "{:.1f}"),
            _mean(group, "val_acc", "{:.4f}"),
            _mean(group, "test_acc", "{:.4f}"),
        ]
        out.append(f"| {config} | {len(group)} | " + " | ".join(cells) + " |")
    return "\n".join(out) + "\n"


def _model_lines(text: str) -> list[tuple[str, str]]:
    import yaml

    from mnist_lightning.tune.space import load_space

    config = yaml.safe_load(text)
    names = [p.name for p in load_space(ROOT / "configs" / "search" / "fast.yaml").params]
    return [(n, config[n.split(".")[0]][n.split(".")[1]]) for n in names]


def write_section(path: Path, text: str) -> None:
    old = path.read_text() if path.is_file() else ""
    kept = old.split(SECTION)[0].rstrip("\n")
    tmp = path.with_suffix(".md.tmp")
    tmp.write_text((kept + "\n\n" if kept else "") + text)
    os.replace(tmp, path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="data", help="folder holding MNIST/raw/ (as --data.data_dir)")
    parser.add_argument("--minutes", type=float, default=20.0, help="search budget of each worker")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0, help="--tune.seed")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="seeds the found config trains")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per process")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "ACCURACY.md")
    parser.add_argument("--note", default="The CPU may have been shared with other jobs: times are noisy.")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory(prefix="mnist-tune-bench-") as tmp:
        work = Path(tmp)
        found, table, seconds = search(args, work)
        print(table, flush=True)
        rows = []
        for name, config in (("found by tune", found), ("fast.yaml", ROOT / "configs" / "fast.yaml")):
            for seed in args.seeds:
                row = run_one(str(config), seed, args.data, work / f"{name[:5]}-{seed}", [])
                row["config"] = name
                print(f"== {row}", flush=True)
                rows.append(row)
        text = section(rows, table, seconds, args, found)
    write_section(args.out, text)
    print(text)


if __name__ == "__main__":
    main()
