"""``python -m mnist_lightning.onnx_predict mnist.onnx IMAGES...``: predict digits with onnxruntime, no torch.

Uses the same preprocessing (``preprocess.py``) and the same CSV/table (``prediction_table.py``) as
``python -m mnist_lightning predict``, so both give the same digits for the same files.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from mnist_lightning.errors import UserError
from mnist_lightning.prediction_table import Prediction, predictions, softmax, summary, write_csv
from mnist_lightning.preprocess import ImageError, load_batch

INPUT_NAME, OUTPUT_NAME = "images", "numbers"  # as export.py writes them


def predict_files(model: str | Path, inputs: list[str]) -> list[Prediction]:
    """Every image is read and checked before the model runs."""
    import onnxruntime as ort

    model = Path(model)
    if not model.is_file() or model.stat().st_size == 0:
        raise UserError(f"{model}: no ONNX model there; export one with: python -m mnist_lightning export")
    try:
        files, pixels = load_batch(inputs)
    except ImageError as err:
        raise UserError(str(err)) from None
    try:
        session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    except Exception as err:  # noqa: BLE001 - onnxruntime raises its own types for non-ONNX files
        raise UserError(f"{model} is not a readable ONNX model ({str(err)[:200]})") from None
    if [i.name for i in session.get_inputs()] != [INPUT_NAME]:
        raise UserError(f"{model} does not take an '{INPUT_NAME}' input; is it an mnist-lightning export?")
    (logits,) = session.run([OUTPUT_NAME], {INPUT_NAME: pixels.astype(np.float32)})
    return predictions([str(f) for f in files], softmax(logits.astype(np.float64)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mnist_lightning.onnx_predict", description=__doc__.splitlines()[0])
    parser.add_argument("model", help="the exported ONNX file (mnist.onnx)")
    parser.add_argument("images", nargs="+", help="PNG/JPEG files or folders of them")
    parser.add_argument("--output", default="predictions.csv", help="CSV to write (default: %(default)s)")
    args = parser.parse_args(argv)
    try:
        rows = predict_files(args.model, args.images)
        path = write_csv(args.output, rows)
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(summary(rows, path))
    return 0


if __name__ == "__main__":
    sys.exit(main())
