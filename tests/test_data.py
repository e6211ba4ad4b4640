from pathlib import Path

import pytest
import torch

from mnist_lightning.common.errors import UserError
from mnist_lightning.common.mnist_files import ensure_raw_files
from mnist_lightning.training.data import MNISTDataModule, ShuffledBatches


def epoch_order(sampler: ShuffledBatches, epoch: int) -> torch.Tensor:
    sampler.set_epoch(epoch)
    return torch.cat(list(sampler))


def test_every_sample_once_per_epoch_and_batches_sized() -> None:
    sampler = ShuffledBatches(1000, 128, seed=3)
    batches = list(sampler)
    assert len(batches) == len(sampler) == 8
    assert all(len(b) == 128 for b in batches[:-1]) and len(batches[-1]) == 1000 - 7 * 128
    assert torch.equal(torch.cat(batches).sort().values, torch.arange(1000))


def test_order_changes_between_epochs_and_repeats_for_same_seed_and_epoch() -> None:
    a, b = ShuffledBatches(1000, 100, seed=1), ShuffledBatches(1000, 100, seed=1)
    assert not torch.equal(epoch_order(a, 0), epoch_order(a, 1))
    assert torch.equal(epoch_order(a, 5), epoch_order(b, 5))
    assert not torch.equal(epoch_order(a, 0), epoch_order(ShuffledBatches(1000, 100, seed=2), 0))


@pytest.mark.parametrize("world_size", [2, 3])
def test_ddp_shards_are_disjoint_equal_and_cover(world_size: int) -> None:
    n = 1001
    shards = [epoch_order(ShuffledBatches(n, 64, seed=7, rank=r, world_size=world_size), 4) for r in range(world_size)]
    assert len({len(s) for s in shards}) == 1  # same number of samples, so ranks step in lockstep
    joined = torch.cat(shards)
    assert len(joined.unique()) == len(joined)  # disjoint
    assert len(joined) == n - n % world_size  # covering, up to the remainder dropped for equal shards


def test_datamodule_batches_are_float_pixels_and_split_is_fixed(data_dir: Path) -> None:
    dm = MNISTDataModule(str(data_dir), batch_size=32, val_size=100, verify_md5=False, download=False)
    dm.prepare_data()
    dm.setup("fit")
    images, labels = next(iter(dm.train_dataloader()))
    assert images.shape == (32, 784) and images.dtype == torch.float32
    assert 0.0 <= images.min() and images.max() <= 1.0 and images.max() == 1.0
    assert labels.dtype == torch.int64
    assert len(dm.splits["val"][1]) == 100 and len(dm.splits["train"][1]) == 500
    dm2 = MNISTDataModule(str(data_dir), val_size=100, verify_md5=False, seed=99)
    dm2.setup("fit")
    assert torch.equal(dm.splits["val"][0], dm2.splits["val"][0])


def test_missing_files_without_network_names_the_files_and_the_folder(tmp_path: Path, monkeypatch) -> None:
    # no network here either way; make sure nothing is fetched even where there is one
    monkeypatch.setattr("mnist_lightning.common.mnist_files._fetch", _refuse_download)
    with pytest.raises(UserError) as err:
        ensure_raw_files(tmp_path, download=True)
    msg = str(err.value)
    assert str(tmp_path / "MNIST" / "raw") in msg
    for name in ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz"):
        assert name in msg
    assert "could not be downloaded" in msg
    assert not any((tmp_path / "MNIST" / "raw").iterdir())  # no half-downloaded files left behind


def _refuse_download(*args, **kwargs) -> None:
    raise OSError("network is unreachable")


def test_synthetic_files_fail_the_official_md5_check(data_dir: Path) -> None:
    with pytest.raises(UserError, match=r"is not the official MNIST file .*--data.verify_md5 false"):
        ensure_raw_files(data_dir, download=False, verify_md5=True)


def test_file_list_and_mirrors_match_torchvision() -> None:
    from torchvision.datasets import MNIST

    from mnist_lightning.common.mnist_files import FILES, MIRRORS

    assert FILES == dict(MNIST.resources)
    assert list(MIRRORS) == list(MNIST.mirrors)


def test_download_fetches_missing_files_from_a_mirror_and_checks_them(
    data_dir: Path, tmp_path: Path, monkeypatch
) -> None:
    import hashlib

    from mnist_lightning.common import mnist_files

    mirror = data_dir / "MNIST" / "raw"
    sums = {name: hashlib.md5((mirror / name).read_bytes()).hexdigest() for name in mnist_files.FILES}
    monkeypatch.setattr(mnist_files, "FILES", sums)
    monkeypatch.setattr(mnist_files, "MIRRORS", ("file:///nonexistent/", mirror.as_uri() + "/"))
    raw = ensure_raw_files(tmp_path, download=True)  # the first mirror fails, the second serves all four
    assert sorted(p.name for p in raw.iterdir()) == sorted(sums)
    assert all((raw / n).read_bytes() == (mirror / n).read_bytes() for n in sums)
