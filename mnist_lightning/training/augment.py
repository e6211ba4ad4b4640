"""Light data augmentation done batch-wise on the in-memory tensors, on whatever device the batch is on.

One random affine warp (rotation, scale, shift) per image plus an optional smooth "elastic" displacement field,
applied with one sampling grid and one ``grid_sample`` over the whole batch: no per-sample Python, no PIL.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from mnist_lightning.common.contract import IMAGE_SIDE, INPUT_SIZE
from mnist_lightning.common.errors import UserError

ELASTIC_GRID = 4  # control points per side of the coarse random displacement field that is upsampled to 28x28


@functools.cache
def _base_grid(device: torch.device) -> torch.Tensor:
    """``[784, 3]`` rows ``(x, y, 1)``: pixel centres in [-1, 1], row by row (``affine_grid``, align_corners=False)."""
    centres = (torch.arange(IMAGE_SIDE, dtype=torch.float32) * 2 + 1) / IMAGE_SIDE - 1
    y, x = torch.meshgrid(centres, centres, indexing="ij")
    return torch.stack([x.flatten(), y.flatten(), torch.ones(INPUT_SIZE, dtype=torch.float32)], 1).to(device)


@functools.cache
def _upsample_matrix(device: torch.device) -> torch.Tensor:
    """``[G*G, 784]``: bilinear upsampling (align_corners=True) of a GxG field to 28x28, as one matrix."""
    pos = torch.linspace(0, ELASTIC_GRID - 1, IMAGE_SIDE, dtype=torch.float32)  # float32 whatever the default dtype
    low = pos.floor().clamp(max=ELASTIC_GRID - 2).long()
    frac = pos - low
    weights = torch.zeros(IMAGE_SIDE, ELASTIC_GRID, dtype=torch.float32)
    weights[torch.arange(IMAGE_SIDE), low] = 1 - frac
    weights[torch.arange(IMAGE_SIDE), low + 1] = frac
    return torch.kron(weights, weights).T.contiguous().to(device)  # kron: row y*28+x, column gy*G+gx


@dataclass(frozen=True)
class BatchAugment:
    """Random warps of ``[B, 784]`` images with pixels in [0, 1]; every amount 0 turns that part off.

    ``shift``: max shift in pixels, ``rotate``: max rotation in degrees, ``scale``: max relative zoom (0.1 = ±10 %),
    ``elastic``: std in pixels of the smooth per-pixel displacement. Each is drawn uniformly (elastic: normally)
    per image from the global torch RNG, so ``seed_everything`` makes runs repeatable (and each DDP rank, which
    gets its own stream from :mod:`rank_seeds`, warps its shard differently).
    The grid is computed in float32 whatever the precision (half-precision coordinates are off by up to a pixel),
    and the warped images come back in the input's dtype.
    """

    shift: float = 0.0
    rotate: float = 0.0
    scale: float = 0.0
    elastic: float = 0.0

    def __post_init__(self) -> None:
        for name in ("shift", "rotate", "scale", "elastic"):
            value = getattr(self, name)
            if not (value >= 0 and math.isfinite(value)):
                raise UserError(f"model.augment_{name} must be a finite number >= 0, got {value}.")
        if self.scale >= 1:
            raise UserError(f"model.augment_scale must be < 1 (a relative zoom), got {self.scale}.")

    @property
    def enabled(self) -> bool:
        return any((self.shift, self.rotate, self.scale, self.elastic))

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        if not self.enabled:
            return images
        n, device = images.shape[0], images.device
        # autocast off: under bf16-mixed it would run the grid matmuls in bf16
        with torch.autocast(device.type, enabled=False):
            return self._warp(images.float(), n, device).to(images.dtype)

    def _warp(self, images: torch.Tensor, n: int, device: torch.device) -> torch.Tensor:
        def uniform(*shape: int) -> torch.Tensor:  # in [-1, 1); float32 even under a half-precision default dtype
            return torch.rand(*shape, device=device, dtype=torch.float32).mul_(2).sub_(1)

        # affine_grid maps output to input coordinates in [-1, 1]: one pixel is 2 / IMAGE_SIDE wide
        angle = uniform(n) * math.radians(self.rotate)
        zoom = 1 + uniform(n) * self.scale
        cos, sin = torch.cos(angle) / zoom, torch.sin(angle) / zoom
        shift = uniform(n, 2) * (self.shift * 2 / IMAGE_SIDE)
        theta = torch.stack([torch.stack([cos, -sin, shift[:, 0]], 1), torch.stack([sin, cos, shift[:, 1]], 1)], 1)
        # the sampling grid as two plain 2-D matmuls, [n*2, k] @ [k, 784] for (x, y) rows: the cheapest way on a CPU
        grid = theta.reshape(n * 2, 3) @ _base_grid(device).T
        if self.elastic > 0:
            spread = self.elastic * 2 / IMAGE_SIDE
            coarse = torch.randn(n * 2, ELASTIC_GRID**2, device=device, dtype=torch.float32) * spread
            grid = grid + coarse @ _upsample_matrix(device)
        x = images.reshape(n, 1, IMAGE_SIDE, IMAGE_SIDE)
        grid = grid.reshape(n, 2, IMAGE_SIDE, IMAGE_SIDE).permute(0, 2, 3, 1)  # [n, 28, 28, (x, y)] for grid_sample
        # zeros padding = black background moving in; bilinear keeps pixels inside [0, 1]
        out = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
        return out.reshape(n, INPUT_SIZE)
