"""Pictures for TensorBoard, drawn with PIL (no plotting library): a confusion matrix and a grid of digits."""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont
from torchvision.utils import make_grid

from mnist_lightning.common.contract import IMAGE_SIDE

CELL = 34  # pixels per confusion-matrix cell: room for a 4-digit count
WHITE, BLUE, RED = np.array([255, 255, 255]), np.array([33, 102, 172]), np.array([178, 24, 43])


def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    return ImageFont.load_default(size=size)


def _mix(colour: np.ndarray, amount: float) -> tuple[int, int, int]:
    r, g, b = (WHITE + (colour - WHITE) * amount).round().astype(int)
    return int(r), int(g), int(b)


def confusion_image(matrix: torch.Tensor, title: str) -> np.ndarray:
    """A 10x10 confusion matrix (rows: true digit, columns: predicted) as an RGB uint8 [H, W, 3] image.

    Each cell shows its count. Colour is the share of the true digit's row: blue on the diagonal (right), red off
    it (wrong), with a square root on the errors so that a handful of confusions is still visible next to 98 %.
    """
    counts = matrix.detach().cpu().long().numpy()
    n = counts.shape[0]
    share = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    left, top = 44, 52
    img = Image.new("RGB", (left + n * CELL + 10, top + n * CELL + 26), "white")
    draw = ImageDraw.Draw(img)
    small, tiny = _font(12), _font(10)
    draw.text((6, 4), title, fill="black", font=_font(13))
    draw.text((left + n * CELL // 2, 22), "predicted", fill="black", font=small, anchor="mt")
    draw.text((4, top + n * CELL + 8), "rows: true digit", fill="black", font=small)
    for i in range(n):
        draw.text((left + i * CELL + CELL // 2, top - 4), str(i), fill="black", font=small, anchor="mb")
        draw.text((left - 8, top + i * CELL + CELL // 2), str(i), fill="black", font=small, anchor="rm")
        for j in range(n):
            if i == j:
                colour = _mix(BLUE, share[i, j])
            else:
                colour = _mix(RED, float(np.sqrt(share[i, j])))
            x, y = left + j * CELL, top + i * CELL
            draw.rectangle((x, y, x + CELL - 1, y + CELL - 1), fill=colour, outline=(220, 220, 220))
            if counts[i, j] or i == j:
                ink = "white" if sum(colour) < 3 * 140 else "black"
                draw.text((x + CELL // 2, y + CELL // 2), str(counts[i, j]), fill=ink, font=tiny, anchor="mm")
    return np.asarray(img)


def _tile(pixels: torch.Tensor, caption: str, scale: int = 3) -> torch.Tensor:
    """One 28x28 digit, enlarged, with a caption strip under it, as uint8 [3, H, W]."""
    side = IMAGE_SIDE * scale
    digit = (pixels.detach().float().cpu().reshape(IMAGE_SIDE, IMAGE_SIDE).clamp(0, 1) * 255).round().byte().numpy()
    tile = Image.new("RGB", (side, side + 16), "black")
    tile.paste(Image.fromarray(digit, mode="L").resize((side, side), Image.Resampling.NEAREST).convert("RGB"))
    ImageDraw.Draw(tile).text((side // 2, side + 2), caption, fill=(255, 210, 0), font=_font(12), anchor="mt")
    return torch.from_numpy(np.asarray(tile).copy()).permute(2, 0, 1)


def misclassified_grid(
    images: torch.Tensor, labels: torch.Tensor, preds: torch.Tensor, confidence: torch.Tensor, nrow: int = 8
) -> np.ndarray:
    """Digits captioned ``<true> as <predicted> <confidence>`` in a grid (torchvision ``make_grid``), RGB uint8."""
    if len(images) == 0:
        img = Image.new("RGB", (260, 40), "black")
        ImageDraw.Draw(img).text((10, 12), "no misclassified digits", fill="white", font=_font(13))
        return np.asarray(img)
    tiles = [
        _tile(x, f"{int(t)} as {int(p)}  {float(c):.0%}")
        for x, t, p, c in zip(images, labels, preds, confidence, strict=True)
    ]
    grid = make_grid(tiles, nrow=nrow, padding=2, pad_value=90)
    return grid.permute(1, 2, 0).numpy()
