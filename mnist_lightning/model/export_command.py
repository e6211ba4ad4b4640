"""The ``export`` command: any checkpoint to ``mnist.onnx`` and ``mnist.pt`` without training.

It never imports Lightning (which pulls in torchmetrics, torchvision and torch._dynamo: seconds per command).
"""

from __future__ import annotations

from pathlib import Path

from mnist_lightning.common.layout import export_path, resolve_checkpoint, torch_file_for
from mnist_lightning.model.checkpoints import checkpoint_val_acc, net_from_checkpoint
from mnist_lightning.model.onnx import export_onnx, onnx_metadata


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
        score = checkpoint_val_acc(ckpt)
        written.append(export_onnx(net, output, onnx_metadata(ckpt, str(ckpt_path), score)))
    if args.format in ("pt", "both"):
        # --format pt --output X writes X itself; otherwise the .pt takes the ONNX file's name (mnist.pt, mnist-last.pt)
        target = output if args.format == "pt" and args.output else torch_file_for(output)
        written.append(net.save(target, str(ckpt_path)))
    for path in written:
        print(f"exported {ckpt_path} -> {path}")
    return written[0]
