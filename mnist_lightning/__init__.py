"""Train, inspect and ship an MNIST digit classifier with PyTorch Lightning.

The package is split by what each part needs at run time:

- ``training/``: torch and Lightning. The plain ``MyMNIST`` net, the LightningModule, data, callbacks,
  checkpoints, the ONNX export and the LightningCLI.
- ``inference/``: onnxruntime, numpy and Pillow only, never torch. Preprocessing, the exported model, the
  ``predict-onnx`` command and the web server.
- ``common/``: what both use, torch-free: errors, atomic writes, the raw MNIST files, run folders, the exported
  model's interface and prediction tables.
- ``commands.py``: the one router behind ``python -m mnist_lightning`` and ``mnist-lightning``.

Importing this package imports neither torch nor Lightning; import from the subpackages, e.g.
``from mnist_lightning.training.net import MyMNIST``.
"""

__version__ = "0.1.0"
