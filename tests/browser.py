"""Headless Chromium for the browser tests (Debian's chromium + chromium-driver, selenium).

"No browser, no pass": under CI (CI=true) a missing browser fails the test; locally
the test is skipped and says what to install.
"""

from __future__ import annotations

import os
import shutil

import pytest

INSTALL = "apt-get install -y chromium chromium-driver; pip install -e '.[test]'"


def _missing() -> str | None:
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed"
    if not (shutil.which("chromium") or shutil.which("chromium-browser")):
        return "chromium is not installed"
    if not shutil.which("chromedriver"):
        return "chromedriver (chromium-driver) is not installed"
    return None


def open_browser(*, required: bool = False, width: int = 1200, height: int = 1600):
    """A selenium driver of headless Chromium; skip (locally) or fail (CI) without one."""
    missing = _missing()
    if missing:
        message = f"no headless Chromium: {missing} ({INSTALL})"
        if required or os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    options = webdriver.ChromeOptions()
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                f"--window-size={width},{height}"):
        options.add_argument(arg)
    options.binary_location = shutil.which("chromium") or shutil.which("chromium-browser")
    return webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)
