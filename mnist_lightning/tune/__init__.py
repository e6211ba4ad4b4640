"""The ``tune`` command: an Optuna search whose trials are real ``fit`` runs.

``command`` (options and the study loop), ``space`` (the search-space file, torch-free), ``study`` (storage,
sampler, pruner), ``trial`` (one trial as a fit) and ``report`` (the table and the best trial's config).
"""
