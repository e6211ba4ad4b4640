"""The four raw MNIST files: download what is missing, check MD5s, decode IDX, with errors that name the file.

Decoding needs only numpy, so the onnxruntime-only server reads the test digits with the same code.
"""

from __future__ import annotations

import gzip
import hashlib
import math
import os
import shutil
import sys
import tempfile
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np

from mnist_lightning.common.errors import UserError
from mnist_lightning.common.layout import TEST_IMAGES, TEST_LABELS, TRAIN_IMAGES, TRAIN_LABELS, mnist_raw_folder

# the four official files and their MD5s (the same as torchvision's MNIST.resources; a test keeps them equal)
FILES = {
    TRAIN_IMAGES: "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    TRAIN_LABELS: "d53e105ee54ea40749a09fcbcd1e9432",
    TEST_IMAGES: "9fb629c4189551a2d022fa330f9573f3",
    TEST_LABELS: "ec29112dd5afa0611ce80d1b7f02629c",
}
# their sizes in bytes: a file shorter than its official size is checked for truncation before blaming its MD5
SIZES = {TRAIN_IMAGES: 9912422, TRAIN_LABELS: 28881, TEST_IMAGES: 1648877, TEST_LABELS: 4542}
MIRRORS = ("https://ossci-datasets.s3.amazonaws.com/mnist/", "http://yann.lecun.com/exdb/mnist/")
IMAGE_MAGIC, LABEL_MAGIC = 2051, 2049


raw_folder = mnist_raw_folder  # the name the data modules and benchmarks use


def _md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def _missing_files_message(raw: Path, reason: str) -> str:
    names = "\n".join(f"  {name}" for name in FILES)
    return (
        f"MNIST is not in {raw} and could not be downloaded ({reason}).\n"
        f"Put these four files there (from {MIRRORS[0]} or {MIRRORS[1]}):\n"
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
                if (raw / name).stat().st_size < SIZES[name]:  # shorter than the official file: cut, or another one
                    read_idx(raw / name, IMAGE_MAGIC if "idx3" in name else LABEL_MAGIC)  # says "truncated" if cut
                raise UserError(
                    f"{raw / name} is not the official MNIST file (md5 {actual}, expected {md5}): it is corrupt or "
                    "a different dataset. Delete it to download it again, or set --data.verify_md5 false if you "
                    "meant to use your own IDX files."
                )
    return raw


def _fetch(url: str, dest: Path) -> None:
    """Stream ``url`` into ``dest`` (stdlib only: the shared part needs neither torch nor torchvision)."""
    request = urllib.request.Request(url, headers={"User-Agent": "mnist-lightning"})  # some mirrors refuse none
    with urllib.request.urlopen(request, timeout=60) as response, open(dest, "wb") as out:
        shutil.copyfileobj(response, out, CHUNK)


def _download(raw: Path, name: str) -> None:
    raw.mkdir(parents=True, exist_ok=True)
    errors = []
    for mirror in MIRRORS:
        # download into a temp folder beside the target, so a broken transfer never leaves a half file in raw/
        with tempfile.TemporaryDirectory(dir=raw) as tmp:
            try:
                print(f"downloading {mirror}{name}", file=sys.stderr, flush=True)
                _fetch(mirror + name, Path(tmp) / name)
                if (actual := _md5(Path(tmp) / name)) != FILES[name]:
                    raise ValueError(f"md5 {actual}, expected {FILES[name]}")
                os.replace(Path(tmp) / name, raw / name)
                return
            except Exception as err:  # noqa: BLE001 - any network failure means "try the next mirror"
                errors.append(f"{mirror}: {type(err).__name__}: {err}")
    raise UserError(_missing_files_message(raw, "; ".join(errors)[:300]))


CHUNK = 1 << 20


def read_idx(path: Path, magic: int) -> np.ndarray:
    """Decode one IDX file (gzipped or not) into a uint8 array, with errors that name the file.

    The payload is read straight into the array's memory: one copy of the data, not three.
    """
    if not path.is_file():  # not there at all: neither truncated nor corrupt
        raise UserError(f"{path} does not exist; put the MNIST file there, or name the folder that holds MNIST/raw/.")
    try:
        opener: Any = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rb") as f:
            header = f.read(4)
            if len(header) < 4 or int.from_bytes(header, "big") != magic:
                found = int.from_bytes(header, "big") if len(header) == 4 else None
                raise UserError(
                    f"{path} is not an MNIST IDX file of the expected kind (magic number {found}, expected {magic}); "
                    "check that images and labels files are not swapped or replaced."
                )
            dims = [int.from_bytes(f.read(4), "big") for _ in range(header[3])]
            out = np.empty(math.prod(dims), dtype=np.uint8)
            view, got = memoryview(out), 0
            while got < len(view) and (n := f.readinto(view[got : got + CHUNK])):  # chunks: gzip buffers each read
                got += n
            extra = len(f.read(1))
    except (OSError, EOFError, gzip.BadGzipFile) as err:
        raise UserError(
            f"{path} cannot be read ({err}); it is truncated or corrupt. Delete it and download it again."
        ) from None
    if got != out.size or extra:
        offset = 4 + 4 * len(dims)
        size = f"{offset + got} bytes" if not extra else "more bytes"
        raise UserError(f"{path} holds {size} but its header promises {offset + out.size}; it is damaged.")
    return out.reshape(dims)


def copy_raw(src: str | Path, data_dir: str | Path) -> Path:
    """Copy the four raw files from ``src`` into ``data_dir/MNIST/raw`` (for offline set-ups and CI)."""
    raw = raw_folder(data_dir)
    raw.mkdir(parents=True, exist_ok=True)
    for name in FILES:
        shutil.copyfile(Path(src) / name, raw / name)
    return raw
