"""Training with Lightning.

- ``module`` (the LightningModule around ``model.net.MyMNIST``), ``data`` with ``predict_images`` and ``augment``;
  ``multi_step``: ``--model.steps_per_call K`` (K optimizer steps per Lightning batch).
- ``cli``: the LightningCLI, with ``cli_parser``, ``run_folder``, ``config_errors`` (bad configs, missing
  accelerators), ``quiet`` and ``rank_seeds``.
- ``checkpoint_io``: atomic checkpoint files (a Lightning plugin).
- ``callbacks/``: the always-on callbacks.
"""
