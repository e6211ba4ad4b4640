"""The ``OnnxExport`` callback: the best checkpoint's net to a verified ``mnist.onnx`` when ``fit`` ends."""

from __future__ import annotations

from pathlib import Path

import lightning as L

from mnist_lightning.common.contract import MONITOR
from mnist_lightning.common.layout import ONNX_NAME, torch_file_for
from mnist_lightning.model.checkpoints import VAL_ACC_KEY, net_from_checkpoint
from mnist_lightning.model.onnx import cpu_float_copy, export_onnx, onnx_metadata
from mnist_lightning.training.callbacks.step_hooks import batch_hooks_where_used


@batch_hooks_where_used
class OnnxExport(L.Callback):
    """At the end of ``fit``, export the best checkpoint's net to ``<run dir>/<filename>`` and, beside it, the same
    net as a plain PyTorch file (``mnist.pt``, see :meth:`MyMNIST.save`); rank zero only."""

    def __init__(self, filename: str = ONNX_NAME, enabled: bool = True) -> None:
        self.filename, self.enabled = filename, enabled
        self.path: Path | None = None
        self.torch_path: Path | None = None

    def on_save_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict) -> None:
        # each checkpoint's own val/acc (last.ckpt's is not the run's best), for the ONNX metadata of any later export
        if (acc := trainer.callback_metrics.get(MONITOR)) is not None:
            checkpoint[VAL_ACC_KEY] = float(acc)

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not self.enabled or trainer.sanity_checking or trainer.fast_dev_run:  # a smoke test is not a model to keep
            return
        out = Path(trainer.log_dir or trainer.default_root_dir) / self.filename  # log_dir is collective under DDP
        if not trainer.is_global_zero:
            return
        best = trainer.checkpoint_callback.best_model_path if trainer.checkpoint_callback else ""
        if best:
            net, ckpt = net_from_checkpoint(best)
            score = trainer.checkpoint_callback.best_model_score
        else:  # no checkpointing configured: export the weights as they are now
            net, ckpt, score = pl_module.net, {"hyper_parameters": dict(pl_module.hparams)}, None
        self.path = export_onnx(net, out, onnx_metadata(ckpt, best or "(final weights)", score))
        self.torch_path = cpu_float_copy(net).save(torch_file_for(out), best or "(final weights)")
