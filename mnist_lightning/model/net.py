"""The plain PyTorch MLP from the tutorial, free of Lightning so that it exports cleanly, and its ``mnist.pt`` file.

``mnist.pt`` is the tutorial's second artifact made safe: a plain dict (weights plus the constructor's arguments)
that ``torch.load(path, weights_only=True)`` reads, and :meth:`MyMNIST.load` turns back into the net with torch
alone; no pickled code, so it survives the class moving.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from mnist_lightning.common.atomic import replace_atomically
from mnist_lightning.common.contract import INPUT_CONVENTION, INPUT_SIZE, MNIST_MEAN, MNIST_STD, NUM_CLASSES
from mnist_lightning.common.errors import UserError
from mnist_lightning.model.torch_files import MODEL_FILE, read_torch_file

PT_FORMAT = "mnist-lightning MyMNIST v1"  # the "format" entry of every mnist.pt


class MyMNIST(nn.Module):
    """784 -> (Linear + GELU) per hidden layer -> Linear(..., 10) logits.

    Accepts images shaped ``[N, 784]``, ``[N, 28, 28]`` or ``[N, 1, 28, 28]`` with pixels in [0, 1].
    ``standardize`` maps pixels to (x - MNIST_MEAN) / MNIST_STD inside the net (no trainable state), so an exported
    model still takes raw [0, 1] pixels. ``dropout`` follows each hidden layer (active in train mode only).
    """

    def __init__(self, hidden_layers: list[int] | None = None, dropout: float = 0.0, standardize: bool = False) -> None:
        super().__init__()
        self.standardize = standardize
        sizes = [INPUT_SIZE, *(hidden_layers or [])]
        layers: list[nn.Module] = []
        for n_in, n_out in zip(sizes[:-1], sizes[1:], strict=True):
            layers += [nn.Linear(n_in, n_out), nn.GELU()]
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
        layers.append(nn.Linear(sizes[-1], NUM_CLASSES))
        self.layers = nn.Sequential(*layers)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = images.reshape(images.shape[0], INPUT_SIZE)
        if self.standardize:
            x = (x - MNIST_MEAN) / MNIST_STD
        return self.layers(x)

    def arguments(self) -> dict[str, Any]:
        """The constructor's arguments as plain types (what ``mnist.pt`` stores beside the weights)."""
        linears = [m for m in self.layers if isinstance(m, nn.Linear)]
        dropout = next((float(m.p) for m in self.layers if isinstance(m, nn.Dropout)), 0.0)
        return {
            "hidden_layers": [m.out_features for m in linears[:-1]],
            "dropout": dropout,
            "standardize": bool(self.standardize),
        }

    def save(self, path: str | Path, source: str = "") -> Path:
        """Write ``mnist.pt`` atomically: float32 CPU weights in layer order, the arguments, the input convention."""
        state = {k: v.detach().to("cpu", torch.float32).clone() for k, v in self.state_dict().items()}
        record = {"format": PT_FORMAT, **self.arguments(), "state_dict": state}
        record |= {"input_convention": INPUT_CONVENTION, "source_checkpoint": str(source)}
        with replace_atomically(path, where="--output folder") as tmp:
            torch.save(record, tmp)
        return Path(path)

    @classmethod
    def load(cls, path: str | Path) -> MyMNIST:
        """The net saved in ``mnist.pt`` (float32, CPU, in eval mode), read with ``weights_only=True``."""
        path = Path(path)
        record = read_torch_file(path, MODEL_FILE)
        if not isinstance(record, dict) or record.get("format") != PT_FORMAT:
            raise UserError(
                f"{path} is a PyTorch file but not an mnist-lightning model file (no format '{PT_FORMAT}'); a "
                "Lightning checkpoint goes to --ckpt_path instead. Write one with: python -m mnist_lightning export "
                "--format pt"
            )
        net = cls(list(record["hidden_layers"]), float(record["dropout"]), bool(record["standardize"]))
        try:
            net.load_state_dict(record["state_dict"])
        except (RuntimeError, KeyError) as err:
            detail = (str(err).strip().splitlines() or [""])[0][:200]
            raise UserError(f"{path} is damaged: its weights do not fit its own arguments ({detail}).") from None
        return net.eval()
