"""The analysts' dashboard (scripts/demo/dashboard.py) in headless Chromium: it starts on a built
warehouse opened read-only, shows a filter for every cell dimension, wave and indicator, the
estimates with intervals, suppression and provenance, without console errors, and a filter
change updates the numbers. Screenshots go to target/test-artifacts/."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from browser import console_errors, driver, full_screenshot
from report_builds import demo_build
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

from surveysynth.report.warehouse import Warehouse

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "target" / "test-artifacts"


def _read(build, name: str):
    """A relation of the build's warehouse, found by name in whichever schema holds it."""
    wh = Warehouse(build.db_path)
    try:
        return wh.table(name)
    finally:
        wh.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def app():
    """(url, build) of the dashboard serving the small demo build."""
    build = demo_build()
    assert build.ok, build.output[-3000:]
    port = _free_port()
    cmd = [sys.executable, "-m", "streamlit", "run", str(ROOT / "scripts/demo/dashboard.py")]
    cmd += ["--server.headless", "true", "--server.port", str(port)]
    cmd += ["--browser.gatherUsageStats", "false", "--", "--db", str(build.db_path)]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(url, proc)
        yield url, build
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def _wait_healthy(url: str, proc: subprocess.Popen, timeout: float = 90) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        assert proc.poll() is None, proc.stdout.read().decode()[-3000:]
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise AssertionError("the dashboard did not start")


def _metrics(drv) -> dict[str, str]:
    out = {}
    for m in drv.find_elements(By.CSS_SELECTOR, '[data-testid="stMetric"]'):
        label = m.find_element(By.CSS_SELECTOR, '[data-testid="stMetricLabel"]').text
        out[label] = m.find_element(By.CSS_SELECTOR, '[data-testid="stMetricValue"]').text
    return out


def _wait(drv, test, timeout: float = 60):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = test()
        if value:
            return value
        time.sleep(0.3)
    raise AssertionError("timed out waiting for the dashboard")


def _idle(drv) -> bool:
    """No rerun running and the numbers steady for a second."""
    if drv.find_elements(By.CSS_SELECTOR, '[data-testid="stStatusWidget"]'):
        return False
    first = _metrics(drv)
    time.sleep(1.0)
    return first == _metrics(drv)


def _pick(drv, label: str, value: str) -> None:
    """Type ``value`` into the select widget labelled ``label`` and press Enter."""
    widgets = drv.find_elements(
        By.CSS_SELECTOR, '[data-testid="stSelectbox"], [data-testid="stMultiSelect"]'
    )
    box = next(w for w in widgets if w.text.split("\n")[0] == label)
    field = box.find_element(By.TAG_NAME, "input")
    field.click()
    field.send_keys(value)
    exact = [o for o in drv.find_elements(By.CSS_SELECTOR, '[role="option"]') if o.text == value]
    if exact:
        exact[0].click()
    else:
        field.send_keys(Keys.ENTER)
    field.send_keys(Keys.ESCAPE)


def test_dashboard_shows_the_release_and_filters_update_the_numbers(app):
    url, build = app
    mtime = build.db_path.stat().st_mtime
    drv = driver()
    try:
        drv.get(url)
        _wait(drv, lambda: drv.find_elements(By.CSS_SELECTOR, '[data-testid="stJson"]'))
        _wait(drv, lambda: _metrics(drv) and _idle(drv))
        _wait(drv, lambda: drv.find_elements(By.CSS_SELECTOR, '[data-testid="stVegaLiteChart"]'))
        labels = [
            w.text for w in drv.find_elements(By.CSS_SELECTOR, '[data-testid="stWidgetLabel"]')
        ]
        assert {"Indicator", "Wave", "region", "sector", "size_band"} <= set(labels)
        assert drv.find_elements(By.CSS_SELECTOR, '[data-testid="stDataFrame"]')
        text = drv.find_element(By.TAG_NAME, "body").text
        assert "Synthetic provenance" in text
        release_id = _read(build, "release_manifest")["release_id"][0]
        assert release_id in text
        before = _metrics(drv)
        assert set(before) == {
            "Estimates shown",
            "Published",
            "Suppressed",
            "Mean published estimate",
        }
        shown = int(before["Estimates shown"])
        assert int(before["Published"]) + int(before["Suppressed"]) == shown
        if int(before["Suppressed"]):
            assert "Suppressed, and why" in text
        full_screenshot(drv, ARTIFACTS / "dashboard_demo.png")

        # a dimension filter narrows the selection: the counts follow
        region = _read(build, "cell_support")["region"].min()
        _pick(drv, "region", region)
        after = _wait(drv, lambda: _metrics(drv) != before and _idle(drv) and _metrics(drv))
        assert int(after["Estimates shown"]) < shown
        assert int(after["Published"]) + int(after["Suppressed"]) == int(after["Estimates shown"])
        # another indicator changes the estimates themselves
        _pick(drv, "Indicator", "employees")
        final = _wait(drv, lambda: _metrics(drv) != after and _idle(drv) and _metrics(drv))
        assert final["Mean published estimate"] != after["Mean published estimate"]
        full_screenshot(drv, ARTIFACTS / "dashboard_filtered.png")
        assert console_errors(drv) == []
    finally:
        drv.quit()
    assert build.db_path.stat().st_mtime == mtime  # opened read-only
