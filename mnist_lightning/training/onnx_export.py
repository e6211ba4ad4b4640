"""ONNX export of the plain MyMNIST net, verified with onnx.checker and onnxruntime before it is published."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch

from mnist_lightning.atomic import replace_atomically
from mnist_lightning.errors import UserError
from mnist_lightning.model import INPUT_SIZE, MyMNIST

INPUT_NAME, OUTPUT_NAME = "images", "numbers"


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """``torch.load(weights_only=True)`` with errors that say what is wrong with the file."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"checkpoint {path} does not exist; pass an existing .ckpt file, 'best' or 'last'.")
    if path.stat().st_size == 0:
        raise UserError(f"checkpoint {path} is empty (0 bytes); it was never fully written. Use another checkpoint.")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)  # never runs pickled code
    except Exception as err:  # noqa: BLE001 - torch raises many types for non-checkpoint files
        if "Weights only load failed" in str(err):
            raise UserError(
                f"{path} is not a readable checkpoint: besides weights it holds pickled Python objects, and loading "
                "them could run arbitrary code, so it is refused (weights_only=True). Use a checkpoint written by fit."
            ) from None
        detail = (str(err).strip().splitlines() or [""])[0][:150]
        raise UserError(
            f"{path} is not a readable checkpoint: torch.load cannot read it ({type(err).__name__}: {detail}); "
            "it is not a PyTorch file or it is damaged. Pass a .ckpt file written by fit, 'best' or 'last'."
        ) from None
    if not isinstance(ckpt, dict) or "state_dict" not in ckpt:
        raise UserError(f"{path} is a torch file but not a Lightning checkpoint (no 'state_dict').")
    return ckpt


def net_from_checkpoint(path: str | Path) -> tuple[MyMNIST, dict[str, Any]]:
    """The float32 CPU MyMNIST stored in a MNISTClassifier checkpoint, and that checkpoint's dict."""
    ckpt = load_checkpoint(path)
    hparams = ckpt.get("hyper_parameters", {})
    hidden = list(hparams.get("hidden_layers", [256, 32]))
    # dropout shifts the layer indices (state_dict keys); standardize is part of the exported computation
    net = MyMNIST(hidden, dropout=float(hparams.get("dropout", 0.0)), standardize=bool(hparams.get("standardize")))
    weights = {k.removeprefix("net."): v for k, v in ckpt["state_dict"].items() if k.startswith("net.")}
    try:
        net.load_state_dict(weights)
    except RuntimeError as err:
        lines = [line.strip() for line in str(err).splitlines()[1:] if line.strip()]  # [0] is a generic header
        detail = (lines or [str(err)])[0][:250].rstrip(".")
        raise UserError(
            f"{path} does not hold a MyMNIST{hidden} net, the architecture its hyper-parameters name: {detail}. "
            "The file is damaged or not from this project; use another checkpoint."
        ) from None
    return net.float().eval(), ckpt


def export_onnx(net: torch.nn.Module, path: str | Path, metadata: dict[str, str] | None = None) -> Path:
    """Export ``net`` to one self-contained ONNX file, check it, then move it into place atomically."""
    import onnx

    path = Path(path)
    net = _cpu_float_copy(net)
    with replace_atomically(path, where="--output folder") as tmp:
        # batch 4, not 1: a batch-1 example would let the exporter specialise the batch size
        example = torch.rand(4, INPUT_SIZE)
        batch = torch.export.Dim("batch")
        program = torch.onnx.export(
            net,
            (example,),
            dynamo=True,
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            dynamic_shapes={"images": {0: batch}},
            external_data=False,
            verbose=False,
        )
        proto = program.model_proto
        if metadata:
            proto.doc_string = metadata.pop("doc_string", proto.doc_string)
            for key, value in metadata.items():
                proto.metadata_props.add(key=key, value=str(value))
        onnx.save_model(proto, tmp)
        verify_onnx(tmp, net)
    return path


def verify_onnx(path: str | Path, net: torch.nn.Module, atol: float = 1e-4) -> None:
    """onnx.checker plus onnxruntime at batch sizes 1 and 7, compared with PyTorch."""
    import onnx
    import onnxruntime as ort

    onnx.checker.check_model(str(path), full_check=True)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for n in (1, 7):
        x = torch.rand(n, INPUT_SIZE)
        (got,) = session.run([OUTPUT_NAME], {INPUT_NAME: x.numpy()})
        with torch.no_grad():
            want = net(x).numpy()
        if got.shape != (n, 10) or not np.allclose(got, want, atol=atol, rtol=0):
            raise RuntimeError(f"ONNX output of {path} differs from PyTorch at batch {n}")


def _cpu_float_copy(net: torch.nn.Module) -> torch.nn.Module:
    # a copy, so exporting never moves or casts the net that is training (GPU, bf16)
    return copy.deepcopy(net).to("cpu", torch.float32).eval()


class OnnxExport(L.Callback):
    """At the end of ``fit``, export the best checkpoint's net to ``<run dir>/<filename>`` (rank zero only)."""

    def __init__(self, filename: str = "mnist.onnx", enabled: bool = True) -> None:
        self.filename, self.enabled = filename, enabled
        self.path: Path | None = None

    def on_save_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict) -> None:
        # each checkpoint's own val/acc (last.ckpt's is not the run's best), for the ONNX metadata of any later export
        if (acc := trainer.callback_metrics.get("val/acc")) is not None:
            checkpoint["val_acc"] = float(acc)

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not self.enabled or trainer.sanity_checking:
            return
        out = Path(trainer.log_dir or trainer.default_root_dir) / self.filename  # log_dir is collective under DDP
        if not trainer.is_global_zero:
            return
        best = trainer.checkpoint_callback.best_model_path if trainer.checkpoint_callback else ""
        if best:
            net, ckpt = net_from_checkpoint(best)
            score = trainer.checkpoint_callback.best_model_score
        else:  # no checkpointing configured: export the weights as they are now
            net, ckpt, score = pl_module.net, {"hyper_parameters": dict(pl_module.hparams)}, None
        self.path = export_onnx(net, out, onnx_metadata(ckpt, best or "(final weights)", score))


def onnx_metadata(ckpt: dict[str, Any], source: str, val_acc: Any = None) -> dict[str, str]:
    hidden = ckpt.get("hyper_parameters", {}).get("hidden_layers")
    meta = {
        "doc_string": "MNIST digit classifier (mnist-lightning). Input 'images': float32 [batch, 784], a 28x28 "
        "grayscale digit flattened row by row, white digit on black, pixels in [0, 1]. Output 'numbers': "
        "float32 [batch, 10] logits for the digits 0-9.",
        "labels": ",".join(str(d) for d in range(10)),
        "input_convention": "28x28 flattened to 784, pixels in [0,1], white digit on black background",
        "hidden_layers": str(hidden),
        "checkpoint": str(source),
    }
    if val_acc is not None:
        meta["val_acc"] = f"{float(val_acc):.4f}"
    return meta


def checkpoint_val_acc(ckpt: dict[str, Any], path: Path) -> float | None:
    """The ``val/acc`` of this very checkpoint: stored in it, or else known when it is the run's best."""
    if ckpt.get("val_acc") is not None:
        return float(ckpt["val_acc"])
    for key, state in ckpt.get("callbacks", {}).items():
        best = state.get("best_model_path") if "ModelCheckpoint" in key else None
        if best and Path(best).name == path.name and state.get("best_model_score") is not None:
            return float(state["best_model_score"])
    return None


def export_main(argv: list[str]) -> Path:
    """``python -m mnist_lightning export``: export any checkpoint without training."""
    import argparse

    from mnist_lightning.runs import resolve_checkpoint

    parser = argparse.ArgumentParser(prog="python -m mnist_lightning export", description=export_main.__doc__)
    parser.add_argument("--ckpt_path", default="best", help="a .ckpt file, or best/last of the newest run")
    parser.add_argument("--output", default=None, help="ONNX file to write (default: mnist.onnx in the run folder)")
    parser.add_argument("--root", default=".", help="folder holding lightning_logs/ (for best/last)")
    args = parser.parse_args(argv)
    ckpt_path = resolve_checkpoint(args.ckpt_path, args.root)
    net, ckpt = net_from_checkpoint(ckpt_path)
    # checkpoints/<file>.ckpt -> the run folder beside checkpoints/
    output = Path(args.output) if args.output else ckpt_path.resolve().parent.parent / "mnist.onnx"
    score = checkpoint_val_acc(ckpt, ckpt_path)
    path = export_onnx(net, output, onnx_metadata(ckpt, str(ckpt_path), score))
    print(f"exported {ckpt_path} -> {path}")
    return path
