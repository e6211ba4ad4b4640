"""One paragraph, before the Trainer is built, when the configured accelerator or device count is not there."""

from __future__ import annotations

from typing import Any

import torch
from lightning.pytorch.accelerators import CUDAAccelerator, MPSAccelerator

from mnist_lightning.common.errors import UserError

FIX = "Use --trainer.accelerator cpu, or auto (a GPU when there is one, else the CPU)."


def _found() -> str:
    build = f"CUDA {torch.version.cuda} build" if torch.version.cuda else "CPU-only build, no CUDA"
    return f"torch {torch.__version__} ({build}) sees {torch.cuda.device_count()} CUDA GPU(s)"


def check_accelerator(accelerator: Any, devices: Any) -> None:
    """Raise :class:`UserError` when ``accelerator`` ("gpu"/"cuda"/"mps") or ``devices`` GPUs are not available."""
    if not isinstance(accelerator, str):
        return  # an Accelerator class or instance: its own checks apply
    name = accelerator.lower()
    if name in ("gpu", "cuda"):
        available = CUDAAccelerator.auto_device_count() if CUDAAccelerator.is_available() else 0
        if name == "gpu" and not available and MPSAccelerator.is_available():
            return  # Lightning's "gpu" also means Apple's MPS
        if not available:
            raise UserError(
                f"trainer.accelerator {accelerator!r} needs a CUDA GPU, but none was found: {_found()}. {FIX}"
            )
        wanted = int(devices) if isinstance(devices, int) or (isinstance(devices, str) and devices.isdigit()) else 0
        if wanted > available:
            raise UserError(
                f"trainer.devices {wanted} asks for {wanted} GPUs, but this machine has {available}: {_found()}. "
                f"Use --trainer.devices {available} (or -1 for all of them)."
            )
    elif name == "mps" and not MPSAccelerator.is_available():
        raise UserError(f"trainer.accelerator 'mps' needs an Apple-silicon GPU, but none was found: {_found()}. {FIX}")
