"""``--model.compile true``: one optimizer step of the net (forward, loss, backward, Adam(W)) as one compiled graph.

Eager PyTorch runs this step as ~60 small operators, each paying the dispatcher, autograd's bookkeeping and a kernel
launch; for this small net that costs more than the matmuls. Here ``torch.func`` takes the gradients inside the
traced function and torch's Adam(W) update follows in the same graph, so ``torch.compile`` fuses it all into a few
kernels. The update works in place on the optimizer's own state tensors (``step``, ``exp_avg``, ``exp_avg_sq``),
so checkpoints and resume are those of an eager run; the weights agree with one to float rounding (docs/speed.md
gives the tolerance). Torch alone, no Lightning.
"""

from __future__ import annotations

import os
import shutil
import time
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, grad_and_value

from mnist_lightning.common.errors import UserError

Tensors = list[torch.Tensor]
# what "the same net" means for the compiled step after one epoch of base.yaml on MNIST (tests, bench, docs/speed.md)
WEIGHTS_ATOL, VAL_ACC_TOL = 1e-4, 0.001
WAY_OUT = "drop --model.compile (the eager step trains the same net, a little slower)"


def _loss(
    params: dict[str, torch.Tensor], net: nn.Module, images: torch.Tensor, labels: torch.Tensor, smoothing: float
) -> tuple[torch.Tensor, torch.Tensor]:
    logits = functional_call(net, params, (images,))
    loss = F.cross_entropy(logits, labels, label_smoothing=smoothing)
    return loss, torch.eq(logits.detach().argmax(1), labels).sum()  # the loss and, as aux, the correct count


def _step(
    net: nn.Module,
    names: list[str],
    state: tuple[Tensors, Tensors, Tensors, Tensors],
    images: torch.Tensor,
    labels: torch.Tensor,
    sums: torch.Tensor,
    scheduled: torch.Tensor,
    hyper: tuple[float, float, float, bool, float],
) -> torch.Tensor:
    """One step in place (weights, Adam state, ``sums += [loss x n, correct, n]``); returns the loss.

    ``scheduled`` holds [lr, beta1, 1 - beta1^t, sqrt(1 - beta2^t)] for this step t: values that change every step,
    so inputs of the graph (Python floats would be constants of it and recompile it at each new value). The bias
    corrections come from the host: inside the graph inductor recomputed both powers for every 16 weights.
    """
    lr, beta1, correction1, correction2_sqrt = scheduled[0], scheduled[1], scheduled[2], scheduled[3]
    beta2, eps, weight_decay, decoupled, smoothing = hyper
    params, steps, exp_avgs, exp_avg_sqs = state
    grads, (loss, correct) = grad_and_value(_loss, has_aux=True)(
        dict(zip(names, params, strict=True)), net, images, labels, smoothing
    )
    for name, param, step, exp_avg, exp_avg_sq in zip(names, params, steps, exp_avgs, exp_avg_sqs, strict=True):
        g = grads[name]  # torch.optim.Adam's single-tensor formula, in the same order
        step.add_(1)
        if weight_decay and decoupled:  # AdamW
            param.mul_(1 - lr * weight_decay)
        elif weight_decay:  # Adam's L2 penalty
            g = g.add(param, alpha=weight_decay)
        exp_avg.add_((g - exp_avg) * (1 - beta1))  # lerp_(g, 1 - beta1), whose tensor weight must match dtypes
        exp_avg_sq.mul_(beta2).addcmul_(g, g, value=1 - beta2)
        denom = (exp_avg_sq.sqrt() / correction2_sqrt).add_(eps)
        param.sub_(lr * exp_avg / (denom * correction1))
    n = labels.shape[0]
    sums[0].add_(loss.float() * n)
    sums[1].add_(correct)
    sums[2].add_(n)
    return loss


class CompiledStep:
    """The compiled step of ``net`` under ``optimizer`` (one parameter group of torch's Adam or AdamW).

    It runs once torch's Adam has created its state (the eager first step does), for batches of the shape it was
    compiled for: :meth:`fits` is False for the rest (an epoch's last, smaller batch), which take the eager step,
    rather than compiling the graph a second time.
    """

    def __init__(self, net: nn.Module, optimizer: torch.optim.Optimizer, label_smoothing: float) -> None:
        if len(optimizer.param_groups) != 1:
            raise UserError(f"model.compile true needs one optimizer parameter group, got {optimizer.param_groups}.")
        self.net, self.optimizer, self.smoothing = net, optimizer, float(label_smoothing)
        ids = {id(p): name for name, p in net.named_parameters()}
        self.group = optimizer.param_groups[0]
        self.names = [ids[id(p)] for p in self.group["params"]]
        self.shape: torch.Size | None = None  # the batch shape compiled for, set by the first compiled call
        self.state: tuple[Tensors, Tensors, Tensors, Tensors] | None = None
        self.compile_seconds: float | None = None  # the first compiled call: tracing, code generation, one step
        device = self.group["params"][0].device
        self.scheduled = torch.zeros(4, dtype=torch.float64, device=device)  # refilled every step, see _step
        self.steps: int | None = None  # Adam's step count, read from its state after each eager step
        torch.compiler.reset()  # a new run (a tune trial, say) compiles afresh instead of filling dynamo's cache
        self._compiled = torch.compile(_step, dynamic=False)

    def fits(self, images: torch.Tensor) -> bool:
        """Whether ``images`` take the compiled step; False means the caller takes the eager one, so Adam's step count
        is read back before the next compiled step."""
        if self.shape is not None and images.shape == self.shape:
            return True
        self.steps = None  # the eager step takes this batch and advances Adam's step count
        return self.shape is None and all(p in self.optimizer.state for p in self.group["params"])

    def __call__(self, images: torch.Tensor, labels: torch.Tensor, sums: torch.Tensor) -> torch.Tensor:
        group = self.group
        if self.state is None:  # torch's Adam made or a resume restored these; the step updates them in place
            state = [self.optimizer.state[p] for p in group["params"]]
            # detached aliases: in-place updates of leaves that require grad are refused, of their storage not
            params = [p.detach() for p in group["params"]]
            self.state = (
                params,
                [s["step"] for s in state],
                [s["exp_avg"] for s in state],
                [s["exp_avg_sq"] for s in state],
            )
        if self.steps is None:  # one read (a host sync on a GPU) per epoch, not per step
            self.steps = int(self.state[1][0])
        self.steps += 1
        beta1, beta2 = group["betas"]
        scheduled = self.scheduled
        scheduled[0], scheduled[1] = group["lr"], beta1
        scheduled[2], scheduled[3] = 1 - beta1**self.steps, (1 - beta2**self.steps) ** 0.5
        hyper = (beta2, group["eps"], group["weight_decay"], bool(group.get("decoupled_weight_decay")), self.smoothing)
        args = (self.net, self.names, self.state, images, labels, sums, self.scheduled, hyper)
        if self.shape is not None:
            try:  # one graph per run: anything that would build a second one is an error, not a silent slowdown
                with torch.compiler.set_stance("fail_on_recompile"):
                    return self._compiled(*args)
            except RuntimeError as err:
                if "recompile" not in str(err).lower():
                    raise
                raise UserError(
                    f"model.compile true: the compiled training step would have to be rebuilt, because something it "
                    f"was built with changed during the run ({str(err).strip().splitlines()[0][:300]}). Keep "
                    f"beta2, eps and weight_decay fixed while training, or {WAY_OUT}."
                ) from None
        start = time.perf_counter()
        try:
            loss = self._compiled(*args)
        except Exception as err:  # the first call compiles: a missing or broken toolchain shows here
            detail = (str(err).strip().splitlines() or [type(err).__name__])[0][:300]
            raise UserError(
                f"model.compile true: torch.compile could not build the training step ({detail}). Check that a C++ "
                f"compiler works (CPU) or that Triton is installed (GPU), or {WAY_OUT}."
            ) from None
        self.shape = images.shape
        self.compile_seconds = time.perf_counter() - start
        return loss


def check_compile(trainer: Any) -> None:
    """What ``--model.compile true`` cannot run with, refused in one paragraph before anything is written.

    ``trainer`` is the parsed ``trainer`` section (a mapping of plain values).
    """
    refused = []
    if str(trainer.get("precision")) in ("16-mixed", "16"):
        refused.append(
            "trainer.precision 16-mixed (its GradScaler works on .grad, which the compiled step never "
            "fills; bf16-mixed needs no scaler and works)"
        )
    strategy, devices = str(trainer.get("strategy") or "auto"), trainer.get("devices")
    if any(name in strategy for name in ("ddp", "fsdp", "deepspeed")) or _several(devices, trainer.get("num_nodes")):
        refused.append(
            f"trainer.strategy {strategy} / devices {devices} (several processes: DDP averages gradients "
            "in .grad hooks that the compiled step bypasses; --model.steps_per_call K alone works there)"
        )
    if trainer.get("accumulate_grad_batches", 1) != 1:
        refused.append("trainer.accumulate_grad_batches (each compiled step is a whole optimizer step)")
    if trainer.get("gradient_clip_val"):
        refused.append("trainer.gradient_clip_val (Lightning clips only in automatic optimization)")
    if refused:
        raise UserError(
            "model.compile true runs forward, backward and the Adam update as one compiled graph, so it cannot be "
            f"combined with {'; '.join(refused)}. Either {WAY_OUT}, or leave those settings at their defaults."
        )
    wanted = os.environ.get("CXX") or "g++"
    if (
        str(trainer.get("accelerator")) in ("cpu", "auto")
        and not torch.cuda.is_available()
        and not shutil.which(wanted)
    ):
        raise UserError(
            f"model.compile true compiles the training step into C++ kernels, but no C++ compiler '{wanted}' is on "
            f"the PATH. Install one (e.g. apt-get install g++), point CXX at yours, or {WAY_OUT}."
        )


def _several(devices: Any, num_nodes: Any) -> bool:
    """Whether ``devices`` / ``num_nodes`` ask for more than one process ("auto" is left to check_one_process)."""
    if isinstance(devices, (list, tuple)):
        return len(devices) > 1 or (num_nodes or 1) > 1
    text = str(devices).strip()
    return text == "-1" or text.isdigit() and int(text) > 1 or (num_nodes or 1) > 1


def check_one_process(world_size: int) -> None:
    """The same refusal for a multi-process run the config did not show (torchrun, SLURM with devices auto)."""
    if world_size > 1:
        raise UserError(
            f"model.compile true runs in one process only, but this run has {world_size} (DDP averages gradients in "
            f".grad hooks that the compiled step bypasses). Either {WAY_OUT} (--model.steps_per_call K works under "
            "DDP), or run one process."
        )
