"""End to end in headless Chromium: train briefly on the real MNIST, serve its ONNX export, draw digits with the mouse.

Needs the real MNIST (CI: ../shared/data/MNIST/raw beside the repo), Debian's ``chromium`` and ``chromium-driver``
and the ``selenium`` package; skipped with the reason when one is missing. ``SERVE_SCREENSHOT=docs/serve.png``
also saves the page after the "7" (the README's screenshot).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from mnist_lightning.commands import main
from tests.helpers.server import running_server
from tests.helpers.synthetic import small_args

ROOT = Path(__file__).parents[1]
CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
MNIST_FILES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz")

# strokes in canvas pixels (the pad is 280x280, drawn with an 18 px pen): thin, tall, centred, like MNIST's
STROKES = {
    "1": [[(146, 40), (140, 140), (134, 240)]],
    "7": [[(70, 55), (205, 55), (165, 145), (125, 240)]],
}

pytestmark = pytest.mark.slow


def real_mnist() -> Path | None:
    """The folder holding MNIST/raw with the official files, if this machine has it."""
    for folder in (ROOT.parent / "shared" / "data", Path("/work/shared/data"), ROOT / "data"):
        if all((folder / "MNIST" / "raw" / name).is_file() for name in MNIST_FILES):
            return folder
    return None


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (pip install -e .[test])")
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        pytest.skip("no /usr/bin/chromium and /usr/bin/chromedriver (apt-get install chromium chromium-driver)")
    profile = tmp_path_factory.mktemp("chromium-profile")  # not in the checkout (a .pytest_cache left there)
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (
        "--headless=new --no-sandbox --disable-gpu --disable-quic --no-first-run --disable-background-networking "
        f"--disable-component-update --disable-sync --disable-dev-shm-usage --window-size=760,640 "
        f"--user-data-dir={profile}"
    ).split():
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(str(CHROMEDRIVER)))
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture(scope="module")
def real_onnx(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    data = real_mnist()
    if data is None:
        pytest.skip("the real MNIST is not here (../shared/data/MNIST/raw): a drawn digit needs a real model")
    root = tmp_path_factory.mktemp("real-run")
    args = small_args(data, "--trainer.default_root_dir", str(root))
    # the full 55k/5k split and batch 128, three epochs: ~96-97 % on the test set, a few seconds an epoch
    args += ["--data.val_size", "5000", "--data.batch_size", "128", "--trainer.max_epochs", "3"]
    args += ["--trainer.log_every_n_steps", "50"]
    assert main(["fit", *args]) == 0
    return root / "lightning_logs" / "version_0" / "mnist.onnx", data


def draw(driver: object, strokes: list[list[tuple[int, int]]]) -> str:
    """Press, drag through the points in small steps, release; then the digit the page shows once it settled."""
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    pad = driver.find_element(By.ID, "pad")
    for stroke in strokes:
        actions = ActionChains(driver, duration=5)
        x, y = stroke[0]
        actions.move_to_element_with_offset(pad, x - 140, y - 140).click_and_hold()  # offsets from the centre
        for nx, ny in stroke[1:]:
            steps = max(1, int(max(abs(nx - x), abs(ny - y)) // 8))
            for i in range(1, steps + 1):
                actions.move_by_offset(
                    round(x + (nx - x) * i / steps) - round(x + (nx - x) * (i - 1) / steps),
                    round(y + (ny - y) * i / steps) - round(y + (ny - y) * (i - 1) / steps),
                )
            x, y = nx, ny
        actions.release().perform()
    WebDriverWait(driver, 20).until(
        lambda d: (
            d.find_element(By.TAG_NAME, "body").get_attribute("data-pending") == "0"
            and d.find_element(By.ID, "digit").text != ""
        )
    )
    return driver.find_element(By.ID, "digit").text


def test_draw_a_one_and_a_seven(browser: object, real_onnx: tuple[Path, Path]) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    onnx, data = real_onnx
    with running_server(onnx, data) as url:
        browser.get(url)
        WebDriverWait(browser, 20).until(lambda d: d.find_element(By.ID, "sample").is_enabled())
        answers = {}
        for digit, strokes in STROKES.items():
            browser.find_element(By.ID, "clear").click()
            assert browser.find_element(By.ID, "digit").text == ""
            answers[digit] = draw(browser, strokes)
            sure = browser.find_element(By.ID, "confidence").text
            print(f"drew a {digit}: the page answered {answers[digit]} ({sure})")
        if target := os.environ.get("SERVE_SCREENSHOT"):
            browser.save_screenshot(str(ROOT / target))
        assert answers == {"1": "1", "7": "7"}

        # "try a test digit": a real MNIST test image with its label, and the model's answer for it
        browser.find_element(By.ID, "sample").click()
        WebDriverWait(browser, 20).until(lambda d: d.find_element(By.ID, "label").text.startswith("MNIST test"))
        label = browser.find_element(By.ID, "label").text
        print(f"test digit: {label}; the page answered {browser.find_element(By.ID, 'digit').text}")
        assert browser.find_element(By.ID, "digit").text.isdigit()


def test_page_without_test_images_disables_the_button(browser: object, real_onnx: tuple[Path, Path]) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    with running_server(real_onnx[0], None) as url:
        browser.get(url)
        WebDriverWait(browser, 20).until(lambda d: "unavailable" in d.find_element(By.ID, "status").text)
        assert not browser.find_element(By.ID, "sample").is_enabled()
