"""Pictures for TensorBoard, drawn with PIL (no plotting library): a confusion matrix and a grid of digits."""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from mnist_lightning.common.contract import IMAGE_SIDE

CELL = 34  # pixels per confusion-matrix cell: room for a 4-digit count
SCALE, CAPTION, PAD = 3, 16, 2  # misclassified grid: enlargement, caption strip and gap, in pixels
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


def misclassified_grid(
    images: torch.Tensor, labels: torch.Tensor, preds: torch.Tensor, confidence: torch.Tensor, nrow: int = 8
) -> np.ndarray:
    """Digits captioned ``<true> as <predicted> <confidence>`` in a grid, RGB uint8 [H, W, 3].

    Each digit is enlarged ``SCALE`` times over a black caption strip, in cells ``PAD`` pixels apart (the layout of
    torchvision's ``make_grid``), drawn into one array and one PIL image: an image per tile took twice as long.
    """
    if len(images) == 0:
        img = Image.new("RGB", (260, 40), "black")
        ImageDraw.Draw(img).text((10, 12), "no misclassified digits", fill="white", font=_font(13))
        return np.asarray(img)
    side, n = IMAGE_SIDE * SCALE, len(images)
    cols, rows = min(nrow, n), -(-n // nrow)
    cell_h, cell_w = side + CAPTION + PAD, side + PAD
    digits = (images.detach().float().cpu().reshape(n, IMAGE_SIDE, IMAGE_SIDE).clamp(0, 1) * 255).round().byte()
    big = digits.numpy().repeat(SCALE, axis=1).repeat(SCALE, axis=2)  # nearest-neighbour enlargement
    canvas = np.full((rows * cell_h + PAD, cols * cell_w + PAD, 3), 90, dtype=np.uint8)
    corners = [(PAD + (i // nrow) * cell_h, PAD + (i % nrow) * cell_w) for i in range(n)]
    for (y, x), digit in zip(corners, big, strict=True):
        canvas[y : y + side, x : x + side] = digit[..., None]
        canvas[y + side : y + side + CAPTION, x : x + side] = 0
    img = Image.fromarray(canvas)
    draw, font = ImageDraw.Draw(img), _font(12)
    for (y, x), t, p, c in zip(corners, labels.tolist(), preds.tolist(), confidence.tolist(), strict=True):
        caption = f"{int(t)} as {int(p)}  {float(c):.0%}"
        draw.text((x + side // 2, y + side + 2), caption, fill=(255, 210, 0), font=font, anchor="mt")
    return np.asarray(img)
