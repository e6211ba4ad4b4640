"""MyMNIST written straight into an ONNX graph: milliseconds, where torch's dynamo exporter takes seconds cold.

The dynamo exporter spends ~4.5 s per fresh process here (importing torch._dynamo, torch.export, onnxscript and
building its op registry) to trace a net that is a chain of Linear and GELU layers; the TorchScript exporter is
fast but deprecated and adds Shape/Gather/Concat/Reshape nodes. This module emits the same nodes the dynamo
exporter does (Sub, Div, Gemm, Gelu, opset 20, dynamic batch, float32), straight from the modules' weights. A net
holding any module it does not know returns None, and the caller falls back to torch's exporter; every file is
compared with PyTorch in onnxruntime before it is published either way.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn

from mnist_lightning.common.onnx_contract import INPUT_NAME, OUTPUT_NAME
from mnist_lightning.training.net import INPUT_SIZE, MNIST_MEAN, MNIST_STD, NUM_CLASSES, MyMNIST

if TYPE_CHECKING:
    import onnx

OPSET = 20  # the first opset with a Gelu operator; what the dynamo exporter writes for this net too
IR_VERSION = 10  # the dynamo exporter's; onnx's newest would shut out the older onnxruntime releases we support


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
