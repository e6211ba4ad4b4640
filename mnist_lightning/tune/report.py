"""What ``tune`` leaves behind: the table of top trials, and the best trial's config as a file ``fit`` reproduces."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import optuna
import yaml
from optuna.trial import FrozenTrial, TrialState

from mnist_lightning.common.atomic import replace_atomically
from mnist_lightning.common.contract import MONITOR
from mnist_lightning.common.layout import CONFIG_NAME

# trial user attributes written by the objective
RUN_ATTR = "run_dir"
EPOCHS_ATTR = "epochs"
WORKER_ATTR = "worker"  # host:pid
LOGGER_ATTR = "logger_added"  # the trial's logger was tune's own (dropped from the reproducing config)


def trial_score(trial: FrozenTrial) -> float | None:
    """Best ``val/acc`` of a trial: its value when complete, else the best epoch it reported."""
    if trial.value is not None:
        return trial.value
    return max(trial.intermediate_values.values(), default=None)


def _fmt(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def top_table(study: optuna.Study, top: int = 10) -> str:
    trials = study.get_trials(deepcopy=False)
    shown = sorted(
        (t for t in trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)),
        key=lambda t: (t.state != TrialState.COMPLETE, -(trial_score(t) or 0.0)),
    )[:top]
    rows = [("trial", "val acc", "epochs", "state", "params")]
    for t in shown:
        score = trial_score(t)
        params = " ".join(f"{k}={_fmt(v)}" for k, v in t.params.items())
        rows.append(
            (
                str(t.number),
                "-" if score is None else f"{score:.4f}",
                str(t.user_attrs.get(EPOCHS_ATTR, "-")),
                t.state.name.lower(),
                params,
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    lines = [
        "  ".join(
            c.rjust(w) if i in (0, 1, 2) else c.ljust(w) for i, (c, w) in enumerate(zip(r[:4], widths, strict=True))
        )
        + "  "
        + r[4]
        for r in rows
    ]
    counts = {s.name.lower(): sum(t.state == s for t in trials) for s in TrialState}
    summary = ", ".join(f"{n} {name}" for name, n in counts.items() if n)
    return "\n".join([f"Study {study.study_name!r}: {summary}. Top trials (complete first):", *lines])


def best_trial(study: optuna.Study) -> FrozenTrial | None:
    done = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    return max(done, key=lambda t: t.value, default=None)


def write_best_config(trial: FrozenTrial, output: Path) -> Path | None:
    """The best trial's resolved ``config.yaml``, made to start a new run of its own under the default logger."""
    source = Path(trial.user_attrs.get(RUN_ATTR, "")) / CONFIG_NAME
    if not source.is_file():
        return None
    config = yaml.safe_load(source.read_text())
    logger = config.get("trainer", {}).get("logger")
    if trial.user_attrs.get(LOGGER_ATTR):
        config["trainer"]["logger"] = None  # the project's default logger: a new lightning_logs/version_N
    elif isinstance(logger, dict) and isinstance(logger.get("init_args"), dict):
        logger["init_args"].pop("version", None)  # the user's logger, in a new version of its own
    header = (
        f"# Best trial ({trial.number}, {MONITOR} {trial.value:.4f}) of the study that wrote this file;\n"
        f"# reproduce it with: python -m mnist_lightning fit --config {output}\n"
    )
    with replace_atomically(output, "--tune.output") as tmp:
        tmp.write_text(header + yaml.safe_dump(config, sort_keys=False))
    return output
