"""Bad input: a short message naming the file or setting, exit code 2, and none of the user's files touched."""

from __future__ import annotations

import errno
import gzip
import hashlib
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

import onnx
import pytest
import torch

from mnist_lightning import MyMNIST
from mnist_lightning.commands import main
from mnist_lightning.common.errors import UserError
from tests.helpers.synthetic import make_mnist, small_args, write_idx

ROOT = Path(__file__).resolve().parents[1]
RAW = Path("data/MNIST/raw")
RUN = Path("lightning_logs/version_0")


@pytest.fixture
def user_dir(trained_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The current folder of a user with MNIST in data/ and a finished run (checkpoints, events, mnist.onnx)."""
    shutil.copytree(trained_run / "lightning_logs", tmp_path / "lightning_logs")
    make_mnist(tmp_path / "data")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def snapshot(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.md5(p.read_bytes()).hexdigest() if p.is_file() else "dir"
        for p in sorted(folder.rglob("*"))
    }


def fails(argv: list[str], folder: Path, capsys: pytest.CaptureFixture) -> str:
    """Run the CLI, expect exit code 2 and an untouched folder; return the error paragraph."""
    before = snapshot(folder)
    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and "usage:" not in err
    assert snapshot(folder) == before  # nothing changed, deleted or added
    message = err[err.rindex("error: ") :]
    print(f"{argv[0]} -> {message}")  # shown with pytest -s: the exact text users see
    return message


def fit(*extra: str) -> list[str]:
    return ["fit", *small_args(Path("data"), "--trainer.max_epochs", "1", *extra)]


# --- data -----------------------------------------------------------------------------------------------------


def truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:300])


def swap_magic(path: Path) -> None:
    with gzip.open(path) as f:
        data = bytearray(f.read())
    data[:4] = (2051).to_bytes(4, "big")  # an images magic number in a labels file
    with gzip.open(path, "wb") as f:
        f.write(bytes(data))


def drop_labels(path: Path) -> None:
    import numpy as np

    write_idx(path, np.zeros(599, np.uint8), 2049)  # 599 labels for 600 images


DATA_CASES: dict[str, tuple[Callable[[Path], None] | None, str, list[str], list[str]]] = {
    "truncated_gz": (truncate, "train-images-idx3-ubyte.gz", [], ["train-images-idx3-ubyte.gz", "truncated"]),
    "md5_mismatch": (
        None,
        "",
        ["--data.verify_md5", "true"],
        ["is not the official MNIST file", "md5", "--data.verify_md5 false"],
    ),
    "wrong_magic": (swap_magic, "t10k-labels-idx1-ubyte.gz", [], ["t10k-labels-idx1-ubyte.gz", "magic number 2051"]),
    "count_mismatch": (drop_labels, "train-labels-idx1-ubyte.gz", [], ["600 images but 599 labels", "train-*"]),
    "missing_file_no_download": (
        lambda p: p.unlink(),
        "t10k-images-idx3-ubyte.gz",
        ["--data.download", "false"],
        ["missing t10k-images-idx3-ubyte.gz", "download is disabled", "--data.data_dir"],
    ),
}


@pytest.mark.parametrize("case", list(DATA_CASES))
def test_bad_data(case: str, user_dir: Path, capsys: pytest.CaptureFixture) -> None:
    damage, name, extra, expected = DATA_CASES[case]
    if damage is not None:
        damage(user_dir / RAW / name)
    message = fails(fit(*extra), user_dir, capsys)
    for text in expected:
        assert text in message


# --- config ---------------------------------------------------------------------------------------------------

CONFIG_CASES: dict[str, tuple[list[str], list[str]]] = {
    "hidden_zero": (["--model.hidden_layers", "[256, 0]"], ["model.hidden_layers", "[256, 0]", "positive integers"]),
    "hidden_negative": (["--model.hidden_layers", "[-4]"], ["model.hidden_layers", "[-4]", "positive integers"]),
    "hidden_not_int": (["--model.hidden_layers", "[a, 32]"], ["model.hidden_layers", "Expected an integer", "a"]),
    "hidden_float": (["--model.hidden_layers", "[1.5]"], ["model.hidden_layers", "1.5"]),
    "lr_zero": (["--model.lr", "0"], ["model.lr must be > 0, got 0.0", "--model.lr 0.001"]),
    "lr_negative": (["--model.lr", "-0.1"], ["model.lr must be > 0, got -0.1"]),
    "batch_size_zero": (["--data.batch_size", "0"], ["data.batch_size", "must be positive, got 0", "128"]),
    "batch_size_negative": (["--data.batch_size", "-5"], ["data.batch_size", "got -5"]),
    "val_size_too_big": (["--data.val_size", "60000"], ["data.val_size", "[0, 60000)", "got 60000"]),
    "val_size_negative": (["--data.val_size", "-1"], ["data.val_size", "got -1"]),
    "unknown_key": (["--model.hiden_layers", "[64]"], ["unknown option --model.hiden_layers", "--help"]),
    "missing_config_file": (["--config", "configs/nope.yaml"], ["config file", "configs/nope.yaml", "does not exist"]),
}


@pytest.mark.parametrize("case", list(CONFIG_CASES))
def test_bad_config(case: str, user_dir: Path, capsys: pytest.CaptureFixture) -> None:
    extra, expected = CONFIG_CASES[case]
    message = fails(fit(*extra), user_dir, capsys)
    for text in expected:
        assert text in message


def test_config_file_that_does_not_parse(user_dir: Path, capsys: pytest.CaptureFixture) -> None:
    (user_dir / "mine.yaml").write_text("model:\n  hidden_layers: [256, 32\n  lr: 0.001\n")
    message = fails(fit("--config", "mine.yaml"), user_dir, capsys)
    assert "config file mine.yaml is not valid YAML at line 3" in message


def test_unknown_key_in_a_config_file(user_dir: Path, capsys: pytest.CaptureFixture) -> None:
    (user_dir / "mine.yaml").write_text("model:\n  learning_rate: 0.01\n")
    message = fails(fit("--config", "mine.yaml"), user_dir, capsys)
    assert "unknown option model.learning_rate" in message


# --- checkpoints ----------------------------------------------------------------------------------------------


def foreign_checkpoint(path: Path, ckpt_hidden: list[int], weights_hidden: list[int]) -> None:
    net = MyMNIST(weights_hidden)
    state = {f"net.{k}": v for k, v in net.state_dict().items()}
    torch.save({"state_dict": state, "hyper_parameters": {"hidden_layers": ckpt_hidden, "lr": 1e-3}}, path)


class RunsCode:
    """A pickle that would create a file when unpickled without weights_only."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple:
        return (open, (self.marker, "w"))


def zip_of_text(path: Path) -> None:
    import zipfile

    with zipfile.ZipFile(path, "w") as z:
        z.writestr("notes.txt", "a zip archive, but not one torch.save wrote")


CKPT_CASES: dict[str, tuple[str, Callable[[Path], None] | None, list[str]]] = {
    "missing": ("test", None, ["does not exist", "'best' or 'last'"]),
    "empty": ("test", lambda p: p.write_bytes(b""), ["is empty (0 bytes)"]),
    "not_a_checkpoint": (
        "validate",
        lambda p: zip_of_text(p),
        ["is not a readable checkpoint: torch.load cannot read it (RuntimeError: ", "). Pass a .ckpt file"],
    ),
    "binary_file": (
        "predict",
        lambda p: p.write_bytes(bytes(range(256))),
        ["is not a PyTorch file: it holds neither a zip archive nor a pickle, not a checkpoint."],
    ),
    "torch_file_not_lightning": ("test", lambda p: torch.save({"w": torch.zeros(2)}, p), ["no 'state_dict'"]),
    "other_architecture_resume": (
        "fit",
        lambda p: foreign_checkpoint(p, [128], [128]),
        ["hidden_layers [128]", "config asks for [256, 32]", "--model.hidden_layers '[128]'"],
    ),
    "weights_do_not_fit": (
        "test",
        lambda p: foreign_checkpoint(p, [256, 32], [64]),
        ["does not hold a MyMNIST[256, 32]", "Missing key(s)"],
    ),
}


@pytest.mark.parametrize("case", list(CKPT_CASES))
def test_bad_checkpoint(case: str, user_dir: Path, capsys: pytest.CaptureFixture) -> None:
    command, make, expected = CKPT_CASES[case]
    path = user_dir / "given.ckpt"
    if make is not None:
        make(path)
    argv = fit("--ckpt_path", str(path)) if command == "fit" else [command, *fit("--ckpt_path", str(path))[1:]]
    message = fails(argv, user_dir, capsys)
    assert str(path) in message
    for text in expected:
        assert text in message


@pytest.mark.parametrize("stage", ["validate", "test", "predict"])
def test_evaluation_without_a_checkpoint_is_refused(stage: str, user_dir: Path, capsys: pytest.CaptureFixture) -> None:
    message = fails([stage, *fit()[1:]], user_dir, capsys)  # no new run folder, no HPARAMS row: folder untouched
    assert message.startswith(f"error: {stage} needs --ckpt_path: ") and "untrained" in message
    assert "--ckpt_path best" in message and "\n" not in message.strip()


def test_checkpoint_with_pickled_code_is_refused_not_run(user_dir: Path, capsys: pytest.CaptureFixture) -> None:
    marker = user_dir.parent / f"{user_dir.name}-pwned"
    torch.save({"state_dict": {}, "evil": RunsCode(str(marker))}, user_dir / "evil.ckpt")
    for argv in (["test", *fit("--ckpt_path", "evil.ckpt")[1:]], ["export", "--ckpt_path", "evil.ckpt"]):
        message = fails(argv, user_dir, capsys)
        assert "evil.ckpt is not a readable checkpoint" in message and "could run arbitrary code" in message
    assert not marker.exists()


# --- the docs' own wording (docs/errors.md), row by row ---------------------------------------------------------------


def documented(row: str) -> str:
    """The message the "What happens when…" table (docs/errors.md) gives for the row that starts with ``row``."""
    line = next(x for x in (ROOT / "docs" / "errors.md").read_text().splitlines() if x.startswith(f"| {row} |"))
    return line.split(" | ", 1)[1].split("`")[1]


@pytest.mark.parametrize("verify_md5", ["false", "true"])
def test_truncated_gz_says_truncated_as_documented(verify_md5: str, user_dir: Path, capsys) -> None:
    truncate(user_dir / RAW / "train-images-idx3-ubyte.gz")
    message = fails(fit("--data.verify_md5", verify_md5), user_dir, capsys)
    assert message.strip() == f"error: {documented('a `.gz` is truncated')}"  # not "a different dataset"


def test_text_file_as_checkpoint_as_documented(user_dir: Path, capsys) -> None:
    shutil.copy(ROOT / "README.md", user_dir / "README.md")
    message = fails(["test", *fit("--ckpt_path", "README.md")[1:]], user_dir, capsys)
    assert message.strip() == f"error: {documented('it is a text file')}"  # no word of pickled code


def test_text_file_as_model_file_as_documented(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    shutil.copy(ROOT / "README.md", tmp_path / "README.md")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(UserError) as err:
        MyMNIST.load("README.md")
    assert str(err.value) == documented("`MyMNIST.load` of a text file")


def test_evaluation_without_a_checkpoint_as_documented(user_dir: Path, capsys) -> None:
    message = fails(["test", *fit()[1:]], user_dir, capsys)  # no run folder made
    assert message.strip() == f"error: {documented('`test`, `validate` or `predict` without `--ckpt_path`')}"


def test_truncated_checkpoint_as_documented(user_dir: Path, capsys) -> None:
    (user_dir / "given.ckpt").write_bytes((user_dir / RUN / "checkpoints" / "last.ckpt").read_bytes()[:1000])
    message = fails(["validate", *fit("--ckpt_path", "given.ckpt")[1:]], user_dir, capsys)
    assert message.strip() == f"error: {documented('the checkpoint is truncated')}"  # one whole sentence


def test_serve_without_test_files_as_documented(tmp_path: Path, capsys) -> None:
    from mnist_lightning.inference.serve import load_test_digits

    assert load_test_digits(tmp_path) is None  # the page still works, without its test-digit button
    want = documented("`serve --data DIR` without MNIST's test files").replace("DIR", str(tmp_path))
    assert capsys.readouterr().err.strip() == want  # missing, not "truncated or corrupt"


# --- export ---------------------------------------------------------------------------------------------------


def test_export_to_a_folder_that_is_not_writable(
    user_dir: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = user_dir / "readonly"
    out.mkdir()
    shutil.copy(user_dir / RUN / "mnist.onnx", out / "mnist.onnx")
    out.chmod(0o555)
    try:
        if shutil.os.access(out, shutil.os.W_OK):  # root ignores permissions: make the OS answer as it would
            real = tempfile.mkstemp

            def refuse(*args, dir=None, **kwargs):  # noqa: A002 - tempfile's own keyword
                if dir is not None and Path(dir) == out:
                    raise PermissionError(errno.EACCES, "Permission denied", str(dir))
                return real(*args, dir=dir, **kwargs)

            monkeypatch.setattr(tempfile, "mkstemp", refuse)
        message = fails(["export", "--ckpt_path", "best", "--output", str(out / "mnist.onnx")], user_dir, capsys)
    finally:
        out.chmod(0o755)
    assert f"cannot write to {out}" in message and "Permission denied" in message and "--output" in message
    onnx.checker.check_model(str(out / "mnist.onnx"))


def test_export_on_a_full_disk_keeps_the_previous_onnx(
    user_dir: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    def disk_full(proto, path, *args, **kwargs) -> None:
        Path(path).write_bytes(proto.SerializeToString()[:1000])  # a partial write, then the error
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(onnx, "save_model", disk_full)
    message = fails(["export", "--ckpt_path", "best"], user_dir, capsys)  # default output: the run's mnist.onnx
    assert f"writing {(user_dir / RUN / 'mnist.onnx').resolve()} failed (No space left on device)" in message
    assert "previous file" in message and "untouched" in message
    onnx.checker.check_model(str(user_dir / RUN / "mnist.onnx"))
