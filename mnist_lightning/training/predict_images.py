"""People's own digit images as ``predict`` input: read and checked up front, then served in batches."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import torch

from mnist_lightning.common.errors import UserError
from mnist_lightning.inference.preprocess import ImageError, load_batch


class ImageBatches:
    """``(images,)`` batches of people's own images, in file order (a list would mean several dataloaders)."""

    def __init__(self, images: torch.Tensor, batch_size: int) -> None:
        self.batches = images.split(batch_size)

    def __iter__(self) -> Iterator[tuple[torch.Tensor]]:
        return ((x,) for x in self.batches)

    def __len__(self) -> int:
        return len(self.batches)


def load_predict_images(predict_path: str | list[str]) -> tuple[list[Path], torch.Tensor]:
    """Image files or folders -> (files, float32 [N, 784]) via the shared MNIST-style preprocessing."""
    try:
        files, pixels = load_batch([predict_path] if isinstance(predict_path, str) else list(predict_path))
    except ImageError as err:
        raise UserError(f"data.predict_path: {err}") from None
    return files, torch.from_numpy(pixels)
