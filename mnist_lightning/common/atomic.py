"""Replace a file so that readers see the old version or the new one, never half of one. Needs no torch."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from mnist_lightning.errors import UserError


@contextmanager
def replace_atomically(path: str | Path, where: str = "folder") -> Iterator[Path]:
    """Yield a temp file beside ``path``; when the block succeeds it is renamed onto ``path`` (mode 0644).

    On any error the temp file is removed and ``path`` is left as it was; an OSError becomes a UserError that
    names the file (``where`` says what to choose instead when the folder is not writable).
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        os.close(fd)
    except OSError as err:
        raise UserError(f"cannot write to {path.parent} ({err.strerror}); choose a writable {where}.") from None
    tmp = Path(name)
    try:
        yield tmp
        tmp.chmod(0o644)  # mkstemp makes it 0600
        os.replace(tmp, path)
    except OSError as err:
        raise UserError(
            f"writing {path} failed ({err.strerror or err}); the previous file, if any, is untouched."
        ) from None
    finally:
        tmp.unlink(missing_ok=True)
