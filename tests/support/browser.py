"""Headless Chromium for the console's tests (Debian's ``chromium`` and
``chromium-driver``, driven by Selenium), and a screenshot command for a person::

    .venv/bin/python -m tests.support.browser http://127.0.0.1:9644/ console.png

``headless_chromium(profile_dir)`` starts a browser with a fresh profile in
``profile_dir`` and everything that would reach the network on its own turned off.
``follow(browser, element)`` clicks a link or submit button and returns once the page it
leads to has loaded (a click returns as soon as the event is dispatched: reading at once
may find the old page, or a blank one while the new one loads).
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.wait import WebDriverWait

FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run",
         "--disable-dev-shm-usage", "--window-size=1400,1000")
PAGE_LOAD_TIMEOUT_S = 30


def headless_chromium(profile_dir: Path) -> webdriver.Chrome:
    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    driver = shutil.which("chromedriver") or "/usr/bin/chromedriver"
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in (*FLAGS, f"--user-data-dir={profile_dir}"):
        options.add_argument(flag)
    browser = webdriver.Chrome(options=options, service=Service(executable_path=driver))
    browser.set_page_load_timeout(PAGE_LOAD_TIMEOUT_S)
    return browser


def follow(browser: WebDriver, element: WebElement, timeout: float = PAGE_LOAD_TIMEOUT_S
           ) -> None:
    """See the module doc: the old page is marked before the click, so it is not mistaken
    for the new one."""
    browser.execute_script("window.__old_page = true")
    element.click()
    WebDriverWait(browser, timeout, poll_frequency=0.05).until(
        lambda d: d.execute_script("return window.__old_page !== true && "
                                   "document.readyState === 'complete'"))


def screenshot(url: str, out: Path) -> None:
    with tempfile.TemporaryDirectory(prefix="strom-chromium-") as profile:
        browser = headless_chromium(Path(profile))
        try:
            browser.get(url)
            browser.save_screenshot(str(out))
        finally:
            browser.quit()


if __name__ == "__main__":  # pragma: no cover - a command for people
    if len(sys.argv) != 3:
        sys.exit("usage: python -m tests.support.browser URL OUT.png")
    screenshot(sys.argv[1], Path(sys.argv[2]))
    print(sys.argv[2])
