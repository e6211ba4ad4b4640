"""The model's options are declared once (model/options.py): the signature LightningCLI reads, the saved hparams,
the resume comparison and the checkpoint reader all follow that table."""

from __future__ import annotations

import inspect
import typing
from pathlib import Path

import pytest
import torch
from jsonargparse import Namespace

from mnist_lightning import MNISTClassifier, MyMNIST
from mnist_lightning.common.errors import UserError
from mnist_lightning.common.layout import find_checkpoint
from mnist_lightning.model.checkpoints import load_checkpoint, net_from_checkpoint
from mnist_lightning.model.options import ARCHITECTURE, DEFAULTS, NAMES, SPEED_ONLY, ModelOptions, architecture
from mnist_lightning.training.callbacks.resume_guard import IGNORED, check_resume_settings


def test_the_signature_is_the_option_table() -> None:
    params = list(inspect.signature(MNISTClassifier.__init__).parameters.values())[1:]
    assert tuple(p.name for p in params) == NAMES
    assert {p.name: p.default for p in params} == {name: getattr(DEFAULTS, name) for name in NAMES}
    hints = typing.get_type_hints(MNISTClassifier.__init__)
    assert {name: hints[name] for name in NAMES} == typing.get_type_hints(ModelOptions)


def test_saved_hparams_are_the_options_as_plain_types(trained_run: Path) -> None:
    chosen = {"hidden_layers": (64,), "lr": 2, "optimizer": "adamw", "dropout": 0.25, "augment_shift": 1}
    module = MNISTClassifier(**chosen)
    assert dict(module.hparams) == ModelOptions(**chosen).hparams()
    assert module.hparams.hidden_layers == [64] and type(module.hparams.lr) is float
    assert type(module.hparams.augment_shift) is float and module.augment.shift == 1.0
    # a checkpoint fit wrote: every option saved, read back with torch.load(weights_only=True)
    saved = load_checkpoint(find_checkpoint("best", trained_run))["hyper_parameters"]
    assert tuple(saved) == NAMES


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"optimizer": "sgd"}, "model.optimizer must be 'adam' or 'adamw', got 'sgd'."),
        ({"lr_schedule": "step"}, "model.lr_schedule must be 'constant', 'onecycle' or 'cosine', got 'step'."),
        ({"hidden_layers": [32, True]}, "model.hidden_layers must be positive integers (one width per hidden layer)"),
        ({"lr": 0}, "model.lr must be > 0, got 0; e.g. --model.lr 0.001."),
        ({"weight_decay": -0.5}, "model.weight_decay must be >= 0, got -0.5."),
        ({"warmup": 1.0}, "model.warmup must be in [0, 1), got 1.0."),
        ({"lr_schedule": "onecycle"}, "model.lr_schedule 'onecycle' needs model.warmup > 0"),
    ],
)
def test_each_check_says_which_option_and_why(kwargs: dict, message: str) -> None:
    for build in (ModelOptions, MNISTClassifier):
        with pytest.raises(UserError) as err:
            build(**kwargs)
        assert str(err.value).startswith(message)


def _changed(name: str) -> object:
    default = getattr(DEFAULTS, name)
    if isinstance(default, bool):
        return not default
    if isinstance(default, float):
        return default + 0.5
    if isinstance(default, int):
        return default + 1
    choices = typing.get_args(typing.get_type_hints(ModelOptions)[name])
    return next(c for c in choices if c != default)


def test_a_resume_compares_every_option_but_the_speed_only_ones() -> None:
    assert SPEED_ONLY == {"compile", "fused_adam"} and IGNORED == SPEED_ONLY | {"hidden_layers"}
    compared = [name for name in NAMES if name not in IGNORED]
    config = Namespace(**DEFAULTS.hparams())
    saved = DEFAULTS.hparams() | {name: _changed(name) for name in NAMES if name != "hidden_layers"}
    with pytest.raises(UserError) as err:
        check_resume_settings(Path("run.ckpt"), {"hyper_parameters": saved}, config)
    listed = str(err.value).split("asks for: ", 1)[1].split(". Resuming")[0]
    assert [part.split()[0] for part in listed.split("; ")] == [f"model.{name}" for name in compared]
    check_resume_settings(Path("run.ckpt"), {"hyper_parameters": DEFAULTS.hparams()}, config)  # same: no error


def test_the_checkpoint_reader_builds_the_saved_architecture(tmp_path: Path) -> None:
    assert set(ARCHITECTURE) <= set(NAMES)
    for saved in ({}, {"hidden_layers": [16], "dropout": 0.5, "standardize": True}):
        net = MyMNIST(**architecture(saved))
        path = tmp_path / "given.ckpt"
        state = {f"net.{k}": v for k, v in net.state_dict().items()}
        torch.save({"state_dict": state, "hyper_parameters": saved}, path)
        read, _ = net_from_checkpoint(path)
        # an option the file does not name is the table's default
        assert read.arguments() == {name: saved.get(name, DEFAULTS.hparams()[name]) for name in ARCHITECTURE}
        assert all(
            torch.equal(a, b) for a, b in zip(read.state_dict().values(), net.state_dict().values(), strict=True)
        )
