"""MNIST as in-memory tensors: download/verify the four raw files, decode them once, batch by index slicing."""

from __future__ import annotations

import gzip
import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import lightning as L
import torch
from torchvision.datasets import MNIST

from mnist_lightning.errors import UserError
from mnist_lightning.image_data import ImageBatches, load_predict_images

# the four official files and their MD5s, as torchvision knows them
FILES = {name: md5 for name, md5 in MNIST.resources}
IMAGE_MAGIC, LABEL_MAGIC = 2051, 2049
SPLIT_SEED = 1234  # the train/val split is fixed, whatever the training seed, so runs compare on one val set


def raw_folder(data_dir: str | Path) -> Path:
    return Path(data_dir) / "MNIST" / "raw"


def _md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def _missing_files_message(raw: Path, reason: str) -> str:
    names = "\n".join(f"  {name}" for name in FILES)
    return (
        f"MNIST is not in {raw} and could not be downloaded ({reason}).\n"
        f"Put these four files there (from {MNIST.mirrors[0]} or http://yann.lecun.com/exdb/mnist/):\n"
        f"{names}\n"
        "or point --data.data_dir at a folder that has MNIST/raw/ with them."
    )


def ensure_raw_files(data_dir: str | Path, download: bool = True, verify_md5: bool = True) -> Path:
    """Make sure the four ``.gz`` files are in ``data_dir/MNIST/raw``; download only what is missing."""
    raw = raw_folder(data_dir)
    missing = [name for name in FILES if not (raw / name).is_file()]
    if missing and not download:
        raise UserError(_missing_files_message(raw, f"missing {', '.join(missing)} and download is disabled"))
    for name in missing:
        _download(raw, name)
    if verify_md5:
        for name, md5 in FILES.items():
            if (actual := _md5(raw / name)) != md5:
                raise UserError(
                    f"{raw / name} is not the official MNIST file (md5 {actual}, expected {md5}): it is corrupt or "
                    "a different dataset. Delete it to download it again, or set --data.verify_md5 false if you "
                    "meant to use your own IDX files."
                )
    return raw


def _download(raw: Path, name: str) -> None:
    from torchvision.datasets.utils import download_url

    raw.mkdir(parents=True, exist_ok=True)
    errors = []
    for mirror in MNIST.mirrors:
        # download into a temp folder beside the target, so a broken transfer never leaves a half file in raw/
        with tempfile.TemporaryDirectory(dir=raw) as tmp:
            try:
                download_url(mirror + name, root=tmp, filename=name, md5=FILES[name])
                os.replace(Path(tmp) / name, raw / name)
                return
            except Exception as err:  # noqa: BLE001 - any network failure means "try the next mirror"
                errors.append(f"{mirror}: {type(err).__name__}: {err}")
    raise UserError(_missing_files_message(raw, "; ".join(errors)[:300]))


def read_idx(path: Path, magic: int) -> torch.Tensor:
    """Decode one IDX file (gzipped or not) into a uint8 tensor, with errors that name the file."""
    try:
        opener: Any = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rb") as f:
            data = f.read()
    except (OSError, EOFError, gzip.BadGzipFile) as err:
        raise UserError(
            f"{path} cannot be read ({err}); it is truncated or corrupt. Delete it and download it again."
        ) from None
    if len(data) < 8 or int.from_bytes(data[:4], "big") != magic:
        found = int.from_bytes(data[:4], "big") if len(data) >= 4 else None
        raise UserError(
            f"{path} is not an MNIST IDX file of the expected kind (magic number {found}, expected {magic}); "
            "check that images and labels files are not swapped or replaced."
        )
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    offset = 4 + 4 * ndim
    expected = offset + int(torch.tensor(dims).prod())
    if len(data) != expected:
        raise UserError(f"{path} holds {len(data)} bytes but its header promises {expected}; it is truncated.")
    return torch.frombuffer(bytearray(data[offset:]), dtype=torch.uint8).reshape(dims)


def load_split(raw: Path, prefix: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Images as uint8 ``[N, 784]`` and labels as int64 ``[N]`` for ``prefix`` "train" or "t10k"."""
    images = read_idx(raw / f"{prefix}-images-idx3-ubyte.gz", IMAGE_MAGIC)
    labels = read_idx(raw / f"{prefix}-labels-idx1-ubyte.gz", LABEL_MAGIC)
    if images.shape[0] != labels.shape[0]:
        raise UserError(
            f"{raw}/{prefix}-*: {images.shape[0]} images but {labels.shape[0]} labels; the two files do not belong "
            "together. Replace them with a matching pair."
        )
    return images.reshape(images.shape[0], -1), labels.long()


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

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, sampler: ShuffledBatches) -> None:
        self.images = images.to(sampler.device)
        self.labels = labels.to(sampler.device)
        self.sampler = sampler
        self.batch_sampler = None  # Lightning inspects both, like on a DataLoader
        self.batches_done = 0  # yielded so far in this epoch: what a mid-epoch checkpoint records
        self._resume_at: tuple[int, int] | None = None

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
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
            yield self.images[idx].float().div_(255), self.labels[idx]

    # Lightning's fit loop stores these in the checkpoint and restores them on a mid-epoch resume
    def state_dict(self) -> dict[str, int]:
        return {"epoch": self.sampler.epoch, "batches_done": self.batches_done}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self._resume_at = (int(state["epoch"]), int(state["batches_done"]))

    def __len__(self) -> int:
        return len(self.sampler)


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
        self.save_hyperparameters()
        self.splits: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
        # people's own images for `predict`: all read and checked now, before a run folder or CSV is written
        self.predict_files: list[Path] = []
        self.predict_images: torch.Tensor | None = None
        if predict_path:
            self.predict_files, self.predict_images = load_predict_images(predict_path)

    def prepare_data(self) -> None:
        ensure_raw_files(self.hparams.data_dir, self.hparams.download, self.hparams.verify_md5)

    def setup(self, stage: str | None = None) -> None:
        if self.splits:
            return  # decoded once per process, whatever the number of stages run
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
            shuffle=train,
            rank=trainer.global_rank if trainer and train else 0,
            world_size=trainer.world_size if trainer and train else 1,
            device=trainer.strategy.root_device if trainer else "cpu",
        )
        return InMemoryLoader(images, labels, sampler)

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


def copy_raw(src: str | Path, data_dir: str | Path) -> Path:
    """Copy the four raw files from ``src`` into ``data_dir/MNIST/raw`` (for offline set-ups and CI)."""
    raw = raw_folder(data_dir)
    raw.mkdir(parents=True, exist_ok=True)
    for name in FILES:
        shutil.copyfile(Path(src) / name, raw / name)
    return raw
