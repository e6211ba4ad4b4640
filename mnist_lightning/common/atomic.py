"""Replace a file so that readers see the old version or the new one, never half of one. Needs no torch.

Used for every file the project writes that someone else reads: checkpoints, ONNX exports, prediction CSVs.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from mnist_lightning.common.errors import UserError


def fsync_dir(folder: str | Path) -> None:
    """Make a rename inside ``folder`` durable (the directory entry itself is data on POSIX)."""
    if os.name != "posix":
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_file(path: Path) -> None:
    with open(path, "rb+") as f:
        os.fsync(f.fileno())


@contextmanager
def replace_atomically(path: str | Path, where: str = "folder") -> Iterator[Path]:
    """Yield a temp file beside ``path``; when the block succeeds it is fsynced and renamed onto ``path`` (0644).

    A crash (even SIGKILL or a power cut) at any moment leaves the previous file or the new one, never a truncated
    mix: the rename is atomic within one filesystem, and the fsyncs order "data on disk" before "name points at
    it". On any error the temp file is removed and ``path`` is left as it was; an OSError becomes a UserError that
    names the file (``where`` says what to choose instead when the folder is not writable).
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # leftovers of a write that was killed: same target name, so they are ours and dead
        for stale in path.parent.glob(f".{path.name}.*.tmp"):
            stale.unlink(missing_ok=True)
        fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        os.close(fd)
    except OSError as err:
        raise UserError(f"cannot write to {path.parent} ({err.strerror}); choose a writable {where}.") from None
    tmp = Path(name)
    try:
        yield tmp
        _fsync_file(tmp)
        tmp.chmod(0o644)  # mkstemp makes it 0600
        os.replace(tmp, path)
        fsync_dir(path.parent)
    except OSError as err:
        raise UserError(
            f"writing {path} failed ({err.strerror or err}); the previous file, if any, is untouched."
        ) from None
    finally:
        tmp.unlink(missing_ok=True)
