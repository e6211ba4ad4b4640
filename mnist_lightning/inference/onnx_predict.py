"""``python -m mnist_lightning predict-onnx mnist.onnx IMAGES...``: predict digits with onnxruntime, no torch.

Uses the same preprocessing (``preprocess.py``) and the same CSV/table (``common/predictions.py``) as
``python -m mnist_lightning predict``, so both give the same digits for the same files.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from mnist_lightning.common.errors import UserError
from mnist_lightning.common.layout import onnx_predictions_csv
from mnist_lightning.common.predictions import Prediction, predictions, summary, write_csv
from mnist_lightning.inference.digit_model import OnnxDigitModel
from mnist_lightning.inference.preprocess import ImageError, load_batch


def predict_files(model: str | Path, inputs: list[str]) -> list[Prediction]:
    """Every image is read and checked before the model runs."""
    digits = OnnxDigitModel(model)
    try:
        files, pixels = load_batch(inputs)
    except ImageError as err:
        raise UserError(str(err)) from None
    return predictions([str(f) for f in files], digits.probabilities(pixels))


def predict_onnx_main(argv: list[str]) -> None:
    """``python -m mnist_lightning predict-onnx MODEL IMAGES... [--output CSV]``."""
    parser = argparse.ArgumentParser(prog="python -m mnist_lightning predict-onnx", description=__doc__.splitlines()[0])
    parser.add_argument("model", help="the exported ONNX file (mnist.onnx)")
    parser.add_argument("images", nargs="+", help="PNG/JPEG files or folders of them")
    parser.add_argument(
        "--output", default=None, help="CSV to write (default: predict/predictions-<model name>.csv beside the model)"
    )
    args = parser.parse_args(argv)
    rows = predict_files(args.model, args.images)
    print(summary(rows, write_csv(args.output or onnx_predictions_csv(args.model), rows)))
