"""The few messages of other packages that say nothing about the user's run, hidden one by one where the CLI starts.

Everything else still shows: each filter names the exact message (and the module it comes from), never a category
or a whole package. Warnings whose cause is ours are fixed at the cause instead:
the model summary's FLOPs (``MNISTClassifier.example_input_array``), the prediction writer's batch indices
(``PredictionCsv`` needs none), and the moved checkpoint folder of evaluation runs (``MNISTCLI.parse_arguments``).
"""

from __future__ import annotations

import logging
import os
import re
import warnings
from pathlib import Path

# Lightning advertises its cloud logger on every Trainer; it is no statement about this run
LITLOGGER_TIP = "💡 Tip: For seamless cloud logging"


# Lightning notes that it adds no model summary of its own when one is configured; the CLI configures it (cli.py)
SUMMARY_NOTE = "Trainer already configured with model summary callbacks: [<class 'mnist_lightning."


# torch's C++-extension helper, imported by torch.compile's CPU code generation, notes on a CUDA build of torch that
# the machine has no CUDA runtime: true, and no concern of a CPU run
NO_CUDA_RUNTIME = "No CUDA runtime is found"


class _DropNoCudaRuntime(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith(NO_CUDA_RUNTIME)


class _DropLitLoggerTip(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not (message.startswith(LITLOGGER_TIP) and "litlogger" in message or message.startswith(SUMMARY_NOTE))


def hide_known_noise() -> None:
    """Install the filters (idempotent: ``warnings`` drops duplicates, the logging filter is added once)."""
    # torch 2.9+ deprecates LeafSpec; Lightning's own _pytree.py still builds one on every batch transfer. Lightning's
    # code, not ours, and nothing a user can change: safe to hide that one message from that one module.
    warnings.filterwarnings(
        "ignore",
        message=re.escape("`isinstance(treespec, LeafSpec)` is deprecated"),
        category=FutureWarning,
        module=re.escape("lightning.pytorch.utilities._pytree"),
    )
    # overfit_batches: Lightning cannot see that the project's loader (no DataLoader) stops shuffling by itself
    # (MNISTDataModule asks trainer.overfit_batches), and says it turns shuffling off, which it cannot do there
    warnings.filterwarnings(
        "ignore",
        message="You requested to overfit but enabled (train|val) dataloader shuffling",
        module=re.escape("lightning.pytorch.trainer.connectors.data_connector"),
    )
    from lightning_utilities.core import rank_zero

    # rank_zero_info logs through this module's logger (Lightning points it at its own); filter there only
    if not any(isinstance(f, _DropLitLoggerTip) for f in rank_zero.log.filters):
        rank_zero.log.addFilter(_DropLitLoggerTip())
    cpp_extension = logging.getLogger("torch.utils.cpp_extension")
    if not any(isinstance(f, _DropNoCudaRuntime) for f in cpp_extension.filters):
        cpp_extension.addFilter(_DropNoCudaRuntime())


def expect_full_checkpoint_folder(checkpoints: Path) -> None:
    """``fit --ckpt_path`` continuing a run in its own folder: its checkpoints are there because we put them there.

    ModelCheckpoint warns about any non-empty folder at the start of ``fit``; for this one folder that is the plan,
    for any other folder the warning still shows.
    """
    run = checkpoints.parent  # <save_dir>/<logger name>/<version>/checkpoints: match from the logger name on
    tail = re.escape(os.path.join(run.parent.name, run.name, checkpoints.name))
    warnings.filterwarnings(
        "ignore",
        message=rf"Checkpoint directory .*{tail} exists and is not empty",
        module=re.escape("lightning.pytorch.callbacks.model_checkpoint"),
    )


def same_folder_spelled_twice(saved_dirpath: str) -> None:
    """Evaluation points the checkpoint callback at the folder its state was saved from (``saved_dirpath``).

    ModelCheckpoint turns a given folder into its real path, but a run whose logger had a relative ``save_dir``
    saved it relative (``./mycsv/version_0/checkpoints``); Lightning would then warn that the folder "has changed"
    although both name the same one. Only that exact pair is hidden; a folder that really moved still warns.
    """
    real = os.path.realpath(os.path.expanduser(saved_dirpath))
    if real != saved_dirpath:
        warnings.filterwarnings(
            "ignore",
            message=re.escape(f"The dirpath has changed from {saved_dirpath!r} to {real!r}"),
            module=re.escape("lightning.pytorch.callbacks.model_checkpoint"),
        )


def metrics_kept_aside(log_dir: str) -> None:
    """A resumed CSVLogger run whose ``metrics.csv`` was just moved aside: Lightning's warning that the folder's log
    files will be deleted no longer holds for that one folder (the message names it)."""
    warnings.filterwarnings("ignore", message=re.escape(f"Experiment logs directory {log_dir} exists and is not empty"))
