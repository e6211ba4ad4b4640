"""Train, inspect and ship an MNIST digit classifier with PyTorch Lightning.

The package is split by what each part needs at run time:

- ``common/``: torch-free, used by both sides: errors, atomic writes, the raw MNIST files, the layout of every
  file a command writes, the exported model's contract, prediction tables, reading a run's TensorBoard files.
- ``inference/``: onnxruntime, numpy and Pillow only, never torch: preprocessing, the exported model, the
  ``predict-onnx`` command and the web server.
- ``model/``: torch, never Lightning: the plain ``MyMNIST`` net and its ``mnist.pt``, checkpoint reading, the
  ONNX writer and the ``export`` command.
- ``training/``: Lightning: the LightningModule, the DataModule, the LightningCLI and its ``callbacks/``.
- ``tune/``: the ``tune`` command on Optuna.
- ``commands.py``: the one router behind ``python -m mnist_lightning`` and ``mnist-lightning``.

``from mnist_lightning import MyMNIST, MNISTClassifier, MNISTDataModule, run_cli`` works; each name is imported
on first use, so importing the package itself loads neither torch nor Lightning.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# public name -> the module that defines it
_PUBLIC = {
    "MyMNIST": "mnist_lightning.model.net",
    "MNISTClassifier": "mnist_lightning.training.module",
    "MNISTDataModule": "mnist_lightning.training.data",
    "run_cli": "mnist_lightning.training.cli",
}
__all__ = [*_PUBLIC, "__version__"]


def __getattr__(name: str) -> Any:
    if name in _PUBLIC:
        return getattr(importlib.import_module(_PUBLIC[name]), name)
    raise AttributeError(f"module 'mnist_lightning' has no attribute {name!r}")
