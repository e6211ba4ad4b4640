"""The exported model's interface, shared by the exporter (training) and its users (inference)."""

from __future__ import annotations

INPUT_NAME, OUTPUT_NAME = "images", "numbers"
INPUT_CONVENTION = "28x28 flattened to 784, pixels in [0,1], white digit on black background"
LABELS = tuple(range(10))
DOC_STRING = (
    "MNIST digit classifier (mnist-lightning). Input 'images': float32 [batch, 784], a 28x28 grayscale digit "
    "flattened row by row, white digit on black, pixels in [0, 1]. Output 'numbers': float32 [batch, 10] logits "
    "for the digits 0-9."
)
