"""The ``--tune.space`` file: which CLI options a search varies, over which ranges, checked before anything runs.

```yaml
fixed:                      # optional: set in every trial (any CLI option)
  trainer.max_epochs: 5
params:                     # searched: dotted CLI option -> range
  model.lr: {type: float, low: 1.0e-3, high: 3.0e-2, log: true}
  model.warmup: {type: float, low: 0.05, high: 0.4}
  data.batch_size: {type: choice, choices: [128, 256, 512]}
  trainer.max_epochs: {type: int, low: 3, high: 6}
```

Whether an option exists (and takes the values) is checked against the real CLI parser by the ``tune`` command;
this module checks the file's own shape. Needs no torch.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from mnist_lightning.common.errors import UserError

KINDS = ("float", "int", "choice")
SHAPE_HINT = (
    "each entry of 'params' maps a dotted CLI option (e.g. model.lr) to {type: float, low: L, high: H, log: "
    "true|false}, {type: int, low: L, high: H, step: S} or {type: choice, choices: [A, B, ...]}"
)


@dataclass(frozen=True)
class Param:
    name: str  # dotted CLI option without the leading dashes, e.g. "model.lr"
    kind: str
    low: float | int | None = None
    high: float | int | None = None
    log: bool = False
    step: int = 1
    choices: tuple[Any, ...] = ()

    def suggest(self, trial: Any) -> Any:
        """Ask an Optuna trial for this option's value."""
        if self.kind == "float":
            return trial.suggest_float(self.name, self.low, self.high, log=self.log)
        if self.kind == "int":
            return trial.suggest_int(self.name, self.low, self.high, step=self.step, log=self.log)
        return trial.suggest_categorical(self.name, list(self.choices))

    def extremes(self) -> list[Any]:
        """Values that must all parse: both ends of a range, every choice."""
        return list(self.choices) if self.kind == "choice" else [self.low, self.high]


@dataclass(frozen=True)
class SearchSpace:
    path: Path
    params: tuple[Param, ...]
    fixed: dict[str, Any]


def cli_value(value: Any) -> str:
    """A value as the CLI parses it: lists and mappings as JSON/YAML, None as null, the rest as text."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple, dict)):
        return json.dumps(value)
    return str(value)


def as_cli_args(values: dict[str, Any]) -> list[str]:
    return [arg for name, value in values.items() for arg in (f"--{name}", cli_value(value))]


def with_fixed(args: list[str], fixed: dict[str, Any]) -> list[str]:
    """``args`` with the space's fixed options after the last ``--config``: they override the config file, and
    options given on the command line after it override them (the command line wins, as everywhere else)."""
    ends = [i + 2 for i, a in enumerate(args) if a == "--config"]
    ends += [i + 1 for i, a in enumerate(args) if a.startswith("--config=")]
    at = max(ends, default=0)
    return [*args[:at], *as_cli_args(fixed), *args[at:]]


def _param(path: Path, name: Any, spec: Any) -> Param:
    where = f"{path}: params.{name}"
    if not isinstance(name, str) or not name or name.startswith("-"):
        raise UserError(f"{path}: params has the key {name!r}, which is not a dotted CLI option; {SHAPE_HINT}.")
    if not isinstance(spec, dict) or spec.get("type") not in KINDS:
        raise UserError(f"{where} is {spec!r}, which has no 'type' of {', '.join(KINDS)}; {SHAPE_HINT}.")
    kind = spec["type"]
    allowed = {"type", "choices"} if kind == "choice" else {"type", "low", "high", "log", "step"}
    if unknown := sorted(set(spec) - allowed):
        raise UserError(f"{where} has unknown key(s) {', '.join(unknown)} for type {kind}; {SHAPE_HINT}.")
    if kind == "choice":
        choices = spec.get("choices")
        if not isinstance(choices, list) or not choices:
            raise UserError(f"{where} has an empty or missing 'choices' list; list at least one value to try.")
        return Param(name, kind, choices=tuple(choices))
    low, high, log, step = spec.get("low"), spec.get("high"), spec.get("log", False), spec.get("step", 1)
    number = int if kind == "int" else (int, float)
    if not all(isinstance(v, number) and not isinstance(v, bool) for v in (low, high)):
        raise UserError(f"{where} needs numbers 'low' and 'high' ({kind}), got low={low!r}, high={high!r}.")
    if not low < high:
        raise UserError(
            f"{where} has an empty range: low={low} is not below high={high}; widen it, or move the "
            "option to 'fixed' to set one value."
        )
    if not isinstance(log, bool) or (log and low <= 0):
        raise UserError(f"{where}: 'log' must be true or false, and a log range needs low > 0 (got low={low}).")
    if not isinstance(step, int) or step < 1 or (log and step != 1):
        raise UserError(f"{where}: 'step' must be a whole number >= 1 (and 1 with log: true), got {step!r}.")
    return Param(
        name, kind, float(low) if kind == "float" else low, float(high) if kind == "float" else high, log, step
    )


def load_space(path: str | Path) -> SearchSpace:
    """Read and check a space file; every problem is one :class:`UserError` paragraph naming the file and key."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as err:
        raise UserError(
            f"cannot read the search space {path} ({err.strerror}); pass --tune.space "
            "configs/search/fast.yaml or another space file."
        ) from None
    except yaml.YAMLError as err:
        raise UserError(f"{path} is not valid YAML ({str(err).splitlines()[0]}); {SHAPE_HINT}.") from None
    if not isinstance(data, dict) or not isinstance(data.get("params"), dict) or not data["params"]:
        raise UserError(f"{path} has no 'params' mapping of options to search; {SHAPE_HINT}.")
    if unknown := sorted(set(data) - {"params", "fixed"}):
        raise UserError(
            f"{path} has unknown top-level key(s) {', '.join(map(str, unknown))}; only 'params' (the "
            "searched options) and 'fixed' (options set in every trial) are read."
        )
    fixed = data.get("fixed") or {}
    if not isinstance(fixed, dict) or not all(isinstance(k, str) for k in fixed):
        raise UserError(f"{path}: 'fixed' must map dotted CLI options to values, e.g. trainer.max_epochs: 5.")
    params = tuple(_param(path, name, spec) for name, spec in data["params"].items())
    if both := sorted(set(fixed) & {p.name for p in params}):
        raise UserError(f"{path}: {', '.join(both)} is both fixed and searched; keep it in one of the two.")
    return SearchSpace(path, params, dict(fixed))
