"""The README and docs/ as a newcomer reads them: short README, links and paths that exist, a layout tree that is
the package's, and every command block run as written after the two set-up commands (``make train``, ``make test``)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from mnist_lightning.commands import main
from tests.helpers import doc_blocks
from tests.helpers.doc_blocks import PAGES, ROOT, Command, commands
from tests.helpers.server import free_port
from tests.helpers.synthetic import make_mnist

# substring of a command -> why it cannot run here; each must match a command (no stale entries)
NOT_RUN = {
    "make test": "it is this test suite",
    'pytest -m "not slow"': "it is this test suite",
    "--trainer.accelerator gpu": "needs a CUDA GPU",
    "torchrun ": "needs several machines",
    "#SBATCH": "needs a SLURM cluster",
    "postgresql://": "needs a PostgreSQL server",
    "/shared/nfs/": "needs a filesystem shared by several machines",
    "make bench ": "a benchmark: the real MNIST and minutes of CPU",
    "make accuracy ": "a benchmark: the real MNIST and minutes of CPU",
}
SETUP = "make train"  # the README's first set-up command: run once, in the folder every page starts from
# command -> what its stdout must hold besides exit status 0
EXPECT = {"curl ": '"digit"'}
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
REPO_PATH = re.compile(r"(?<![\w/.$-])((?:mnist_lightning|tests|benchmarks|configs|docs|\.ci)/[\w./-]*\w)")


def bare(text: str) -> str:
    """A command without its trailing comment."""
    return text.split(" #")[0].strip()


def anchors(page: Path) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens."""
    headings = re.findall(r"^#+ (.+)$", re.sub(r"^```.*?^```", "", page.read_text(), flags=re.S | re.M), re.M)
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in headings}


def test_readme_is_one_screen_of_what_matters() -> None:
    text = (ROOT / "README.md").read_text()
    assert len(text.splitlines()) <= 200
    for needed in ("python -m mnist_lightning fit --config configs/base.yaml", "make export", "tensorboard --logdir"):
        assert needed in text
    setup = doc_blocks.blocks(ROOT / "README.md")[0][1]
    assert [bare(c) for c in setup.splitlines()] == [SETUP, "make test"]
    assert ". .venv/bin/activate" in text  # how to get the commands on PATH, before the first of them
    assert text.index(". .venv/bin/activate") < text.index("```bash\npython -m mnist_lightning fit")


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_relative_link_and_anchor_resolves(page: Path) -> None:
    broken = []
    for target in LINK.findall(page.read_text()):
        if re.match(r"\w+:", target):
            continue
        path, _, anchor = target.partition("#")
        file = (page.parent / path).resolve() if path else page
        if not file.exists() or (anchor and file.suffix == ".md" and anchor not in anchors(file)):
            broken.append(target)
    assert not broken, f"{page.name}: {broken}"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_repository_path_named_exists(page: Path) -> None:
    missing = sorted({p for p in REPO_PATH.findall(page.read_text()) if not (ROOT / p).exists()})
    assert not missing, f"{page.name} names files that do not exist: {missing}"


def test_the_layout_tree_is_the_package_as_it_is() -> None:
    text = (ROOT / "docs" / "development.md").read_text()
    tree = re.search(r"^```\n(mnist_lightning/\n.*?)^```", text, re.S | re.M).group(1)
    package = list((ROOT / "mnist_lightning").rglob("*.py"))
    modules = {p.name for p in package if p.name != "__init__.py" or p.parent.name == "mnist_lightning"}
    folders = {p.parent.name + "/" for p in package} | {"static/"}
    named = set(re.findall(r"\w+\.py", tree))
    assert modules <= named, f"modules missing from the layout: {sorted(modules - named)}"
    everything = {p.name for p in ROOT.glob("[mt]*/**/*.py")}
    assert named <= everything, f"the layout names modules that do not exist: {sorted(named - everything)}"
    assert all(f in tree for f in folders), sorted(f for f in folders if f not in tree)


def test_every_block_is_tagged_and_every_not_run_entry_is_used() -> None:
    for page in PAGES:
        for language, body in doc_blocks.blocks(page):
            # untagged blocks are what a command prints; they must not look like commands
            assert language in ("bash", "python", ""), (page.name, language)
            assert language or not body.startswith(("python ", "make ")), (page.name, body[:60])
    every = [c.text for page in PAGES for c in commands(page)]
    assert SETUP in map(bare, every)
    unused = [key for key in NOT_RUN if not any(key in text for text in every)]
    assert not unused, f"NOT_RUN entries that match no command any more: {unused}"


# --- every command block, run as written ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def after_setup(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The user's folder after the two set-up commands (``make train`` run for real, on the shortened configs), and
    a pristine copy of it to put back before each page: in place, since checkpoints remember their folder."""
    folder = doc_blocks.fresh_checkout(tmp_path_factory.mktemp("checkout") / "mnist-lightning")
    done = doc_blocks.run_shell(Command("README.md", SETUP, "bash"), folder, doc_blocks.user_env(folder))
    assert done.returncode == 0, done.stderr[-3000:]
    assert (folder / "lightning_logs" / "version_0" / "mnist.onnx").is_file()
    pristine = folder.parent / "pristine"
    shutil.copytree(folder, pristine, symlinks=True)
    return folder, pristine


def server_url(text: str, env: dict[str, str]) -> str | None:
    """Where a long-running command answers once it is up, or None for a command that ends by itself."""
    port = re.search(r"--port (\d+)", text) or re.search(r"--port (\d+)", env.get("ARGS", ""))
    if text.startswith("tensorboard "):
        return f"http://localhost:{port.group(1)}/"
    if text.startswith("make serve") or text.startswith("python -m mnist_lightning serve "):
        return f"http://127.0.0.1:{port.group(1)}/health"
    return None


def prepared(text: str, usb: Path, ports: dict[str, int]) -> tuple[str, dict[str, str]]:
    """The command with the substitutions a test run needs, and extra environment: fewer tune trials, free ports
    (other programs may hold 8000/8080/6006), the user's own copy of the MNIST files at /path/to/."""
    text = text.replace("--tune.n_trials 40", "--tune.n_trials 2").replace("--tune.n_trials 60", "--tune.n_trials 3")
    text = text.replace("/path/to/", f"{usb}/")
    for written, port in ports.items():
        text = text.replace(f"--port {written}", f"--port {port}").replace(f":{written}/", f":{port}/")
    extra = {}
    if text.startswith("tensorboard ") and "--port" not in text:
        text = text.split("#")[0].strip() + f" --port {free_port()}"
    if text.startswith("make serve") and "ARGS=" not in text:
        extra["ARGS"] = f"--port {free_port()}"  # what `make serve ARGS=...` would pass; the default is 8000
    return text, extra


@pytest.mark.slow
@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_command_block_runs_as_written(
    page: Path,
    after_setup: tuple[Path, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture,
) -> None:
    folder, pristine = after_setup
    shutil.rmtree(folder)
    shutil.copytree(pristine, folder, symlinks=True)
    usb = make_mnist(tmp_path / "usb") / "MNIST" / "raw"
    ports = {"8000": free_port(), "8080": free_port()}
    servers: list[subprocess.Popen] = []
    ran = []
    try:
        for command in commands(page):
            if bare(command.text) == SETUP or any(key in command.text for key in NOT_RUN):
                continue
            text, extra = prepared(command.text, usb, ports)
            env = {**doc_blocks.user_env(folder), **extra}
            if "activate" in text:  # it must work from a shell without .venv on PATH
                env = {k: v for k, v in env.items() if k != "VIRTUAL_ENV"} | {"PATH": os.environ["PATH"]}
            ran.append(text)
            url = server_url(text, env) if command.kind == "bash" else None
            if url:
                servers.append(doc_blocks.start_server(text, folder, env, url, tmp_path / f"server{len(servers)}.log"))
                continue
            argv = doc_blocks.in_process_argv(text) if command.kind == "bash" else None
            if argv is not None:
                monkeypatch.chdir(folder)
                try:
                    code = main(argv)
                except SystemExit as stop:  # --help, --print_config
                    code = stop.code or 0
                err = capsys.readouterr().err
                assert code == 0, f"{page.name}: {text}\n{err[-3000:]}"
                continue
            done = doc_blocks.run_shell(Command(page.name, text, command.kind), folder, env)
            assert done.returncode == 0, f"{page.name}: {text}\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"
            for key, expected in EXPECT.items():
                assert key not in text or expected in done.stdout, f"{text}: {done.stdout[-2000:]}"
    finally:
        for proc in servers:
            doc_blocks.stop(proc)
    assert ran or page.name in ("errors.md", "speed.md"), f"{page.name}: no command ran"
    # make clean removes every file the page's commands wrote, and nothing the user had
    monkeypatch.chdir(tmp_path)
    before = {p for p in doc_blocks.tree(pristine) if not p.startswith("lightning_logs")}
    done = subprocess.run(["make", "clean"], cwd=folder, env=doc_blocks.user_env(folder), capture_output=True)
    assert done.returncode == 0, done.stderr
    left = doc_blocks.tree(folder)
    assert left == before, f"after make clean: left {sorted(left - before)}, removed {sorted(before - left)}"
