"""The CPU's name for benchmark headers (stdlib only, so every benchmark script can import it)."""

from __future__ import annotations

import platform
from pathlib import Path


def cpu_name() -> str:
    try:
        line = next(ln for ln in Path("/proc/cpuinfo").read_text().splitlines() if ln.startswith("model name"))
        return line.split(":", 1)[1].strip()
    except (OSError, StopIteration):
        return platform.machine()
