"""One reproducible random stream per DDP rank, derived from (seed, rank).

``seed_everything`` seeds every process alike, and the augmentation and dropout draw from the global generators,
so without this every rank would apply the same warps and dropout masks at the same batch position. Rank 0 keeps
the run's seed itself, so a one-process run draws exactly what it drew before; the data order stays shared (the
sampler derives it from the seed, not from these generators) and each rank takes its own shard of it.
"""

from __future__ import annotations

import os
import random

import numpy as np
import torch


def rank_seed(seed: int, rank: int) -> int:
    """The seed of rank ``rank``'s generators: ``seed`` for rank 0, a well-mixed 63-bit value for the others."""
    if rank == 0:
        return seed
    return int(np.random.SeedSequence([seed % 2**63, rank]).generate_state(2, np.uint64)[0] >> np.uint64(1))


def seed_rank(rank: int) -> int | None:
    """Reseed torch (CPU and CUDA), numpy and ``random`` for ``rank`` from the run's seed; None without a seed."""
    seed = os.environ.get("PL_GLOBAL_SEED")  # set by seed_everything, and passed on to DDP workers
    if seed is None:
        return None
    derived = rank_seed(int(seed), rank)
    torch.manual_seed(derived)  # also every CUDA device's generator
    np.random.seed(derived % 2**32)
    random.seed(derived)
    return derived
