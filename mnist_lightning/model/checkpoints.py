"""Reading checkpoints: ``torch.load(weights_only=True)`` with errors that say what is wrong with the file."""

from __future__ import annotations

import re
import zipfile
from pathlib import Path
from typing import Any

import torch

from mnist_lightning.common.errors import UserError
from mnist_lightning.model.net import PT_FORMAT, MyMNIST
from mnist_lightning.model.options import architecture

VAL_ACC_KEY = "val_acc"  # in checkpoints: the val/acc at the time it was saved (OnnxExport writes it)


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """``torch.load(weights_only=True)`` with errors that say what is wrong with the file."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"checkpoint {path} does not exist; pass an existing .ckpt file, 'best' or 'last'.")
    if path.stat().st_size == 0:
        raise UserError(f"checkpoint {path} is empty (0 bytes); it was never fully written. Use another checkpoint.")
    _check_container(path)
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)  # never runs pickled code
    except Exception as err:  # noqa: BLE001 - torch raises many types for non-checkpoint files
        if "Weights only load failed" in str(err):
            raise UserError(
                f"{path} is not a readable checkpoint: besides weights it holds pickled Python objects, and loading "
                "them could run arbitrary code, so it is refused (weights_only=True). Use a checkpoint written by fit."
            ) from None
        detail = _first_sentences(str(err))
        raise UserError(
            f"{path} is not a readable checkpoint: torch.load cannot read it ({type(err).__name__}: {detail}). "
            "Pass a .ckpt file written by fit, 'best' or 'last'."
        ) from None
    if isinstance(ckpt, dict) and ckpt.get("format") == PT_FORMAT:
        raise UserError(
            f"{path} is a plain model file (mnist.pt), not a training checkpoint; load it with "
            "MyMNIST.load(path), or pass a .ckpt file, 'best' or 'last'."
        )
    if not isinstance(ckpt, dict) or "state_dict" not in ckpt:
        raise UserError(f"{path} is a torch file but not a Lightning checkpoint (no 'state_dict').")
    return ckpt


def _first_sentences(text: str, limit: int = 200) -> str:
    """torch's error, minus its C++ source tag, cut only between sentences: a cut one reads as a broken message."""
    line = re.sub(r"^\[[^\]]*\]\s*\.?\s*", "", (text.strip().splitlines() or [""])[0])
    while len(line) > limit and ". " in line:
        line = line.rsplit(". ", 1)[0]
    return line.rstrip(".")


def _check_container(path: Path) -> None:
    """A checkpoint is a zip archive (torch.save) or, from old torch versions, a pickle: say which it is not."""
    with open(path, "rb") as f:
        head = f.read(64)
    if head.startswith(b"PK\x03\x04"):
        if not zipfile.is_zipfile(path):  # the zip's directory sits at its end: a cut file has none
            raise UserError(
                f"{path} is truncated: it starts like a checkpoint but its end is missing ({path.stat().st_size} "
                "bytes), so it was not fully written or copied. Use another checkpoint, e.g. 'last' or 'best'."
            )
        return
    if head.startswith(b"\x80"):  # a pickle (protocol 2+): torch.load tells weights from code
        return
    text = head.decode("utf-8", errors="ignore")
    is_text = bool(text.strip()) and all(c.isprintable() or c in "\r\n\t" for c in text)
    what = f"text (it starts with {text.strip().splitlines()[0][:40]!r})" if is_text else ""
    raise UserError(
        f"{path} is not a PyTorch file: it holds {what or 'neither a zip archive nor a pickle'}, not a checkpoint. "
        "Pass a .ckpt file written by fit, 'best' or 'last'."
    )


def net_from_checkpoint(path: str | Path) -> tuple[MyMNIST, dict[str, Any]]:
    """The float32 CPU MyMNIST stored in a MNISTClassifier checkpoint, and that checkpoint's dict."""
    ckpt = load_checkpoint(path)
    arguments = architecture(ckpt.get("hyper_parameters", {}))
    hidden = arguments["hidden_layers"]
    net = MyMNIST(**arguments)
    weights = {k.removeprefix("net."): v for k, v in ckpt["state_dict"].items() if k.startswith("net.")}
    try:
        net.load_state_dict(weights)
    except RuntimeError as err:
        lines = [line.strip() for line in str(err).splitlines()[1:] if line.strip()]  # [0] is a generic header
        detail = (lines or [str(err)])[0][:250].rstrip(".")
        raise UserError(
            f"{path} does not hold a MyMNIST{hidden} net, the architecture its hyper-parameters name: {detail}. "
            "The file is damaged or not from this project; use another checkpoint."
        ) from None
    return net.float().eval(), ckpt


def check_checkpoint(path: Path, hidden_layers: list[int] | None = None) -> dict[str, Any]:
    """Fail with a clear message unless ``path`` is a MNISTClassifier checkpoint (of ``hidden_layers``, if given);
    returns the checkpoint's dict."""
    _, ckpt = net_from_checkpoint(path)  # readable, weights_only, and its weights fit its own architecture
    saved = list(ckpt.get("hyper_parameters", {}).get("hidden_layers", []))
    if hidden_layers is not None and saved and saved != list(hidden_layers):
        raise UserError(
            f"checkpoint {path} holds a net with hidden_layers {saved}, but the config asks for "
            f"{list(hidden_layers)}; training cannot resume into a different architecture. Pass "
            f"--model.hidden_layers '{saved}' to resume it, or drop --ckpt_path to train the new one from scratch."
        )
    return ckpt


def saved_checkpoint_folder(ckpt: dict[str, Any]) -> str | None:
    """The folder the checkpoint's ModelCheckpoint saved into (its state's ``dirpath``), if it had one."""
    for key, state in ckpt.get("callbacks", {}).items():
        if key.startswith("ModelCheckpoint") and isinstance(state, dict) and state.get("dirpath"):
            return str(state["dirpath"])
    return None


def checkpoint_val_acc(ckpt: dict[str, Any]) -> float | None:
    """The ``val/acc`` of this very checkpoint (None when it was saved before any validation)."""
    value = ckpt.get(VAL_ACC_KEY)
    return None if value is None else float(value)
