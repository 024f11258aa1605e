"""The served page in a real browser: headless Chromium (driven by selenium) opens the page of a
token model, types inputs, waits for the outputs and their attention heatmaps and checks them;
then uploads a CSV to a forecasting model's page and waits for the plot. Screenshots go to
$HYBRIDSEQ_SCREENSHOTS (e.g. docs; the models then train longer, for legible pictures), else
to a temporary directory. Skips where Chromium, its driver or selenium is missing."""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import tiny_train_dict

pytest.importorskip("fastapi")
uvicorn = pytest.importorskip("uvicorn")
webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed")
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

from hybridseq import api  # noqa: E402
from hybridseq.serve import create_app  # noqa: E402

CHROMIUM, DRIVER = shutil.which("chromium"), shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(
    not (CHROMIUM and DRIVER), reason="chromium and chromium-driver are not installed (apt)"
)
SHOTS = os.environ.get("HYBRIDSEQ_SCREENSHOTS")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """uvicorn in a background thread on a free 127.0.0.1 port."""

    def __init__(self, path: Path) -> None:
        port = _free_port()
        self.url = f"http://127.0.0.1:{port}"
        config = uvicorn.Config(create_app(path), host="127.0.0.1", port=port, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> Server:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started and time.monotonic() < deadline:
            time.sleep(0.05)
        assert self.server.started, "uvicorn did not start in 30 s"
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--window-size=1100,900",
        f"--user-data-dir={tmp_path_factory.mktemp('chromium')}",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=webdriver.ChromeService(DRIVER), options=options)
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


def _shot(driver, name: str, tmp_path: Path) -> Path:
    out = Path(SHOTS) if SHOTS else tmp_path
    out.mkdir(parents=True, exist_ok=True)
    height = driver.execute_script("return document.documentElement.scrollHeight")
    metrics = {"width": 1100, "height": min(height + 20, 2000), "deviceScaleFactor": 1}
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {**metrics, "mobile": False})
    path = out / f"screenshot_{name}.png"
    assert driver.save_screenshot(str(path))
    driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
    return path


@pytest.fixture(scope="module")
def token_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("tokens")
    raw = tiny_train_dict("reverse", "lstm_attention", steps=400 if SHOTS else 30)
    if SHOTS:  # a model that has learnt to reverse: a legible anti-diagonal in the heatmaps
        raw["data"]["synth"].update(n_train=2000, min_len=3, max_len=8)
        raw["model"].update(emb_dim=16, enc_hidden=32, dec_hidden=32)
        raw["train"].update(eval_every=100, batch_size=32)
    torch.manual_seed(0)
    api.train(raw, out, log=lambda m: None)
    return out


def test_the_token_page_shows_outputs_and_heatmaps(browser, token_run, tmp_path):
    words = ["a b c d e", "f e d c b a", "c a f"]
    expected = api.load(token_run, device="cpu").predict(words)
    with Server(token_run) as server:
        browser.get(server.url + "/")
        wait = WebDriverWait(browser, 30)
        wait.until(lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-ready"))
        box = browser.find_element(By.ID, "inputs")
        box.clear()
        box.send_keys("\n".join(words))
        browser.find_element(By.ID, "run").click()
        wait.until(lambda d: d.find_element(By.ID, "results").get_attribute("data-count") == "3")
        outputs = [e.text for e in browser.find_elements(By.CSS_SELECTOR, ".result .output")]
        assert outputs == [o or "(empty)" for o in expected]
        maps = browser.find_elements(By.CSS_SELECTOR, "table.heatmap")
        assert len(maps) == sum(1 for o in expected if o)
        for table, word, out in zip(maps, words, [o for o in expected if o], strict=True):
            assert int(table.get_attribute("data-cols")) == len(word.split())
            assert int(table.get_attribute("data-rows")) == len(out.split())
            heads = [th.text for th in table.find_elements(By.CSS_SELECTOR, "tr:first-child th")]
            assert heads[1:] == word.split()
            cells = table.find_elements(By.TAG_NAME, "td")
            assert len(cells) == len(word.split()) * len(out.split())
        assert browser.find_element(By.ID, "error").text == ""
        assert _shot(browser, "predict", tmp_path).stat().st_size > 10_000


@pytest.fixture(scope="module")
def forecast_csv(tmp_path_factory):
    pd = pytest.importorskip("pandas")
    pytest.importorskip("statsmodels")
    times = pd.date_range("2019-01-01", periods=48, freq="MS").strftime("%Y-%m-%d")
    rng = np.random.default_rng(0)
    rows = [
        (sid, t, 100 + 20 * np.sin(2 * np.pi * i / 12) + i + k * 30 + rng.normal(0, 2))
        for k, sid in enumerate(["north", "south"])
        for i, t in enumerate(times)
    ]
    path = tmp_path_factory.mktemp("series") / "sales.csv"
    pd.DataFrame(rows, columns=["id", "time", "target"]).to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def forecast_run(tmp_path_factory, forecast_csv):
    from hybridseq.forecast import fit_forecaster

    out = tmp_path_factory.mktemp("forecast")
    model = {"family": "hybrid", "d_model": 16, "heads": 2, "ff_dim": 16, "enc_layers": 1}
    model.update(dec_hidden=16, dec_layers=1, dropout=0.0, quantiles=[0.1, 0.5, 0.9])
    train = {"batch_size": 32, "max_steps": 200 if SHOTS else 10, "eval_every": 50}
    train.update(lr=0.005, loss="quantile", metrics=["mae"], select="mae", progress=False)
    forecast = {"horizon": 6, "lookback": 12, "period": 12, "deseasonalize": True}
    torch.manual_seed(0)
    config = {"forecast": forecast, "model": model, "train": {**train, "threads": 1}}
    fit_forecaster(forecast_csv, config, out, log=lambda _: None)
    return out


def test_the_forecast_page_plots_an_upload(browser, forecast_run, forecast_csv, tmp_path):
    with Server(forecast_run) as server:
        browser.get(server.url + "/")
        wait = WebDriverWait(browser, 30)
        wait.until(lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-ready"))
        browser.find_element(By.ID, "file").send_keys(str(forecast_csv))
        wait.until(lambda d: d.find_element(By.ID, "plot").get_attribute("data-series"))
        assert browser.find_element(By.ID, "plot").get_attribute("data-series") == "north"
        rows = browser.find_elements(By.CSS_SELECTOR, "table.forecast tr")
        assert len(rows) == 1 + 6
        first = [td.text for td in rows[1].find_elements(By.TAG_NAME, "td")]
        assert first[:3] == ["north", "1", "2023-01-01"]
        assert browser.find_element(By.ID, "error").text == ""
        assert _shot(browser, "forecast", tmp_path).stat().st_size > 10_000
