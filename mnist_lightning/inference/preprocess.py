"""Turn people's digit images (any size, colour or not, light or dark background) into MNIST-style inputs.

The same steps MNIST itself was made with: grayscale, white digit on black, crop to the digit, scale it to fit
20x20 keeping its aspect ratio, and place it in 28x28 so that its centre of mass is the centre. Used by the torch
predict path, the onnxruntime path and the web page alike, so all three see the same pixels. Needs no torch.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from mnist_lightning.common.contract import IMAGE_SIDE, INPUT_SIZE

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"}


class ImageError(ValueError):
    """An input that is not a usable digit image; the message names the file and the problem."""


def load_image(path: str | Path) -> Image.Image:
    path = Path(path)
    if problem := "no such file" if not path.is_file() else "the file is empty" if not path.stat().st_size else "":
        raise ImageError(f"{path}: {problem}")
    try:
        with Image.open(path) as img:
            img.load()
            return img.copy()
    except (UnidentifiedImageError, OSError) as err:
        raise ImageError(f"{path}: not a readable image ({err})") from None


def to_grayscale(img: Image.Image) -> np.ndarray:
    """Float32 [H, W] in [0, 1]; transparent pixels count as white paper."""
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        paper = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(paper, rgba)
    return np.asarray(img.convert("L"), dtype=np.float32) / 255.0


def digit_ink(gray: np.ndarray, name: str = "image") -> np.ndarray:
    """Grayscale [H, W] in [0, 1] -> the ink above the background, white on black, scaled to peak 1.

    The one rule for "is there a digit" (images, the page's canvas and JSON pixels alike): ImageError when the
    brightest ink is under 0.1 above the background (the border's median).
    """
    border = np.concatenate([gray[0], gray[-1], gray[:, 0], gray[:, -1]])
    background = float(np.median(border))
    if background > 0.5:  # dark ink on light paper: make it white on black
        gray, background = 1.0 - gray, 1.0 - background
    ink = np.clip(gray - background, 0.0, None)
    peak = float(ink.max())
    if peak < 0.1:
        raise ImageError(f"{name}: no digit found (the image is blank or has no contrast)")
    return ink / peak


def mnist_pixels(img: Image.Image, name: str = "image") -> np.ndarray:
    """One image -> float32 [784], white digit on black, pixels in [0, 1], centred like MNIST."""
    ink = digit_ink(to_grayscale(img), name)
    rows, cols = np.nonzero(ink > 0.15)
    ink = ink[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]

    h, w = ink.shape
    scale = 20.0 / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    small = np.asarray(Image.fromarray(ink, mode="F").resize(size, Image.Resampling.LANCZOS), dtype=np.float32)
    small = np.clip(small, 0.0, 1.0)

    canvas = np.zeros((IMAGE_SIDE, IMAGE_SIDE), dtype=np.float32)
    top, left = (IMAGE_SIDE - small.shape[0]) // 2, (IMAGE_SIDE - small.shape[1]) // 2
    canvas[top : top + small.shape[0], left : left + small.shape[1]] = small
    # shift so the centre of mass lands on the centre, as MNIST did (clamped so the digit stays in the frame)
    ys, xs = np.indices(canvas.shape)
    mass = canvas.sum()
    centre = (IMAGE_SIDE - 1) / 2
    dy = int(np.clip(round(centre - (ys * canvas).sum() / mass), -top, IMAGE_SIDE - top - small.shape[0]))
    dx = int(np.clip(round(centre - (xs * canvas).sum() / mass), -left, IMAGE_SIDE - left - small.shape[1]))
    canvas = np.roll(canvas, (dy, dx), axis=(0, 1))
    return canvas.reshape(INPUT_SIZE)


def find_images(inputs: list[str | Path]) -> list[Path]:
    """Expand files and folders into the image files they name, sorted; errors name what was wrong."""
    found: list[Path] = []
    for item in map(Path, inputs):
        if item.is_dir():
            files = sorted(p for p in item.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
            if not files:
                raise ImageError(f"{item}: the folder holds no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
            found += files
        elif item.exists():
            found.append(item)
        else:
            raise ImageError(f"{item}: no such file or folder")
    return found


def load_batch(inputs: list[str | Path]) -> tuple[list[Path], np.ndarray]:
    """Files/folders -> (paths, float32 [N, 784]); every file is checked before anything is returned."""
    paths = find_images(inputs)
    pixels, problems = [], []
    for p in paths:
        try:
            pixels.append(mnist_pixels(load_image(p), str(p)))
        except ImageError as err:  # keep going: one message naming every bad file beats fixing them one by one
            problems.append(str(err))
    if problems:
        more = f"; and {len(problems) - 5} more" if len(problems) > 5 else ""
        raise ImageError(f"{len(problems)} of {len(paths)} files cannot be used: " + "; ".join(problems[:5]) + more)
    return paths, np.stack(pixels)
