"""The package's metadata as the build backend reads it: no deprecation on `pip install`."""

from __future__ import annotations

import warnings
from pathlib import Path

from setuptools.config.pyprojecttoml import apply_configuration
from setuptools.dist import Distribution

PYPROJECT = Path(__file__).parents[1] / "pyproject.toml"


def test_pyproject_applies_without_a_warning() -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        dist = apply_configuration(Distribution(), PYPROJECT)
    assert [str(w.message).splitlines()[0] for w in caught] == []
    assert dist.metadata.license_expression == "MIT"  # the SPDX form, not the deprecated {text = ...} table
    assert "mnist-lightning = mnist_lightning.commands:main_exit" in dist.entry_points["console_scripts"]
