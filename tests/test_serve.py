"""The web app's JSON API through FastAPI's test client, the ``serve`` CLI, and a real uvicorn server."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import urllib.request
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
from fastapi.testclient import TestClient
from PIL import Image, ImageDraw

from mnist_lightning.commands import main
from mnist_lightning.common.layout import newest_onnx
from mnist_lightning.common.mnist_files import read_idx
from mnist_lightning.inference.preprocess import mnist_pixels
from mnist_lightning.inference.serve import create_app
from tests.helpers.server import running_server

ROOT = Path(__file__).parents[1]


@pytest.fixture(scope="module")
def onnx_path(trained_run: Path) -> Path:
    return trained_run / "lightning_logs" / "version_0" / "mnist.onnx"


@pytest.fixture(scope="module")
def client(onnx_path: Path, data_dir: Path) -> TestClient:
    return TestClient(create_app(onnx_path, data_dir))


def softmax_of(onnx_path: Path, pixels: np.ndarray) -> np.ndarray:
    """What the model itself says, straight from onnxruntime."""
    (logits,) = ort.InferenceSession(str(onnx_path)).run(["numbers"], {"images": pixels.reshape(1, 784)})
    exp = np.exp(logits[0] - logits[0].max())
    return exp / exp.sum()


def png_bytes(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


def drawn_digit() -> Image.Image:
    """A dark "7" on light paper at an odd size, as a phone photo or a paint program would give."""
    img = Image.new("RGB", (150, 210), (235, 230, 220))
    ImageDraw.Draw(img).line([(25, 30), (125, 30), (60, 185)], fill=(20, 20, 40), width=14)
    return img


def test_health_and_page(client: TestClient) -> None:
    assert client.get("/health").json() == {"status": "ok", "model": "mnist.onnx", "test_digits": 200}
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    for element in ('id="pad"', 'id="clear"', 'id="sample"', 'id="bars"', 'id="digit"'):
        assert element in page.text


def test_predict_png_uses_the_shared_preprocessing(client: TestClient, onnx_path: Path) -> None:
    img = drawn_digit()
    response = client.post("/predict?include_input=true", content=png_bytes(img), headers={"content-type": "image/png"})
    assert response.status_code == 200
    got = response.json()
    pixels = mnist_pixels(img)
    want = softmax_of(onnx_path, pixels)
    np.testing.assert_allclose(got["probabilities"], want, atol=1e-5)
    assert got["digit"] == int(want.argmax()) and abs(sum(got["probabilities"]) - 1) < 1e-4
    np.testing.assert_allclose(got["input"], pixels, atol=1e-3)  # the page's preview is what the model saw


def test_predict_json_pixels_flat_and_28x28(client: TestClient, onnx_path: Path, data_dir: Path) -> None:
    images = read_idx(data_dir / "MNIST" / "raw" / "t10k-images-idx3-ubyte.gz", 2051)
    pixels = images[5].astype(np.float32) / 255
    want = softmax_of(onnx_path, pixels)
    for body in (pixels.reshape(784).tolist(), {"pixels": pixels.tolist()}):
        got = client.post("/predict", json=body).json()
        assert got["digit"] == int(want.argmax())
        np.testing.assert_allclose(got["probabilities"], want, atol=1e-5)
        assert "input" not in got


def test_test_digit_is_the_idx_image_and_its_label(client: TestClient, data_dir: Path) -> None:
    raw = data_dir / "MNIST" / "raw"
    images, labels = (
        read_idx(raw / "t10k-images-idx3-ubyte.gz", 2051),
        read_idx(raw / "t10k-labels-idx1-ubyte.gz", 2049),
    )
    got = client.get("/test-digit?index=7").json()
    assert got["index"] == 7 and got["label"] == int(labels[7])
    np.testing.assert_allclose(got["input"], images[7].reshape(784) / 255, atol=1e-3)
    random = client.get("/test-digit").json()
    assert 0 <= random["index"] < 200 and random["label"] == int(labels[random["index"]])
    assert client.get("/test-digit?index=200").status_code == 422


BAD_REQUESTS = {
    "not an image": (b"GIF89a but not really", "image/png", 422, "not an image"),
    "truncated png": (png_bytes(drawn_digit())[:200], "image/png", 422, "image"),
    "blank image": (png_bytes(Image.new("L", (50, 50), 255)), "image/png", 422, "no digit found"),
    "blank canvas": (json.dumps([0.0] * 784).encode(), "application/json", 422, "no digit found"),  # as a PNG
    "faint canvas": (json.dumps({"pixels": [[0.05] * 28] * 28}).encode(), "application/json", 422, "no digit found"),
    "empty body": (b"", "image/png", 400, "empty"),
    "wrong array size": (json.dumps([0.5] * 783).encode(), "application/json", 422, "784"),
    "not numbers": (json.dumps({"pixels": ["a"] * 784}).encode(), "application/json", 422, "784 numbers"),
    "out of range": (json.dumps([2.0] * 784).encode(), "application/json", 422, "[0, 1]"),
    "NaN": (b"[" + b",".join([b"NaN"] * 784) + b"]", "application/json", 422, "finite"),
    "broken json": (b'{"pixels": [1,', "application/json", 400, "not valid JSON"),
    "huge upload": (b"\x89PNG" + bytes(3 * 1024 * 1024), "image/png", 413, "over"),
    "unknown type": (b"hello", "text/plain", 415, "PNG"),
    "giant image": (png_bytes(Image.new("L", (5000, 4000))), "image/png", 413, "5000x4000"),
}


@pytest.mark.parametrize("name", list(BAD_REQUESTS))
def test_bad_requests_get_a_clear_4xx_json(client: TestClient, name: str) -> None:
    body, kind, status, words = BAD_REQUESTS[name]
    response = client.post("/predict", content=body, headers={"content-type": kind})
    assert response.status_code == status, response.text
    assert words in response.json()["detail"]


def test_validation_errors_have_a_string_detail_like_every_other_error(client: TestClient) -> None:
    response = client.get("/test-digit?index=abc")
    assert response.status_code == 422
    assert (
        response.json()["detail"]
        == "index: Input should be a valid integer, unable to parse string as an integer (got 'abc')"
    )
    posted = client.post("/predict?include_input=maybe", json=[0.5] * 784)
    assert posted.status_code == 422 and posted.json()["detail"].startswith("include_input: ")


def test_without_test_images_the_page_is_told(onnx_path: Path, tmp_path: Path) -> None:
    client = TestClient(create_app(onnx_path, tmp_path))  # a folder with no MNIST in it
    assert client.get("/health").json()["test_digits"] == 0
    response = client.get("/test-digit")
    assert response.status_code == 404 and "--data" in response.json()["detail"]


def test_serve_cli_errors_are_one_paragraph(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a model")
    for args, words in (
        (["--onnx", str(tmp_path / "missing.onnx")], "no such ONNX file"),
        (["--onnx", str(bad)], "not a loadable ONNX model"),
    ):
        assert main(["serve", *args]) == 2
        assert words in capsys.readouterr().err
    monkeypatch.chdir(tmp_path)  # --onnx latest (the default) with no runs here
    assert main(["serve"]) == 2
    assert "train first" in capsys.readouterr().err


def test_latest_is_the_newest_run_with_a_model(onnx_path: Path, tmp_path: Path) -> None:
    for version in (1, 9):
        (tmp_path / "lightning_logs" / f"version_{version}").mkdir(parents=True)
        shutil.copy(onnx_path, tmp_path / "lightning_logs" / f"version_{version}" / "mnist.onnx")
    (tmp_path / "lightning_logs" / "version_10").mkdir()  # a newer run that has not exported yet
    assert newest_onnx(tmp_path) == tmp_path / "lightning_logs" / "version_9" / "mnist.onnx"


def test_server_path_never_imports_torch(onnx_path: Path, data_dir: Path) -> None:
    code = f"""
import runpy, sys
from fastapi.testclient import TestClient
from mnist_lightning.inference.serve import create_app
client = TestClient(create_app({str(onnx_path)!r}, {str(data_dir)!r}))
assert client.get("/test-digit").status_code == 200
sys.argv = ["mnist_lightning", "serve", "--onnx", "/nonexistent/mnist.onnx"]
try:
    runpy.run_module("mnist_lightning", run_name="__main__")
except SystemExit as stop:
    print("exit", stop.code)
print("torch" in sys.modules, "lightning" in sys.modules)
"""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["exit", "2", "False", "False"]
    assert "no such ONNX file" in out.stderr


def test_real_server_over_http(onnx_path: Path, data_dir: Path) -> None:
    with running_server(onnx_path, data_dir) as url:
        request = urllib.request.Request(
            url + "predict", data=png_bytes(drawn_digit()), headers={"Content-Type": "image/png"}
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            got = json.load(response)
        assert got["digit"] == int(softmax_of(onnx_path, mnist_pixels(drawn_digit())).argmax())
        with urllib.request.urlopen(url + "health", timeout=10) as response:
            assert json.load(response)["test_digits"] == 200
