"""Latency of ``POST /predict`` on a locally started server, beside onnxruntime's own time for one image.

    python benchmarks/serve_latency.py --onnx lightning_logs/version_0/mnist.onnx [--requests 1000]

Starts ``python -m mnist_lightning serve`` on 127.0.0.1 (a free port), sends ``--requests`` sequential requests over
one keep-alive connection for each payload (a 280x280 canvas-like PNG, and the JSON 784-pixel array), and reports
p50/p99 in milliseconds; then times, in this process, the server's own steps for one image: PNG decode +
preprocessing, and the onnxruntime run (same session options as the server). Loopback only, bounded counts.
"""

from __future__ import annotations

import argparse
import http.client
import io
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mnist_lightning.common.layout import newest_onnx  # noqa: E402
from mnist_lightning.inference.digit_model import OnnxDigitModel  # noqa: E402
from mnist_lightning.inference.preprocess import mnist_pixels  # noqa: E402
from tests.helpers.server import running_server  # noqa: E402


def canvas_png() -> bytes:
    """What the page sends: a white "7" drawn with an 18 px pen on a black 280x280 canvas."""
    img = Image.new("RGB", (280, 280), "black")
    ImageDraw.Draw(img).line([(70, 55), (205, 55), (165, 145), (125, 240)], fill="white", width=18, joint="curve")
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


def stats(seconds: list[float]) -> dict[str, float]:
    ms = np.asarray(seconds) * 1000
    return {"n": len(ms), "p50_ms": float(np.percentile(ms, 50)), "p99_ms": float(np.percentile(ms, 99))}


def time_calls(fn: Callable[[], object], n: int, warmup: int = 20) -> list[float]:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(n):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def http_times(url: str, body: bytes, kind: str, n: int) -> list[float]:
    host, port = url.removeprefix("http://").strip("/").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)

    def one() -> None:
        conn.request("POST", "/predict", body=body, headers={"Content-Type": kind})
        response = conn.getresponse()
        payload = response.read()
        if response.status != 200:
            raise RuntimeError(f"/predict answered {response.status}: {payload[:200]!r}")

    try:
        return time_calls(one, n)
    finally:
        conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--onnx", default="latest", help="mnist.onnx, or 'latest' (the newest run's)")
    parser.add_argument("--requests", type=int, default=1000, help="requests per payload, 1..10000")
    parser.add_argument("--output", default=str(ROOT / "benchmarks" / "out" / "serve_latency.json"))
    args = parser.parse_args()
    if not 1 <= args.requests <= 10_000:
        parser.error("--requests must be in 1..10000 (a bounded load, on loopback)")
    onnx = newest_onnx() if args.onnx == "latest" else Path(args.onnx)

    png = canvas_png()
    pixels = mnist_pixels(Image.open(io.BytesIO(png)))
    model = OnnxDigitModel(onnx)
    results = {
        "onnxruntime run, 1 image": stats(time_calls(lambda: model.probabilities(pixels[None]), args.requests)),
        "PNG decode + preprocessing": stats(
            time_calls(lambda: mnist_pixels(Image.open(io.BytesIO(png))), min(args.requests, 1000))
        ),
    }
    with running_server(onnx, None) as url:
        results["POST /predict, PNG 280x280"] = stats(http_times(url, png, "image/png", args.requests))
        body = json.dumps(pixels.round(4).tolist()).encode()
        results["POST /predict, JSON 784 values"] = stats(http_times(url, body, "application/json", args.requests))

    print(f"{'what':34s} {'n':>6s} {'p50 ms':>9s} {'p99 ms':>9s}")
    for name, s in results.items():
        print(f"{name:34s} {s['n']:6d} {s['p50_ms']:9.3f} {s['p99_ms']:9.3f}")
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps({"onnx": str(onnx), "results": results}, indent=2))
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
