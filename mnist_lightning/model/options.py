"""The model's options, each declared once: its name, type, default and check.

:class:`MNISTClassifier`'s signature (what LightningCLI shows and parses) takes its defaults from :data:`DEFAULTS`,
its saved hyper-parameters are :meth:`ModelOptions.hparams`, a resumed ``fit`` compares every option but the
:data:`SPEED_ONLY` ones, and the checkpoint reader builds the net from the :data:`ARCHITECTURE` options.
Torch-free: a table of plain values.
"""

from __future__ import annotations

import typing
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields
from typing import Any, Literal

from mnist_lightning.common.errors import UserError

Optimizer = Literal["adam", "adamw"]
LrSchedule = Literal["constant", "onecycle", "cosine"]
ARCHITECTURE = ("hidden_layers", "dropout", "standardize")  # MyMNIST's arguments: its layers and what it computes


def _option(default: Any, valid: Callable[[Any], bool] | None = None, rule: str = "", speed_only: bool = False) -> Any:
    """A field with its check: ``valid(value)`` false raises ``model.<name> <rule>`` (``{value}`` filled in)."""
    return field(default=default, metadata={"valid": valid, "rule": rule, "speed_only": speed_only})


def _positive_count(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, int) and value > 0


def _positive_widths(value: Any) -> bool:
    return all(_positive_count(h) for h in value)


FRACTION = (lambda v: 0 <= v < 1, "must be in [0, 1), got {value}.")


@dataclass(frozen=True)
class ModelOptions:
    """Every option of the model and its training recipe, checked on construction (a :class:`UserError` each).

    The ``augment_*`` amounts are checked by ``BatchAugment``, which owns their meaning.
    """

    hidden_layers: Sequence[int] = _option(
        (256, 32),
        _positive_widths,
        "must be positive integers (one width per hidden layer), got {value}; e.g. --model.hidden_layers '[256, 32]'.",
    )
    lr: float = _option(1e-3, lambda v: v > 0, "must be > 0, got {value}; e.g. --model.lr 0.001.")
    fused_adam: bool = _option(True, speed_only=True)
    compile: bool = _option(False, speed_only=True)
    optimizer: Optimizer = "adam"
    weight_decay: float = _option(0.0, lambda v: v >= 0, "must be >= 0, got {value}.")
    lr_schedule: LrSchedule = "constant"
    warmup: float = _option(0.0, *FRACTION)
    label_smoothing: float = _option(0.0, *FRACTION)
    dropout: float = _option(0.0, *FRACTION)
    standardize: bool = False
    augment_shift: float = 0.0
    augment_rotate: float = 0.0
    augment_scale: float = 0.0
    augment_elastic: float = 0.0
    steps_per_call: int = _option(
        1,
        lambda v: not isinstance(v, bool) and isinstance(v, int) and v >= 1,
        "must be a positive integer, got {value}; e.g. 8.",
    )

    def __post_init__(self) -> None:
        for option in fields(self):
            value = getattr(self, option.name)
            value = list(value) if _PLAIN[option.name] is list else value  # a sequence shows as the config spells it
            choices = _CHOICES.get(option.name, ())
            if choices and value not in choices:
                quoted = [f"'{c}'" for c in choices]
                listed = f"{', '.join(quoted[:-1])} or {quoted[-1]}"
                raise UserError(f"model.{option.name} must be {listed}, got {value!r}.")
            valid = option.metadata.get("valid")
            if valid is not None and not valid(value):
                raise UserError(f"model.{option.name} {option.metadata['rule'].format(value=value)}")
        if self.lr_schedule == "onecycle" and not self.warmup > 0:
            raise UserError("model.lr_schedule 'onecycle' needs model.warmup > 0 (the fraction of steps spent rising).")

    @classmethod
    def from_arguments(cls, arguments: dict[str, Any]) -> ModelOptions:
        """The options among ``arguments`` (e.g. a constructor's ``locals()``); the rest is ignored."""
        return cls(**{name: arguments[name] for name in NAMES if name in arguments})

    def hparams(self) -> dict[str, Any]:
        """Plain types only, so that checkpoints load with ``torch.load(weights_only=True)``."""
        return {name: _PLAIN[name](getattr(self, name)) for name in NAMES}


def architecture(hparams: dict[str, Any]) -> dict[str, Any]:
    """MyMNIST's arguments from saved hyper-parameters (an option a file does not name has its default)."""
    return {name: _PLAIN[name](hparams.get(name, getattr(DEFAULTS, name))) for name in ARCHITECTURE}


def _plain(kind: Any) -> Callable[[Any], Any]:
    if kind in (bool, float, int):
        return kind
    return str if typing.get_origin(kind) is Literal else list


_TYPES = typing.get_type_hints(ModelOptions)
NAMES = tuple(option.name for option in fields(ModelOptions))
_PLAIN = {name: _plain(kind) for name, kind in _TYPES.items()}
_CHOICES = {name: typing.get_args(kind) for name, kind in _TYPES.items() if typing.get_origin(kind) is Literal}
SPEED_ONLY = frozenset(option.name for option in fields(ModelOptions) if option.metadata.get("speed_only"))
DEFAULTS = ModelOptions()
