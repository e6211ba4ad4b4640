"""``python -m mnist_lightning``: the CLI. The onnxruntime-only commands skip importing torch and Lightning."""

import sys

TORCH_FREE = {"serve": "mnist_lightning.serve", "predict-onnx": "mnist_lightning.onnx_predict"}

if (module := TORCH_FREE.get(sys.argv[1] if len(sys.argv) > 1 else "")) is not None:
    import importlib

    sys.exit(importlib.import_module(module).main(sys.argv[2:]))
else:
    from mnist_lightning.cli import main_exit

    main_exit()
