"""Start ``python -m mnist_lightning serve`` as a real process on a free loopback port, for tests and benchmarks."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def running_server(
    onnx: Path,
    data_dir: Path | None,
    startup_s: float = 60.0,
    command: list[str] | None = None,
    pythonpath: list[str] | None = None,
) -> Iterator[str]:
    """Yields the server's base URL (``http://127.0.0.1:PORT/``); the process is stopped on exit.

    ``command`` replaces ``python -m mnist_lightning`` (e.g. the installed ``mnist-lightning``); ``pythonpath``
    entries go first on the server's PYTHONPATH.
    """
    port = free_port()
    args = [*(command or [sys.executable, "-m", "mnist_lightning"]), "serve", "--onnx", str(onnx), "--port", str(port)]
    args += ["--data", str(data_dir) if data_dir else str(Path(tempfile.gettempdir()) / "no-mnist-here")]
    path = [*(pythonpath or []), str(ROOT), os.environ.get("PYTHONPATH")]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, path))}
    with tempfile.TemporaryFile("w+") as log:
        proc = subprocess.Popen(args, env=env, stdout=log, stderr=subprocess.STDOUT, text=True)
        url = f"http://127.0.0.1:{port}/"
        try:
            deadline = time.monotonic() + startup_s
            while True:
                if proc.poll() is not None:
                    log.seek(0)
                    raise RuntimeError(f"server exited with {proc.returncode}:\n{log.read()}")
                try:
                    with urllib.request.urlopen(url + "health", timeout=2):
                        break
                except OSError:
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"server not up on {url} after {startup_s}s") from None
                    time.sleep(0.2)
            yield url
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
