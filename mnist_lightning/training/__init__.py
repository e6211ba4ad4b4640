"""Training and everything else that needs torch and Lightning.

- The plain net and its ``mnist.pt``: ``net``.
- The LightningModule: ``classifier``.
- Data: ``datamodule``, ``augment``, ``predict_images``.
- The always-on callbacks: ``resume``, ``views`` (with ``figures``), ``onnx_export``, ``predict_writer``.
- Checkpoint files: ``checkpoints``, ``checkpoint_io``.
- Exported files: ``onnx_file`` (the ``export`` command, no Lightning) and ``onnx_graph``.
- The LightningCLI: ``cli``, with ``config_errors``, ``quiet``, ``accelerators``, ``rank_seeds`` and
  ``resume_checks``.
- The ``tune`` command on Optuna: ``tune``, ``tune_study``, ``tune_trial``, ``tune_report``, ``search_space``.
- Reading a run's TensorBoard files back: ``inspect_run``.
"""
