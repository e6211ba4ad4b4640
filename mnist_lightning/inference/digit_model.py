"""An exported ``mnist.onnx`` in onnxruntime: the one place that opens a session and turns logits into probabilities.

Used by ``predict-onnx`` and ``serve`` alike, so both check the file the same way and give the same numbers.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort

from mnist_lightning.common.contract import INPUT_NAME, OUTPUT_NAME
from mnist_lightning.common.errors import UserError


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax of ``[N, 10]`` logits, shifted by the row maximum so large logits cannot overflow."""
    e = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


class OnnxDigitModel:
    """``images`` float32 [N, 784] in [0, 1] -> ``numbers`` [N, 10] logits, as ``export`` writes it."""

    def __init__(self, path: str | Path) -> None:
        path = Path(path)
        if not path.is_file() or path.stat().st_size == 0:
            raise UserError(
                f"{path}: no such ONNX file; train first (make train), export one (python -m mnist_lightning "
                "export), or pass the path of an exported mnist.onnx."
            )
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1  # a 784-256-32-10 MLP is faster on one thread than on a thread pool
        try:
            self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except Exception as err:  # noqa: BLE001 - onnxruntime raises its own assorted types for a bad file
            raise UserError(f"{path}: not a loadable ONNX model ({str(err)[:200]})") from None
        inputs, outputs = self.session.get_inputs(), self.session.get_outputs()
        if [i.name for i in inputs] != [INPUT_NAME] or OUTPUT_NAME not in [o.name for o in outputs]:
            raise UserError(
                f"{path}: expected input '{INPUT_NAME}' and output '{OUTPUT_NAME}'; is it an mnist-lightning export?"
            )
        self.path = path

    def logits(self, pixels: np.ndarray) -> np.ndarray:
        (out,) = self.session.run([OUTPUT_NAME], {INPUT_NAME: np.ascontiguousarray(pixels, dtype=np.float32)})
        return out

    def probabilities(self, pixels: np.ndarray) -> np.ndarray:
        """float32 [N, 784] -> softmax probabilities [N, 10] (computed in float64, as the CSVs print them)."""
        return softmax(self.logits(pixels).astype(np.float64))
