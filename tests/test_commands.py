"""The top-level router: one help listing every command under the program's real name, and the same list when the
command is missing or unknown; ``COMMAND --help`` stays the command's own full help."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from mnist_lightning.commands import HELP
from tests.helpers.import_blocker import blocked_env

ALL = ("fit", "validate", "test", "predict", "export", "predict-onnx", "serve", "tune")
SCRIPT = Path(sys.executable).parent / "mnist-lightning"  # the installed console script


def entries() -> list[tuple[list[str], str]]:
    """(command line, the name its help must show) for both entry points."""
    assert SCRIPT.is_file(), f"{SCRIPT} missing: install the project (make install)"
    return [
        ([sys.executable, "-m", "mnist_lightning"], "python -m mnist_lightning"),
        ([str(SCRIPT)], "mnist-lightning"),
    ]


def run(command: list[str], blocker: Path, *args: str) -> subprocess.CompletedProcess:
    # torch and Lightning blocked: the help and the error need neither
    return subprocess.run(
        [*command, *args], env=blocked_env(blocker), capture_output=True, text=True, timeout=120, cwd=blocker
    )


@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_top_level_help_lists_every_command_under_the_real_name(flag: str, blocker: Path) -> None:
    assert tuple(HELP) == ALL
    for command, prog in entries():
        done = run(command, blocker, flag)
        assert done.returncode == 0, done.stderr
        assert done.stdout.startswith(f"usage: {prog} COMMAND"), done.stdout
        assert "__main__" not in done.stdout
        listed = [line.split()[0] for line in done.stdout.splitlines() if line.startswith("  ")]
        assert listed == list(ALL)  # each command once, one line each, with its own text
        assert all(HELP[name] in done.stdout for name in ALL)


@pytest.mark.parametrize("args", [[], ["bogus"], ["trian", "--config", "configs/base.yaml"]])
def test_missing_or_unknown_command_names_them_all(args: list[str], blocker: Path) -> None:
    for command, prog in entries():
        done = run(command, blocker, *args)
        assert done.returncode == 2
        assert done.stdout == "" and len(done.stderr.strip().splitlines()) == 1, done.stderr  # one paragraph
        assert done.stderr.startswith("error: ") and "Traceback" not in done.stderr
        assert all(name in done.stderr for name in ALL) and f"{prog} --help" in done.stderr
        assert (repr(args[0]) if args else "no command given") in done.stderr


def test_a_commands_own_help_is_still_the_full_lightningcli_help() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "mnist_lightning", "fit", "--help"], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("usage: python -m mnist_lightning [options] fit")
    assert "--trainer.max_epochs" in done.stdout and "--ckpt_path" in done.stdout and "__main__" not in done.stdout
