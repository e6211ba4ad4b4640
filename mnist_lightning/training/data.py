"""MNIST as in-memory tensors, decoded once and batched by index slicing: the sampler, the loader, the DataModule."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import lightning as L
import torch

from mnist_lightning.common.errors import UserError
from mnist_lightning.common.layout import SPLIT_FILES
from mnist_lightning.common.mnist_files import IMAGE_MAGIC, LABEL_MAGIC, ensure_raw_files, read_idx
from mnist_lightning.training.multi_step import groups_of
from mnist_lightning.training.predict_images import ImageBatches, load_predict_images

SPLIT_SEED = 1234  # the train/val split is fixed, whatever the training seed, so runs compare on one val set


def load_split(raw: Path, prefix: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Images as uint8 ``[N, 784]`` and labels as int64 ``[N]`` for ``prefix`` "train" or "t10k"."""
    images_file, labels_file = SPLIT_FILES[prefix]
    images, labels = read_idx(raw / images_file, IMAGE_MAGIC), read_idx(raw / labels_file, LABEL_MAGIC)
    if images.shape[0] != labels.shape[0]:
        raise UserError(
            f"{raw}/{prefix}-*: {images.shape[0]} images but {labels.shape[0]} labels; the two files do not belong "
            "together. Replace them with a matching pair."
        )
    return torch.from_numpy(images.reshape(images.shape[0], -1)), torch.from_numpy(labels).long()


class ShuffledBatches(torch.utils.data.Sampler):
    """Index batches of a seeded permutation: a new order each epoch, the same for the same (seed, epoch).

    Under DDP every rank draws the same permutation and takes its own equal-sized, disjoint shard.
    Lightning calls ``set_epoch`` at the start of each epoch.
    """

    def __init__(
        self,
        n: int,
        batch_size: int,
        seed: int,
        shuffle: bool = True,
        rank: int = 0,
        world_size: int = 1,
        device: torch.device | str = "cpu",
    ) -> None:
        self.n, self.batch_size, self.seed, self.shuffle = n, batch_size, seed, shuffle
        self.rank, self.world_size, self.device = rank, world_size, torch.device(device)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def shard(self) -> torch.Tensor:
        if self.shuffle:
            g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
            order = torch.randperm(self.n, generator=g)
        else:
            order = torch.arange(self.n)
        per_rank = self.n // self.world_size  # drop the remainder so every rank runs the same number of steps
        return order[self.rank * per_rank : (self.rank + 1) * per_rank].to(self.device)

    def __iter__(self) -> Iterator[torch.Tensor]:
        return iter(self.shard().split(self.batch_size))

    def __len__(self) -> int:
        return -(-(self.n // self.world_size) // self.batch_size)


class InMemoryLoader:
    """Yields ``(images float32 [B, 784] in [0, 1], labels int64 [B])`` by slicing tensors that stay in memory.

    Not a ``DataLoader`` on purpose: a batch is one gather and one cast, with no per-sample Python, no
    collation and no worker processes. Lightning finds ``sampler.set_epoch`` on it as on a DataLoader.
    """

    def __init__(
        self, images: torch.Tensor, labels: torch.Tensor, sampler: ShuffledBatches, steps_per_call: int = 1
    ) -> None:
        self.steps_per_call = steps_per_call  # > 1: lists of that many consecutive batches (see multi_step)
        self.images = images.to(sampler.device)
        self.labels = labels.to(sampler.device)
        self.sampler = sampler
        self.batch_sampler = None  # Lightning inspects both, like on a DataLoader
        self.batches_done = 0  # yielded so far in this epoch: what a mid-epoch checkpoint records
        self._resume_at: tuple[int, int] | None = None

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor] | list[tuple[torch.Tensor, torch.Tensor]]]:
        batches = self._batches()
        return batches if self.steps_per_call == 1 else groups_of(batches, self.steps_per_call)

    def _batches(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        # the body runs at the first next(), i.e. after Lightning's set_epoch
        skip = 0
        if self._resume_at is not None and self._resume_at[0] == self.sampler.epoch:
            skip = self._resume_at[1]
        self._resume_at = None
        self.batches_done = skip
        for i, idx in enumerate(self.sampler):
            if i < skip:  # consumed before the checkpoint: same (seed, epoch) order, so skip exactly those
                continue
            self.batches_done += 1
            # index_select: the rows images[idx] gives, without advanced indexing's overhead (more than the cast)
            yield self.images.index_select(0, idx).float().div_(255), self.labels.index_select(0, idx)

    # Lightning's fit loop stores these in the checkpoint and restores them on a mid-epoch resume
    def state_dict(self) -> dict[str, int]:
        return {"epoch": self.sampler.epoch, "batches_done": self.batches_done}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self._resume_at = (int(state["epoch"]), int(state["batches_done"]))

    def __len__(self) -> int:
        return -(-len(self.sampler) // self.steps_per_call)


class MNISTDataModule(L.LightningDataModule):
    """MNIST train/val (a fixed split of the official 60k) and test (the official 10k), held in memory."""

    def __init__(
        self,
        data_dir: str = "data",
        batch_size: int = 128,
        val_size: int = 5000,
        eval_batch_size: int = 2000,
        download: bool = True,
        verify_md5: bool = True,
        seed: int | None = None,
        predict_path: str | list[str] | None = None,
        steps_per_call: int = 1,
    ) -> None:
        super().__init__()
        if batch_size <= 0 or eval_batch_size <= 0:
            raise UserError(
                f"data.batch_size and data.eval_batch_size must be positive, got {batch_size}, {eval_batch_size}; "
                "e.g. --data.batch_size 128."
            )
        if not 0 <= val_size < 60000:
            raise UserError(
                f"data.val_size (training images held out for validation) must be in [0, 60000), got {val_size}; "
                "e.g. --data.val_size 5000."
            )
        self.save_hyperparameters(ignore="steps_per_call")  # the model's setting, linked in by the CLI
        self.steps_per_call = steps_per_call
        self.splits: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
        self._prepared = False
        # people's own images for `predict`: all read and checked now, before a run folder or CSV is written
        self.predict_files: list[Path] = []
        self.predict_images: torch.Tensor | None = None
        if predict_path:
            self.predict_files, self.predict_images = load_predict_images(predict_path)

    def prepare_data(self) -> None:
        if self._prepared:  # the CLI checks the data before the run starts; Lightning then asks again
            return
        ensure_raw_files(self.hparams.data_dir, self.hparams.download, self.hparams.verify_md5)
        self._prepared = True

    def setup(self, stage: str | None = None) -> None:
        if self.splits:
            return  # decoded once per process, whatever the number of stages run
        if stage == "predict" and self.predict_images is not None:
            return  # predicting people's own images: MNIST's 70,000 need not be decoded
        raw = ensure_raw_files(self.hparams.data_dir, download=False, verify_md5=False)
        images, labels = load_split(raw, "train")
        order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(SPLIT_SEED))
        n_val = self.hparams.val_size
        train_idx, val_idx = order[n_val:], order[:n_val]
        self.splits["train"] = images[train_idx], labels[train_idx]
        self.splits["val"] = images[val_idx], labels[val_idx]
        self.splits["test"] = load_split(raw, "t10k")

    @property
    def seed(self) -> int:
        # None follows the run's seed_everything (Lightning exports it, also to DDP workers)
        return self.hparams.seed if self.hparams.seed is not None else int(os.environ.get("PL_GLOBAL_SEED", 0))

    def _loader(self, split: str, train: bool) -> InMemoryLoader:
        images, labels = self.splits[split]
        trainer = self.trainer
        sampler = ShuffledBatches(
            len(labels),
            self.hparams.batch_size if train else self.hparams.eval_batch_size,
            seed=self.seed,
            # overfit_batches: the same first batches every epoch (Lightning turns shuffling off for DataLoaders)
            shuffle=train and not (trainer and trainer.overfit_batches > 0),
            rank=trainer.global_rank if trainer and train else 0,
            world_size=trainer.world_size if trainer and train else 1,
            device=trainer.strategy.root_device if trainer else "cpu",
        )
        return InMemoryLoader(images, labels, sampler, self.steps_per_call if train else 1)

    def train_dataloader(self) -> InMemoryLoader:
        return self._loader("train", train=True)

    def val_dataloader(self) -> InMemoryLoader:
        return self._loader("val", train=False)

    def test_dataloader(self) -> InMemoryLoader:
        return self._loader("test", train=False)

    def predict_dataloader(self) -> InMemoryLoader | ImageBatches:
        if self.predict_images is not None:
            return ImageBatches(self.predict_images, self.hparams.eval_batch_size)
        return self._loader("test", train=False)
