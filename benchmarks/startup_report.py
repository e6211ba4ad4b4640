"""The start-up section of benchmarks/RESULTS.md: medians, the #12 targets as same-run ratios, import breakdown.

bench_train.py rewrites the per-epoch table above MARKER and keeps this section; bench_startup.py replaces it.
"""

from __future__ import annotations

import os
import platform
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from machine_info import cpu_name  # benchmarks/ is on sys.path when run as a script

MARKER = "<!-- start-up section: written by benchmarks/bench_startup.py -->"


def targets(m: dict[str, float]) -> list[tuple[str, float, str, bool]]:
    """(what, measured, target, met) for each start-up target of issue #12, from this run's medians."""

    def row(prefix: str) -> float:
        return next(v for k, v in m.items() if k.startswith(prefix))

    t, lt = row("T:"), row("L:")
    export, overhead, predict = row("export"), row("fit fixed"), row("predict (torch)")
    serve, fast = row("serve"), row("fit --config configs/fast")
    return [
        ("export / T", export / t, "<= 1.5", export / t <= 1.5),
        ("fit fixed overhead - L (s)", overhead - lt, "<= 2.0", overhead - lt <= 2.0),
        ("predict (torch, 60 images) - L (s)", predict - lt, "<= 1.5", predict - lt <= 1.5),
        ("serve ready (s)", serve, "<= 1.5", serve <= 1.5),
        ("whole fast.yaml fit / L", fast / lt, "<= 2.0", fast / lt <= 2.0),
    ]


def section(result: dict[str, Any], note: str) -> list[str]:
    m = result["median_s"]
    date = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        MARKER,
        "",
        "# Start-up: what each command costs as a whole",
        "",
        f"{date} · {cpu_name()}, {os.cpu_count()} cores · Python {platform.python_version()} · "
        f"{result['rounds']} alternating rounds, median wall seconds (fresh process each)",
        "",
        "| command | median s | min–max s |",
        "| --- | ---: | ---: |",
    ]
    for name, value in m.items():
        runs = result["all_s"][name]
        lines.append(f"| {name} | {value:.2f} | {min(runs):.2f}–{max(runs):.2f} |")
    lines += ["", "| target (#12, same-run ratios) | measured | target | |", "| --- | ---: | ---: | --- |"]
    for what, value, goal, met in targets(m):
        lines.append(f"| {what} | {value:.2f} | {goal} | {'met' if met else 'MISSED'} |")
    lines += ["", "Where the start-up goes (`python -X importtime`, cumulative s of each package's first import):", ""]
    for command, rows in result["imports_s"].items():
        lines.append(f"- `{command}`: " + ", ".join(f"{name} {s:.2f}" for name, s in rows))
    if note:
        lines += ["", note]
    return lines


def write_section(path: Path, result: dict[str, Any], note: str = "") -> str:
    """Replace (or add) the start-up section of ``path``; returns the section's text."""
    head = path.read_text().split(MARKER)[0].rstrip() if path.is_file() else ""
    text = "\n".join(section(result, note))
    path.write_text((head + "\n\n" if head else "") + text + "\n")
    return text


def keep_section(path: Path) -> str:
    """The existing start-up section of ``path`` (for bench_train.py, which rewrites what is above it)."""
    if not path.is_file() or MARKER not in path.read_text():
        return ""
    return MARKER + path.read_text().split(MARKER, 1)[1]
