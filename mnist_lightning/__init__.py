"""Train, inspect and ship an MNIST digit classifier with PyTorch Lightning."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mnist_lightning.data import MNISTDataModule
    from mnist_lightning.model import MyMNIST
    from mnist_lightning.module import MNISTClassifier

__all__ = ["MNISTClassifier", "MNISTDataModule", "MyMNIST"]
__version__ = "0.1.0"

# imported on first use, so the torch-free parts (preprocess, serve, onnx_predict) load without torch and Lightning
_LAZY = {
    "MNISTDataModule": "mnist_lightning.data",
    "MyMNIST": "mnist_lightning.model",
    "MNISTClassifier": "mnist_lightning.module",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'mnist_lightning' has no attribute {name!r}")
