"""The facts both sides share: the MNIST image format, the exported model's interface, the metric that picks the best
checkpoint. Torch-free, so that training, export and inference all read them from here."""

from __future__ import annotations

IMAGE_SIDE = 28  # MNIST images are IMAGE_SIDE x IMAGE_SIDE grayscale pixels
INPUT_SIZE = IMAGE_SIDE * IMAGE_SIDE
NUM_CLASSES = 10
LABELS = tuple(range(NUM_CLASSES))
# pixel mean and std of the 60k MNIST training images, pixels in [0, 1]
MNIST_MEAN, MNIST_STD = 0.1307, 0.3081
MONITOR = "val/acc"  # the validation metric that picks the best checkpoint, the tune objective and the reports

INPUT_NAME, OUTPUT_NAME = "images", "numbers"
INPUT_CONVENTION = (
    f"{IMAGE_SIDE}x{IMAGE_SIDE} flattened to {INPUT_SIZE}, pixels in [0,1], white digit on black background"
)
DOC_STRING = (
    f"MNIST digit classifier (mnist-lightning). Input '{INPUT_NAME}': float32 [batch, {INPUT_SIZE}], a "
    f"{IMAGE_SIDE}x{IMAGE_SIDE} grayscale digit flattened row by row, white digit on black, pixels in [0, 1]. Output "
    f"'{OUTPUT_NAME}': float32 [batch, {NUM_CLASSES}] logits for the digits 0-{NUM_CLASSES - 1}."
)
