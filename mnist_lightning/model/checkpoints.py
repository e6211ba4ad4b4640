"""Reading checkpoints: ``torch.load(weights_only=True)`` with errors that say what is wrong with the file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mnist_lightning.common.errors import UserError
from mnist_lightning.model.net import PT_FORMAT, MyMNIST
from mnist_lightning.model.options import architecture
from mnist_lightning.model.torch_files import CHECKPOINT, read_torch_file

VAL_ACC_KEY = "val_acc"  # in checkpoints: the val/acc at the time it was saved (OnnxExport writes it)


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """``torch.load(weights_only=True)`` with errors that say what is wrong with the file."""
    path = Path(path)
    ckpt = read_torch_file(path, CHECKPOINT)
    if isinstance(ckpt, dict) and ckpt.get("format") == PT_FORMAT:
        raise UserError(
            f"{path} is a plain model file (mnist.pt), not a training checkpoint; load it with "
            "MyMNIST.load(path), or pass a .ckpt file, 'best' or 'last'."
        )
    if not isinstance(ckpt, dict) or "state_dict" not in ckpt:
        raise UserError(f"{path} is a torch file but not a Lightning checkpoint (no 'state_dict').")
    return ckpt


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
