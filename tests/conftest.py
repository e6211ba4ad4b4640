"""Shared fixtures: a small synthetic MNIST (see ``helpers/synthetic.py``), one trained run to reuse, the blocker."""

from __future__ import annotations

from pathlib import Path

import pytest

from mnist_lightning.commands import main
from tests.helpers.import_blocker import BLOCKER
from tests.helpers.synthetic import make_mnist, small_args


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


@pytest.fixture(scope="session")
def blocker(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder whose sitecustomize.py makes the imports named in $BLOCK_IMPORTS fail, in any Python started."""
    folder = tmp_path_factory.mktemp("blocker")
    (folder / "sitecustomize.py").write_text(BLOCKER)
    return folder
