"""The README's and docs' fenced blocks as commands, and a user's folder to run them in after the set-up commands."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import yaml

from tests.helpers.digit_images import make_digit_folder, save_digit
from tests.helpers.synthetic import make_mnist

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.S | re.M)
# what the configs are cut to in the user's folder: one short epoch on the synthetic MNIST, nothing downloaded
SHORT = {
    "trainer": {"max_epochs": 1, "log_every_n_steps": 2},
    "data": {"val_size": 100, "download": False, "verify_md5": False},
}


@dataclass
class Command:
    page: str
    text: str  # one logical line (continuations joined), or a whole script for a block that starts with #!
    kind: str  # "bash" or "python"


def blocks(page: Path) -> list[tuple[str, str]]:
    """(language, body) of every fenced block; an untagged block is shown output, not a command."""
    return [(m.group(1), m.group(2)) for m in FENCE.finditer(page.read_text())]


def commands(page: Path) -> list[Command]:
    found = []
    for language, body in blocks(page):
        if language == "python":
            found.append(Command(page.name, body, "python"))
        elif language == "bash" and body.startswith("#!"):
            found.append(Command(page.name, body, "bash"))
        elif language == "bash":
            for line in body.replace("\\\n", " ").splitlines():
                if line.strip() and not line.lstrip().startswith("#"):
                    found.append(Command(page.name, re.sub(r"\s+", " ", line.strip()), "bash"))
    return found


def in_process_argv(text: str) -> list[str] | None:
    """The arguments of a plain ``python -m mnist_lightning ...`` line that can run inside this process, else None.

    DDP re-launches its command line (here pytest's), servers block, and shell syntax needs bash: those go to bash.
    """
    if not text.startswith("python -m mnist_lightning ") or "ddp" in text or " serve " in text:
        return None
    lexer = shlex.shlex(text, posix=True, punctuation_chars=True)
    lexer.commenters = "#"
    tokens = list(lexer)
    if "$" in text or any(t and set(t) <= set(lexer.punctuation_chars) for t in tokens):
        return None
    return shlex.split(text, comments=True)[3:]


def shorten_configs(src: Path, dst: Path) -> None:
    for path in src.rglob("*.yaml"):
        config = yaml.safe_load(path.read_text())
        if "fixed" in config:  # a tune space file: every trial one epoch
            config["fixed"]["trainer.max_epochs"] = SHORT["trainer"]["max_epochs"]
        for section, values in SHORT.items():
            if section in config:
                config[section].update(values)
        target = dst / path.relative_to(src)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(yaml.safe_dump(config, sort_keys=False))


def fresh_checkout(folder: Path) -> Path:
    """A folder that looks like the checkout after ``make install``: the package, Makefile, shortened configs, a
    ``.venv`` of links to this interpreter's environment (with its own ``.installed``, so make installs nothing),
    the synthetic MNIST in ``data/``, and a user's own digit images."""
    folder.mkdir(parents=True)
    (folder / "mnist_lightning").symlink_to(ROOT / "mnist_lightning")
    shutil.copy(ROOT / "Makefile", folder / "Makefile")
    shutil.copy(ROOT / "pyproject.toml", folder / "pyproject.toml")
    os.utime(folder / "pyproject.toml", (0, 0))  # older than .venv/.installed
    shorten_configs(ROOT / "configs", folder / "configs")
    venv = folder / ".venv"
    venv.mkdir()
    for entry in Path(sys.prefix).iterdir():
        if entry.name != ".installed":
            (venv / entry.name).symlink_to(entry)
    (venv / ".installed").touch()
    make_mnist(folder / "data")
    make_digit_folder(folder / "my_digits")
    for name, digit in (("one.png", 1), ("two.jpg", 2), ("my_digit.png", 7)):
        save_digit(folder / name, digit)
    return folder


def user_env(folder: Path) -> dict[str, str]:
    """The environment of a shell with ``.venv`` activated."""
    path = os.pathsep.join([str(folder / ".venv" / "bin"), os.environ.get("PATH", "")])
    env = {k: v for k, v in os.environ.items() if k not in ("ARGS", "CKPT", "ONNX", "CONFIG", "DATA")}
    return {**env, "PATH": path, "VIRTUAL_ENV": str(folder / ".venv"), "PYTHONPATH": str(ROOT)}


def run_shell(command: Command, folder: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    if command.kind == "python":
        argv = [str(folder / ".venv" / "bin" / "python"), "-c", command.text]
    else:
        argv = ["bash", "-e", "-o", "pipefail", "-c", command.text]
    return subprocess.run(argv, cwd=folder, env=env, capture_output=True, text=True, timeout=900)


def start_server(text: str, folder: Path, env: dict[str, str], url: str, log_file: Path) -> subprocess.Popen:
    """Start a long-running command in its own process group; returns once ``url`` answers."""
    log = open(log_file, "w+")  # noqa: SIM115 - the server writes to it until it is stopped
    proc = subprocess.Popen(
        ["bash", "-c", f"exec {text}"],
        cwd=folder,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    deadline = time.monotonic() + 300
    while True:
        if proc.poll() is not None:
            log.seek(0)
            raise AssertionError(f"{text!r} exited with {proc.returncode}:\n{log.read()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return proc
        except OSError:
            if time.monotonic() > deadline:
                stop(proc)
                raise AssertionError(f"{text!r} did not answer on {url}") from None
            time.sleep(0.5)


def stop(proc: subprocess.Popen) -> None:
    os.killpg(proc.pid, 15)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, 9)
        proc.wait()


def tree(folder: Path) -> set[str]:
    """Every file and folder under ``folder``, not following the links into the package and the environment."""
    found = set()
    for dirpath, dirnames, filenames in os.walk(folder):
        rel = Path(dirpath).relative_to(folder)
        found |= {str(rel / n) for n in dirnames + filenames}
        dirnames[:] = [d for d in dirnames if not (Path(dirpath) / d).is_symlink()]
    return found
