"""Predicting people's own digit images: preprocessing, the torch CLI, the torch-free ONNX path, bad files."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mnist_lightning.commands import main
from mnist_lightning.common.predictions import read_csv
from mnist_lightning.inference.preprocess import load_batch, mnist_pixels
from tests.helpers.digit_images import draw_digit, make_digit_folder, save_digit
from tests.helpers.synthetic import small_args

REPO = Path(__file__).parents[1]


def best_ckpt(root: Path) -> Path:
    return next((root / "lightning_logs" / "version_0" / "checkpoints").glob("best-*.ckpt"))


def predict(root: Path, data_dir: Path, *extra: str) -> int:
    args = small_args(data_dir, "--trainer.default_root_dir", str(root), "--ckpt_path", str(best_ckpt(root)))
    return main(["predict", *args, *extra])


def subprocess_env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}


def centre_of_mass(pixels: np.ndarray) -> tuple[float, float]:
    img = pixels.reshape(28, 28)
    ys, xs = np.indices(img.shape)
    return float((ys * img).sum() / img.sum()), float((xs * img).sum() / img.sum())


def test_light_and_dark_colour_and_odd_sizes_become_the_same_mnist_digit(tmp_path: Path) -> None:
    reference = mnist_pixels(draw_digit(7))
    variants = {
        "dark.png": {"ink": 255, "paper": 0},
        "colour.png": {"mode": "RGB", "ink": (20, 40, 160), "paper": (255, 250, 220)},
        "odd.jpg": {"size": (83, 61)},
        "big.jpeg": {"size": (640, 480), "ink": 240, "paper": 30},
    }
    files = [save_digit(tmp_path / name, 7, **kw) for name, kw in variants.items()]
    paths, pixels = load_batch([tmp_path])
    assert sorted(paths) == sorted(files) and pixels.shape == (4, 784) and pixels.dtype == np.float32
    for x in pixels:
        assert 0.0 <= x.min() and x.max() <= 1.0 and x.max() > 0.9  # white digit on black, full range
        assert np.abs(np.array(centre_of_mass(x)) - 13.5).max() <= 1.0  # centred by mass, as MNIST is
        rows, cols = np.nonzero(x.reshape(28, 28) > 0.1)
        assert np.ptp(rows) <= 21 and np.ptp(cols) <= 21  # fits the 20x20 box (plus resampling blur)
        assert np.corrcoef(x, reference)[0, 1] > 0.8  # the same 7, whatever the file looked like


def test_predict_own_images_writes_csv_and_prints_a_table(trained_run: Path, data_dir: Path, tmp_path, capsys) -> None:
    digits = make_digit_folder(tmp_path / "mine")
    out = tmp_path / "out" / "preds.csv"
    assert (
        predict(trained_run, data_dir, "--data.predict_path", str(tmp_path / "mine"), "--predictions.output", str(out))
        == 0
    )
    rows = read_csv(out)
    assert sorted(Path(r["file"]).name for r in rows) == sorted(digits)
    for r in rows:
        top3 = [(int(d), float(p)) for d, p in (t.split(":") for t in r["top3"].split())]
        assert len(top3) == 3 and top3[0][0] == int(r["digit"]) and top3[0][1] == pytest.approx(float(r["probability"]))
        assert all(a[1] >= b[1] for a, b in zip(top3, top3[1:], strict=False)) and 0 < float(r["probability"]) <= 1
        assert r["label"] == ""
    printed = capsys.readouterr().out
    assert "digit" in printed and str(out) in printed
    assert all(name in printed for name in digits)
    # a list of files works too, and the CSV goes into predict/ inside the checkpoint's run folder by default
    pair = [str(tmp_path / "mine" / "zero_light.png"), str(tmp_path / "mine" / "two_tall.jpg")]
    assert predict(trained_run, data_dir, "--data.predict_path", f"[{pair[0]}, {pair[1]}]") == 0
    run = best_ckpt(trained_run).parent.parent
    assert [r["file"] for r in read_csv(run / "predict" / "predictions.csv")] == pair  # in the order given


def test_predict_without_images_reports_test_accuracy(trained_run: Path, data_dir: Path, tmp_path, capsys) -> None:
    out = tmp_path / "test.csv"
    assert predict(trained_run, data_dir, "--predictions.output", str(out)) == 0
    rows = read_csv(out)
    assert len(rows) == 200 and all(r["label"] != "" for r in rows)  # the synthetic test set
    acc = np.mean([r["digit"] == r["label"] for r in rows])
    assert f"accuracy {acc:.4f}" in capsys.readouterr().out and acc > 0.5


def _bad_inputs(tmp: Path) -> dict[str, list[Path]]:
    good = save_digit(tmp / "good.png", 3)
    (tmp / "text.png").write_text("this is not an image")
    (tmp / "empty.jpg").write_bytes(b"")
    (tmp / "no_images").mkdir()
    (tmp / "no_images" / "notes.txt").write_text("hello")
    (tmp / "mixed").mkdir()
    save_digit(tmp / "mixed" / "fine.png", 5)
    (tmp / "mixed" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    Image.new("L", (40, 40), 255).save(tmp / "blank.png")  # an image, but no digit on it
    return {
        "not an image": [good, tmp / "text.png"],
        "empty": [tmp / "empty.jpg"],
        "no images": [tmp / "no_images"],
        "broken in a folder": [tmp / "mixed"],
        "blank": [tmp / "blank.png"],
        "missing": [tmp / "nope.png"],
    }


@pytest.mark.parametrize(
    "case, message",
    [
        ("not an image", "not a readable image"),
        ("empty", "the file is empty"),
        ("no images", "holds no images"),
        ("broken in a folder", "broken.png"),
        ("blank", "no digit found"),
        ("missing", "no such file"),
    ],
)
def test_bad_files_fail_clearly_and_leave_no_csv(
    case: str, message: str, trained_run: Path, data_dir: Path, tmp_path: Path, capsys
) -> None:
    inputs = _bad_inputs(tmp_path)[case]
    out = tmp_path / "out" / "preds.csv"
    spec = str(inputs[0]) if len(inputs) == 1 else "[" + ", ".join(map(str, inputs)) + "]"
    assert predict(trained_run, data_dir, "--data.predict_path", spec, "--predictions.output", str(out)) == 2
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and message in errors[0] and "Traceback" not in err
    assert not out.parent.exists() or not list(out.parent.iterdir())  # no CSV, no temp file


def run_onnx_predict(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    # a wrapper that also reports whether torch was ever imported
    code = (
        "import sys; from mnist_lightning.commands import main; rc = main(['predict-onnx', *sys.argv[1:]]); "
        "print('TORCH_IMPORTED' if 'torch' in sys.modules else 'TORCH_FREE'); sys.exit(rc)"
    )
    return subprocess.run(
        [sys.executable, "-c", code, *args], cwd=cwd, env=subprocess_env(), capture_output=True, text=True, timeout=120
    )


def test_onnx_predict_matches_torch_without_importing_torch(trained_run: Path, data_dir: Path, tmp_path: Path) -> None:
    make_digit_folder(tmp_path / "mine")
    torch_csv, onnx_csv = tmp_path / "torch.csv", tmp_path / "onnx.csv"
    assert (
        predict(
            trained_run, data_dir, "--data.predict_path", str(tmp_path / "mine"), "--predictions.output", str(torch_csv)
        )
        == 0
    )
    model = trained_run / "lightning_logs" / "version_0" / "mnist.onnx"  # exported from the same best checkpoint
    proc = run_onnx_predict(str(model), str(tmp_path / "mine"), "--output", str(onnx_csv), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "TORCH_FREE" in proc.stdout and "zero_light.png" in proc.stdout
    by_torch, by_onnx = read_csv(torch_csv), read_csv(onnx_csv)
    assert [r["file"] for r in by_onnx] == [r["file"] for r in by_torch] and len(by_onnx) == 7
    for a, b in zip(by_torch, by_onnx, strict=True):
        assert a["digit"] == b["digit"]
        assert float(a["probability"]) == pytest.approx(float(b["probability"]), abs=2e-4)
        top_a, top_b = (np.array([t.split(":") for t in r["top3"].split()], float) for r in (a, b))
        assert (top_a[:, 0] == top_b[:, 0]).all() and np.abs(top_a[:, 1] - top_b[:, 1]).max() <= 2e-4


def test_onnx_predict_bad_file_and_subcommand(trained_run: Path, tmp_path: Path, capsys) -> None:
    model = trained_run / "lightning_logs" / "version_0" / "mnist.onnx"
    (tmp_path / "notes.png").write_text("not an image")
    proc = run_onnx_predict(str(model), str(tmp_path / "notes.png"), "--output", "x.csv", cwd=tmp_path)
    assert proc.returncode == 2 and "not a readable image" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "x.csv").exists()
    # the same through the main CLI, as `python -m mnist_lightning predict-onnx`
    save_digit(tmp_path / "d.png", 4)
    out = tmp_path / "sub.csv"
    assert main(["predict-onnx", str(model), str(tmp_path / "d.png"), "--output", str(out)]) == 0
    assert len(read_csv(out)) == 1 and "d.png" in capsys.readouterr().out
    assert main(["predict-onnx", str(tmp_path / "missing.onnx"), str(tmp_path / "d.png")]) == 2
