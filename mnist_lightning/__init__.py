"""Train, inspect and ship an MNIST digit classifier with PyTorch Lightning."""

from __future__ import annotations

from typing import Any

__all__ = ["MNISTClassifier", "MNISTDataModule", "MyMNIST"]
__version__ = "0.1.0"

_LAZY = {"MNISTClassifier": "module", "MNISTDataModule": "data", "MyMNIST": "model"}


def __getattr__(name: str) -> Any:
    # imported on first use, so that torch-free parts (onnx_predict, preprocess) load without torch
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f"mnist_lightning.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'mnist_lightning' has no attribute {name!r}")
