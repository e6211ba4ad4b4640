"""Predictions as rows: the CSV (written whole or not at all) and the short table printed. No torch needed."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mnist_lightning.common.atomic import replace_atomically

COLUMNS = ["file", "digit", "probability", "top3", "label"]
SHOWN_ROWS = 20


@dataclass
class Prediction:
    file: str
    digit: int
    probability: float
    top3: list[tuple[int, float]]
    label: int | None = None  # known for MNIST's own test images only

    def row(self) -> list[str]:
        top3 = " ".join(f"{d}:{p:.4f}" for d, p in self.top3)
        return [
            self.file,
            str(self.digit),
            f"{self.probability:.4f}",
            top3,
            "" if self.label is None else str(self.label),
        ]


def predictions(names: list[str], probs: np.ndarray, labels: np.ndarray | None = None) -> list[Prediction]:
    """One :class:`Prediction` per row of ``probs`` ([N, 10] probabilities)."""
    out = []
    for i, (name, p) in enumerate(zip(names, probs, strict=True)):
        top = np.argsort(-p, kind="stable")[:3]
        label = None if labels is None else int(labels[i])
        out.append(Prediction(name, int(top[0]), float(p[top[0]]), [(int(d), float(p[d])) for d in top], label))
    return out


def write_csv(path: str | Path, rows: list[Prediction]) -> Path:
    """Write to a temp file beside ``path`` and rename it into place: never a partial CSV."""
    with replace_atomically(path, where="place for the CSV") as tmp, open(tmp, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(COLUMNS)
        writer.writerows(r.row() for r in rows)
    return Path(path)


def read_csv(path: str | Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def format_table(rows: list[Prediction], limit: int = SHOWN_ROWS) -> str:
    """A short aligned table: file, digit, probability, the runner-up guesses."""
    width = min(max([len(r.file) for r in rows[:limit]] + [4]), 60)
    lines = [f"{'file':<{width}}  digit  prob    top-3"]
    for r in rows[:limit]:
        name = r.file if len(r.file) <= width else "..." + r.file[-(width - 3) :]
        top3 = "  ".join(f"{d} {p:.2f}" for d, p in r.top3)
        lines.append(f"{name:<{width}}  {r.digit:>5}  {r.probability:.3f}   {top3}")
    if len(rows) > limit:
        lines.append(f"... and {len(rows) - limit} more in the CSV")
    return "\n".join(lines)


def summary(rows: list[Prediction], csv_path: Path) -> str:
    """The table for image files; the accuracy for MNIST's test set (whose labels are known)."""
    if rows and all(r.label is not None for r in rows):
        right = sum(r.digit == r.label for r in rows)
        head = f"MNIST test set: {len(rows)} images, accuracy {right / len(rows):.4f} ({right}/{len(rows)})"
        return f"{head}\npredictions     : {csv_path}"
    return f"{format_table(rows)}\npredictions: {csv_path} ({len(rows)} images)"
