"""Opening the Optuna study that ``tune`` works on: storage (SQLite/RDB URL or journal file), seeded sampler, pruner.

Several processes or machines that open the same storage and study name share one study; Optuna's storage hands
each of them distinct trial numbers. A RDB storage has a heartbeat: a trial whose worker died (SIGKILL, power cut)
is marked failed once its heartbeat is older than the grace period, and the next trial started by any worker
redoes the work. A journal file has no heartbeat: a dead worker's trial stays "running" there.
"""

from __future__ import annotations

import time
import warnings
from pathlib import Path
from typing import Any

import optuna
from optuna.samplers import BaseSampler, TPESampler
from optuna.storages import BaseStorage, JournalStorage, RDBStorage
from optuna.storages.journal import JournalFileBackend
from optuna.trial import FrozenTrial, TrialState

from mnist_lightning.common.errors import UserError

# counted towards --tune.n_trials: finished ones and those some worker is running now; failed ones are redone
COUNTED = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING)


class TrialSeededSampler(BaseSampler):
    """TPE whose random state comes from ``(seed, trial number)``.

    One worker with a fixed seed replays the same proposals; workers started together on one study (same seed,
    same empty history) still propose different trials, because their trial numbers differ.
    """

    def __init__(self, seed: int | None) -> None:
        self.seed = seed
        self._tpe = TPESampler(seed=seed)

    def before_trial(self, study: optuna.Study, trial: FrozenTrial) -> None:
        seed = None if self.seed is None else self.seed * 100_003 + trial.number
        self._tpe = TPESampler(seed=seed)
        self._tpe.before_trial(study, trial)

    def infer_relative_search_space(self, study: optuna.Study, trial: FrozenTrial) -> dict[str, Any]:
        return self._tpe.infer_relative_search_space(study, trial)

    def sample_relative(self, study: optuna.Study, trial: FrozenTrial, search_space: dict[str, Any]) -> dict:
        return self._tpe.sample_relative(study, trial, search_space)

    def sample_independent(self, study: optuna.Study, trial: FrozenTrial, name: str, distribution: Any) -> Any:
        return self._tpe.sample_independent(study, trial, name, distribution)

    def after_trial(self, study: optuna.Study, trial: FrozenTrial, state: TrialState, values: Any) -> None:
        self._tpe.after_trial(study, trial, state, values)


def open_storage(url: str, heartbeat: int) -> BaseStorage:
    """An RDB URL (``sqlite:///f.db``, ``postgresql://...``) or else the path of a journal file."""
    if "://" not in url:
        Path(url).parent.mkdir(parents=True, exist_ok=True)
        return JournalStorage(JournalFileBackend(url))
    engine_kwargs = None
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        # workers sharing one file wait for its lock instead of failing at once
        engine_kwargs = {"connect_args": {"timeout": 60}}
    attempt = 0
    while True:
        try:
            with warnings.catch_warnings():  # the heartbeat is "experimental" in Optuna; it is what we rely on
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                return RDBStorage(url, engine_kwargs=engine_kwargs, heartbeat_interval=heartbeat or None)
        except Exception as err:  # noqa: BLE001 - two workers creating the same new database race on its tables
            if isinstance(err, ImportError) and isinstance(err.__cause__, ImportError):
                raise UserError(missing_driver(url, err.__cause__.name or str(err.__cause__))) from None
            if attempt == 4 or "already exists" not in str(err) and "UNIQUE" not in str(err):
                raise UserError(f"cannot open the study storage {url} ({err}); check --tune.storage.") from None
        time.sleep(0.5 + attempt)
        attempt += 1


# the database driver SQLAlchemy imports for a URL scheme, and how to get it
DRIVERS = {
    "psycopg": (
        'pip install "psycopg[binary]"; '
        "or pip install psycopg2-binary and write postgresql+psycopg2:// in --tune.storage"
    ),
    "psycopg2": "pip install psycopg2-binary",
    "MySQLdb": "pip install mysqlclient; or pip install pymysql and write mysql+pymysql:// in --tune.storage",
    "pymysql": "pip install pymysql",
}


def missing_driver(url: str, module: str) -> str:
    scheme = url.split("://", 1)[0]
    install = DRIVERS.get(
        module, f"pip install {module}, or name an installed driver in --tune.storage ({scheme}+<driver>://)"
    )
    return (
        f"cannot open the study storage {url}: SQLAlchemy reads {scheme}:// with the Python module {module!r}, "
        f"which is not installed. Install it: {install}."
    )


def open_study(storage: BaseStorage, name: str, seed: int | None, startup: int, warmup: int) -> optuna.Study:
    pruner = optuna.pruners.MedianPruner(n_startup_trials=startup, n_warmup_steps=warmup)
    for attempt in range(5):
        try:
            return optuna.create_study(
                storage=storage,
                study_name=name,
                direction="maximize",
                sampler=TrialSeededSampler(seed),
                pruner=pruner,
                load_if_exists=True,
            )
        except optuna.exceptions.DuplicatedStudyError:  # created by another worker between its check and ours
            time.sleep(0.2 * (attempt + 1))
    raise UserError(f"could not open or create the study {name!r}; check --tune.storage and --tune.study_name.")


def fail_dead_trials(study: optuna.Study, storage: BaseStorage) -> None:
    """Mark trials of dead workers failed now (RDB heartbeat), so that they are not counted as running."""
    if isinstance(storage, RDBStorage) and storage.get_heartbeat_interval():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            optuna.storages.fail_stale_trials(study)


def counted(study: optuna.Study) -> int:
    return len(study.get_trials(deepcopy=False, states=COUNTED))


def stop_at(n_trials: int) -> Any:
    """Stop a worker's loop once the study holds ``n_trials`` finished or running trials (all workers together)."""
    return optuna.study.MaxTrialsCallback(n_trials, states=COUNTED)
