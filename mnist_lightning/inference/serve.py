"""``python -m mnist_lightning serve``: a draw-a-digit web page and a JSON API on the exported ONNX model.

onnxruntime, numpy and PIL (plus FastAPI and uvicorn, the ``[serve]`` extra) only: importing this module or running
the subcommand never imports torch, so the server starts fast and ships without it. Images go through
:func:`~mnist_lightning.inference.preprocess.mnist_pixels`, the preprocessing the predict commands use, so the page,
the API and the command line see the same pixels.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
from importlib import resources
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from mnist_lightning.common.contract import IMAGE_SIDE, INPUT_SIZE
from mnist_lightning.common.errors import UserError

try:
    from fastapi import FastAPI, HTTPException, Request
    from fastapi.concurrency import run_in_threadpool
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import HTMLResponse, JSONResponse
except ImportError as missing:  # the web server is an extra: training installs do not need it
    raise UserError(
        f"serve needs the web-server packages of the [serve] extra ({missing.name} is not installed); install them "
        "with: pip install 'mnist-lightning[serve]' (make install includes them)."
    ) from None

from mnist_lightning.common.layout import TEST_IMAGES, TEST_LABELS, mnist_raw_folder, newest_onnx
from mnist_lightning.common.mnist_files import IMAGE_MAGIC, LABEL_MAGIC, read_idx
from mnist_lightning.inference.digit_model import OnnxDigitModel
from mnist_lightning.inference.preprocess import ImageError, digit_ink, mnist_pixels

MAX_BODY_BYTES = 2 * 1024 * 1024  # a 280x280 canvas PNG is ~5 KB; anything near this is not a digit drawing
MAX_IMAGE_PIXELS = 4096 * 4096  # checked before decoding: a small PNG can inflate to gigabytes


def load_test_digits(data_dir: str | Path | None) -> tuple[np.ndarray, np.ndarray] | None:
    """MNIST's test images [N, 28, 28] and labels, or None when they are missing or unreadable (the page says so)."""
    if data_dir is None:
        return None
    try:
        images = read_idx(mnist_raw_folder(data_dir) / TEST_IMAGES, IMAGE_MAGIC)
        labels = read_idx(mnist_raw_folder(data_dir) / TEST_LABELS, LABEL_MAGIC)
    except (OSError, UserError) as err:
        print(f"note: 'try a test digit' is off: {err}", file=sys.stderr)
        return None
    if images.shape[1:] != (IMAGE_SIDE, IMAGE_SIDE) or len(images) != len(labels):
        side = f"{IMAGE_SIDE}x{IMAGE_SIDE}"
        print(f"note: 'try a test digit' is off: {data_dir} holds no {side} images with labels", file=sys.stderr)
        return None
    return images, labels


def decode_image(body: bytes) -> np.ndarray:
    """Uploaded image bytes -> MNIST pixels [784]; bad or oversized images raise HTTPException 4xx."""
    try:
        with Image.open(io.BytesIO(body)) as img:
            if img.width * img.height > MAX_IMAGE_PIXELS:
                raise HTTPException(413, f"image is {img.width}x{img.height}; at most {MAX_IMAGE_PIXELS} pixels")
            img.load()
            return mnist_pixels(img, "upload")
    except ImageError as err:
        raise HTTPException(422, str(err)) from None
    except UnidentifiedImageError:
        raise HTTPException(422, "the body is not an image PIL can read (PNG, JPEG, ...)") from None
    except (OSError, ValueError, Image.DecompressionBombError) as err:
        raise HTTPException(422, f"not a readable image ({err})") from None


def parse_pixels(body: bytes) -> np.ndarray:
    """JSON ``[784 numbers]`` or ``{"pixels": [...]}`` (flat or 28x28), white on black, in [0, 1]."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as err:
        raise HTTPException(400, f"body is not valid JSON ({err})") from None
    if isinstance(data, dict):
        data = data.get("pixels")
    try:
        pixels = np.asarray(data, dtype=np.float32)
    except (ValueError, TypeError):
        raise HTTPException(
            422, f"pixels must be a list of {INPUT_SIZE} numbers (or {IMAGE_SIDE} lists of {IMAGE_SIDE})"
        ) from None
    if pixels.size != INPUT_SIZE or pixels.shape not in ((INPUT_SIZE,), (IMAGE_SIDE, IMAGE_SIDE)):
        shape = list(pixels.shape)
        raise HTTPException(
            422, f"pixels must be {INPUT_SIZE} numbers (or {IMAGE_SIDE}x{IMAGE_SIDE}), got shape {shape}"
        )
    if not np.isfinite(pixels).all() or pixels.min() < 0.0 or pixels.max() > 1.0:
        raise HTTPException(422, "pixels must be finite numbers in [0, 1] (white digit on black)")
    try:
        digit_ink(pixels.reshape(IMAGE_SIDE, IMAGE_SIDE), "pixels")  # a blank canvas is refused as a blank image is
    except ImageError as err:
        raise HTTPException(422, str(err)) from None
    return pixels.reshape(INPUT_SIZE)


def validation_detail(err: RequestValidationError) -> str:
    """FastAPI's list of validation errors as one sentence, the string ``detail`` every other error has."""
    parts = []
    for e in err.errors():
        where = ".".join(str(x) for x in e.get("loc", ())[1:]) or "request"  # loc[0] is "query", "body", ...
        got = f" (got {e['input']!r})" if "input" in e and e["input"] is not None else ""
        parts.append(f"{where}: {e.get('msg', 'invalid')}{got}")
    return "; ".join(parts)


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refused with 413 as soon as it passes ``limit`` (whatever Content-Length claims)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise HTTPException(413, f"request body over {limit} bytes")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise HTTPException(413, f"request body over {limit} bytes")
    return bytes(body)


def answer(model: OnnxDigitModel, pixels: np.ndarray, with_input: bool = False) -> dict:
    probs = model.probabilities(pixels[None])[0]
    result = {"digit": int(probs.argmax()), "probabilities": [round(float(p), 6) for p in probs]}
    if with_input:  # what the model saw, for the page's 28x28 preview
        result["input"] = [round(float(v), 3) for v in pixels]
    return result


def create_app(onnx: str | Path, data_dir: str | Path | None = None, max_body: int = MAX_BODY_BYTES) -> FastAPI:
    model = OnnxDigitModel(onnx)
    test_digits = load_test_digits(data_dir)
    rng = np.random.default_rng()
    page = resources.files(__package__).joinpath("static/index.html").read_text(encoding="utf-8")
    app = FastAPI(title="mnist-lightning", docs_url=None, redoc_url=None, openapi_url=None)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, err: RequestValidationError) -> JSONResponse:
        return JSONResponse({"detail": validation_detail(err)}, status_code=422)

    @app.get("/", response_class=HTMLResponse)
    def index() -> str:
        return page

    @app.get("/health")
    def health() -> dict:
        count = 0 if test_digits is None else len(test_digits[1])
        return {"status": "ok", "model": model.path.name, "test_digits": count}

    @app.post("/predict")
    async def predict(request: Request, include_input: bool = False) -> dict:
        kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if kind != "application/json" and not kind.startswith("image/") and kind != "application/octet-stream":
            raise HTTPException(415, f"send a PNG/JPEG (Content-Type image/png ...) or JSON {INPUT_SIZE} pixel values")
        body = await read_body(request, max_body)
        if not body:
            raise HTTPException(400, "empty request body")
        if kind == "application/json":
            pixels = parse_pixels(body)
        else:
            pixels = await run_in_threadpool(decode_image, body)
        return answer(model, pixels, include_input)

    @app.get("/test-digit")
    def test_digit(index: int | None = None) -> dict:
        if test_digits is None:
            raise HTTPException(404, "no MNIST test images: start the server with --data DIR (DIR/MNIST/raw/t10k-*)")
        images, labels = test_digits
        if index is None:
            index = int(rng.integers(len(labels)))
        if not 0 <= index < len(labels):
            raise HTTPException(422, f"index must be in [0, {len(labels)})")
        pixels = images[index].reshape(INPUT_SIZE).astype(np.float32) / 255.0
        return {"index": index, "label": int(labels[index]), **answer(model, pixels, with_input=True)}

    return app


def serve_main(argv: list[str]) -> None:
    """``python -m mnist_lightning serve``: the draw-a-digit page on an exported ONNX model."""
    parser = argparse.ArgumentParser(prog="python -m mnist_lightning serve", description=serve_main.__doc__)
    parser.add_argument("--onnx", default="latest", help="an exported mnist.onnx, or 'latest' (the newest run's)")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: this machine only)")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--data", default="data", help="folder holding MNIST/raw/t10k-* for 'try a test digit'")
    parser.add_argument("--max-body", type=int, default=MAX_BODY_BYTES, help="largest request body in bytes")
    args = parser.parse_args(argv)
    onnx = newest_onnx() if args.onnx == "latest" else Path(args.onnx)
    app = create_app(onnx, args.data, args.max_body)

    try:
        import uvicorn  # only here: importing the module (tests, benchmarks) needs no server
    except ImportError:
        raise UserError("serve needs uvicorn from the [serve] extra: pip install 'mnist-lightning[serve]'.") from None

    print(f"serving {onnx} on http://{args.host}:{args.port}/  (Ctrl-C stops)", flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
