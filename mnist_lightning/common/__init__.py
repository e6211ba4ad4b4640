"""The small shared part: needs neither torch nor Lightning (numpy at most), so both sides can use it.

``errors`` (the one user-facing exception and how entry points print it), ``atomic`` (files replaced whole or not
at all), ``mnist_files`` (the raw IDX files), ``layout`` (where runs, checkpoints and exports live), ``contract``
(image size, classes, the monitored metric, the exported model's interface), ``predictions`` (prediction rows, their
CSV and table) and ``inspect_run`` (a run's TensorBoard files, read back).
"""
