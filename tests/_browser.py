"""Debian's headless Chromium through selenium, for the tests that drive the pages in a real browser."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest


def headless_chromium(monkeypatch, downloads: Path | None = None):
    """A selenium Chrome driver on Debian's ``chromium`` + ``chromedriver`` (the test is skipped when
    either is missing); files the page downloads land in ``downloads``. Never fetches a browser."""
    webdriver = pytest.importorskip("selenium.webdriver")
    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if not (chromium and driver):
        pytest.skip("needs Debian's chromium and chromium-driver")
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    monkeypatch.setenv("SE_OFFLINE", "true")          # never let selenium fetch a browser or driver
    options = Options()
    options.binary_location = chromium
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1400,1000"):
        options.add_argument(arg)
    if downloads is not None:
        options.add_experimental_option("prefs", {"download.default_directory": str(downloads),
                                                  "download.prompt_for_download": False})
    browser = webdriver.Chrome(service=Service(executable_path=driver), options=options)
    if downloads is not None:
        browser.execute_cdp_cmd("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)})
    return browser
