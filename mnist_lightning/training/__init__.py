"""Training and everything else that needs torch and Lightning.

The plain net (``net``), the LightningModule (``classifier``), data (``datamodule``, ``augment``,
``predict_images``), the always-on callbacks (``resume``, ``views`` with ``figures``, ``onnx_export``,
``predict_writer``), checkpoint files (``checkpoints``, ``checkpoint_io``) and the LightningCLI (``cli``,
``config_errors``). ``inspect_run`` reads a run's TensorBoard files back.
"""
