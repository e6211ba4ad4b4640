"""Writing a verified ONNX file from a MyMNIST net, and the ``export`` command; torch and onnx, never Lightning.

Kept apart from the ``OnnxExport`` callback (onnx_export.py) so that ``export`` does not pay for importing
Lightning (which pulls in torchmetrics, torchvision and torch._dynamo: seconds per command).
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mnist_lightning.common.atomic import replace_atomically
from mnist_lightning.common.onnx_contract import DOC_STRING, INPUT_CONVENTION, INPUT_NAME, LABELS, OUTPUT_NAME
from mnist_lightning.common.runs import ONNX_NAME, best_of_run, resolve_checkpoint, run_of_checkpoint
from mnist_lightning.training.checkpoints import checkpoint_val_acc, net_from_checkpoint
from mnist_lightning.training.net import INPUT_SIZE
from mnist_lightning.training.onnx_graph import mymnist_graph


def export_onnx(net: torch.nn.Module, path: str | Path, metadata: dict[str, str] | None = None) -> Path:
    """Export ``net`` to one self-contained ONNX file, check it, then move it into place atomically."""
    import onnx

    path = Path(path)
    net = cpu_float_copy(net)
    with replace_atomically(path, where="--output folder") as tmp:
        # MyMNIST is written directly (milliseconds); any other net goes through torch's dynamo exporter (seconds)
        proto = mymnist_graph(net) or _dynamo_export(net)
        if metadata:
            proto.doc_string = metadata.pop("doc_string", proto.doc_string)
            for key, value in metadata.items():
                proto.metadata_props.add(key=key, value=str(value))
        onnx.save_model(proto, tmp)
        verify_onnx(tmp, net)
    return path


def _dynamo_export(net: torch.nn.Module) -> Any:
    # batch 4, not 1: a batch-1 example would let the exporter specialise the batch size
    example = torch.rand(4, INPUT_SIZE)
    batch = torch.export.Dim("batch")
    program = torch.onnx.export(
        net,
        (example,),
        dynamo=True,
        input_names=[INPUT_NAME],
        output_names=[OUTPUT_NAME],
        dynamic_shapes={INPUT_NAME: {0: batch}},
        external_data=False,
        verbose=False,
    )
    return program.model_proto


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


def cpu_float_copy(net: torch.nn.Module) -> torch.nn.Module:
    # a copy, so exporting never moves or casts the net that is training (GPU, bf16)
    return copy.deepcopy(net).to("cpu", torch.float32).eval()


def onnx_metadata(ckpt: dict[str, Any], source: str, val_acc: Any = None) -> dict[str, str]:
    hidden = ckpt.get("hyper_parameters", {}).get("hidden_layers")
    meta = {
        "doc_string": DOC_STRING,
        "labels": ",".join(str(d) for d in LABELS),
        "input_convention": INPUT_CONVENTION,
        "hidden_layers": str(hidden),
        "checkpoint": str(source),
    }
    if val_acc is not None:
        meta["val_acc"] = f"{float(val_acc):.4f}"
    return meta


def torch_file_for(onnx_path: Path) -> Path:
    """``mnist.pt`` goes beside ``mnist.onnx`` under the same name (the plain-PyTorch copy of the same net)."""
    return onnx_path.with_suffix(".pt")


def export_path(ckpt_path: Path) -> Path:
    """Where ``export`` puts a checkpoint's model unless ``--output`` says: in its run folder (beside ``checkpoints/``),
    as ``mnist.onnx`` for the run's best checkpoint (what ``fit`` exported) and as ``mnist-<checkpoint name>.onnx``
    for any other, so exporting ``last`` never replaces the best one's file. Outside a run: beside the checkpoint."""
    run = run_of_checkpoint(ckpt_path)
    stem = Path(ONNX_NAME).stem
    if run is not None and (best := best_of_run(run)) is not None and best.resolve() == ckpt_path.resolve():
        return run / ONNX_NAME
    return (run or ckpt_path.resolve().parent) / f"{stem}-{ckpt_path.stem}.onnx"


def export_main(argv: list[str]) -> Path:
    """``python -m mnist_lightning export``: export any checkpoint without training."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m mnist_lightning export", description=export_main.__doc__)
    parser.add_argument("--ckpt_path", default="best", help="a .ckpt file, or best/last of the newest run (any logger)")
    parser.add_argument(
        "--output", default=None, help="file to write (default: mnist.onnx / mnist.pt in the checkpoint's run folder)"
    )
    parser.add_argument(
        "--format", choices=("onnx", "pt", "both"), default="both", help="ONNX, plain PyTorch (.pt) or both (default)"
    )
    parser.add_argument("--root", default=".", help="folder holding lightning_logs/ or other logger folders")
    args = parser.parse_args(argv)
    ckpt_path = resolve_checkpoint(args.ckpt_path, args.root)
    net, ckpt = net_from_checkpoint(ckpt_path)
    output = Path(args.output) if args.output else export_path(ckpt_path)
    written = []
    if args.format in ("onnx", "both"):
        score = checkpoint_val_acc(ckpt, ckpt_path)
        written.append(export_onnx(net, output, onnx_metadata(ckpt, str(ckpt_path), score)))
    if args.format in ("pt", "both"):
        # --format pt --output X writes X itself; otherwise the .pt takes the ONNX file's name (mnist.pt, mnist-last.pt)
        target = output if args.format == "pt" and args.output else torch_file_for(output)
        written.append(net.save(target, str(ckpt_path)))
    for path in written:
        print(f"exported {ckpt_path} -> {path}")
    return written[0]
