"""The tear sheet (DESIGN §6): one self-contained page with every section, escaped data text, and
machine-readable twins; loaded in headless Chromium with the network blocked.

The run uses a small sample market in which one symbol is called `<script>alert(1)</script>`
(and its name carries an `&`), so every test also checks that data text renders as text.
The browser test needs the Debian packages `chromium` and `chromium-driver` (.ci/run installs
them) and selenium (the `test` extra); without them it is skipped with the reason.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import shutil
from html.parser import HTMLParser

import pandas as pd
import pytest

from backtest import event_study as es
from backtest.config import load_config
from backtest.data.synth import generate
from backtest.output import write_outputs
from backtest.pipeline import run
from backtest.tearsheet import CSP, SECTIONS, SORT_JS
from tests.helpers import missing

EVIL = "<script>alert(1)</script>"
SECTION_IDS = ["header", *(sid for sid, _ in SECTIONS)]


@pytest.fixture(scope="module")
def sheet(tmp_path_factory):
    md = generate(seed=7, symbols=5, years=3)
    old = md.symbols.index[0]
    md.hk = {k: v.rename(columns={old: EVIL}) for k, v in md.hk.items()}
    md.symbols = md.symbols.rename(index={old: EVIL})
    md.symbols.loc[EVIL, "name"] = EVIL + " & Co"
    out = run(load_config("configs/dip.toml"), md)
    assert (out.result.trades["symbol"] == EVIL).any(), "the test needs a trade in the evil symbol"
    d = write_outputs(out, tmp_path_factory.mktemp("sheet"))
    return out, d, (d / "tearsheet.html").read_text()


class _Ids(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.ids: list[str] = []
        self.tags: list[str] = []
        self.refs: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        for k, v in attrs:
            if k == "id":
                self.ids.append(v)
            if k in ("src", "href", "xlink:href", "action", "srcset", "poster", "data"):
                self.refs.append(v or "")


def test_every_section_is_there_once_and_in_order(sheet):
    _, _, page = sheet
    p = _Ids()
    p.feed(page)
    found = [i for i in p.ids if i in SECTION_IDS]
    assert found == SECTION_IDS
    # equity (linear and log), underwater, yearly, rolling Sharpe, trade returns, exposure, event study
    assert p.tags.count("svg") == 8


def test_page_is_self_contained(sheet):
    _, _, page = sheet
    p = _Ids()
    p.feed(page)
    # Only in-page anchors, SVG-internal references and the empty data: favicon.
    assert all(r.startswith("#") or r == "data:," for r in p.refs), [r for r in p.refs if not r.startswith("#")][:5]
    assert not re.search(r"url\((?!#)", page), "CSS or SVG url() to something outside the page"
    assert "@import" not in page and "<link rel=\"stylesheet\"" not in page
    assert f'http-equiv="Content-Security-Policy" content="{CSP}"' in page
    digest = base64.b64encode(hashlib.sha256(SORT_JS.encode()).digest()).decode()
    assert f"script-src 'sha256-{digest}'" in CSP and "default-src 'none'" in CSP
    assert page.count("<script") == 1 and f"<script>{SORT_JS}</script>" in page


def test_data_and_config_text_is_escaped(sheet):
    out, _, page = sheet
    assert EVIL not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; Co" in page  # the name, in the trade list
    assert "&lt;= -0.1" in page  # rule text (entry condition) in header, tables and chart legend
    assert out.prepared.cfg.text.splitlines()[0].replace("'", "&#x27;") in page


def test_machine_readable_twins(sheet):
    out, d, _ = sheet
    eq = pd.read_csv(d / "equity.csv", index_col=0)
    assert {"equity", "cash", "invested", "exposure", "drawdown", "index_close", "bench_index",
            "bench_equal_weight"} <= set(eq.columns)
    assert eq["bench_index"].iloc[0] == eq["bench_equal_weight"].iloc[0] == eq["equity"].iloc[0]
    idx = eq["index_close"].ffill()
    pd.testing.assert_series_equal(eq["bench_index"] / eq["equity"].iloc[0], idx / idx.iloc[0], check_names=False,
                                   rtol=1e-12)
    stats = json.loads((d / "stats.json").read_text())
    assert stats["metrics"]["total_return"] == pytest.approx(out.stats["total_return"], rel=1e-15)
    for key in ("alpha_index", "beta_index", "excess_return_equal_weight", "turnover", "max_drawdown_days"):
        assert key in stats["metrics"]
    assert set(stats["benchmarks"]) == {"index", "equal_weight", "index_at_exposure"}
    assert stats["benchmarks"]["index"]["name"] == out.prepared.panel.index_name
    assert stats["run"]["started"] and stats["data"]["fingerprint"] == out.prepared.panel.fingerprint
    ev = pd.read_csv(d / "event_study.csv", keep_default_na=False, na_values=[""])
    assert list(ev.columns) == es.COLUMNS and len(ev) == len(out.event_study)
    assert EVIL in set(ev["symbol"])
    pooled = ev[ev["symbol"] == es.POOLED]
    assert len(stats["event_study"]["pooled"]) == len(pooled) == 3 * len(es.HORIZONS)
    assert stats["event_study"]["pooled"][0]["n"] == pooled["n"].iloc[0]


# ---------------------------------------------------------------------------------------------
# Headless Chromium


CHROME_FLAGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--disable-dev-shm-usage", "--proxy-server=http://127.0.0.1:9", "--proxy-bypass-list=<-loopback>"]


def _browser(tmp_path, width=1440, height=900):
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver_path = shutil.which("chromedriver")
    reason = None
    if not chromium or not driver_path:
        reason = "chromium or chromedriver not installed (Debian: apt-get install chromium chromium-driver)"
    else:
        try:
            import selenium  # noqa: F401
        except ImportError:
            reason = "selenium not installed (pip install -e '.[test]')"
    if reason:
        missing(f"browser test: {reason}")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    os.environ.setdefault("SE_OFFLINE", "true")  # Selenium Manager must not download anything
    opts = webdriver.ChromeOptions()
    opts.binary_location = chromium
    for flag in [*CHROME_FLAGS, f"--user-data-dir={tmp_path / 'profile'}", f"--window-size={width},{height}"]:
        opts.add_argument(flag)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    driver = webdriver.Chrome(options=opts, service=Service(driver_path))
    driver.execute_cdp_cmd("Network.enable", {})
    driver.execute_cdp_cmd("Network.emulateNetworkConditions", {
        "offline": True, "latency": 0, "downloadThroughput": 0, "uploadThroughput": 0})
    driver.get_log("performance")  # drop the start-up page's events
    return driver


def _screenshot(driver, path, width) -> None:
    driver.execute_script("window.scrollTo(0, 0)")
    height = int(driver.execute_cdp_cmd("Page.getLayoutMetrics", {})["cssContentSize"]["height"])
    shot = driver.execute_cdp_cmd("Page.captureScreenshot", {
        "format": "png", "captureBeyondViewport": True,
        "clip": {"x": 0, "y": 0, "width": width, "height": height, "scale": 1}})
    path.write_bytes(base64.b64decode(shot["data"]))


def test_tearsheet_in_headless_chromium(sheet, tmp_path):
    from selenium.webdriver.common.by import By

    _, d, _ = sheet
    driver = _browser(tmp_path)
    try:
        driver.get((d / "tearsheet.html").as_uri())
        # Nothing left the machine: every request was the file itself or inline data.
        sent = [json.loads(m["message"])["message"] for m in driver.get_log("performance")]
        urls = [m["params"]["request"]["url"] for m in sent if m["method"] == "Network.requestWillBeSent"]
        assert urls and all(u.startswith(("file:", "data:")) for u in urls), urls
        # No console errors (a blocked script or style, a failed load, a JS exception).
        errors = [entry for entry in driver.get_log("browser") if entry["level"] in ("SEVERE", "ERROR")]
        assert not errors, errors
        for sid in SECTION_IDS:
            assert driver.find_element(By.ID, sid).is_displayed(), sid
        # Readable on a laptop: no horizontal scrolling.
        assert driver.execute_script("return document.documentElement.scrollWidth <= window.innerWidth")
        # The linear/log toggle (pure CSS); log scale by default.
        lin, log = (driver.find_element(By.CSS_SELECTOR, f"#equity .chart.{c}") for c in ("lin", "log"))
        assert log.is_displayed() and not lin.is_displayed()
        driver.find_element(By.CSS_SELECTOR, "label[for=scale-lin]").click()
        assert lin.is_displayed() and not log.is_displayed()
        # The trade list sorts on a header click (the inline script ran under the CSP).
        header = driver.find_element(By.XPATH, "//section[@id='trades']//th[normalize-space()='Return']")
        header.click()
        values = driver.execute_script(
            "return Array.from(document.querySelectorAll('#trades tbody tr td:nth-child(11)'))"
            ".map(td => parseFloat(td.dataset.v));")
        assert len(values) > 3 and values == sorted(values)
        assert header.get_attribute("aria-sort") == "ascending"
        _screenshot(driver, tmp_path / "tearsheet.png", 1440)
        driver.set_window_size(1366, 768)
        driver.save_screenshot(str(tmp_path / "tearsheet_laptop.png"))
        assert (tmp_path / "tearsheet.png").stat().st_size > 50_000
    finally:
        driver.quit()


def test_script_in_a_symbol_name_renders_as_text(sheet, tmp_path):
    from selenium.common.exceptions import NoAlertPresentException
    from selenium.webdriver.common.by import By

    _, d, _ = sheet
    driver = _browser(tmp_path)
    try:
        driver.get((d / "tearsheet.html").as_uri())
        with pytest.raises(NoAlertPresentException):
            driver.switch_to.alert.text  # noqa: B018
        assert driver.execute_script("return document.scripts.length") == 1
        cells = driver.find_elements(By.CSS_SELECTOR, "#trades tbody td:first-child")
        assert EVIL in {c.text for c in cells}
        names = driver.find_elements(By.CSS_SELECTOR, "#trades tbody td:nth-child(2)")
        assert EVIL + " & Co" in {c.text for c in names}
    finally:
        driver.quit()
