"""Run a Python with some imports made to fail: a sitecustomize.py on PYTHONPATH installs a meta-path hook.

The ``blocker`` fixture (conftest.py) writes that folder; :func:`blocked_env` is the environment that uses it.
"""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).parents[2]
BLOCKER = """
import importlib.abc, os, sys

BLOCKED = set(os.environ["BLOCK_IMPORTS"].split(","))

class Blocker(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ImportError(f"{name} is blocked in this test", name=name)
        return None

sys.meta_path.insert(0, Blocker())
"""
TORCH_SIDE = "torch,lightning,pytorch_lightning,torchvision,torchmetrics"


def blocked_env(blocker: Path, blocked: str = TORCH_SIDE) -> dict[str, str]:
    path = os.pathsep.join(filter(None, [str(blocker), str(ROOT), os.environ.get("PYTHONPATH")]))
    return {**os.environ, "PYTHONPATH": path, "BLOCK_IMPORTS": blocked}
