"""``python -m mnist_lightning tune``: an Optuna search over the fit options named in a space file.

    python -m mnist_lightning tune --config configs/fast.yaml --tune.space configs/search/fast.yaml \\
        --tune.n_trials 40 [--tune.timeout 600] [--tune.storage sqlite:///tune.db] [--tune.study_name NAME] \\
        [--tune.output best_found.yaml] [--tune.seed 0] [any --trainer.* / --model.* / --data.* override]

Every ``--tune.*`` option is read here; all other arguments are the trials' ``fit`` arguments. The space and those
arguments are checked against the real CLI parser before any trial starts. ``--tune.n_trials`` counts the whole
study (every worker, every rerun): running the command again continues the study until it holds that many
finished trials, and workers pointing at one storage share the count.
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings
from pathlib import Path

import optuna
from jsonargparse import Namespace

from mnist_lightning.common.contract import MONITOR
from mnist_lightning.common.errors import UserError
from mnist_lightning.common.layout import (
    LOG_NAME,
    best_config_path,
    default_storage,
    foreign_trials,
    storage_file,
    study_folder,
    trial_folders,
)
from mnist_lightning.training.cli import run_cli
from mnist_lightning.training.config_errors import config_error_message
from mnist_lightning.tune.report import best_trial, top_table, write_best_config
from mnist_lightning.tune.space import SearchSpace, cli_value, load_space, with_fixed
from mnist_lightning.tune.study import counted, fail_dead_trials, open_storage, open_study, stop_at
from mnist_lightning.tune.trial import SearchStopped, make_objective

PREFIX = "--tune."


# --tune.<name>: argparse keyword arguments
OPTIONS: dict[str, dict] = {
    "space": {"help": "YAML file of searched options (configs/search/*.yaml)"},
    "n_trials": {"type": int, "default": 20, "help": "finished trials the whole study should hold"},
    "timeout": {"type": float, "default": None, "help": "seconds for this worker"},
    "storage": {"help": "RDB URL, or a journal file path (default: <runs folder>/lightning_logs/<study>.db)"},
    "study_name": {"help": "default: tune-<space file name>"},
    "output": {"type": Path, "help": "the best trial's config (default: <study folder>-best.yaml beside the storage)"},
    "seed": {"type": int, "default": 0, "help": "sampler seed (-1: unseeded)"},
    "heartbeat": {
        "type": int,
        "default": 30,
        "help": "RDB heartbeat seconds; a dead worker's trial is failed after twice this (0: off)",
    },
    "pruner_startup_trials": {"type": int, "default": 5, "help": "trials finished before any is pruned"},
    "pruner_warmup_epochs": {"type": int, "default": 1, "help": "epochs each trial runs before it can be pruned"},
}


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m mnist_lightning tune", allow_abbrev=False, exit_on_error=False)
    for name, kwargs in OPTIONS.items():
        p.add_argument(PREFIX + name, dest=name, **kwargs)
    return p


def parse_tune_args(argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
    parser = _parser()
    try:
        opts, rest = parser.parse_known_args(argv)
    except argparse.ArgumentError as err:
        raise UserError(f"{err}; see python -m mnist_lightning tune --help.") from None
    if unknown := [a.split("=")[0] for a in rest if a.startswith(PREFIX)]:
        names = ", ".join(PREFIX + n for n in OPTIONS)
        raise UserError(f"unknown option {unknown[0]}; tune's own options are {names}.")
    if not opts.space:
        raise UserError(
            "tune needs --tune.space FILE naming the options to search, e.g. --tune.space configs/search/fast.yaml."
        )
    if opts.n_trials < 1 or (opts.timeout is not None and opts.timeout <= 0):
        raise UserError("--tune.n_trials must be at least 1 and --tune.timeout (seconds) above 0.")
    return opts, rest


def check_against_cli(base: list[str], space: SearchSpace) -> Namespace:
    """Parse the fit arguments, the fixed options and every end of every range with the real CLI; its config."""
    args = with_fixed(base, space.fixed)
    try:
        cli = run_cli(args, run=False)
    except argparse.ArgumentError as err:
        raise UserError(
            f"{config_error_message(err, args)} (checking the fit arguments and {space.path}'s 'fixed' options)"
        ) from None
    for param in space.params:
        for value in param.extremes():
            try:
                cli.parser.parse_args([*args, f"--{param.name}", cli_value(value)])
            except argparse.ArgumentError as err:
                message = config_error_message(err, args).rstrip(".")
                raise UserError(
                    f"{space.path}: params.{param.name} = {value!r} is not accepted by fit: "
                    f"{message}. Nothing was started."
                ) from None
    return cli.parser.parse_args(args)  # as given: before_instantiate_classes filled in the default logger


def tune_main(argv: list[str]) -> None:
    if any(a in ("-h", "--help") for a in argv):
        _parser().print_help()
        return
    with warnings.catch_warnings():
        # each trial is the CLI run in-process with args=[...]; the command line it warns about is tune's own
        warnings.filterwarnings("ignore", "LightningCLI's args parameter is intended", UserWarning)
        _tune(argv)


def _tune(argv: list[str]) -> None:
    opts, base = parse_tune_args(argv)
    space = load_space(opts.space)
    config = check_against_cli(base, space)
    root = os.path.normpath(os.path.expanduser(config.trainer.default_root_dir or os.getcwd()))
    runs = Path(root) / LOG_NAME
    study_name = opts.study_name or f"tune-{Path(opts.space).stem}"
    storage_url = opts.storage or default_storage(runs, study_name)
    folder = study_folder(runs, study_name, storage_url)
    output = opts.output or best_config_path(storage_url, folder)
    add_logger = config.trainer.logger in (None, True)
    trials_in = folder if add_logger else _user_logger_folder(config, root) / folder.name
    if (file := storage_file(storage_url)) is not None and not file.exists():  # refused before the storage is made
        refuse_foreign_trials(trial_folders(trials_in), set(), study_name, storage_url)

    storage = open_storage(storage_url, opts.heartbeat)
    seed = None if opts.seed < 0 else opts.seed
    listed = trial_folders(trials_in)  # before the study is read: a folder made meanwhile belongs to one of its trials
    study = open_study(storage, study_name, seed, opts.pruner_startup_trials, opts.pruner_warmup_epochs)
    refuse_foreign_trials(listed, {t.number for t in study.get_trials(deepcopy=False)}, study_name, storage_url)
    objective = make_objective(base, space, add_logger, folder)
    code = 0
    fail_dead_trials(study, storage)
    try:
        if counted(study) < opts.n_trials:
            study.optimize(objective, timeout=opts.timeout, callbacks=[stop_at(opts.n_trials)], gc_after_trial=True)
    except KeyboardInterrupt as stop:  # Optuna marked the trial under way failed; report what is done
        code = stop.code if isinstance(stop, SearchStopped) else 130
        print("\nSearch interrupted; the study keeps every finished trial (rerun the command to go on).")
    finish(study, storage_url, output)
    if code:
        sys.exit(code)


def _user_logger_folder(config: Namespace, root: str) -> Path:
    """``<save_dir>/<name>`` of the user's own logger, where the trials' versions go."""
    args = config.trainer.logger.get("init_args") if isinstance(config.trainer.logger, Namespace) else None
    save_dir = args.get("save_dir") if args is not None else None
    return Path(str(save_dir or root)) / str((args.get("name") if args is not None else None) or "")


def refuse_foreign_trials(folders: list[Path], numbers: set[int], study: str, storage_url: str) -> None:
    """Trial folders of an earlier study of this name and storage (its storage deleted or replaced) stay its own."""
    if not (foreign := foreign_trials(folders, numbers)):
        return
    more = f" and {len(foreign) - 1} more trial folders" if len(foreign) > 1 else ""
    raise UserError(
        f"{foreign[0].parent} holds {foreign[0].name}{more} of an earlier study {study!r} that the storage "
        f"{storage_url} does not know (deleted or replaced); this study's trials would be written over them. Move "
        "that folder (and its -best.yaml) away to start over, or choose another --tune.study_name."
    )


def finish(study: optuna.Study, storage_url: str, output: Path) -> None:
    lines = ["", top_table(study)]
    best = best_trial(study)
    if best is not None:
        written = write_best_config(best, output)
        if written is not None:
            lines.append(f"Best trial {best.number} ({MONITOR} {best.value:.4f}): config written to {written}")
            lines.append(f"  reproduce : python -m mnist_lightning fit --config {written}")
    else:
        lines.append("No trial has completed yet, so no best config was written.")
    lines.append(f"  dashboard : optuna-dashboard {storage_url}   (pip install optuna-dashboard)")
    print("\n".join(lines), flush=True)
