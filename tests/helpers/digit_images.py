"""Hand-drawn-looking digits made with PIL ImageDraw, saved as real image files for the predict tests."""

from __future__ import annotations

import math
from pathlib import Path

from PIL import Image, ImageDraw

Point = tuple[float, float]


def _arc(cx: float, cy: float, rx: float, ry: float, start: float, end: float, n: int = 24) -> list[Point]:
    """Points on an ellipse, angles in degrees, 0 = right, 90 = down (image coordinates)."""
    return [
        (cx + rx * math.cos(math.radians(a)), cy + ry * math.sin(math.radians(a)))
        for a in (start + (end - start) * i / n for i in range(n + 1))
    ]


# strokes in a unit box (x right, y down), roughly how a person writes each digit
STROKES: dict[int, list[list[Point]]] = {
    0: [_arc(0.5, 0.5, 0.3, 0.4, 0, 360)],
    1: [[(0.35, 0.25), (0.55, 0.1), (0.55, 0.9)]],
    2: [_arc(0.5, 0.32, 0.28, 0.22, 180, 380) + [(0.2, 0.9), (0.82, 0.9)]],
    3: [_arc(0.48, 0.3, 0.26, 0.2, 200, 450), _arc(0.48, 0.7, 0.3, 0.2, 270, 520)],
    4: [[(0.62, 0.9), (0.62, 0.1), (0.15, 0.65), (0.85, 0.65)]],
    5: [[(0.78, 0.1), (0.3, 0.1), (0.27, 0.45)] + _arc(0.5, 0.65, 0.28, 0.23, 230, 500)],
    6: [_arc(0.75, 0.6, 0.45, 0.5, 250, 180) + _arc(0.52, 0.68, 0.22, 0.2, 180, 540)],
    7: [[(0.18, 0.1), (0.82, 0.1), (0.4, 0.9)]],
    8: [_arc(0.5, 0.3, 0.2, 0.19, 0, 360), _arc(0.5, 0.7, 0.25, 0.21, 0, 360)],
    9: [_arc(0.5, 0.32, 0.22, 0.21, 0, 360), [(0.72, 0.32), (0.66, 0.9)]],
}


def draw_digit(
    digit: int,
    size: tuple[int, int] = (200, 200),
    ink: tuple[int, int, int] | int = 0,
    paper: tuple[int, int, int] | int = 255,
    mode: str = "L",
    margin: float = 0.15,
) -> Image.Image:
    """A digit drawn with a thick pen in a ``size`` (width, height) image; the digit keeps a square-ish shape."""
    w, h = size
    img = Image.new(mode, size, paper)
    draw = ImageDraw.Draw(img)
    box = min(w, h) * (1 - 2 * margin)
    x0, y0 = (w - box * 0.8) / 2, (h - box) / 2  # digits are taller than wide
    pen = max(2, round(box * 0.11))
    for stroke in STROKES[digit]:
        points = [(x0 + x * box * 0.8, y0 + y * box) for x, y in stroke]
        draw.line(points, fill=ink, width=pen, joint="curve")
        for px, py in (points[0], points[-1]):  # round pen ends
            draw.ellipse((px - pen / 2, py - pen / 2, px + pen / 2, py + pen / 2), fill=ink)
    return img


def save_digit(path: Path, digit: int, **kwargs: object) -> Path:
    img = draw_digit(digit, **kwargs)  # type: ignore[arg-type]
    if path.suffix.lower() in (".jpg", ".jpeg"):
        img.convert("RGB").save(path, quality=90)
    else:
        img.save(path)
    return path


def make_digit_folder(folder: Path) -> dict[str, int]:
    """A mixed folder: PNG and JPEG, dark-on-light and light-on-dark, colour and grey, odd sizes. file -> digit."""
    folder.mkdir(parents=True, exist_ok=True)
    specs = [
        ("zero_light.png", 0, {}),
        ("one_dark.png", 1, {"ink": 255, "paper": 0}),
        ("two_tall.jpg", 2, {"size": (57, 131)}),
        ("three_colour.png", 3, {"mode": "RGB", "ink": (200, 30, 40), "paper": (250, 240, 200)}),
        ("four_wide.jpeg", 4, {"size": (301, 97), "ink": 230, "paper": 20}),
        ("seven_small.png", 7, {"size": (23, 31)}),
        ("eight_blue_dark.jpg", 8, {"mode": "RGB", "ink": (120, 200, 255), "paper": (10, 20, 60)}),
    ]
    return {save_digit(folder / name, d, **kw).name: d for name, d, kw in specs}
