"""The plain PyTorch MLP from the tutorial, free of Lightning so that it exports cleanly."""

from __future__ import annotations

import torch
from torch import nn

INPUT_SIZE = 28 * 28
NUM_CLASSES = 10
# pixel mean and std of the 60k MNIST training images, pixels in [0, 1]
MNIST_MEAN, MNIST_STD = 0.1307, 0.3081


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
