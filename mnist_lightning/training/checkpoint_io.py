"""Checkpoint files that are never half-written, and that load without running pickled code."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO

from mnist_lightning.common.atomic import replace_atomically


class AtomicCheckpointIO(TorchCheckpointIO):
    """Every checkpoint goes through :func:`~mnist_lightning.common.atomic.replace_atomically` (temp file, fsync,
    rename); loading always uses ``weights_only=True``. The CLI's default ``trainer.plugins``."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path: str | Path, storage_options: Any = None) -> None:
        if storage_options is not None:
            raise TypeError(f"{type(self).__name__} does not take storage_options")
        path = Path(path)
        with replace_atomically(path, where="--trainer.default_root_dir") as tmp:
            with open(tmp, "wb") as f:
                self.write(checkpoint, f)

    def write(self, checkpoint: dict[str, Any], f: Any) -> None:
        torch.save(checkpoint, f)

    def load_checkpoint(
        self, path: str | Path, map_location: Any = lambda storage, loc: storage, weights_only: bool | None = None
    ) -> Any:
        return super().load_checkpoint(path, map_location=map_location, weights_only=True)  # never runs pickled code
