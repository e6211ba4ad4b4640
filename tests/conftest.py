"""Shared fixtures: a small synthetic MNIST (see ``helpers/synthetic.py``), one trained run to reuse, the blocker,
and the guard that fails any test leaving a file in the checkout."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from mnist_lightning.commands import main
from mnist_lightning.common.layout import LOG_NAME
from tests.helpers.import_blocker import BLOCKER
from tests.helpers.synthetic import make_mnist, small_args

ROOT = Path(__file__).parents[1]


def checkout_entries() -> set[str]:
    """The checkout's top-level names, and the folders of its lightning_logs/ down to a run's ``checkpoints/`` with
    their modification times (files are replaced by a rename, which touches the folder)."""
    entries = set(os.listdir(ROOT))
    logs = ROOT / LOG_NAME
    if logs.is_dir():
        for path in [logs, *logs.glob("*"), *logs.glob("*/*"), *logs.glob("*/*/*")]:
            if path.is_dir():
                entries.add(f"{path.relative_to(ROOT)} (changed {path.stat().st_mtime_ns})")
    return entries


@pytest.fixture(autouse=True)
def writes_only_under_tmp() -> Iterator[None]:
    """Tests write only under their own temporary folders: a user's runs and exports stay as they were."""
    before = checkout_entries()
    yield
    if new := sorted(checkout_entries() - before):
        pytest.fail(
            f"the test left or changed {', '.join(new)} in the checkout {ROOT}; write under tmp_path instead (e.g. "
            "--trainer.default_root_dir, monkeypatch.chdir(tmp_path))."
        )


@pytest.fixture(scope="session", autouse=True)
def inductor_cache_under_tmp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """torch.compile's kernel cache (--model.compile) in the session's tmp folder instead of the machine's
    /tmp/torchinductor_<user>; subprocesses inherit it."""
    saved = os.environ.get("TORCHINDUCTOR_CACHE_DIR")
    os.environ["TORCHINDUCTOR_CACHE_DIR"] = str(tmp_path_factory.mktemp("inductor"))
    yield
    if saved is None:
        os.environ.pop("TORCHINDUCTOR_CACHE_DIR", None)
    else:
        os.environ["TORCHINDUCTOR_CACHE_DIR"] = saved


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_mnist(tmp_path_factory.mktemp("data"))


@pytest.fixture(scope="session")
def trained_run(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One real `fit` through the CLI; returns the folder it ran in (holding lightning_logs/)."""
    root = tmp_path_factory.mktemp("run")
    code = main(["fit", *small_args(data_dir, "--trainer.default_root_dir", str(root))])
    assert code == 0
    return root


@pytest.fixture
def trained_copy(trained_run: Path, tmp_path: Path) -> Path:
    """A copy of ``trained_run`` for a test that evaluates or resumes it: the shared run stays as fit left it."""
    shutil.copytree(trained_run, tmp_path / "run", symlinks=True)
    return tmp_path / "run"


@pytest.fixture(scope="session")
def blocker(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder whose sitecustomize.py makes the imports named in $BLOCK_IMPORTS fail, in any Python started."""
    folder = tmp_path_factory.mktemp("blocker")
    (folder / "sitecustomize.py").write_text(BLOCKER)
    return folder
