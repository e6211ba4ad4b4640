"""A net to one verified, self-contained ONNX file; torch and onnx, never Lightning.

MyMNIST is written straight into a graph (the nodes torch's dynamo exporter would write: Sub, Div, Gemm, Gelu,
opset 20, dynamic batch, float32) because that exporter costs seconds per fresh process; any other net goes
through torch's exporter. Every file is compared with PyTorch in onnxruntime before it is moved into place.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from mnist_lightning.common.atomic import replace_atomically
from mnist_lightning.common.contract import (
    DOC_STRING,
    INPUT_CONVENTION,
    INPUT_NAME,
    INPUT_SIZE,
    LABELS,
    MNIST_MEAN,
    MNIST_STD,
    NUM_CLASSES,
    OUTPUT_NAME,
)
from mnist_lightning.model.net import MyMNIST

if TYPE_CHECKING:
    import onnx

OPSET = 20  # the first opset with a Gelu operator; what the dynamo exporter writes for this net too
IR_VERSION = 10  # the dynamo exporter's; onnx's newest would shut out the older onnxruntime releases we support


def export_onnx(net: torch.nn.Module, path: str | Path, metadata: dict[str, str] | None = None) -> Path:
    """Export ``net`` to one self-contained ONNX file, check it, then move it into place atomically."""
    import onnx

    path = Path(path)
    net = cpu_float_copy(net)
    with replace_atomically(path, where="--output folder") as tmp:
        # MyMNIST is written directly, without the dynamo exporter's start-up; any other net goes through that exporter
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
        if got.shape != (n, NUM_CLASSES) or not np.allclose(got, want, atol=atol, rtol=0):
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


def mymnist_graph(net: nn.Module) -> onnx.ModelProto | None:
    """An ONNX model computing ``net`` (a float32 CPU MyMNIST in eval mode), or None for anything else."""
    from onnx import TensorProto, helper, numpy_helper

    if type(net) is not MyMNIST:
        return None
    nodes, weights = [], []
    x = INPUT_NAME
    if net.standardize:
        weights += [_const("mean", MNIST_MEAN), _const("std", MNIST_STD)]
        nodes += [helper.make_node("Sub", [x, "mean"], ["centred"]), helper.make_node("Div", ["centred", "std"], ["x"])]
        x = "x"
    modules = list(net.layers)
    for i, module in enumerate(modules):
        out = OUTPUT_NAME if i == len(modules) - 1 else f"h{i}"
        if isinstance(module, nn.Linear) and module.bias is not None:
            w, b = f"layers.{i}.weight", f"layers.{i}.bias"
            weights += [numpy_helper.from_array(_array(module.weight), w)]
            weights.append(numpy_helper.from_array(_array(module.bias), b))
            nodes.append(helper.make_node("Gemm", [x, w, b], [out], transB=1))
        elif isinstance(module, nn.GELU):
            nodes.append(helper.make_node("Gelu", [x], [out], approximate=module.approximate))
        elif isinstance(module, nn.Dropout):  # identity in eval mode: no node, as the dynamo exporter writes it
            continue
        else:
            return None
        x = out
    graph = helper.make_graph(
        nodes,
        "main_graph",
        [helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT, ["batch", INPUT_SIZE])],
        [helper.make_tensor_value_info(OUTPUT_NAME, TensorProto.FLOAT, ["batch", NUM_CLASSES])],
        initializer=weights,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="mnist_lightning")
    model.ir_version = IR_VERSION
    return model


def _array(t: torch.Tensor) -> np.ndarray:
    return t.detach().to("cpu", torch.float32).numpy()


def _const(name: str, value: float) -> onnx.TensorProto:
    from onnx import numpy_helper

    return numpy_helper.from_array(np.array(value, dtype=np.float32), name)
