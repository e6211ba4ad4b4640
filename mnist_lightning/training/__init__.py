"""Training with Lightning.

- ``module`` (the LightningModule around ``model.net.MyMNIST``), ``data`` with ``predict_images`` and ``augment``.
- ``cli``: the LightningCLI, with ``cli_parser``, ``run_folder``, ``config_errors``, ``quiet``, ``accelerators`` and ``rank_seeds``.
- ``checkpoint_io``: atomic checkpoint files (a Lightning plugin).
- ``callbacks/``: the always-on callbacks.
"""
