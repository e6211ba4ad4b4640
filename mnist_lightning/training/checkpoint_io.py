"""Checkpoint files that are never half-written, and that load without running pickled code."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import torch
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO


def fsync_dir(folder: str | Path) -> None:
    """Make a rename inside ``folder`` durable (the directory entry itself is data on POSIX)."""
    if os.name != "posix":
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class AtomicCheckpointIO(TorchCheckpointIO):
    """Write to a temp file in the target folder, fsync, then ``os.replace``.

    A crash (even SIGKILL or a power cut) at any moment leaves either the previous file or the new one, never a
    truncated mix: the rename is atomic within one filesystem, and the fsyncs order "data on disk" before "name
    points at it". Loading always uses ``weights_only=True``.
    """

    def save_checkpoint(self, checkpoint: dict[str, Any], path: str | Path, storage_options: Any = None) -> None:
        if storage_options is not None:
            raise TypeError(f"{type(self).__name__} does not take storage_options")
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        # leftovers of a save that was killed: same target name, so they are ours and dead
        for stale in path.parent.glob(f".{path.name}.*.tmp"):
            stale.unlink(missing_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        tmp = Path(tmp_name)
        try:
            with os.fdopen(fd, "wb") as f:
                self.write(checkpoint, f)
                f.flush()
                os.fsync(f.fileno())
            tmp.chmod(0o644)  # mkstemp makes it 0600
            self.before_replace(tmp, path)
            os.replace(tmp, path)
            fsync_dir(path.parent)
        finally:
            tmp.unlink(missing_ok=True)

    def write(self, checkpoint: dict[str, Any], f: Any) -> None:
        torch.save(checkpoint, f)

    def before_replace(self, tmp: Path, path: Path) -> None:
        """Called with the complete temp file, just before it takes ``path``'s place (a seam for crash tests)."""

    def load_checkpoint(
        self, path: str | Path, map_location: Any = lambda storage, loc: storage, weights_only: bool | None = None
    ) -> Any:
        return super().load_checkpoint(path, map_location=map_location, weights_only=True)  # never runs pickled code
