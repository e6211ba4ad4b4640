"""Training with Lightning.

- ``module`` (the LightningModule around ``model.net.MyMNIST``), ``data`` with ``predict_images`` and ``augment``;
  ``multi_step``: ``--model.steps_per_call K`` (K optimizer steps per Lightning batch).
- ``cli``: the LightningCLI, with ``config_errors``, ``quiet``, ``accelerators`` and ``rank_seeds``.
- ``checkpoint_io``: atomic checkpoint files (a Lightning plugin).
- ``callbacks/``: the always-on callbacks.
"""
