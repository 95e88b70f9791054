"""Headless Chromium for the browser tests (Debian's chromium + chromium-driver, driven by
selenium). Installed with apt-get when absent; a machine where that fails fails the test."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

CHROMIUM = Path("/usr/bin/chromium")
DRIVER = Path("/usr/bin/chromedriver")
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-dev-shm-usage",
    "--window-size=1400,1800",
]


def ensure_chromium() -> None:
    """Install chromium and chromium-driver with apt-get when either is missing; assert both."""
    if CHROMIUM.exists() and DRIVER.exists():
        return
    apt = shutil.which("apt-get")
    assert apt, "chromium is not installed and there is no apt-get to install it"
    cmd = [apt, "install", "-y", "-q", "chromium", "chromium-driver"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900, check=False)
    if proc.returncode != 0:
        subprocess.run([apt, "update", "-q"], capture_output=True, timeout=600, check=False)
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900, check=False)
    assert CHROMIUM.exists() and DRIVER.exists(), (
        "could not install chromium and chromium-driver with apt-get:\n" + proc.stderr[-2000:]
    )


def driver():
    """A headless Chromium WebDriver that records the browser console."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    ensure_chromium()
    opts = webdriver.ChromeOptions()
    opts.binary_location = str(CHROMIUM)
    for flag in FLAGS:
        opts.add_argument(flag)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(str(DRIVER)), options=opts)


def console_errors(drv) -> list[str]:
    """The console's SEVERE entries since the last call."""
    return [e["message"] for e in drv.get_log("browser") if e.get("level") == "SEVERE"]


def full_screenshot(drv, path: Path) -> Path:
    """Screenshot of the whole page (window resized to the document's height)."""
    height = drv.execute_script("return document.documentElement.scrollHeight")
    drv.set_window_size(1400, min(max(int(height), 800), 16000))
    path.parent.mkdir(parents=True, exist_ok=True)
    drv.save_screenshot(str(path))
    return path
