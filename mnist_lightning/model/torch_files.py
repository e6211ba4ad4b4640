"""One reader for the project's torch files, training checkpoints and ``mnist.pt`` alike: ``torch.load`` with
``weights_only=True`` and one set of sentences for what is wrong with a file that is not the one asked for."""

from __future__ import annotations

import re
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from mnist_lightning.common.errors import UserError


@dataclass(frozen=True)
class FileKind:
    """What a caller reads and how to get a good one, for the messages."""

    name: str  # "checkpoint"
    pass_instead: str  # the sentence that ends a "this is not one" message
    missing: str  # after "{name} PATH does not exist; "
    rewrite: str  # after "it was never fully written."
    replace_cut: str  # after "so it was not fully written or copied."
    replace_pickled: str  # after "so it is refused (weights_only=True)."


CHECKPOINT = FileKind(
    name="checkpoint",
    pass_instead="Pass a .ckpt file written by fit, 'best' or 'last'.",
    missing="pass an existing .ckpt file, 'best' or 'last'.",
    rewrite="Use another checkpoint.",
    replace_cut="Use another checkpoint, e.g. 'last' or 'best'.",
    replace_pickled="Use a checkpoint written by fit.",
)
_WRITE_PT = "python -m mnist_lightning export --format pt --ckpt_path best"
MODEL_FILE = FileKind(
    name="model file",
    pass_instead="Pass the mnist.pt that fit or export wrote.",
    missing="pass the mnist.pt that fit or export wrote.",
    rewrite=f"Write it again: {_WRITE_PT}",
    replace_cut=f"Write it again: {_WRITE_PT}",
    replace_pickled=f"Use an mnist.pt written by fit or {_WRITE_PT}",
)


def read_torch_file(path: str | Path, kind: FileKind) -> Any:
    """``torch.load(path, weights_only=True)`` on the CPU; a :class:`UserError` naming the file and the fix."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{kind.name} {path} does not exist; {kind.missing}")
    if path.stat().st_size == 0:
        raise UserError(f"{kind.name} {path} is empty (0 bytes); it was never fully written. {kind.rewrite}")
    _check_container(path, kind)
    try:
        return torch.load(path, map_location="cpu", weights_only=True)  # never runs pickled code
    except Exception as err:  # noqa: BLE001 - torch raises many types for damaged or foreign files
        if "Weights only load failed" in str(err):
            raise UserError(
                f"{path} is not a readable {kind.name}: besides weights it holds pickled Python objects, and loading "
                f"them could run arbitrary code, so it is refused (weights_only=True). {kind.replace_pickled}"
            ) from None
        detail = first_sentences(str(err))
        raise UserError(
            f"{path} is not a readable {kind.name}: torch.load cannot read it ({type(err).__name__}: {detail}). "
            f"{kind.pass_instead}"
        ) from None


def first_sentences(text: str, limit: int = 200) -> str:
    """torch's error, minus its C++ source tag, cut only between sentences: a cut one reads as a broken message."""
    line = re.sub(r"^\[[^\]]*\]\s*\.?\s*", "", (text.strip().splitlines() or [""])[0])
    while len(line) > limit and ". " in line:
        line = line.rsplit(". ", 1)[0]
    return line.rstrip(".")


def _check_container(path: Path, kind: FileKind) -> None:
    """A torch file is a zip archive (torch.save) or, from old torch versions, a pickle: say which it is not."""
    with open(path, "rb") as f:
        head = f.read(64)
    if head.startswith(b"PK\x03\x04"):
        if not zipfile.is_zipfile(path):  # the zip's directory sits at its end: a cut file has none
            raise UserError(
                f"{path} is truncated: it starts like a {kind.name} but its end is missing ({path.stat().st_size} "
                f"bytes), so it was not fully written or copied. {kind.replace_cut}"
            )
        return
    if head.startswith(b"\x80"):  # a pickle (protocol 2+): torch.load tells weights from code
        return
    text = head.decode("utf-8", errors="ignore")
    is_text = bool(text.strip()) and all(c.isprintable() or c in "\r\n\t" for c in text)
    what = f"text (it starts with {text.strip().splitlines()[0][:40]!r})" if is_text else ""
    raise UserError(
        f"{path} is not a PyTorch file: it holds {what or 'neither a zip archive nor a pickle'}, not a {kind.name}. "
        f"{kind.pass_instead}"
    )
